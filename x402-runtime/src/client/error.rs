//! Why a call failed: [`ClientError`], from a request that could not be sent to a payment whose
//! outcome is unknown.

use super::policy::Spend;
use super::signer::SignError;

/// Why a call failed. Variants that carry a [`Spend`] happened after a payment was signed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The request could not be sent before any payment was made.
    Http(reqwest::Error),
    /// The request has a streaming body, which cannot be resent with a payment.
    BodyNotReplayable,
    /// A 402 without a readable x402 challenge.
    Challenge(String),
    /// The price is over the per-request maximum. Nothing was signed.
    OverRequestLimit {
        /// The price, e.g. `"0.02 USDC"`.
        price: String,
        /// The limit, e.g. `"0.01 USDC"`.
        limit: String,
    },
    /// The price is over what is left of the budget. Nothing was signed.
    OverBudget {
        /// The price.
        price: String,
        /// Already signed.
        spent: String,
        /// The budget.
        budget: String,
    },
    /// No offer of the challenge can be paid (network, asset, scheme). Nothing was signed.
    NoPayableOffer(Vec<String>),
    /// Signing failed. Nothing was sent.
    Sign(SignError),
    /// The server refused the payment.
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's reason.
        reason: String,
        /// The payment.
        spend: Box<Spend>,
    },
    /// The server had already settled this payment, so it was charged once, but the answer
    /// to the call that paid was lost.
    AlreadySettled {
        /// The settlement transaction.
        transaction: String,
        /// The payment.
        spend: Box<Spend>,
    },
    /// The server answered a resend of the payment with a fresh 402 while the authorization is
    /// still valid (its `validBefore` has not passed by this client's clock). Nothing was signed
    /// again: whoever holds the earlier authorization can still settle it, so a second one could
    /// pay twice. The payment is kept: calling again with the same request resends it, and once
    /// its `validBefore` has passed a fresh 402 lets the client sign a new one.
    LiveAuthorizationRefused {
        /// The server's reason for the 402.
        reason: String,
        /// The payment (its `valid_before` says until when it can settle).
        spend: Box<Spend>,
    },
    /// No definite answer (connection failures, settlement still pending). Calling again with
    /// the same request resends the same payment.
    Unconfirmed {
        /// What went wrong.
        reason: String,
        /// The transaction, if the server named one.
        transaction: Option<String>,
        /// The payment.
        spend: Box<Spend>,
    },
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Http(e) => write!(f, "request failed: {e}"),
            ClientError::BodyNotReplayable => {
                f.write_str("a paid request needs a body that can be sent twice (not a stream)")
            }
            ClientError::Challenge(why) => write!(f, "unreadable 402 challenge: {why}"),
            ClientError::OverRequestLimit { price, limit } => write!(
                f,
                "refused to pay {price}: over the per-request maximum of {limit} (nothing was signed)"
            ),
            ClientError::OverBudget {
                price,
                spent,
                budget,
            } => write!(
                f,
                "refused to pay {price}: {spent} of the {budget} budget already signed (nothing was signed)"
            ),
            ClientError::NoPayableOffer(reasons) => {
                write!(f, "no payable offer: {}", reasons.join("; "))
            }
            ClientError::Sign(e) => write!(f, "cannot sign the payment: {e}"),
            ClientError::Refused { status, reason, .. } => {
                write!(f, "the server refused the payment ({status}): {reason}")
            }
            ClientError::AlreadySettled { transaction, .. } => write!(
                f,
                "the payment was settled in transaction {transaction}, but its answer was lost"
            ),
            ClientError::LiveAuthorizationRefused { reason, spend } => write!(
                f,
                "the server refused the resent payment ({reason}) while its authorization can \
                 still settle (until {}); not signing another, which could pay twice",
                spend.valid_before
            ),
            ClientError::Unconfirmed {
                reason,
                transaction,
                ..
            } => {
                write!(f, "payment sent, outcome unknown: {reason}")?;
                if let Some(tx) = transaction {
                    write!(f, " (transaction {tx})")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Http(e) => Some(e),
            ClientError::Sign(e) => Some(e),
            _ => None,
        }
    }
}

impl ClientError {
    /// The payment this error concerns, when one was signed.
    pub fn spend(&self) -> Option<&Spend> {
        match self {
            ClientError::Refused { spend, .. }
            | ClientError::AlreadySettled { spend, .. }
            | ClientError::LiveAuthorizationRefused { spend, .. }
            | ClientError::Unconfirmed { spend, .. } => Some(spend),
            _ => None,
        }
    }
}
