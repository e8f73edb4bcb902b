//! The tables of the Postgres store, created and upgraded by migrations embedded here.
//!
//! Each migration is one batch of SQL with a version number (its position, from 1). The
//! versions applied are rows of `x402_schema_version`. [`migrate`] runs at
//! [`PostgresStore::connect`](super::PostgresStore::connect) in one transaction that first
//! takes a transaction-scoped advisory lock, so that processes starting together apply each
//! migration once, and a failure leaves the schema as it was.
//!
//! Tables (in the connection's `search_path`, normally `public`):
//!
//! - `x402_payments`: the replay store, one row per payment key while it is taken (its state,
//!   the transaction, the `/settle` request, `expires_at`); rows past `expires_at` are not
//!   answered and are swept.
//! - `x402_credits`: which payment each credited transaction paid for, swept the same way.
//! - `x402_reconciliations`: who is reconciling an unknown outcome, until when.
//! - `x402_ledger`: one row per payment that reached `/settle`, with its terms and outcome,
//!   kept until the operator deletes it.

use tokio_postgres::Transaction;

/// Any number that is the same in every process of this crate: the key of the advisory lock
/// held while migrating (`x402` in ASCII, twice).
const MIGRATION_LOCK: i64 = 0x7834_3032_7834_3032;

/// The migrations, oldest first; version n is `MIGRATIONS[n - 1]`. Never edit one that was
/// released: add the next.
pub(super) const MIGRATIONS: &[&str] = &[r"
CREATE TABLE x402_payments (
    network     text   NOT NULL,
    asset       text   NOT NULL,
    payer       text   NOT NULL,
    nonce       text   NOT NULL,
    state       text   NOT NULL,
    transaction text,
    request     text,
    since       bigint NOT NULL DEFAULT 0,
    expires_at  bigint NOT NULL,
    PRIMARY KEY (network, asset, payer, nonce)
);
CREATE INDEX x402_payments_unresolved ON x402_payments (state) WHERE state IN ('settling', 'pending');
CREATE INDEX x402_payments_expiry ON x402_payments (expires_at);

CREATE TABLE x402_credits (
    transaction text   PRIMARY KEY,
    network     text   NOT NULL,
    asset       text   NOT NULL,
    payer       text   NOT NULL,
    nonce       text   NOT NULL,
    expires_at  bigint NOT NULL
);
CREATE INDEX x402_credits_expiry ON x402_credits (expires_at);

CREATE TABLE x402_reconciliations (
    network text   NOT NULL,
    asset   text   NOT NULL,
    payer   text   NOT NULL,
    nonce   text   NOT NULL,
    until   bigint NOT NULL,
    PRIMARY KEY (network, asset, payer, nonce)
);

CREATE TABLE x402_ledger (
    network     text           NOT NULL,
    asset       text           NOT NULL,
    payer       text           NOT NULL,
    nonce       text           NOT NULL,
    state       text           NOT NULL,
    transaction text,
    amount      numeric(78, 0),
    pay_to      text,
    resource    text,
    route       text,
    scheme      text,
    created_at  timestamptz    NOT NULL,
    updated_at  timestamptz    NOT NULL,
    settled_at  timestamptz,
    PRIMARY KEY (network, asset, payer, nonce)
);
CREATE INDEX x402_ledger_payer ON x402_ledger (payer, created_at);
CREATE INDEX x402_ledger_route ON x402_ledger (route, created_at);
CREATE INDEX x402_ledger_created ON x402_ledger (created_at);
CREATE INDEX x402_ledger_transaction ON x402_ledger (transaction);
"];

/// The schema version recorded in the database, `None` before the first migration.
async fn applied(transaction: &Transaction<'_>) -> Result<Option<usize>, String> {
    let row = transaction
        .query_one("SELECT to_regclass('x402_schema_version') IS NOT NULL", &[])
        .await
        .map_err(|e| format!("cannot look for x402_schema_version: {e}"))?;
    if !row.try_get::<_, bool>(0).map_err(|e| e.to_string())? {
        return Ok(None);
    }
    let current: i32 = transaction
        .query_one(
            "SELECT coalesce(max(version), 0) FROM x402_schema_version",
            &[],
        )
        .await
        .map_err(|e| format!("cannot read x402_schema_version: {e}"))?
        .try_get(0)
        .map_err(|e| e.to_string())?;
    Ok(Some(usize::try_from(current).unwrap_or(0)))
}

/// Applies the migrations the database does not have yet, under the migration lock; returns
/// the schema version. A database newer than this build is refused rather than used.
pub(super) async fn migrate(transaction: &Transaction<'_>) -> Result<usize, String> {
    // Up to date: nothing to lock or create, so a role without CREATE rights can start.
    if applied(transaction).await? == Some(MIGRATIONS.len()) {
        return Ok(MIGRATIONS.len());
    }
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| format!("cannot take the migration lock: {e}"))?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS x402_schema_version (
                 version    integer     PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(|e| format!("cannot create x402_schema_version: {e}"))?;
    let current: i32 = transaction
        .query_one(
            "SELECT coalesce(max(version), 0) FROM x402_schema_version",
            &[],
        )
        .await
        .map_err(|e| format!("cannot read x402_schema_version: {e}"))?
        .get(0);
    let current = usize::try_from(current).unwrap_or(0);
    if current > MIGRATIONS.len() {
        return Err(format!(
            "the database's x402 schema is version {current}, newer than this build knows ({}): \
             upgrade x402-runtime",
            MIGRATIONS.len()
        ));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
        transaction
            .batch_execute(sql)
            .await
            .map_err(|e| format!("migration {version} failed: {e}"))?;
        transaction
            .execute(
                "INSERT INTO x402_schema_version (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(|e| format!("cannot record migration {version}: {e}"))?;
    }
    Ok(MIGRATIONS.len())
}
