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
//! implements the same trait with an atomic insert (for example Redis `SET NX` with a TTL, or
//! PostgreSQL `INSERT … ON CONFLICT`, which also keeps a queryable ledger).

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

use crate::base::BoxFuture;
use crate::schemes::ReplayKey;

#[cfg(test)]
pub(crate) mod contract;
pub(crate) mod file;
mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "redis")]
pub(crate) mod redis;

pub use memory::{DEFAULT_MEMORY_CAPACITY, MemoryStore};

/// A settled transaction's id as every store keeps, credits and looks it up: the one home of
/// this rule.
///
/// Surrounding whitespace is dropped. An EVM transaction hash (`0x` or `0X` followed by hex
/// digits) is lowercased, so that `0xAB…` and `0xab…` are one transaction. Any other id is kept
/// exactly as given: a Solana transaction id is a base58 signature, where case is part of the
/// value, so two signatures that differ only in case are two transactions.
pub(crate) fn transaction_key(transaction: &str) -> Cow<'_, str> {
    let transaction = transaction.trim();
    let digits = transaction
        .strip_prefix("0x")
        .or_else(|| transaction.strip_prefix("0X"));
    match digits {
        Some(digits)
            if !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_hexdigit())
                && transaction.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            Cow::Owned(transaction.to_ascii_lowercase())
        }
        _ => Cow::Borrowed(transaction),
    }
}

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

    /// Whether recording this slot may replace `current`: a definite outcome (settled,
    /// expired unsettled) is replaced only by `settled` (a late or reordered write of a weaker
    /// state never undoes what is known). Every store follows this rule in [`ReplayStore::record`].
    pub fn may_replace(&self, current: &Slot) -> bool {
        !current.is_definite() || matches!(self, Slot::Settled { .. })
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
    /// (unix seconds); a store never shortens how long a key is kept, and never replaces a
    /// definite outcome with a weaker state ([`Slot::may_replace`]).
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

/// Every kind of slot a store records, with and without its optional parts: what each store's
/// round-trip test writes and reads back.
#[cfg(test)]
pub(crate) fn recorded_slots() -> Vec<Slot> {
    vec![
        Slot::InProgress,
        Slot::Settling {
            request: Some("{}".to_owned()),
            since: 5,
        },
        Slot::Settling {
            request: None,
            since: 0,
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
            transaction: "0xabc".to_owned(),
            request: Some(r#"{"x402Version":2}"#.to_owned()),
            since: 7,
        },
        Slot::ExpiredUnsettled,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> String {
        r#"{"x402Version":2,"paymentPayload":{"note":"a\nb \"q\" pending:"},"paymentRequirements":{}}"#
            .to_owned()
    }

    #[test]
    fn evm_transaction_hashes_are_keyed_in_lowercase() {
        assert_eq!(transaction_key("0xC0FFee"), "0xc0ffee");
        assert_eq!(transaction_key("0XABCDEF01"), "0xabcdef01");
        assert_eq!(
            transaction_key(" 0xAb\n"),
            "0xab",
            "surrounding whitespace is dropped"
        );
        assert!(
            matches!(transaction_key("0xabc"), Cow::Borrowed("0xabc")),
            "a lowercase hash is not copied"
        );
    }

    #[test]
    fn other_transaction_ids_keep_their_case() {
        let signature = "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW";
        assert_eq!(transaction_key(signature), signature);
        assert_eq!(transaction_key(&format!(" {signature} ")), signature);
        let other = signature.replace('V', "v");
        assert_ne!(
            transaction_key(signature),
            transaction_key(&other),
            "two signatures that differ only in case stay two transactions"
        );
        // `0x` followed by something other than hex digits is not an EVM hash.
        assert_eq!(transaction_key("0xZZ"), "0xZZ");
        assert_eq!(transaction_key("0X"), "0X");
    }

    #[test]
    fn slots_round_trip_through_their_text() {
        // Requests that look like the text format itself, or span lines, are kept verbatim.
        let awkward = [
            Slot::Settling {
                request: Some(request()),
                since: 1_700_000_000,
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
        ];
        for slot in recorded_slots().into_iter().chain(awkward) {
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
}
