//! Exactly-once bookkeeping: the replay store.
//!
//! Before the first network call for a payment, the paywall reserves its [`ReplayKey`]. A
//! second copy of the same payment, however it is encoded, finds the key taken: while the first
//! copy is being verified, served or settled it is answered `409 payment_in_progress`; after
//! settlement it is refused with the original transaction. A reservation is released when the
//! payment did not go through (verification refused, handler failed), so a valid retry works.
//!
//! [`MemoryStore`] is the in-process default. A store shared by several server processes
//! implements the same trait with an atomic insert (for example Redis `SET NX` with a TTL).

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::facilitator::BoxFuture;
use crate::payload::ReplayKey;

/// What the store knows about a payment key that is already taken.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Slot {
    /// Reserved by a request that is verifying or serving it, or whose settlement outcome is
    /// unknown (a facilitator fault after `/settle` was called).
    InProgress,
    /// `/settle` is about to be called or is in flight. Recorded before the call, so that a
    /// durable store knows about it even if the process stops before the answer.
    Settling,
    /// Settled by this transaction.
    Settled {
        /// The transaction hash.
        transaction: String,
    },
    /// The facilitator reported `settlement_pending` for this transaction.
    Pending {
        /// The transaction hash, when the facilitator gave one.
        transaction: String,
    },
    /// The store could not be reached, so whether the key is taken is unknown. The payment is
    /// refused (503) before anything is verified or served.
    Unavailable,
}

impl Slot {
    /// The slot as stored text: `settled:<tx>`, `pending:<tx>`, `settling` or `in_progress`.
    pub(crate) fn to_text(&self) -> String {
        match self {
            Slot::Settled { transaction } => format!("settled:{transaction}"),
            Slot::Pending { transaction } => format!("pending:{transaction}"),
            Slot::Settling => "settling".to_owned(),
            _ => "in_progress".to_owned(),
        }
    }

    /// Reads [`to_text`](Self::to_text)'s form back; anything else is in progress.
    pub(crate) fn from_text(text: &str) -> Slot {
        if let Some(transaction) = text.strip_prefix("settled:") {
            Slot::Settled {
                transaction: transaction.to_owned(),
            }
        } else if let Some(transaction) = text.strip_prefix("pending:") {
            Slot::Pending {
                transaction: transaction.to_owned(),
            }
        } else if text == "settling" {
            Slot::Settling
        } else {
            Slot::InProgress
        }
    }
}

/// Stores payment keys so that every payment is served and settled at most once.
pub trait ReplayStore: Send + Sync + 'static {
    /// Atomically takes `key` until `expires_at` (unix seconds). Returns the existing slot if
    /// the key is already taken and not expired.
    fn reserve<'a>(
        &'a self,
        key: &'a ReplayKey,
        expires_at: u64,
    ) -> BoxFuture<'a, Result<(), Slot>>;

    /// Records the outcome of a reserved key (it stays taken until it expires).
    fn record<'a>(&'a self, key: &'a ReplayKey, slot: Slot) -> BoxFuture<'a, ()>;

    /// Frees a key that is reserved or settling (never one with a recorded outcome), so the
    /// same payment can be presented again. Must not block; a remote store may finish the
    /// release in the background.
    fn release(&self, key: &ReplayKey);

    /// Credits `transaction` to `key`. Returns `false` if the transaction was already credited
    /// to a different payment: one transaction never pays for two requests.
    fn credit<'a>(&'a self, transaction: &'a str, key: &'a ReplayKey) -> BoxFuture<'a, bool>;
}

#[derive(Debug)]
struct Held {
    slot: Slot,
    expires_at: u64,
}

/// The in-process replay store: a sharded concurrent map with expiry.
///
/// Keys expire at the authorization's `validBefore` plus the clock-skew allowance; expired
/// entries are swept every few thousand reservations, so memory stays bounded by the traffic of
/// one validity window.
#[derive(Debug)]
pub struct MemoryStore {
    keys: DashMap<ReplayKey, Held>,
    transactions: DashMap<String, (ReplayKey, u64)>,
    reservations: AtomicU64,
    now: fn() -> u64,
}

const SWEEP_EVERY: u64 = 4096;

impl MemoryStore {
    /// An empty store using the system clock.
    pub fn new() -> Self {
        Self::with_clock(crate::config::unix_now)
    }

    /// An empty store reading time (unix seconds) from `now`.
    pub fn with_clock(now: fn() -> u64) -> Self {
        MemoryStore {
            keys: DashMap::new(),
            transactions: DashMap::new(),
            reservations: AtomicU64::new(0),
            now,
        }
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

    /// When `key` expires, if it is held.
    pub(crate) fn expiry(&self, key: &ReplayKey) -> Option<u64> {
        self.keys.get(key).map(|e| e.expires_at)
    }

    /// The state of `key`, if it is held.
    pub(crate) fn slot(&self, key: &ReplayKey) -> Option<Slot> {
        self.keys.get(key).map(|e| e.slot.clone())
    }

    fn sweep(&self, now: u64) {
        self.keys.retain(|_, e| e.expires_at > now);
        self.transactions
            .retain(|_, (_, expires_at)| *expires_at > now);
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
        let now = (self.now)();
        if self.reservations.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep(now);
        }
        let result = match self.keys.entry(key.clone()) {
            Entry::Occupied(mut taken) if taken.get().expires_at <= now => {
                taken.insert(Held {
                    slot: Slot::InProgress,
                    expires_at,
                });
                Ok(())
            }
            Entry::Occupied(taken) => Err(taken.get().slot.clone()),
            Entry::Vacant(free) => {
                free.insert(Held {
                    slot: Slot::InProgress,
                    expires_at,
                });
                Ok(())
            }
        };
        Box::pin(std::future::ready(result))
    }

    fn record<'a>(&'a self, key: &'a ReplayKey, slot: Slot) -> BoxFuture<'a, ()> {
        if let Some(mut entry) = self.keys.get_mut(key) {
            entry.slot = slot;
        }
        Box::pin(std::future::ready(()))
    }

    fn release(&self, key: &ReplayKey) {
        self.keys.remove_if(key, |_, e| {
            matches!(e.slot, Slot::InProgress | Slot::Settling)
        });
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
}
