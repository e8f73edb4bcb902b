//! Exactly-once bookkeeping: the replay store, which is also the record of every payment's
//! settlement.
//!
//! Before the first network call for a payment, the paywall reserves its [`ReplayKey`]. A
//! second copy of the same payment, however it is encoded, finds the key taken: while the first
//! copy is being verified, served or settled it is answered `409 payment_in_progress`; after
//! settlement it is answered from the record. A reservation is released when the payment did not
//! go through (verification refused, handler failed, settlement refused), so a valid retry works.
//!
//! What the server learnt about a payment it tried to settle (settled with its transaction,
//! outcome unknown, expired unsettled) is kept for a retention period past the authorization's
//! `validBefore` (24 h by default, [`X402ConfigBuilder::record_retention`](crate::X402ConfigBuilder::record_retention)),
//! so that a resend long after the authorization expired is still answered from the record and
//! never with a fresh challenge.
//!
//! [`MemoryStore`] is the in-process default. A store shared by several server processes
//! implements the same trait with an atomic insert (for example Redis `SET NX` with a TTL).

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use serde::{Deserialize, Serialize};

use crate::config::Clock;
use crate::facilitator::BoxFuture;
use crate::payload::ReplayKey;

/// What the store knows about a payment key that is already taken.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Slot {
    /// Reserved by a request that is verifying or serving it.
    InProgress,
    /// `/settle` is about to be called or is in flight. Recorded before the call, with the
    /// request, so that a durable store knows about it even if the process stops before the
    /// answer: read back after a restart (or found older than the settle timeout), it is an
    /// unknown outcome that a resend reconciles with the same request.
    Settling {
        /// The `/settle` request (JSON of [`FacilitatorRequest`](crate::proto::FacilitatorRequest)).
        request: Option<String>,
        /// When `/settle` was called (unix seconds; 0 when not known).
        since: u64,
    },
    /// Settled by this transaction.
    Settled {
        /// The transaction hash.
        transaction: String,
    },
    /// The settlement's outcome is unknown and money may have moved: the facilitator reported
    /// `settlement_pending`, did not answer `/settle` in time, or answered something that is
    /// neither a definite success nor a definite refusal.
    Pending {
        /// The transaction hash, when the facilitator gave one (empty otherwise).
        transaction: String,
        /// The `/settle` request that was sent (JSON of
        /// [`FacilitatorRequest`](crate::proto::FacilitatorRequest)), so that a resend of the
        /// same payment can reconcile by repeating it with the same payload. `None` when it is
        /// not known (a record written by an older version).
        request: Option<String>,
        /// When the outcome became unknown (unix seconds; 0 when not known).
        since: u64,
    },
    /// The authorization was never used on chain and its `validBefore` has passed: it can never
    /// settle, so nothing was charged and a new payment may be signed.
    ExpiredUnsettled,
    /// The store could not be reached, so whether the key is taken is unknown. The payment is
    /// refused (503) before anything is verified or served.
    Unavailable,
}

/// An unknown outcome or a settlement in flight, as stored after its prefix (JSON).
#[derive(Serialize, Deserialize)]
struct Retry<'a> {
    #[serde(borrow, default)]
    transaction: Cow<'a, str>,
    #[serde(borrow)]
    request: Cow<'a, str>,
    #[serde(default)]
    since: u64,
}

/// Prefix of a pending slot that carries its `/settle` request (JSON `{transaction, request, since}`).
const PENDING_RETRY: &str = "pending+retry:";
/// Prefix of a settling slot that carries its `/settle` request (JSON `{request, since}`).
const SETTLING_RETRY: &str = "settling+retry:";
/// Stored text of [`Slot::ExpiredUnsettled`].
const EXPIRED_UNSETTLED: &str = "expired_unsettled";

fn retry_text(prefix: &str, transaction: &str, request: &str, since: u64) -> Option<String> {
    let retry = Retry {
        transaction: Cow::Borrowed(transaction),
        request: Cow::Borrowed(request),
        since,
    };
    serde_json::to_string(&retry)
        .ok()
        .map(|json| format!("{prefix}{json}"))
}

impl Slot {
    /// The slot as stored text: `settled:<tx>`, `pending:<tx>`,
    /// `pending+retry:{"transaction":…,"request":…,"since":…}`, `settling`,
    /// `settling+retry:{"request":…,"since":…}`, `expired_unsettled` or `in_progress`.
    pub fn to_text(&self) -> String {
        match self {
            Slot::Settled { transaction } => format!("settled:{transaction}"),
            Slot::Pending {
                transaction,
                request: Some(request),
                since,
            } => retry_text(PENDING_RETRY, transaction, request, *since)
                .unwrap_or_else(|| format!("pending:{transaction}")),
            Slot::Pending { transaction, .. } => format!("pending:{transaction}"),
            Slot::Settling {
                request: Some(request),
                since,
            } => retry_text(SETTLING_RETRY, "", request, *since)
                .unwrap_or_else(|| "settling".to_owned()),
            Slot::Settling { .. } => "settling".to_owned(),
            Slot::ExpiredUnsettled => EXPIRED_UNSETTLED.to_owned(),
            _ => "in_progress".to_owned(),
        }
    }

    /// Reads [`to_text`](Self::to_text)'s form back (and the forms older versions wrote);
    /// anything else is in progress. A pending or settling slot whose request cannot be read
    /// back keeps its state, without the request.
    pub fn from_text(text: &str) -> Slot {
        if let Some(transaction) = text.strip_prefix("settled:") {
            Slot::Settled {
                transaction: transaction.to_owned(),
            }
        } else if let Some(json) = text.strip_prefix(PENDING_RETRY) {
            let retry = serde_json::from_str::<Retry<'_>>(json).ok();
            Slot::Pending {
                transaction: retry
                    .as_ref()
                    .map(|r| r.transaction.to_string())
                    .unwrap_or_default(),
                request: retry.as_ref().map(|r| r.request.to_string()),
                since: retry.map_or(0, |r| r.since),
            }
        } else if let Some(transaction) = text.strip_prefix("pending:") {
            Slot::Pending {
                transaction: transaction.to_owned(),
                request: None,
                since: 0,
            }
        } else if let Some(json) = text.strip_prefix(SETTLING_RETRY) {
            let retry = serde_json::from_str::<Retry<'_>>(json).ok();
            Slot::Settling {
                request: retry.as_ref().map(|r| r.request.to_string()),
                since: retry.map_or(0, |r| r.since),
            }
        } else if text == "settling" {
            Slot::Settling {
                request: None,
                since: 0,
            }
        } else if text == EXPIRED_UNSETTLED {
            Slot::ExpiredUnsettled
        } else {
            Slot::InProgress
        }
    }

    /// Whether the settlement's outcome is not known yet (settling or pending).
    pub fn is_unresolved(&self) -> bool {
        matches!(self, Slot::Settling { .. } | Slot::Pending { .. })
    }

    /// Whether the slot may be freed by [`ReplayStore::release`]: reserved or settling, never a
    /// recorded outcome.
    pub fn is_releasable(&self) -> bool {
        matches!(self, Slot::InProgress | Slot::Settling { .. })
    }

    /// An outcome that will not change: settled, or expired unsettled.
    pub fn is_definite(&self) -> bool {
        matches!(self, Slot::Settled { .. } | Slot::ExpiredUnsettled)
    }

    /// The slot a process that did not write it must assume: a settlement in flight in a
    /// process that stopped is an unknown outcome.
    pub fn orphaned(self) -> Slot {
        match self {
            Slot::Settling { request, since } => Slot::Pending {
                transaction: String::new(),
                request,
                since,
            },
            slot => slot,
        }
    }
}

/// A payment whose settlement outcome is unknown, as listed by [`ReplayStore::unresolved`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unresolved {
    /// The payment.
    pub key: ReplayKey,
    /// [`Slot::Pending`] or [`Slot::Settling`].
    pub slot: Slot,
}

/// Stores payment keys so that every payment is served and settled at most once, and keeps
/// what is known about each settlement.
pub trait ReplayStore: Send + Sync + 'static {
    /// Atomically takes `key` until `expires_at` (unix seconds: the authorization's
    /// `validBefore` plus the clock-skew allowance). Returns the existing slot if the key is
    /// already taken and not expired.
    fn reserve<'a>(
        &'a self,
        key: &'a ReplayKey,
        expires_at: u64,
    ) -> BoxFuture<'a, Result<(), Slot>>;

    /// What is recorded for `key` without taking it: `None` when nothing is (or it expired),
    /// `Some(Slot::Unavailable)` when the store cannot be read.
    fn lookup<'a>(&'a self, key: &'a ReplayKey) -> BoxFuture<'a, Option<Slot>>;

    /// Records the state of a reserved key. The key stays taken at least until `keep_until`
    /// (unix seconds); a store never shortens how long a key is kept.
    fn record<'a>(&'a self, key: &'a ReplayKey, slot: Slot, keep_until: u64) -> BoxFuture<'a, ()>;

    /// Frees a key that is reserved or settling (never one with a recorded outcome), so the
    /// same payment can be presented again. Must not block; a remote store may finish the
    /// release in the background.
    fn release(&self, key: &ReplayKey);

    /// Credits `transaction` to `key`. Returns `false` if the transaction was already credited
    /// to a different payment: one transaction never pays for two requests.
    fn credit<'a>(&'a self, transaction: &'a str, key: &'a ReplayKey) -> BoxFuture<'a, bool>;

    /// Every payment whose outcome is unknown (pending, or settling), for reconciliation and
    /// for operators. Settlements in flight in this process are included as settling.
    fn unresolved(&self) -> BoxFuture<'_, Result<Vec<Unresolved>, String>>;

    /// Takes the right to reconcile `key` until `until` (unix seconds), across every process
    /// sharing the store; `false` when another holder has it. A store used by one process only
    /// may answer `true`: the paywall also reconciles one payment at a time per process.
    fn claim_reconciliation<'a>(&'a self, key: &'a ReplayKey, until: u64) -> BoxFuture<'a, bool> {
        let _ = (key, until);
        Box::pin(std::future::ready(true))
    }

    /// Gives back the right taken by [`claim_reconciliation`](Self::claim_reconciliation).
    /// Must not block.
    fn end_reconciliation(&self, key: &ReplayKey) {
        let _ = key;
    }
}

impl<S: ReplayStore + ?Sized> ReplayStore for Arc<S> {
    fn reserve<'a>(
        &'a self,
        key: &'a ReplayKey,
        expires_at: u64,
    ) -> BoxFuture<'a, Result<(), Slot>> {
        (**self).reserve(key, expires_at)
    }

    fn lookup<'a>(&'a self, key: &'a ReplayKey) -> BoxFuture<'a, Option<Slot>> {
        (**self).lookup(key)
    }

    fn record<'a>(&'a self, key: &'a ReplayKey, slot: Slot, keep_until: u64) -> BoxFuture<'a, ()> {
        (**self).record(key, slot, keep_until)
    }

    fn release(&self, key: &ReplayKey) {
        (**self).release(key);
    }

    fn credit<'a>(&'a self, transaction: &'a str, key: &'a ReplayKey) -> BoxFuture<'a, bool> {
        (**self).credit(transaction, key)
    }

    fn unresolved(&self) -> BoxFuture<'_, Result<Vec<Unresolved>, String>> {
        (**self).unresolved()
    }

    fn claim_reconciliation<'a>(&'a self, key: &'a ReplayKey, until: u64) -> BoxFuture<'a, bool> {
        (**self).claim_reconciliation(key, until)
    }

    fn end_reconciliation(&self, key: &ReplayKey) {
        (**self).end_reconciliation(key);
    }
}

#[derive(Debug)]
struct Held {
    slot: Slot,
    /// The authorization's end (`validBefore` plus skew), from the reservation.
    hold_until: u64,
    /// When the key is forgotten: `hold_until`, or later for a recorded outcome.
    expires_at: u64,
}

/// The in-process replay store: a sharded concurrent map with expiry.
///
/// A reservation is held until the authorization's `validBefore` plus the clock-skew allowance;
/// a recorded outcome for as long as the paywall asks (the record retention). Expired entries are
/// swept every few thousand reservations. Memory is bounded by a capacity (500,000 keys unless
/// [`with_capacity`](Self::with_capacity)): past it, the oldest definite outcomes of expired
/// authorizations are forgotten first (such a payment can never settle again); unknown outcomes
/// are never dropped, and when nothing can be dropped new payments are refused with
/// `503 replay_store_unavailable` rather than risk a second settlement.
pub struct MemoryStore {
    keys: DashMap<ReplayKey, Held>,
    /// Credited transactions (lower case): the payment each paid for, and until when the credit
    /// is kept (as long as that payment's record).
    transactions: DashMap<String, (ReplayKey, u64)>,
    reservations: AtomicU64,
    capacity: usize,
    now: Clock,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("keys", &self.keys.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

const SWEEP_EVERY: u64 = 4096;
/// Keys a [`MemoryStore`] holds at most unless told otherwise.
pub const DEFAULT_MEMORY_CAPACITY: usize = 500_000;

impl MemoryStore {
    /// An empty store using the system clock.
    pub fn new() -> Self {
        Self::with_clock(crate::config::unix_now)
    }

    /// An empty store reading time (unix seconds) from `now`.
    pub fn with_clock(now: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        MemoryStore {
            keys: DashMap::new(),
            transactions: DashMap::new(),
            reservations: AtomicU64::new(0),
            capacity: DEFAULT_MEMORY_CAPACITY,
            now: Arc::new(now),
        }
    }

    /// Holds at most `capacity` keys (see the type's documentation).
    ///
    /// ```
    /// let store = x402_runtime::MemoryStore::new().with_capacity(10_000);
    /// assert!(store.is_empty());
    /// ```
    #[must_use]
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Number of keys currently held (reserved or recorded, not yet swept).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Removes `key` whatever its state.
    pub(crate) fn forget(&self, key: &ReplayKey) {
        self.keys.remove(key);
    }

    /// The state of `key`, if it is held.
    pub(crate) fn slot(&self, key: &ReplayKey) -> Option<Slot> {
        self.keys.get(key).map(|e| e.slot.clone())
    }

    /// How long `key` is kept, if it is held.
    pub(crate) fn expiry(&self, key: &ReplayKey) -> Option<u64> {
        self.keys.get(key).map(|e| e.expires_at)
    }

    /// Drops expired keys and, over capacity, the oldest definite outcomes of expired
    /// authorizations, and expired credits.
    fn sweep(&self, now: u64) {
        self.keys.retain(|_, e| e.expires_at > now);
        if self.keys.len() >= self.capacity {
            self.evict(now, self.keys.len() - self.capacity * 9 / 10);
        }
        self.transactions
            .retain(|_, (_, expires_at)| *expires_at > now);
    }

    /// Forgets up to about `excess` definite outcomes of expired authorizations, oldest first.
    fn evict(&self, now: u64, excess: usize) {
        let evictable = |e: &Held| e.slot.is_definite() && e.hold_until <= now;
        let mut ages: Vec<u64> = self
            .keys
            .iter()
            .filter(|e| evictable(e.value()))
            .map(|e| e.hold_until)
            .collect();
        if ages.is_empty() || excess == 0 {
            return;
        }
        let nth = excess.min(ages.len()) - 1;
        let cutoff = *ages.select_nth_unstable(nth).1;
        self.keys
            .retain(|_, e| !(evictable(e) && e.hold_until <= cutoff));
    }

    fn take(&self, key: &ReplayKey, expires_at: u64) -> Result<(), Slot> {
        let now = (self.now)();
        let full = self.keys.len() >= self.capacity;
        if full
            || self.reservations.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1
        {
            self.sweep(now);
        }
        let fresh = Held {
            slot: Slot::InProgress,
            hold_until: expires_at,
            expires_at,
        };
        // Read before the entry is taken: `len` locks every shard, the entry one of them.
        let still_full = full && self.keys.len() >= self.capacity;
        match self.keys.entry(key.clone()) {
            Entry::Occupied(mut taken) if taken.get().expires_at <= now => {
                taken.insert(fresh);
                Ok(())
            }
            Entry::Occupied(taken) => Err(taken.get().slot.clone()),
            Entry::Vacant(_) if still_full => {
                tracing::error!(
                    capacity = self.capacity,
                    "x402: the in-memory replay store is full of payments that may still settle; refusing new ones"
                );
                Err(Slot::Unavailable)
            }
            Entry::Vacant(free) => {
                free.insert(fresh);
                Ok(())
            }
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl ReplayStore for MemoryStore {
    fn reserve<'a>(
        &'a self,
        key: &'a ReplayKey,
        expires_at: u64,
    ) -> BoxFuture<'a, Result<(), Slot>> {
        Box::pin(std::future::ready(self.take(key, expires_at)))
    }

    fn lookup<'a>(&'a self, key: &'a ReplayKey) -> BoxFuture<'a, Option<Slot>> {
        let now = (self.now)();
        let slot = self
            .keys
            .get(key)
            .filter(|e| e.expires_at > now)
            .map(|e| e.slot.clone());
        Box::pin(std::future::ready(slot))
    }

    fn record<'a>(&'a self, key: &'a ReplayKey, slot: Slot, keep_until: u64) -> BoxFuture<'a, ()> {
        let credited = match &slot {
            Slot::Settled { transaction } => Some(transaction.to_ascii_lowercase()),
            _ => None,
        };
        match self.keys.entry(key.clone()) {
            Entry::Occupied(mut held) => {
                let held = held.get_mut();
                held.slot = slot;
                held.expires_at = held.expires_at.max(keep_until);
            }
            // A key recorded without a reservation in this process (an outcome reconciled for a
            // record read from elsewhere).
            Entry::Vacant(free) => {
                free.insert(Held {
                    slot,
                    hold_until: keep_until,
                    expires_at: keep_until,
                });
            }
        }
        // The credit of a settled payment is kept as long as the payment.
        if let Some(transaction) = credited {
            let kept = self.keys.get(key).map_or(keep_until, |e| e.expires_at);
            if let Some(mut credit) = self.transactions.get_mut(&transaction) {
                credit.1 = credit.1.max(kept);
            }
        }
        Box::pin(std::future::ready(()))
    }

    fn release(&self, key: &ReplayKey) {
        self.keys.remove_if(key, |_, e| e.slot.is_releasable());
    }

    fn credit<'a>(&'a self, transaction: &'a str, key: &'a ReplayKey) -> BoxFuture<'a, bool> {
        let expires_at = self.keys.get(key).map_or(u64::MAX, |e| e.expires_at);
        let fresh = match self.transactions.entry(transaction.to_ascii_lowercase()) {
            Entry::Occupied(seen) => seen.get().0 == *key,
            Entry::Vacant(free) => {
                free.insert((key.clone(), expires_at));
                true
            }
        };
        Box::pin(std::future::ready(fresh))
    }

    fn unresolved(&self) -> BoxFuture<'_, Result<Vec<Unresolved>, String>> {
        let now = (self.now)();
        let list = self
            .keys
            .iter()
            .filter(|e| e.expires_at > now && e.slot.is_unresolved())
            .map(|e| Unresolved {
                key: e.key().clone(),
                slot: e.slot.clone(),
            })
            .collect();
        Box::pin(std::future::ready(Ok(list)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> String {
        r#"{"x402Version":2,"paymentPayload":{"note":"a\nb \"q\" pending:"},"paymentRequirements":{}}"#
            .to_owned()
    }

    #[test]
    fn slots_round_trip_through_their_text() {
        for slot in [
            Slot::InProgress,
            Slot::Settling {
                request: None,
                since: 0,
            },
            Slot::Settling {
                request: Some(request()),
                since: 1_700_000_000,
            },
            Slot::Settled {
                transaction: "0xabc".to_owned(),
            },
            Slot::Pending {
                transaction: String::new(),
                request: None,
                since: 0,
            },
            Slot::Pending {
                transaction: "0xdef".to_owned(),
                request: None,
                since: 0,
            },
            Slot::Pending {
                transaction: String::new(),
                request: Some(request()),
                since: 12,
            },
            Slot::Pending {
                transaction: "0xdef".to_owned(),
                request: Some("{\n  \"pretty\": true\n}".to_owned()),
                since: 0,
            },
            Slot::ExpiredUnsettled,
        ] {
            assert_eq!(Slot::from_text(&slot.to_text()), slot, "{}", slot.to_text());
        }
    }

    #[test]
    fn records_of_older_versions_still_read() {
        assert_eq!(
            Slot::from_text(r#"pending+retry:{"transaction":"0x1","request":"{}"}"#),
            Slot::Pending {
                transaction: "0x1".to_owned(),
                request: Some("{}".to_owned()),
                since: 0,
            }
        );
        assert_eq!(
            Slot::from_text("settling"),
            Slot::Settling {
                request: None,
                since: 0
            }
        );
    }

    #[test]
    fn a_damaged_pending_record_stays_pending() {
        assert_eq!(
            Slot::from_text("pending+retry:{not json"),
            Slot::Pending {
                transaction: String::new(),
                request: None,
                since: 0,
            }
        );
        assert_eq!(Slot::from_text("anything else"), Slot::InProgress);
    }

    fn key(nonce: u8) -> ReplayKey {
        ReplayKey {
            network: "eip155:84532".to_owned(),
            asset: alloy_primitives::Address::ZERO,
            from: alloy_primitives::Address::ZERO,
            nonce: alloy_primitives::B256::repeat_byte(nonce),
        }
    }

    fn now_ready<T>(future: BoxFuture<'_, T>) -> T {
        futures_util::FutureExt::now_or_never(future).expect("ready")
    }

    #[test]
    fn pending_slots_are_kept_when_released() {
        let store = MemoryStore::new();
        let pending = Slot::Pending {
            transaction: String::new(),
            request: Some("{}".to_owned()),
            since: 0,
        };
        now_ready(store.reserve(&key(0), u64::MAX)).expect("free");
        now_ready(store.record(&key(0), pending.clone(), u64::MAX));
        store.release(&key(0));
        assert_eq!(store.slot(&key(0)), Some(pending));
    }

    #[test]
    fn outcomes_outlive_the_reservation() {
        static NOW: AtomicU64 = AtomicU64::new(1_000);
        let store = MemoryStore::with_clock(|| NOW.load(Ordering::SeqCst));
        now_ready(store.reserve(&key(1), 1_100)).expect("free");
        now_ready(store.reserve(&key(2), 1_100)).expect("free");
        let settled = Slot::Settled {
            transaction: "0xab".to_owned(),
        };
        now_ready(store.record(&key(1), settled.clone(), 5_000));
        NOW.store(2_000, Ordering::SeqCst);
        assert_eq!(now_ready(store.lookup(&key(1))), Some(settled.clone()));
        assert_eq!(now_ready(store.reserve(&key(1), 2_100)), Err(settled));
        assert_eq!(
            now_ready(store.lookup(&key(2))),
            None,
            "a bare reservation expires"
        );
        NOW.store(5_000, Ordering::SeqCst);
        assert_eq!(now_ready(store.lookup(&key(1))), None);
    }

    #[test]
    fn a_full_store_forgets_old_definite_outcomes_but_never_unknown_ones() {
        static NOW: AtomicU64 = AtomicU64::new(1_000);
        let store = MemoryStore::with_clock(|| NOW.load(Ordering::SeqCst)).with_capacity(10);
        let pending = Slot::Pending {
            transaction: String::new(),
            request: None,
            since: 0,
        };
        for nonce in 0..10u8 {
            now_ready(store.reserve(&key(nonce), 1_100)).expect("free");
            let slot = if nonce < 5 {
                Slot::Settled {
                    transaction: format!("0x{nonce}"),
                }
            } else {
                pending.clone()
            };
            now_ready(store.record(&key(nonce), slot, 100_000));
        }
        // Every authorization still valid: nothing can be dropped, so a new one is refused.
        assert_eq!(
            now_ready(store.reserve(&key(20), 1_100)),
            Err(Slot::Unavailable)
        );
        NOW.store(1_200, Ordering::SeqCst);
        now_ready(store.reserve(&key(21), 1_300)).expect("room was made");
        for nonce in 5..10u8 {
            assert_eq!(store.slot(&key(nonce)), Some(pending.clone()), "{nonce}");
        }
        assert!(store.len() <= 10);
    }
}
