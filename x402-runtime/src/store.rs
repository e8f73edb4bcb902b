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

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use serde::{Deserialize, Serialize};

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
    /// The settlement's outcome is not known yet: the facilitator reported
    /// `settlement_pending`, or did not answer `/settle` in time.
    Pending {
        /// The transaction hash, when the facilitator gave one (empty otherwise).
        transaction: String,
        /// The `/settle` request that was sent (JSON of
        /// [`FacilitatorRequest`](crate::proto::FacilitatorRequest)), so that a resend of the
        /// same payment can reconcile by repeating it with the same payload. `None` when it is
        /// not known (a record left `settling` by a process that stopped).
        request: Option<String>,
    },
    /// The store could not be reached, so whether the key is taken is unknown. The payment is
    /// refused (503) before anything is verified or served.
    Unavailable,
}

/// A pending slot with its `/settle` request, as stored after [`PENDING_RETRY`].
#[derive(Serialize, Deserialize)]
struct PendingRetry<'a> {
    #[serde(borrow)]
    transaction: Cow<'a, str>,
    #[serde(borrow)]
    request: Cow<'a, str>,
}

/// Prefix of a pending slot that carries its `/settle` request (JSON `{transaction, request}`).
const PENDING_RETRY: &str = "pending+retry:";

impl Slot {
    /// The slot as stored text: `settled:<tx>`, `pending:<tx>`,
    /// `pending+retry:{"transaction":…,"request":…}`, `settling` or `in_progress`.
    pub(crate) fn to_text(&self) -> String {
        match self {
            Slot::Settled { transaction } => format!("settled:{transaction}"),
            Slot::Pending {
                transaction,
                request: Some(request),
            } => {
                let retry = PendingRetry {
                    transaction: Cow::Borrowed(transaction),
                    request: Cow::Borrowed(request),
                };
                match serde_json::to_string(&retry) {
                    Ok(json) => format!("{PENDING_RETRY}{json}"),
                    Err(_) => format!("pending:{transaction}"),
                }
            }
            Slot::Pending { transaction, .. } => format!("pending:{transaction}"),
            Slot::Settling => "settling".to_owned(),
            _ => "in_progress".to_owned(),
        }
    }

    /// Reads [`to_text`](Self::to_text)'s form back; anything else is in progress. A pending
    /// slot whose request cannot be read back stays pending, without the request.
    pub(crate) fn from_text(text: &str) -> Slot {
        if let Some(transaction) = text.strip_prefix("settled:") {
            Slot::Settled {
                transaction: transaction.to_owned(),
            }
        } else if let Some(json) = text.strip_prefix(PENDING_RETRY) {
            match serde_json::from_str::<PendingRetry<'_>>(json) {
                Ok(retry) => Slot::Pending {
                    transaction: retry.transaction.into_owned(),
                    request: Some(retry.request.into_owned()),
                },
                Err(_) => Slot::Pending {
                    transaction: String::new(),
                    request: None,
                },
            }
        } else if let Some(transaction) = text.strip_prefix("pending:") {
            Slot::Pending {
                transaction: transaction.to_owned(),
                request: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip_through_their_text() {
        let request = r#"{"x402Version":2,"paymentPayload":{"note":"a\nb \"q\" pending:"},"paymentRequirements":{}}"#;
        for slot in [
            Slot::InProgress,
            Slot::Settling,
            Slot::Settled {
                transaction: "0xabc".to_owned(),
            },
            Slot::Pending {
                transaction: String::new(),
                request: None,
            },
            Slot::Pending {
                transaction: "0xdef".to_owned(),
                request: None,
            },
            Slot::Pending {
                transaction: String::new(),
                request: Some(request.to_owned()),
            },
            Slot::Pending {
                transaction: "0xdef".to_owned(),
                request: Some("{\n  \"pretty\": true\n}".to_owned()),
            },
        ] {
            assert_eq!(Slot::from_text(&slot.to_text()), slot, "{}", slot.to_text());
        }
    }

    #[test]
    fn a_damaged_pending_record_stays_pending() {
        assert_eq!(
            Slot::from_text("pending+retry:{not json"),
            Slot::Pending {
                transaction: String::new(),
                request: None,
            }
        );
        assert_eq!(Slot::from_text("anything else"), Slot::InProgress);
    }

    #[test]
    fn pending_slots_are_kept_when_released() {
        let store = MemoryStore::new();
        let key = ReplayKey {
            network: "eip155:84532".to_owned(),
            asset: alloy_primitives::Address::ZERO,
            from: alloy_primitives::Address::ZERO,
            nonce: alloy_primitives::B256::ZERO,
        };
        let pending = Slot::Pending {
            transaction: String::new(),
            request: Some("{}".to_owned()),
        };
        futures_util::FutureExt::now_or_never(store.reserve(&key, u64::MAX))
            .expect("ready")
            .expect("free");
        futures_util::FutureExt::now_or_never(store.record(&key, pending.clone()));
        store.release(&key);
        assert_eq!(store.slot(&key), Some(pending));
    }
}
