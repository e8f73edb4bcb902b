//! [`MemoryStore`]: the in-process replay store and settlement record, the default.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use super::{ReplayStore, Slot, Unresolved, transaction_key};
use crate::base::{BoxFuture, Clock};
use crate::schemes::ReplayKey;

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
        Self::with_clock(crate::base::unix_now)
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
            Slot::Settled { transaction } => Some(transaction_key(transaction).into_owned()),
            _ => None,
        };
        match self.keys.entry(key.clone()) {
            Entry::Occupied(mut held) => {
                let held = held.get_mut();
                if slot.may_replace(&held.slot) {
                    held.slot = slot;
                }
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
        let fresh = match self
            .transactions
            .entry(transaction_key(transaction).into_owned())
        {
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
    use crate::store::contract;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keeps_the_replay_store_contract() {
        let clock = contract::TestClock::at(contract::START);
        contract::check(&MemoryStore::with_clock(clock.now()), &clock, false).await;
    }
    use crate::base::BoxFuture;

    fn key(nonce: u8) -> ReplayKey {
        ReplayKey {
            network: "eip155:84532".to_owned(),
            asset: alloy_primitives::Address::ZERO.into(),
            from: alloy_primitives::Address::ZERO.into(),
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
