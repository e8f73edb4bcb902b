//! The durable settlement record: a replay store whose outcomes survive a restart.
//!
//! Reservations of payments being verified or served live in memory (a crash before settlement
//! moved nothing, so forgetting them is safe). Everything from the moment `/settle` may be
//! called is written to an embedded database file (redb, fsync on every commit) before the
//! paywall goes on: `settling` (with the `/settle` request) before `/settle`, then `settled(tx)`,
//! `pending(tx)` (with the request, so that a resend reconciles with the same payload) or
//! `expired_unsettled`. After a restart, a resend of the same payment is answered from that
//! record; a payment whose settlement was in flight when the process died is an unknown outcome,
//! reconciled with the recorded request and never answered with a fresh challenge, so the client
//! does not pay twice. Outcomes are kept for the record retention past `validBefore`; expired
//! entries are swept when the file is opened and every few thousand writes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use alloy_primitives::{Address, B256};

use super::{MemoryStore, ReplayStore, Slot, Unresolved, transaction_key};
use crate::base::BoxFuture;
use crate::base::Clock;
use crate::network::AccountId;
use crate::schemes::ReplayKey;

/// Payment key bytes → expiry (8 bytes, big endian) followed by the slot.
const PAYMENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("payments");
/// Credited transaction (lower case) → expiry followed by the payment key bytes.
const TRANSACTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("transactions");

/// Why the settlement record could not be opened or written.
#[derive(Debug)]
pub struct FileStoreError {
    message: String,
    in_use: bool,
}

impl FileStoreError {
    /// Whether the file could not be opened because another process (a running server) has it
    /// open: one process opens a record at a time.
    pub fn in_use(&self) -> bool {
        self.in_use
    }
}

impl std::fmt::Display for FileStoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FileStoreError {}

/// A [`ReplayStore`] that keeps settlement outcomes in a file (the default of
/// [`X402::from_env`](crate::X402::from_env), at `X402_STORE_PATH`).
///
/// ```no_run
/// # fn run(config: x402_runtime::X402Config) -> Result<(), Box<dyn std::error::Error>> {
/// use x402_runtime::{FileStore, X402};
///
/// let x402 = X402::builder(config)
///     .store(FileStore::open("/var/lib/my-api/x402-payments.redb")?)
///     .build()?;
/// # Ok(()) }
/// ```
///
/// One process opens a file at a time. Several processes need a shared store such as
/// `RedisStore` (feature `redis`).
#[derive(Clone)]
pub struct FileStore {
    memory: Arc<MemoryStore>,
    db: Arc<Database>,
    path: PathBuf,
    now: Clock,
    writes: Arc<AtomicU64>,
}

/// Writes between two sweeps of expired entries.
const SWEEP_EVERY: u64 = 4096;

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn failed(what: &str, path: &Path, error: impl std::fmt::Display) -> FileStoreError {
    FileStoreError {
        message: format!(
            "settlement record {}: cannot {what}: {error}",
            path.display()
        ),
        in_use: false,
    }
}

impl FileStore {
    /// Opens (or creates) the record at `path` and drops entries whose authorization expired.
    pub fn open(path: impl AsRef<Path>) -> Result<FileStore, FileStoreError> {
        FileStore::open_with_clock(path, crate::base::unix_now)
    }

    /// Like [`open`](Self::open), reading time (unix seconds) from `now`.
    pub fn open_with_clock(
        path: impl AsRef<Path>,
        now: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> Result<FileStore, FileStoreError> {
        FileStore::open_with(path, Arc::new(now))
    }

    pub(crate) fn open_with(
        path: impl AsRef<Path>,
        now: Clock,
    ) -> Result<FileStore, FileStoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| failed("create its folder", &path, e))?;
        }
        let db = Database::create(&path).map_err(|e| FileStoreError {
            in_use: matches!(e, redb::DatabaseError::DatabaseAlreadyOpen),
            ..failed(
                "open it (is another process using it? give each process its own X402_STORE_PATH, or share a RedisStore)",
                &path,
                e,
            )
        })?;
        let clock = now.clone();
        let store = FileStore {
            memory: Arc::new(MemoryStore::with_clock(move || clock())),
            db: Arc::new(db),
            path,
            now,
            writes: Arc::new(AtomicU64::new(0)),
        };
        store.sweep()?;
        Ok(store)
    }

    /// The file the record lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes an entry for a made-up payment and removes it again, in two committed (fsync'd)
    /// transactions, and checks it is gone: whether the record can be written now. For health
    /// checks such as `x402 doctor`; the entry never names a real payment, and one left behind
    /// by a crash between the two writes reads as an expired, unsettled payment and is swept
    /// within a minute.
    pub async fn probe(&self) -> Result<(), FileStoreError> {
        let key = ReplayKey {
            network: "x402-doctor".to_owned(),
            asset: Address::ZERO.into(),
            from: Address::ZERO.into(),
            nonce: probe_nonce(),
        };
        let fail = |what: &str, e: redb::Error| failed(what, &self.path, e);
        let name = key_bytes(&key);
        let expires_at = (self.now)().saturating_add(60);
        let value = with_expiry(expires_at, Slot::ExpiredUnsettled.to_text().as_bytes());
        let written = name.clone();
        self.write(move |write| {
            let mut table = write.open_table(PAYMENTS)?;
            table.insert(written.as_slice(), value.as_slice())?;
            Ok(true)
        })
        .await
        .map_err(|e| fail("write a probe entry", e))?;
        let removed = name.clone();
        self.write(move |write| {
            write.open_table(PAYMENTS)?.remove(removed.as_slice())?;
            Ok(true)
        })
        .await
        .map_err(|e| fail("remove the probe entry", e))?;
        match self.recorded(&key) {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err(failed(
                "remove the probe entry",
                &self.path,
                "it is still there",
            )),
            Err(e) => Err(fail("read it", e)),
        }
    }

    /// Creates the tables and removes expired entries.
    fn sweep(&self) -> Result<(), FileStoreError> {
        let now = (self.now)();
        let fail = |e: redb::Error| failed("sweep it", &self.path, e);
        let write = self.db.begin_write().map_err(|e| fail(e.into()))?;
        sweep_expired(&write, now).map_err(fail)?;
        write.commit().map_err(|e| fail(e.into()))
    }

    /// Every recorded payment whose outcome is unknown. A settlement this process has in flight
    /// is listed as settling; one left settling by a process that stopped, as pending.
    fn unresolved_now(&self) -> Result<Vec<Unresolved>, redb::Error> {
        let now = (self.now)();
        let read = self.db.begin_read()?;
        let table = read.open_table(PAYMENTS)?;
        let mut list = Vec::new();
        for entry in table.iter()? {
            let (name, value) = entry?;
            let value = value.value();
            if expiry(value) <= now {
                continue;
            }
            let Some(key) = key_from_bytes(name.value()) else {
                continue;
            };
            let slot = match self.memory.slot(&key) {
                Some(live @ Slot::Settling { .. }) => live,
                _ => decode_slot(value.get(8..).unwrap_or_default()),
            };
            if slot.is_unresolved() {
                list.push(Unresolved { key, slot });
            }
        }
        Ok(list)
    }

    /// The recorded outcome of `key`, if it has one that has not expired.
    fn recorded(&self, key: &ReplayKey) -> Result<Option<Slot>, redb::Error> {
        let read = self.db.begin_read()?;
        let table = read.open_table(PAYMENTS)?;
        let Some(value) = table.get(key_bytes(key).as_slice())? else {
            return Ok(None);
        };
        let value = value.value();
        if expiry(value) <= (self.now)() {
            return Ok(None);
        }
        Ok(Some(decode_slot(value.get(8..).unwrap_or_default())))
    }

    /// Runs a write transaction on a blocking thread (commits fsync).
    async fn write(
        &self,
        change: impl FnOnce(&redb::WriteTransaction) -> Result<bool, redb::Error> + Send + 'static,
    ) -> Result<bool, redb::Error> {
        let db = self.db.clone();
        let sweep = self.writes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1;
        let now = (self.now)();
        let run = move || -> Result<bool, redb::Error> {
            let write = db.begin_write()?;
            let answer = change(&write)?;
            if sweep {
                sweep_expired(&write, now)?;
            }
            write.commit()?;
            Ok(answer)
        };
        match tokio::task::spawn_blocking(run).await {
            Ok(answer) => answer,
            Err(join) => Err(redb::Error::Corrupted(format!("write task failed: {join}"))),
        }
    }
}

/// A nonce no payment uses: a hash of this process, the time and a counter.
fn probe_nonce() -> B256 {
    static PROBES: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!(
        "x402-doctor/{}/{nanos}/{}",
        std::process::id(),
        PROBES.fetch_add(1, Ordering::Relaxed)
    );
    alloy_primitives::keccak256(seed.as_bytes())
}

/// A payment's name in the table: `network ‖ 0 ‖ asset ‖ from ‖ nonce`. Both accounts of one
/// family are written as they are (72 bytes after the network for EVM, as every earlier version
/// wrote them; 96 for Solana); accounts of two families (which no scheme makes) are preceded by
/// the asset's length, so that every key has one name and every name one key.
fn key_bytes(key: &ReplayKey) -> Vec<u8> {
    let (asset, from) = (key.asset.as_bytes(), key.from.as_bytes());
    let mut bytes = Vec::with_capacity(key.network.len() + 2 + asset.len() + from.len() + 32);
    bytes.extend_from_slice(key.network.as_bytes());
    bytes.push(0);
    if asset.len() != from.len() {
        bytes.push(u8::try_from(asset.len()).unwrap_or(u8::MAX));
    }
    bytes.extend_from_slice(asset);
    bytes.extend_from_slice(from);
    bytes.extend_from_slice(key.nonce.as_slice());
    bytes
}

/// The key [`key_bytes`] wrote, told apart by length: 72 bytes after the network are two EVM
/// accounts and the nonce, 96 two Solana ones, 85 a length byte then one of each.
fn key_from_bytes(bytes: &[u8]) -> Option<ReplayKey> {
    let zero = bytes.iter().position(|b| *b == 0)?;
    let (network, rest) = (bytes.get(..zero)?, bytes.get(zero + 1..)?);
    let (asset_len, accounts) = match rest.len() {
        72 => (20, rest),
        96 => (32, rest),
        85 if rest[0] == 20 || rest[0] == 32 => (usize::from(rest[0]), &rest[1..]),
        _ => return None,
    };
    let (accounts, nonce) = accounts.split_at(accounts.len() - 32);
    let (asset, from) = accounts.split_at(asset_len);
    Some(ReplayKey {
        network: String::from_utf8(network.to_vec()).ok()?,
        asset: AccountId::from_bytes(asset)?,
        from: AccountId::from_bytes(from)?,
        nonce: B256::from_slice(nonce),
    })
}

/// Removes the payments and credits whose time is up.
fn sweep_expired(write: &redb::WriteTransaction, now: u64) -> Result<(), redb::Error> {
    write
        .open_table(PAYMENTS)?
        .retain(|_, value| expiry(value) > now)?;
    write
        .open_table(TRANSACTIONS)?
        .retain(|_, value| expiry(value) > now)?;
    Ok(())
}

fn expiry(value: &[u8]) -> u64 {
    value
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

fn with_expiry(expires_at: u64, rest: &[u8]) -> Vec<u8> {
    let mut value = expires_at.to_be_bytes().to_vec();
    value.extend_from_slice(rest);
    value
}

/// The expiry of a payment's record (0 without one).
fn recorded_expiry(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    name: &[u8],
) -> Result<u64, redb::Error> {
    Ok(table.get(name)?.map_or(0, |value| expiry(value.value())))
}

/// A recorded slot. `settling` read back from the file means the process that wrote it stopped
/// while the settlement was in flight: its outcome is unknown, which is answered as pending and
/// reconciled with the recorded request.
fn decode_slot(value: &[u8]) -> Slot {
    match Slot::from_text(&String::from_utf8_lossy(value)).orphaned() {
        slot @ (Slot::Settled { .. } | Slot::Pending { .. } | Slot::ExpiredUnsettled) => slot,
        _ => Slot::Pending {
            transaction: String::new(),
            request: None,
            since: 0,
        },
    }
}

impl ReplayStore for FileStore {
    fn reserve<'a>(
        &'a self,
        key: &'a ReplayKey,
        expires_at: u64,
    ) -> BoxFuture<'a, Result<(), Slot>> {
        Box::pin(async move {
            self.memory.reserve(key, expires_at).await?;
            match self.recorded(key) {
                Ok(None) => Ok(()),
                Ok(Some(slot)) => {
                    self.memory.forget(key);
                    Err(slot)
                }
                Err(e) => {
                    tracing::error!(%key, "x402: settlement record unreadable: {e}");
                    self.memory.forget(key);
                    Err(Slot::Unavailable)
                }
            }
        })
    }

    fn lookup<'a>(&'a self, key: &'a ReplayKey) -> BoxFuture<'a, Option<Slot>> {
        Box::pin(async move {
            if let Some(live) = self.memory.lookup(key).await {
                return Some(live);
            }
            match self.recorded(key) {
                Ok(slot) => slot,
                Err(e) => {
                    tracing::error!(%key, "x402: settlement record unreadable: {e}");
                    Some(Slot::Unavailable)
                }
            }
        })
    }

    fn record<'a>(&'a self, key: &'a ReplayKey, slot: Slot, keep_until: u64) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.memory.record(key, slot.clone(), keep_until).await;
            let kept = self.memory.expiry(key).unwrap_or(keep_until);
            let name = key_bytes(key);
            let text = slot.to_text();
            let credited = match &slot {
                Slot::Settled { transaction } => Some(transaction_key(transaction).into_owned()),
                _ => None,
            };
            let new = slot.clone();
            let written = self
                .write(move |write| {
                    let mut table = write.open_table(PAYMENTS)?;
                    let current = table.get(name.as_slice())?.map(|v| v.value().to_vec());
                    let recorded = current.as_deref().and_then(|v| v.get(8..));
                    if let Some(recorded) = recorded
                        && !new.may_replace(&Slot::from_text(&String::from_utf8_lossy(recorded)))
                    {
                        return Ok(false);
                    }
                    let expires_at = kept.max(recorded_expiry(&table, &name)?);
                    table.insert(
                        name.as_slice(),
                        with_expiry(expires_at, text.as_bytes()).as_slice(),
                    )?;
                    // The credit of a settled payment is kept as long as the payment.
                    if let Some(transaction) = credited {
                        let mut credits = write.open_table(TRANSACTIONS)?;
                        credits.insert(
                            transaction.as_str(),
                            with_expiry(expires_at, &name).as_slice(),
                        )?;
                    }
                    Ok(true)
                })
                .await;
            if let Err(e) = written {
                tracing::error!(%key, ?slot, "x402: could not write the settlement record: {e}");
            }
        })
    }

    fn release(&self, key: &ReplayKey) {
        let was_settling = matches!(self.memory.slot(key), Some(Slot::Settling { .. }));
        self.memory.release(key);
        if was_settling {
            // The settlement was refused: nothing moved, so the record is removed.
            let store = self.clone();
            let key = key.clone();
            tokio::spawn(async move {
                let name = key_bytes(&key);
                let removed = store
                    .write(move |write| {
                        write.open_table(PAYMENTS)?.remove(name.as_slice())?;
                        Ok(true)
                    })
                    .await;
                if let Err(e) = removed {
                    tracing::warn!(%key, "x402: could not clear a refused settlement from the record: {e}");
                }
            });
        }
    }

    fn credit<'a>(&'a self, transaction: &'a str, key: &'a ReplayKey) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let held = self.memory.expiry(key).unwrap_or(0);
            let name = transaction_key(transaction).into_owned();
            let owner = key_bytes(key);
            let credited = self
                .write(move |write| {
                    let expires_at =
                        held.max(recorded_expiry(&write.open_table(PAYMENTS)?, &owner)?);
                    let mut table = write.open_table(TRANSACTIONS)?;
                    if let Some(existing) = table.get(name.as_str())? {
                        return Ok(existing.value().get(8..) == Some(owner.as_slice()));
                    }
                    table.insert(name.as_str(), with_expiry(expires_at, &owner).as_slice())?;
                    Ok(true)
                })
                .await;
            // The file decides; the copy in memory only learns credits the file holds, so a
            // refused one never shadows the payment the transaction did pay for.
            match credited {
                Ok(true) => self.memory.credit(transaction, key).await,
                Ok(false) => false,
                Err(e) => {
                    tracing::error!(%key, transaction, "x402: could not record a credited transaction: {e}");
                    false
                }
            }
        })
    }

    fn unresolved(&self) -> BoxFuture<'_, Result<Vec<Unresolved>, String>> {
        let store = self.clone();
        Box::pin(async move {
            match tokio::task::spawn_blocking(move || store.unresolved_now()).await {
                Ok(listed) => listed.map_err(|e| e.to_string()),
                Err(join) => Err(format!("the record could not be read: {join}")),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ReplayKey {
        ReplayKey {
            network: "eip155:84532".to_owned(),
            asset: alloy_primitives::Address::repeat_byte(1).into(),
            from: alloy_primitives::Address::repeat_byte(2).into(),
            nonce: alloy_primitives::B256::repeat_byte(3),
        }
    }

    fn now() -> u64 {
        1_000
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_probe_leaves_nothing_and_a_held_file_is_in_use() {
        let dir = std::env::temp_dir().join(format!("x402-file-probe-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("payments.redb");
        let store = FileStore::open_with_clock(&path, now).expect("open");
        store.probe().await.expect("writable");
        store.probe().await.expect("again");
        assert_eq!(store.unresolved().await.expect("listed"), []);
        let entries = {
            use redb::ReadableTableMetadata as _;
            let read = store.db.begin_read().expect("read");
            read.open_table(PAYMENTS)
                .expect("table")
                .len()
                .expect("len")
        };
        assert_eq!(entries, 0, "the probe entries are removed");
        let held = FileStore::open(&path).expect_err("one process at a time");
        assert!(held.in_use(), "{held}");
        drop(store);
        let blocked = FileStore::open(path.join("inside-a-file.redb")).expect_err("not a folder");
        assert!(!blocked.in_use(), "{blocked}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pending_settlement_keeps_its_request_and_expiry_across_a_restart() {
        let dir = std::env::temp_dir().join(format!("x402-file-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("payments.redb");
        let request = r#"{"x402Version":2,"paymentPayload":{"a":"b\nc"}}"#.to_owned();
        let pending = Slot::Pending {
            transaction: String::new(),
            request: Some(request.clone()),
            since: 900,
        };
        {
            let store = FileStore::open_with_clock(&path, now).expect("open");
            store.reserve(&key(), 2_000).await.expect("free");
            let settling = Slot::Settling {
                request: Some(request.clone()),
                since: 900,
            };
            store.record(&key(), settling.clone(), 2_000).await;
            assert_eq!(
                store.unresolved().await.expect("list"),
                vec![Unresolved {
                    key: key(),
                    slot: settling
                }],
                "a settlement in flight here is listed as settling"
            );
        }
        // The process stopped while settling: the outcome is unknown, with its request.
        let store = FileStore::open_with_clock(&path, now).expect("reopen");
        assert_eq!(store.lookup(&key()).await, Some(pending.clone()));
        assert_eq!(store.reserve(&key(), 2_000).await, Err(pending.clone()));
        assert_eq!(
            store.unresolved().await.expect("list"),
            vec![Unresolved {
                key: key(),
                slot: pending
            }]
        );
        // The outcome of a reconciliation is kept for the retention asked, and so is its credit.
        assert!(store.credit("0xAB", &key()).await);
        let settled = Slot::Settled {
            transaction: "0xab".to_owned(),
        };
        store.record(&key(), settled.clone(), 90_000).await;
        assert!(store.unresolved().await.expect("list").is_empty());
        let read = store.db.begin_read().expect("read");
        let payments = read.open_table(PAYMENTS).expect("payments");
        let value = payments
            .get(key_bytes(&key()).as_slice())
            .expect("get")
            .expect("recorded");
        assert_eq!(expiry(value.value()), 90_000);
        assert_eq!(decode_slot(&value.value()[8..]), settled);
        let transactions = read.open_table(TRANSACTIONS).expect("transactions");
        let credited = transactions.get("0xab").expect("get").expect("credited");
        assert_eq!(expiry(credited.value()), 90_000);
        drop((value, credited, payments, transactions, read, store));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A Solana signature is credited under its exact case, and that credit is what a reopened
    /// store (nothing in memory) finds; a signature differing only in case is another one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_solana_signature_is_credited_under_its_exact_case() {
        use crate::store::contract::{SIGNATURE, svm_key};
        let dir = std::env::temp_dir().join(format!("x402-file-svm-tx-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("payments.redb");
        let now = || 1_000;
        let (paid, other) = (svm_key(1), svm_key(2));
        {
            let store = FileStore::open_with_clock(&path, now).expect("open");
            assert_eq!(store.reserve(&paid, 2_000).await, Ok(()));
            assert!(store.credit(SIGNATURE, &paid).await);
            let settled = Slot::Settled {
                transaction: SIGNATURE.to_owned(),
            };
            store.record(&paid, settled, 90_000).await;
            let read = store.db.begin_read().expect("read");
            let transactions = read.open_table(TRANSACTIONS).expect("transactions");
            let credited = transactions.get(SIGNATURE).expect("get").expect("credited");
            assert_eq!(
                expiry(credited.value()),
                90_000,
                "kept as long as the payment"
            );
            let lowered = SIGNATURE.to_ascii_lowercase();
            assert!(transactions.get(lowered.as_str()).expect("get").is_none());
        }
        let store = FileStore::open_with_clock(&path, now).expect("reopen");
        assert!(
            !store.credit(SIGNATURE, &other).await,
            "one transaction never pays for two payments"
        );
        assert!(
            store.credit(SIGNATURE, &paid).await,
            "the same payment again, after a refused one"
        );
        assert!(
            store.credit(&SIGNATURE.replace('V', "v"), &other).await,
            "a signature differing only in case is another transaction"
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keeps_the_replay_store_contract() {
        let dir = std::env::temp_dir().join(format!("x402-file-contract-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let clock = crate::store::contract::TestClock::at(crate::store::contract::START);
        let store =
            FileStore::open_with_clock(dir.join("payments.redb"), clock.now()).expect("open");
        crate::store::contract::check(&store, &clock, false).await;
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keys_read_back_from_their_bytes() {
        assert_eq!(key_from_bytes(&key_bytes(&key())), Some(key()));
        assert_eq!(key_from_bytes(b"eip155:1"), None);
        let svm = crate::store::contract::svm_key(7);
        assert_eq!(key_bytes(&svm).len(), svm.network.len() + 1 + 96);
        assert_eq!(key_from_bytes(&key_bytes(&svm)), Some(svm.clone()));
        // Accounts of two families, either way round, each have their own name.
        let mixed = [
            ReplayKey {
                asset: key().asset,
                ..svm.clone()
            },
            ReplayKey {
                from: key().from,
                ..svm.clone()
            },
        ];
        assert_ne!(key_bytes(&mixed[0]), key_bytes(&mixed[1]));
        for key in mixed {
            assert_eq!(key_from_bytes(&key_bytes(&key)), Some(key));
        }
        let mut bad_tag = key_bytes(&ReplayKey {
            asset: key().asset,
            ..svm
        });
        bad_tag[b"solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1".len() + 1] = 21;
        assert_eq!(key_from_bytes(&bad_tag), None);
    }

    /// The bytes every earlier version wrote for an EVM payment (`network ‖ 0 ‖ token (20) ‖
    /// payer (20) ‖ nonce (32)`) still name the same key.
    #[test]
    fn an_evm_key_written_before_accounts_had_families_still_reads() {
        let mut old = b"eip155:84532\0".to_vec();
        old.extend_from_slice(&[1u8; 20]);
        old.extend_from_slice(&[2u8; 20]);
        old.extend_from_slice(&[3u8; 32]);
        assert_eq!(key_from_bytes(&old), Some(key()));
        assert_eq!(key_bytes(&key()), old);
    }
}
