//! A replay store and settlement ledger in PostgreSQL, shared by every server process that
//! points at the same database.
//!
//! The replay reservation is one statement: `INSERT … ON CONFLICT DO UPDATE … WHERE expired`
//! takes a free (or expired) payment key, and only one of any number of concurrent copies of a
//! payment, in any process, gets the row back. The state of a taken key (settling with its
//! `/settle` request, settled with its transaction, pending, expired unsettled) is a column of
//! that row, kept for the record retention past the authorization; expired rows are not
//! answered and are swept. Credited transactions and reconciliation claims are rows of their
//! own tables, taken the same way.
//!
//! Every payment that reaches `/settle` is also a row of the ledger, `x402_ledger`, with the
//! terms read from its `/settle` request (network, asset, payer, nonce, amount, recipient,
//! resource and route, scheme), its state and transaction, and when it was created, last
//! changed and settled. The ledger is not swept: it is the record for revenue and disputes,
//! queried with [`PostgresStore::ledger`] or `x402 settlements --ledger`.
//!
//! The schema is created and upgraded by migrations embedded in the crate, run by
//! [`PostgresStore::connect`] (the tables are listed in [`PostgresStore`]'s documentation).

mod ledger;
mod schema;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

use super::{ReplayStore, Slot, Unresolved, transaction_key};
use crate::base::{BoxFuture, Clock};
use crate::schemes::ReplayKey;

pub use ledger::{LedgerEntry, LedgerQuery, LedgerState};
use ledger::{Terms, account_of_hex, hex_of, seconds};

/// How long one store operation (taking a connection included) may take before the store is
/// answered unavailable.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections kept by one process.
const POOL_SIZE: usize = 16;
/// Reservations between two sweeps of expired rows.
const SWEEP_EVERY: u64 = 1024;
/// How long a credit is kept when its payment has no record left.
const CREDIT_WITHOUT_RECORD: u64 = 24 * 60 * 60;

/// Why the Postgres store could not be opened, or the ledger read.
#[derive(Debug)]
pub struct PostgresStoreError(String);

impl std::fmt::Display for PostgresStoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PostgresStoreError {}

/// A [`ReplayStore`] and settlement ledger in PostgreSQL (feature `postgres`), for several
/// server processes behind one load balancer that also want a queryable record of every
/// payment.
///
/// ```no_run
/// # async fn run(config: x402_runtime::X402Config) -> Result<(), Box<dyn std::error::Error>> {
/// use x402_runtime::{LedgerQuery, PostgresStore, X402};
///
/// let store = PostgresStore::connect("postgres://x402:secret@127.0.0.1/shop").await?;
/// let x402 = X402::builder(config).store(store.clone()).build()?;
///
/// // Later: what /weather earned.
/// let paid = store
///     .ledger(&LedgerQuery { route: Some("/weather".to_owned()), ..LedgerQuery::default() })
///     .await?;
/// # Ok(()) }
/// ```
///
/// # Tables
///
/// [`connect`](Self::connect) creates or upgrades them with migrations embedded in the crate:
/// the versions applied are rows of `x402_schema_version`, and each start applies the missing
/// ones in one transaction that first takes an advisory lock, so that processes starting
/// together apply each once (a database migrated by a newer build is refused). Tables live in
/// the connection's `search_path` (normally `public`):
///
/// - `x402_payments`: the replay record, one row per payment key while it is taken (network,
///   asset, payer, nonce; its state, transaction, `/settle` request and `expires_at`); rows
///   past `expires_at` are not answered and are swept at connect and every 1024 reservations.
/// - `x402_credits`: which payment each credited transaction paid for; swept the same way.
/// - `x402_reconciliations`: who reconciles an unknown outcome, until when.
/// - `x402_ledger`: one row per payment that reached `/settle` (see [`LedgerEntry`] for its
///   columns); never swept. Addresses, nonces and transactions are lower-case hex, `amount` is
///   `numeric` (atomic units), times are `timestamptz`.
///
/// When the database cannot be reached, a payment is refused with `503
/// replay_store_unavailable` before anything is verified or served. Connections are plain
/// TCP or a Unix socket (no TLS): keep the database on a private network or the same host.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// `user@host:port/db`, never the password.
    target: String,
    now: Clock,
    reservations: Arc<AtomicU64>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The database a configuration names, without its password.
fn target_of(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or_default(),
        config.get_dbname().unwrap_or_default()
    )
}

/// The columns of a slot: state, transaction, `/settle` request, since.
fn columns(slot: &Slot) -> Option<(&'static str, Option<&str>, Option<&str>, u64)> {
    Some(match slot {
        Slot::InProgress => ("in_progress", None, None, 0),
        Slot::Settling { request, since } => ("settling", None, request.as_deref(), *since),
        Slot::Settled { transaction } => ("settled", known(transaction), None, 0),
        Slot::Pending {
            transaction,
            request,
            since,
        } => ("pending", known(transaction), request.as_deref(), *since),
        Slot::ExpiredUnsettled => ("expired_unsettled", None, None, 0),
        Slot::Unavailable => return None,
    })
}

/// A transaction hash as stored: trimmed, `None` when not known (empty), so that a known one is
/// never replaced by nothing.
fn known(transaction: &str) -> Option<&str> {
    Some(transaction.trim()).filter(|t| !t.is_empty())
}

/// The slot of a row's columns (what [`columns`] wrote).
fn slot_of(state: &str, transaction: Option<String>, request: Option<String>, since: i64) -> Slot {
    let since = u64::try_from(since).unwrap_or(0);
    match state {
        "settling" => Slot::Settling { request, since },
        "settled" => Slot::Settled {
            transaction: transaction.unwrap_or_default(),
        },
        "pending" => Slot::Pending {
            transaction: transaction.unwrap_or_default(),
            request,
            since,
        },
        "expired_unsettled" => Slot::ExpiredUnsettled,
        _ => Slot::InProgress,
    }
}

/// The key columns of a payment: network, asset, payer, nonce.
fn key_columns(key: &ReplayKey) -> [String; 4] {
    [
        key.network.clone(),
        hex_of(key.asset.as_bytes()),
        hex_of(key.from.as_bytes()),
        hex_of(key.nonce.as_slice()),
    ]
}

/// The key a row's first four columns name.
fn key_of(row: &tokio_postgres::Row) -> Option<ReplayKey> {
    Some(ReplayKey {
        network: row.try_get(0).ok()?,
        asset: account_of_hex(&row.try_get::<_, String>(1).ok()?)?,
        from: account_of_hex(&row.try_get::<_, String>(2).ok()?)?,
        nonce: row.try_get::<_, String>(3).ok()?.parse().ok()?,
    })
}

const RESERVE: &str = "
INSERT INTO x402_payments (network, asset, payer, nonce, state, expires_at)
VALUES ($1, $2, $3, $4, 'in_progress', $5)
ON CONFLICT (network, asset, payer, nonce) DO UPDATE
SET state = 'in_progress', transaction = NULL, request = NULL, since = 0,
    expires_at = EXCLUDED.expires_at
WHERE x402_payments.expires_at <= $6
RETURNING 1";

const CURRENT: &str = "
SELECT state, transaction, request, since FROM x402_payments
WHERE network = $1 AND asset = $2 AND payer = $3 AND nonce = $4 AND expires_at > $5";

/// Records a slot ($5 to $8) kept at least until $9; the credit of a settled transaction (whose
/// [`transaction_key`] is $10) is kept as long. A definite outcome (settled, expired unsettled) is never replaced by a weaker
/// state, only by `settled`, and a transaction already known is kept when the new state names
/// none. Returns a row when the slot was written.
const RECORD: &str = "
WITH payment AS (
    INSERT INTO x402_payments AS p (network, asset, payer, nonce, state, transaction, request, since, expires_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (network, asset, payer, nonce) DO UPDATE
    SET state = EXCLUDED.state, transaction = coalesce(EXCLUDED.transaction, p.transaction),
        request = EXCLUDED.request, since = EXCLUDED.since,
        expires_at = greatest(p.expires_at, EXCLUDED.expires_at)
    WHERE p.state NOT IN ('settled', 'expired_unsettled') OR EXCLUDED.state = 'settled'
    RETURNING expires_at
), credit AS (
    UPDATE x402_credits SET expires_at = greatest(x402_credits.expires_at, (SELECT expires_at FROM payment))
    WHERE $5 = 'settled' AND transaction = $10
)
SELECT 1 FROM payment";

/// The ledger row of a recorded slot ($5, and $6 the [`transaction_key`]) with the terms ($7 to $11) at $12: written after
/// the slot, in a statement of its own, so that a ledger failure never costs the replay record.
const LEDGER: &str = "
INSERT INTO x402_ledger AS l (network, asset, payer, nonce, state, transaction, amount, pay_to,
                              resource, route, scheme, created_at, updated_at, settled_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::text::numeric, $8, $9, $10, $11,
        to_timestamp($12::bigint), to_timestamp($12::bigint),
        CASE WHEN $5 = 'settled' THEN to_timestamp($12::bigint) END)
ON CONFLICT (network, asset, payer, nonce) DO UPDATE
SET state = EXCLUDED.state,
    transaction = coalesce(EXCLUDED.transaction, l.transaction),
    amount = coalesce(EXCLUDED.amount, l.amount),
    pay_to = coalesce(EXCLUDED.pay_to, l.pay_to),
    resource = coalesce(EXCLUDED.resource, l.resource),
    route = coalesce(EXCLUDED.route, l.route),
    scheme = coalesce(EXCLUDED.scheme, l.scheme),
    updated_at = EXCLUDED.updated_at,
    settled_at = coalesce(l.settled_at, EXCLUDED.settled_at)
WHERE l.state NOT IN ('settled', 'expired_unsettled') OR EXCLUDED.state = 'settled'";

/// Frees a key in progress or settling; a refused settlement stays in the ledger as `refused`.
const RELEASE: &str = "
WITH freed AS (
    DELETE FROM x402_payments
    WHERE network = $1 AND asset = $2 AND payer = $3 AND nonce = $4
      AND state IN ('in_progress', 'settling')
    RETURNING state
)
UPDATE x402_ledger SET state = 'refused', updated_at = to_timestamp($5::bigint)
WHERE network = $1 AND asset = $2 AND payer = $3 AND nonce = $4 AND state = 'settling'
  AND EXISTS (SELECT 1 FROM freed WHERE state = 'settling')";

/// Credits transaction $1 to a payment once: a row comes back when it is fresh (or expired)
/// or already this payment's.
const CREDIT: &str = "
INSERT INTO x402_credits AS c (transaction, network, asset, payer, nonce, expires_at)
VALUES ($1, $2, $3, $4, $5, coalesce(
    (SELECT expires_at FROM x402_payments
     WHERE network = $2 AND asset = $3 AND payer = $4 AND nonce = $5 AND expires_at > $6),
    $6 + $7))
ON CONFLICT (transaction) DO UPDATE
SET network = EXCLUDED.network, asset = EXCLUDED.asset, payer = EXCLUDED.payer,
    nonce = EXCLUDED.nonce,
    expires_at = CASE WHEN c.expires_at <= $6 THEN EXCLUDED.expires_at
                      ELSE greatest(c.expires_at, EXCLUDED.expires_at) END
WHERE c.expires_at <= $6
   OR (c.network, c.asset, c.payer, c.nonce) = (EXCLUDED.network, EXCLUDED.asset, EXCLUDED.payer, EXCLUDED.nonce)
RETURNING 1";

const UNRESOLVED: &str = "
SELECT network, asset, payer, nonce, state, transaction, request, since FROM x402_payments
WHERE state IN ('settling', 'pending') AND expires_at > $1
ORDER BY since, network, payer, nonce";

const CLAIM: &str = "
INSERT INTO x402_reconciliations AS r (network, asset, payer, nonce, until)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (network, asset, payer, nonce) DO UPDATE SET until = EXCLUDED.until
WHERE r.until <= $6
RETURNING 1";

const END_CLAIM: &str = "
DELETE FROM x402_reconciliations WHERE network = $1 AND asset = $2 AND payer = $3 AND nonce = $4";

const SWEEP: &str = "
DELETE FROM x402_payments WHERE expires_at <= $1;
DELETE FROM x402_credits WHERE expires_at <= $1;
DELETE FROM x402_reconciliations WHERE until <= $1";

/// Session settings of every connection (unless the URL sets `options`): statements and lock
/// waits end on the server before [`OPERATION_TIMEOUT`] ends them here.
const SERVER_TIMEOUTS: &str = "-c statement_timeout=9000 -c lock_timeout=5000";

/// The probe of [`PostgresStore::probe`]: a row written and deleted (then rolled back).
const PROBE: &str = "
INSERT INTO x402_payments (network, asset, payer, nonce, state, expires_at)
    VALUES ('x402-doctor', '', '', 'probe', 'expired_unsettled', 0);
DELETE FROM x402_payments WHERE network = 'x402-doctor' AND nonce = 'probe'";

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`, or the `key=value` form),
    /// creates or upgrades the tables (see the module documentation), and sweeps expired rows.
    pub async fn connect(url: &str) -> Result<PostgresStore, PostgresStoreError> {
        PostgresStore::connect_with_clock(url, crate::base::unix_now).await
    }

    /// Like [`connect`](Self::connect), reading time (unix seconds) from `now`.
    pub async fn connect_with_clock(
        url: &str,
        now: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> Result<PostgresStore, PostgresStoreError> {
        // The URL is not repeated in errors: it may carry the password.
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| PostgresStoreError(format!("the Postgres URL cannot be read: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        // The server gives up on a statement before this client does, so that one the client
        // stopped waiting for cannot commit later, out of order.
        if config.get_options().is_none() {
            config.options(SERVER_TIMEOUTS);
        }
        let target = target_of(&config);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(OPERATION_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| PostgresStoreError(format!("Postgres {target}: {e}")))?;
        let store = PostgresStore {
            pool,
            target,
            now: Arc::new(now),
            reservations: Arc::new(AtomicU64::new(0)),
        };
        store.migrate().await?;
        if let Err(e) = store.sweep().await {
            // Expired rows are never answered; the next sweep removes them.
            tracing::warn!("x402: {e}");
        }
        Ok(store)
    }

    /// `user@host:port/db` of the database (without the password).
    pub fn target(&self) -> &str {
        &self.target
    }

    async fn migrate(&self) -> Result<(), PostgresStoreError> {
        let failed = |e: String| {
            PostgresStoreError(format!(
                "Postgres {}: cannot prepare the tables: {e}",
                self.target
            ))
        };
        let mut client = self.client().await.map_err(failed)?;
        let transaction = client
            .transaction()
            .await
            .map_err(|e| failed(e.to_string()))?;
        schema::migrate(&transaction).await.map_err(failed)?;
        transaction
            .commit()
            .await
            .map_err(|e| failed(e.to_string()))
    }

    /// A connection from the pool.
    async fn client(&self) -> Result<Object, String> {
        self.pool.get().await.map_err(|e| e.to_string())
    }

    /// Runs `statement` with `params` on a pooled connection, within [`OPERATION_TIMEOUT`].
    async fn query(
        &self,
        statement: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, String> {
        let run = async {
            let client = self.client().await?;
            let prepared = client
                .prepare_cached(statement)
                .await
                .map_err(|e| e.to_string())?;
            client
                .query(&prepared, params)
                .await
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(OPERATION_TIMEOUT, run).await {
            Ok(answer) => answer,
            Err(_) => Err(format!(
                "no answer within {} s",
                OPERATION_TIMEOUT.as_secs()
            )),
        }
    }

    /// Removes the payments, credits and reconciliation claims whose time is up (the ledger
    /// is kept).
    pub async fn sweep(&self) -> Result<(), PostgresStoreError> {
        let failed = |e: String| {
            PostgresStoreError(format!(
                "Postgres {}: cannot sweep expired rows: {e}",
                self.target
            ))
        };
        let now = seconds((self.now)());
        let client = self.client().await.map_err(failed)?;
        for statement in SWEEP.split(';') {
            client
                .execute(statement, &[&now])
                .await
                .map_err(|e| failed(e.to_string()))?;
        }
        Ok(())
    }

    /// Checks that the store can be written: inserts a probe row into `x402_payments` and
    /// deletes it, in a transaction that is then rolled back, so nothing is left behind
    /// (`x402 doctor` runs it).
    pub async fn probe(&self) -> Result<(), PostgresStoreError> {
        let failed = |e: String| {
            PostgresStoreError(format!(
                "Postgres {}: cannot write a probe row: {e}",
                self.target
            ))
        };
        let probe = async {
            let mut client = self.client().await?;
            let transaction = client.transaction().await.map_err(|e| e.to_string())?;
            for statement in PROBE.split(';') {
                transaction
                    .execute(statement, &[])
                    .await
                    .map_err(|e| e.to_string())?;
            }
            transaction.rollback().await.map_err(|e| e.to_string())
        };
        match tokio::time::timeout(OPERATION_TIMEOUT, probe).await {
            Ok(probed) => probed.map_err(failed),
            Err(_) => Err(failed(format!(
                "no answer within {} s",
                OPERATION_TIMEOUT.as_secs()
            ))),
        }
    }

    /// The ledger rows `query` selects, newest first.
    pub async fn ledger(
        &self,
        query: &LedgerQuery,
    ) -> Result<Vec<LedgerEntry>, PostgresStoreError> {
        let (sql, params) = ledger::select(query);
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
        let rows = self.query(&sql, &params).await.map_err(|e| {
            PostgresStoreError(format!(
                "Postgres {}: cannot read the ledger: {e}",
                self.target
            ))
        })?;
        rows.iter()
            .map(ledger::entry)
            .collect::<Result<_, _>>()
            .map_err(PostgresStoreError)
    }

    /// Starts a sweep in the background every [`SWEEP_EVERY`] reservations.
    fn count_reservation(&self) {
        if self.reservations.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            let store = self.clone();
            tokio::spawn(async move {
                if let Err(e) = store.sweep().await {
                    tracing::warn!("x402: {e}");
                }
            });
        }
    }

    /// The current slot of a taken key: `Ok(None)` when it is free or expired.
    async fn current(&self, key: &ReplayKey) -> Result<Option<Slot>, String> {
        let [network, asset, payer, nonce] = key_columns(key);
        let now = seconds((self.now)());
        let rows = self
            .query(CURRENT, &[&network, &asset, &payer, &nonce, &now])
            .await?;
        Ok(rows
            .first()
            .map(|row| slot_of(row.get::<_, &str>(0), row.get(1), row.get(2), row.get(3))))
    }
}

impl ReplayStore for PostgresStore {
    fn reserve<'a>(
        &'a self,
        key: &'a ReplayKey,
        expires_at: u64,
    ) -> BoxFuture<'a, Result<(), Slot>> {
        Box::pin(async move {
            self.count_reservation();
            let [network, asset, payer, nonce] = key_columns(key);
            let expires_at = seconds(expires_at);
            // The key can be freed or expire between a refused insert and the read: then try
            // once more.
            for _ in 0..2 {
                let now = seconds((self.now)());
                let params: [&(dyn ToSql + Sync); 6] =
                    [&network, &asset, &payer, &nonce, &expires_at, &now];
                let taken = match self.query(RESERVE, &params).await {
                    Ok(rows) => !rows.is_empty(),
                    Err(e) => {
                        tracing::error!(%key, "x402: replay store unavailable: {e}");
                        return Err(Slot::Unavailable);
                    }
                };
                if taken {
                    return Ok(());
                }
                match self.current(key).await {
                    Ok(Some(slot)) => return Err(slot),
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::error!(%key, "x402: replay store unavailable: {e}");
                        return Err(Slot::Unavailable);
                    }
                }
            }
            Err(Slot::InProgress)
        })
    }

    fn lookup<'a>(&'a self, key: &'a ReplayKey) -> BoxFuture<'a, Option<Slot>> {
        Box::pin(async move {
            match self.current(key).await {
                Ok(slot) => slot,
                Err(e) => {
                    tracing::error!(%key, "x402: replay store unavailable: {e}");
                    Some(Slot::Unavailable)
                }
            }
        })
    }

    fn record<'a>(&'a self, key: &'a ReplayKey, slot: Slot, keep_until: u64) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some((state, transaction, request, since)) = columns(&slot) else {
                return;
            };
            let terms = Terms::of(request);
            let credited = transaction.map(transaction_key);
            let [network, asset, payer, nonce] = key_columns(key);
            let (since, keep_until, now) =
                (seconds(since), seconds(keep_until), seconds((self.now)()));
            let params: [&(dyn ToSql + Sync); 10] = [
                &network,
                &asset,
                &payer,
                &nonce,
                &state,
                &transaction,
                &request,
                &since,
                &keep_until,
                &credited,
            ];
            let written = match self.query(RECORD, &params).await {
                Ok(rows) => !rows.is_empty(),
                Err(e) => {
                    tracing::error!(%key, ?slot, "x402: could not record a payment's outcome: {e}");
                    return;
                }
            };
            if !written || state == "in_progress" {
                return;
            }
            let params: [&(dyn ToSql + Sync); 12] = [
                &network,
                &asset,
                &payer,
                &nonce,
                &state,
                &credited,
                &terms.amount,
                &terms.pay_to,
                &terms.resource,
                &terms.route,
                &terms.scheme,
                &now,
            ];
            if let Err(e) = self.query(LEDGER, &params).await {
                tracing::warn!(%key, ?slot, "x402: the payment is recorded, but its ledger row could not be written: {e}");
            }
        })
    }

    fn release(&self, key: &ReplayKey) {
        let store = self.clone();
        let key = key.clone();
        // Release must not block the caller (it runs in a Drop guard).
        tokio::spawn(async move {
            let [network, asset, payer, nonce] = key_columns(&key);
            let now = seconds((store.now)());
            let params: [&(dyn ToSql + Sync); 5] = [&network, &asset, &payer, &nonce, &now];
            if let Err(e) = store.query(RELEASE, &params).await {
                tracing::warn!(%key, "x402: could not release a payment key (it expires on its own): {e}");
            }
        });
    }

    fn credit<'a>(&'a self, transaction: &'a str, key: &'a ReplayKey) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let [network, asset, payer, nonce] = key_columns(key);
            let name = transaction_key(transaction);
            let now = seconds((self.now)());
            let without_record = seconds(CREDIT_WITHOUT_RECORD);
            let params: [&(dyn ToSql + Sync); 7] = [
                &name,
                &network,
                &asset,
                &payer,
                &nonce,
                &now,
                &without_record,
            ];
            match self.query(CREDIT, &params).await {
                Ok(rows) => !rows.is_empty(),
                Err(e) => {
                    tracing::error!(%key, transaction, "x402: replay store unavailable while crediting: {e}");
                    false
                }
            }
        })
    }

    fn unresolved(&self) -> BoxFuture<'_, Result<Vec<Unresolved>, String>> {
        Box::pin(async move {
            let now = seconds((self.now)());
            let rows = self
                .query(UNRESOLVED, &[&now])
                .await
                .map_err(|e| format!("cannot list unresolved payments: {e}"))?;
            Ok(rows
                .iter()
                .filter_map(|row| {
                    let key = key_of(row)?;
                    let slot = slot_of(row.get::<_, &str>(4), row.get(5), row.get(6), row.get(7));
                    Some(Unresolved { key, slot })
                })
                .collect())
        })
    }

    fn claim_reconciliation<'a>(&'a self, key: &'a ReplayKey, until: u64) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let [network, asset, payer, nonce] = key_columns(key);
            let (until, now) = (seconds(until), seconds((self.now)()));
            let params: [&(dyn ToSql + Sync); 6] = [&network, &asset, &payer, &nonce, &until, &now];
            match self.query(CLAIM, &params).await {
                Ok(rows) => !rows.is_empty(),
                Err(e) => {
                    tracing::warn!(%key, "x402: cannot take the reconciliation of a payment: {e}");
                    false
                }
            }
        })
    }

    fn end_reconciliation(&self, key: &ReplayKey) {
        let store = self.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let [network, asset, payer, nonce] = key_columns(&key);
            let params: [&(dyn ToSql + Sync); 4] = [&network, &asset, &payer, &nonce];
            if let Err(e) = store.query(END_CLAIM, &params).await {
                tracing::warn!(%key, "x402: cannot give back the reconciliation of a payment: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract::{self, START, TestClock, key};

    /// A URL of the test database with a fresh schema for `test`, or `None` (outside CI) when
    /// `X402_TEST_POSTGRES_URL` is not set.
    async fn database(test: &str) -> Option<String> {
        x402_testbed::postgres_database(&format!("store_{test}")).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keeps_the_replay_store_contract() {
        let Some(url) = database("contract").await else {
            return;
        };
        let clock = TestClock::at(START);
        let store = PostgresStore::connect_with_clock(&url, clock.now())
            .await
            .expect("connect");
        contract::check(&store, &clock, true).await;
    }

    /// A v2 `/settle` request for `GET /counted` of 1000 atomic units.
    fn settle_request() -> String {
        let requirements = serde_json::json!({
            "scheme": "exact", "network": "eip155:84532", "amount": "1000",
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            "payTo": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
            "maxTimeoutSeconds": 60
        });
        serde_json::json!({
            "x402Version": 2,
            "paymentPayload": {
                "x402Version": 2,
                "resource": {"url": "http://127.0.0.1:8080/counted?city=Oslo"},
                "accepted": requirements,
                "payload": {"signature": "0x", "authorization": {}}
            },
            "paymentRequirements": requirements
        })
        .to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_ledger_keeps_each_payment_s_terms_and_outcome() {
        let Some(url) = database("ledger").await else {
            return;
        };
        let clock = TestClock::at(START);
        let store = PostgresStore::connect_with_clock(&url, clock.now())
            .await
            .expect("connect");
        let settling = |n: u8| Slot::Settling {
            request: Some(settle_request()),
            since: START + u64::from(n),
        };
        // Settled, pending, refused, and a reservation that never reached /settle.
        for n in 1..=4 {
            clock.set(START + u64::from(n));
            assert_eq!(store.reserve(&key(n), 5_000).await, Ok(()));
        }
        for n in 1..=3 {
            clock.set(START + u64::from(n));
            store.record(&key(n), settling(n), 5_000).await;
        }
        clock.set(1_100);
        assert!(store.credit("0xABCD", &key(1)).await);
        store
            .record(
                &key(1),
                Slot::Settled {
                    transaction: "0xABCD".to_owned(),
                },
                90_000,
            )
            .await;
        let pending = Slot::Pending {
            transaction: "0x2222".to_owned(),
            request: Some(settle_request()),
            since: 1_100,
        };
        store.record(&key(2), pending, 90_000).await;
        store.release(&key(3));
        tokio::time::sleep(Duration::from_millis(300)).await;

        let all = store.ledger(&LedgerQuery::default()).await.expect("ledger");
        let states: Vec<_> = all.iter().map(|e| (e.nonce, e.state)).collect();
        assert_eq!(
            states,
            vec![
                (key(3).nonce, LedgerState::Refused),
                (key(2).nonce, LedgerState::Pending),
                (key(1).nonce, LedgerState::Settled),
            ],
            "newest first; the reservation that never reached /settle is not in the ledger"
        );
        let settled = &all[2];
        assert_eq!(settled.network, "eip155:84532");
        assert_eq!(settled.asset, key(1).asset);
        assert_eq!(settled.payer, key(1).from);
        assert_eq!(settled.transaction.as_deref(), Some("0xabcd"));
        assert_eq!(settled.amount.as_deref(), Some("1000"));
        assert_eq!(
            settled.pay_to.as_deref(),
            Some("0x90f79bf6eb2c4f870365e785982e1f101e93b906")
        );
        assert_eq!(
            settled.resource.as_deref(),
            Some("http://127.0.0.1:8080/counted?city=Oslo")
        );
        assert_eq!(settled.route.as_deref(), Some("/counted"));
        assert_eq!(settled.scheme.as_deref(), Some("exact"));
        assert_eq!(
            (settled.created_at, settled.updated_at, settled.settled_at),
            (START + 1, 1_100, Some(1_100))
        );

        let query = |q: LedgerQuery| {
            let store = store.clone();
            async move {
                let rows = store.ledger(&q).await.expect("ledger");
                rows.iter().map(|e| e.nonce).collect::<Vec<_>>()
            }
        };
        let by_tx = LedgerQuery {
            transaction: Some("0xAbCd".to_owned()),
            ..LedgerQuery::default()
        };
        assert_eq!(query(by_tx).await, vec![key(1).nonce]);
        let settled_on_route = LedgerQuery {
            route: Some("/counted".to_owned()),
            state: Some(LedgerState::Settled),
            payer: Some(key(1).from),
            ..LedgerQuery::default()
        };
        assert_eq!(query(settled_on_route).await, vec![key(1).nonce]);
        let by_url = LedgerQuery {
            route: Some("http://127.0.0.1:8080/counted?city=Oslo".to_owned()),
            ..LedgerQuery::default()
        };
        assert_eq!(query(by_url).await.len(), 3);
        let window = LedgerQuery {
            since: Some(START + 2),
            until: Some(START + 3),
            ..LedgerQuery::default()
        };
        assert_eq!(query(window).await, vec![key(2).nonce]);
        let other_payer = LedgerQuery {
            payer: Some(alloy_primitives::Address::repeat_byte(0x77).into()),
            ..LedgerQuery::default()
        };
        assert!(query(other_payer).await.is_empty());
        let one = LedgerQuery {
            limit: Some(1),
            ..LedgerQuery::default()
        };
        assert_eq!(query(one).await, vec![key(3).nonce]);

        // The ledger outlives the replay record's retention and its sweep.
        clock.set(1_000_000);
        store.sweep().await.expect("sweep");
        assert_eq!(store.lookup(&key(1)).await, None);
        let client = store.client().await.expect("a connection");
        for table in ["x402_payments", "x402_credits"] {
            let left: i64 = client
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .expect("count")
                .get(0);
            assert_eq!(left, 0, "{table} is swept");
        }
        assert_eq!(
            store
                .ledger(&LedgerQuery::default())
                .await
                .expect("ledger")
                .len(),
            3
        );
    }

    /// A v2 `/settle` request paying the USDC devnet mint to a Solana account.
    fn svm_settle_request() -> String {
        let requirements = serde_json::json!({
            "scheme": "exact", "network": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
            "amount": "10000", "asset": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
            "payTo": "EdmxWPmx2WH6WgFfTdu9xfkYf3k1g5wD1zccTVySEEh1", "maxTimeoutSeconds": 60
        });
        serde_json::json!({
            "x402Version": 2,
            "paymentPayload": {
                "x402Version": 2,
                "resource": {"url": "http://127.0.0.1:8080/counted"},
                "accepted": requirements,
                "payload": {"transaction": "AQ=="}
            },
            "paymentRequirements": requirements
        })
        .to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_ledger_keeps_solana_accounts() {
        let Some(url) = database("ledger_svm").await else {
            return;
        };
        let clock = TestClock::at(START);
        let store = PostgresStore::connect_with_clock(&url, clock.now())
            .await
            .expect("connect");
        let (svm, evm) = (contract::svm_key(1), key(1));
        for key in [&svm, &evm] {
            assert_eq!(store.reserve(key, 5_000).await, Ok(()));
        }
        let settling = Slot::Settling {
            request: Some(svm_settle_request()),
            since: START,
        };
        store.record(&svm, settling.clone(), 5_000).await;
        let listed = store.unresolved().await.expect("listed");
        assert_eq!(
            listed,
            vec![Unresolved {
                key: svm.clone(),
                slot: settling
            }]
        );
        let entries = store.ledger(&LedgerQuery::default()).await.expect("ledger");
        assert_eq!(entries.len(), 1, "{entries:?}");
        let entry = &entries[0];
        assert_eq!((entry.asset, entry.payer), (svm.asset, svm.from));
        assert_eq!(entry.amount.as_deref(), Some("10000"));
        let pay_to: crate::network::AccountId = "EdmxWPmx2WH6WgFfTdu9xfkYf3k1g5wD1zccTVySEEh1"
            .parse()
            .expect("base58");
        assert_eq!(
            entry.pay_to.as_deref(),
            Some(hex_of(pay_to.as_bytes()).as_str())
        );
        let by_payer = |payer| LedgerQuery {
            payer: Some(payer),
            ..LedgerQuery::default()
        };
        assert_eq!(
            store
                .ledger(&by_payer(svm.from))
                .await
                .expect("ledger")
                .len(),
            1
        );
        assert!(
            store
                .ledger(&by_payer(evm.from))
                .await
                .expect("ledger")
                .is_empty()
        );
        solana_signature_keeps_its_case(&store, &svm).await;
    }

    /// A settled Solana payment: its signature is recorded, credited and found in the ledger
    /// under its exact case, and its credit is kept as long as the payment.
    async fn solana_signature_keeps_its_case(store: &PostgresStore, svm: &ReplayKey) {
        use contract::SIGNATURE;
        assert!(store.credit(SIGNATURE, svm).await);
        let settled = Slot::Settled {
            transaction: SIGNATURE.to_owned(),
        };
        store.record(svm, settled.clone(), 90_000).await;
        assert_eq!(store.lookup(svm).await, Some(settled));
        let client = store.client().await.expect("a connection");
        let credit = client
            .query_opt(
                "SELECT expires_at FROM x402_credits WHERE transaction = $1",
                &[&SIGNATURE],
            )
            .await
            .expect("credit row")
            .map(|row| row.get::<_, i64>(0));
        assert_eq!(credit, Some(90_000), "kept as long as the payment");
        let by_tx = |transaction: String| LedgerQuery {
            transaction: Some(transaction),
            ..LedgerQuery::default()
        };
        let found = store
            .ledger(&by_tx(SIGNATURE.to_owned()))
            .await
            .expect("ledger");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].transaction.as_deref(), Some(SIGNATURE));
        let lowered = store
            .ledger(&by_tx(SIGNATURE.to_ascii_lowercase()))
            .await
            .expect("ledger");
        assert!(lowered.is_empty(), "another signature: {lowered:?}");
    }

    /// Rows as every earlier version wrote them (EVM accounts as `0x` + 40 lower-case hex
    /// digits) read back as the same keys.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_written_before_accounts_had_families_still_read() {
        let Some(url) = database("old_rows").await else {
            return;
        };
        let clock = TestClock::at(START);
        let store = PostgresStore::connect_with_clock(&url, clock.now())
            .await
            .expect("connect");
        let client = store.client().await.expect("a connection");
        let nonce = format!("0x{}", "05".repeat(32));
        client
            .execute(
                "INSERT INTO x402_payments (network, asset, payer, nonce, state, transaction, since, expires_at) \
                 VALUES ('eip155:84532', $1, $2, $3, 'pending', '0x5555', 1000, 90000)",
                &[&format!("0x{}", "0a".repeat(20)), &format!("0x{}", "0b".repeat(20)), &nonce],
            )
            .await
            .expect("an old row");
        let pending = Slot::Pending {
            transaction: "0x5555".to_owned(),
            request: None,
            since: START,
        };
        assert_eq!(store.lookup(&key(5)).await, Some(pending.clone()));
        assert_eq!(
            store.unresolved().await.expect("listed"),
            vec![Unresolved {
                key: key(5),
                slot: pending
            }]
        );
    }

    #[test]
    fn account_columns_read_by_length() {
        for key in [key(1), contract::svm_key(1)] {
            for account in [key.asset, key.from] {
                assert_eq!(account_of_hex(&hex_of(account.as_bytes())), Some(account));
            }
        }
        assert_eq!(account_of_hex("0x0a0a"), None);
        assert_eq!(account_of_hex(&"0a".repeat(20)), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn processes_starting_together_migrate_once() {
        let Some(url) = database("migrate").await else {
            return;
        };
        let starts = (0..4).map(|_| PostgresStore::connect(&url));
        for started in futures_util::future::join_all(starts).await {
            started.expect("every process starts");
        }
        let store = PostgresStore::connect(&url).await.expect("again");
        let client = store.client().await.expect("a connection");
        let versions: Vec<i32> = client
            .query(
                "SELECT version FROM x402_schema_version ORDER BY version",
                &[],
            )
            .await
            .expect("versions")
            .iter()
            .map(|row| row.get(0))
            .collect();
        let expected: Vec<i32> = (1..=schema::MIGRATIONS.len())
            .map(|v| i32::try_from(v).expect("small"))
            .collect();
        assert_eq!(versions, expected);
        // A database upgraded by a newer build is not used by this one.
        client
            .execute(
                "INSERT INTO x402_schema_version (version) VALUES (999)",
                &[],
            )
            .await
            .expect("insert");
        let refused = PostgresStore::connect(&url)
            .await
            .expect_err("newer schema");
        assert!(refused.to_string().contains("version 999"), "{refused}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_password_is_never_shown() {
        let Some(url) = database("password").await else {
            return;
        };
        // The test cluster trusts its user, so any password connects.
        let with_password = url.replacen("://x402@", "://x402:hunter2@", 1);
        let store = PostgresStore::connect(&with_password)
            .await
            .expect("connect");
        let shown = format!("{store:?} {}", store.target());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("127.0.0.1"), "{shown}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_database_is_an_error_not_a_panic() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().expect("address").port()
        };
        let refused =
            PostgresStore::connect(&format!("postgres://x402:hunter2@127.0.0.1:{port}/db"))
                .await
                .expect_err("nothing listens there");
        let message = refused.to_string();
        assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn slots_round_trip_through_their_columns() {
        for slot in crate::store::recorded_slots() {
            let (state, transaction, request, since) = columns(&slot).expect("a stored slot");
            let back = slot_of(
                state,
                transaction.map(str::to_owned),
                request.map(str::to_owned),
                seconds(since),
            );
            assert_eq!(back, slot);
        }
        assert_eq!(columns(&Slot::Unavailable), None);
    }

    #[test]
    fn the_target_never_shows_the_password() {
        let config: tokio_postgres::Config = "postgres://shop:hunter2@db.internal:6543/payments"
            .parse()
            .expect("a URL");
        let target = target_of(&config);
        assert_eq!(target, "shop@db.internal:6543/payments");
        assert!(!target.contains("hunter2"));
    }
}
