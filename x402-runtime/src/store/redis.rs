//! A replay store in Redis, shared by every server process that points at it.
//!
//! Each payment key is one Redis string, taken with `SET … NX EXAT <validBefore + skew>`: the
//! first process to reserve a payment wins, every other process (and every other copy in the
//! same process) finds it taken and is told its state. A recorded outcome is kept for the record
//! retention past the authorization (`EXPIREAT … GT`, so never shortened), and the keys of
//! payments whose outcome is unknown are members of one set, listed by
//! [`ReplayStore::unresolved`]. Credited transactions are keys of their own, taken the same way,
//! so one transaction never pays for two payments across processes, and so is the right to
//! reconcile a payment, so that concurrent resends to several processes make one `/settle`.

use alloy_primitives::hex;
use redis::aio::ConnectionManager;

use alloy_primitives::B256;

use super::{ReplayStore, Slot, Unresolved, transaction_key};
use crate::base::BoxFuture;
use crate::network::AccountId;
use crate::schemes::ReplayKey;

/// `Slot::to_text` of a reservation, and the prefix of every settling slot.
const IN_PROGRESS: &str = "in_progress";
const SETTLING: &str = "settling";

/// Frees a key only while it is in progress or settling (never a recorded outcome).
const RELEASE: &str = r"
local value = redis.call('GET', KEYS[1])
if value == ARGV[1] or (value and string.sub(value, 1, string.len(ARGV[2])) == ARGV[2]) then
  redis.call('SREM', KEYS[2], KEYS[1])
  return redis.call('DEL', KEYS[1])
end
return 0";

/// Records a slot (ARGV[1]) kept at least until ARGV[2] (unix seconds), listing the key in the
/// unresolved set (KEYS[2]) when ARGV[3] is 1 and taking it out otherwise; the credited
/// transaction's key (KEYS[3], the payment key itself when none) is kept as long. A definite
/// outcome is replaced only by `settled:` (`Slot::may_replace`).
const RECORD: &str = r"
local current = redis.call('GET', KEYS[1])
if current and (string.sub(current, 1, 8) == 'settled:' or current == 'expired_unsettled')
   and string.sub(ARGV[1], 1, 8) ~= 'settled:' then
  redis.call('EXPIREAT', KEYS[1], ARGV[2], 'GT')
  return 0
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
  redis.call('EXPIREAT', KEYS[1], ARGV[2], 'GT')
else
  redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2])
end
if ARGV[3] == '1' then
  redis.call('SADD', KEYS[2], KEYS[1])
else
  redis.call('SREM', KEYS[2], KEYS[1])
end
if KEYS[3] ~= KEYS[1] then
  redis.call('EXPIREAT', KEYS[3], ARGV[2], 'GT')
end
return 1";

/// Credits a transaction to a payment key once; the credit lives as long as the payment key
/// (a day when that key has no expiry left).
const CREDIT: &str = r"
local ttl = redis.call('PTTL', KEYS[2])
if ttl <= 0 then ttl = 86400000 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ttl) then
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return 1
end
return 0";

/// Why the Redis store could not be opened.
#[derive(Debug)]
pub struct RedisStoreError(redis::RedisError);

impl std::fmt::Display for RedisStoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot connect to the Redis replay store: {}", self.0)
    }
}

impl std::error::Error for RedisStoreError {}

/// A [`ReplayStore`] in Redis (feature `redis`), for several server processes behind one load
/// balancer.
///
/// ```no_run
/// # async fn run(config: x402_runtime::X402Config) -> Result<(), Box<dyn std::error::Error>> {
/// use x402_runtime::{RedisStore, X402};
///
/// let store = RedisStore::connect("redis://127.0.0.1:6379/").await?;
/// let x402 = X402::builder(config).store(store).build()?;
/// # Ok(()) }
/// ```
///
/// When Redis cannot be reached, a payment is refused with `503 replay_store_unavailable`
/// before anything is verified or served: without the store no process can know whether the
/// payment was already used.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    release: redis::Script,
    record: redis::Script,
    credit: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`); keys are prefixed with `x402`.
    pub async fn connect(url: &str) -> Result<RedisStore, RedisStoreError> {
        RedisStore::connect_with_prefix(url, "x402").await
    }

    /// Connects to `url`, prefixing every key with `prefix` (to share one Redis between
    /// applications).
    pub async fn connect_with_prefix(
        url: &str,
        prefix: &str,
    ) -> Result<RedisStore, RedisStoreError> {
        let client = redis::Client::open(url).map_err(RedisStoreError)?;
        let connection = ConnectionManager::new(client)
            .await
            .map_err(RedisStoreError)?;
        Ok(RedisStore {
            connection,
            prefix: prefix.to_owned(),
            release: redis::Script::new(RELEASE),
            record: redis::Script::new(RECORD),
            credit: redis::Script::new(CREDIT),
        })
    }

    fn payment_key(&self, key: &ReplayKey) -> String {
        payment_name(&self.prefix, key)
    }

    fn key_of(&self, name: &str) -> Option<ReplayKey> {
        key_of_name(&self.prefix, name)
    }

    fn unresolved_key(&self) -> String {
        format!("{}:unresolved", self.prefix)
    }

    fn reconcile_key(&self, key: &ReplayKey) -> String {
        format!(
            "{}:reconcile:{}",
            self.prefix,
            &self.payment_key(key)[self.prefix.len() + 1..]
        )
    }

    fn transaction_key(&self, transaction: &str) -> String {
        format!(
            "{}:transaction:{}",
            self.prefix,
            transaction_key(transaction)
        )
    }
}

impl ReplayStore for RedisStore {
    fn reserve<'a>(
        &'a self,
        key: &'a ReplayKey,
        expires_at: u64,
    ) -> BoxFuture<'a, Result<(), Slot>> {
        Box::pin(async move {
            let name = self.payment_key(key);
            let mut connection = self.connection.clone();
            // A key can expire between a refused SET and the GET: then try once more.
            for _ in 0..2 {
                let taken: Result<Option<String>, _> = redis::cmd("SET")
                    .arg(&name)
                    .arg(IN_PROGRESS)
                    .arg("NX")
                    .arg("EXAT")
                    .arg(expires_at)
                    .query_async(&mut connection)
                    .await;
                match taken {
                    Ok(Some(_)) => return Ok(()),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(%key, "x402: replay store unavailable: {e}");
                        return Err(Slot::Unavailable);
                    }
                }
                let current: Result<Option<String>, _> = redis::cmd("GET")
                    .arg(&name)
                    .query_async(&mut connection)
                    .await;
                match current {
                    Ok(Some(value)) => return Err(Slot::from_text(&value)),
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
            let mut connection = self.connection.clone();
            let current: Result<Option<String>, _> = redis::cmd("GET")
                .arg(self.payment_key(key))
                .query_async(&mut connection)
                .await;
            match current {
                Ok(value) => value.map(|v| Slot::from_text(&v)),
                Err(e) => {
                    tracing::error!(%key, "x402: replay store unavailable: {e}");
                    Some(Slot::Unavailable)
                }
            }
        })
    }

    fn record<'a>(&'a self, key: &'a ReplayKey, slot: Slot, keep_until: u64) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let name = self.payment_key(key);
            let credited = match &slot {
                Slot::Settled { transaction } => self.transaction_key(transaction),
                _ => name.clone(),
            };
            let written: Result<i64, _> = self
                .record
                .key(&name)
                .key(self.unresolved_key())
                .key(credited)
                .arg(slot.to_text())
                .arg(keep_until)
                .arg(if slot.is_unresolved() { "1" } else { "0" })
                .invoke_async(&mut connection)
                .await;
            if let Err(e) = written {
                tracing::error!(%key, ?slot, "x402: could not record a payment's outcome: {e}");
            }
        })
    }

    fn release(&self, key: &ReplayKey) {
        let name = self.payment_key(key);
        let mut connection = self.connection.clone();
        let script = self.release.clone();
        let unresolved = self.unresolved_key();
        let key = key.clone();
        // Release must not block the caller (it runs in a Drop guard).
        tokio::spawn(async move {
            let freed: Result<i64, _> = script
                .key(name)
                .key(unresolved)
                .arg(IN_PROGRESS)
                .arg(SETTLING)
                .invoke_async(&mut connection)
                .await;
            if let Err(e) = freed {
                tracing::warn!(%key, "x402: could not release a payment key (it expires on its own): {e}");
            }
        });
    }

    fn credit<'a>(&'a self, transaction: &'a str, key: &'a ReplayKey) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let owner = self.payment_key(key);
            let credited: Result<i64, _> = self
                .credit
                .key(self.transaction_key(transaction))
                .key(&owner)
                .arg(&owner)
                .invoke_async(&mut connection)
                .await;
            match credited {
                Ok(fresh) => fresh == 1,
                Err(e) => {
                    tracing::error!(%key, transaction, "x402: replay store unavailable while crediting: {e}");
                    false
                }
            }
        })
    }

    fn unresolved(&self) -> BoxFuture<'_, Result<Vec<Unresolved>, String>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let names: Vec<String> = redis::cmd("SMEMBERS")
                .arg(self.unresolved_key())
                .query_async(&mut connection)
                .await
                .map_err(|e| format!("cannot list unresolved payments: {e}"))?;
            let mut list = Vec::new();
            for name in names {
                let value: Option<String> = redis::cmd("GET")
                    .arg(&name)
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| format!("cannot read {name}: {e}"))?;
                let slot = value.map(|v| Slot::from_text(&v));
                match (self.key_of(&name), slot) {
                    (Some(key), Some(slot)) if slot.is_unresolved() => {
                        list.push(Unresolved { key, slot });
                    }
                    // Expired, or resolved by a process that crashed before taking it out.
                    _ => {
                        let _: Result<i64, _> = redis::cmd("SREM")
                            .arg(self.unresolved_key())
                            .arg(&name)
                            .query_async(&mut connection)
                            .await;
                    }
                }
            }
            Ok(list)
        })
    }

    fn claim_reconciliation<'a>(&'a self, key: &'a ReplayKey, until: u64) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let claimed: Result<Option<String>, _> = redis::cmd("SET")
                .arg(self.reconcile_key(key))
                .arg("1")
                .arg("NX")
                .arg("EXAT")
                .arg(until)
                .query_async(&mut connection)
                .await;
            match claimed {
                Ok(taken) => taken.is_some(),
                Err(e) => {
                    tracing::warn!(%key, "x402: cannot take the reconciliation of a payment: {e}");
                    false
                }
            }
        })
    }

    fn end_reconciliation(&self, key: &ReplayKey) {
        let name = self.reconcile_key(key);
        let mut connection = self.connection.clone();
        tokio::spawn(async move {
            let _: Result<i64, _> = redis::cmd("DEL")
                .arg(name)
                .query_async(&mut connection)
                .await;
        });
    }
}

/// A payment's Redis key: `<prefix>:payment:<network>:<asset>:<from>:<nonce>`, the accounts and
/// nonce in lowercase hex (an EVM account 40 digits, a Solana one 64).
fn payment_name(prefix: &str, key: &ReplayKey) -> String {
    format!(
        "{prefix}:payment:{}:{}:{}:{}",
        key.network,
        hex::encode(key.asset.as_bytes()),
        hex::encode(key.from.as_bytes()),
        hex::encode(key.nonce)
    )
}

/// The key [`payment_name`] wrote (the network id may contain `:`); each account is read by its
/// length.
fn key_of_name(prefix: &str, name: &str) -> Option<ReplayKey> {
    let rest = name.strip_prefix(prefix)?.strip_prefix(":payment:")?;
    let mut parts = rest.rsplitn(4, ':');
    let nonce = parts.next()?;
    let from = parts.next()?;
    let asset = parts.next()?;
    let network = parts.next()?;
    Some(ReplayKey {
        network: network.to_owned(),
        asset: AccountId::from_bytes(&hex::decode(asset).ok()?)?,
        from: AccountId::from_bytes(&hex::decode(from).ok()?)?,
        nonce: B256::from_slice(&hex::decode(nonce).ok().filter(|b| b.len() == 32)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_names_read_back_for_both_account_lengths() {
        let svm = crate::store::contract::svm_key(7);
        let evm = crate::store::contract::key(7);
        for key in [svm, evm] {
            let name = payment_name("x402", &key);
            assert_eq!(key_of_name("x402", &name), Some(key));
        }
        assert_eq!(key_of_name("x402", "x402:payment:eip155:1:00:00:00"), None);
    }

    /// A Solana payment (32-byte accounts) is kept, listed and credited by a real Redis under
    /// its own key. Skipped outside CI when `X402_TEST_REDIS_URL` is not set.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_solana_payment_is_kept_and_listed() {
        let url = match std::env::var("X402_TEST_REDIS_URL") {
            Ok(url) if !url.trim().is_empty() => url,
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("X402_TEST_REDIS_URL is not set (CI=true: Redis is required)")
            }
            _ => {
                eprintln!(
                    "SKIPPED: X402_TEST_REDIS_URL is not set (scripts/redis.sh start prints one)"
                );
                return;
            }
        };
        let prefix = format!("x402-unit-svm-{}", std::process::id());
        let store = RedisStore::connect_with_prefix(url.trim(), &prefix)
            .await
            .expect("connect");
        let (svm, evm) = (
            crate::store::contract::svm_key(1),
            crate::store::contract::key(1),
        );
        let later = crate::base::unix_now() + 600;
        assert_eq!(store.reserve(&svm, later).await, Ok(()));
        assert_eq!(store.reserve(&svm, later).await, Err(Slot::InProgress));
        assert_eq!(store.reserve(&evm, later).await, Ok(()), "another payment");
        let settling = Slot::Settling {
            request: Some(crate::store::contract::request(1)),
            since: 1_000,
        };
        store.record(&svm, settling.clone(), later).await;
        let listed = store.unresolved().await.expect("listed");
        assert!(
            listed.contains(&Unresolved {
                key: svm.clone(),
                slot: settling
            }),
            "{listed:?}"
        );
        let signature = crate::store::contract::SIGNATURE;
        assert!(store.credit(signature, &svm).await);
        assert!(!store.credit(signature, &evm).await);
        assert!(
            store.credit(&signature.replace('V', "v"), &evm).await,
            "a signature differing only in case is another transaction"
        );
        assert!(store.credit("0xC0FFEE", &svm).await);
        assert!(
            !store.credit("0xc0ffee", &evm).await,
            "an EVM hash in any case is one transaction"
        );
        let settled = Slot::Settled {
            transaction: signature.to_owned(),
        };
        store.record(&svm, settled.clone(), later).await;
        assert_eq!(store.lookup(&svm).await, Some(settled));
        assert!(
            store
                .unresolved()
                .await
                .expect("listed")
                .iter()
                .all(|u| u.key != svm)
        );
    }

    /// A name written before accounts had families (EVM accounts as 40 hex digits) still reads.
    #[test]
    fn an_evm_payment_name_written_before_still_reads() {
        let old = format!(
            "x402:payment:eip155:84532:{}:{}:{}",
            "0a".repeat(20),
            "0b".repeat(20),
            "05".repeat(32)
        );
        assert_eq!(
            key_of_name("x402", &old),
            Some(crate::store::contract::key(5))
        );
        assert_eq!(payment_name("x402", &crate::store::contract::key(5)), old);
    }

    #[test]
    fn slots_round_trip_through_their_redis_values() {
        for slot in crate::store::recorded_slots() {
            assert_eq!(Slot::from_text(&slot.to_text()), slot);
        }
    }
}
