//! The exact-EVM authorization rules: what an EIP-3009 authorization must say to pay an offer.
//!
//! One home for the rules the paywall checks before it calls the facilitator and the in-process
//! facilitator checks before it settles: the exact amount, the recipient, the validity window and
//! the form of the signature. Each caller says how wide the window is (the paywall also needs
//! time to settle and refuses authorizations valid for longer than the offer allows) and answers
//! a broken rule with its own code.

use alloy_primitives::{Address, U256};

use super::payload::ExactEvmPayload;

/// Seconds `validBefore` must still be ahead of now when `/settle` is called (the reference
/// facilitators' margin for block inclusion).
pub const VALID_BEFORE_MARGIN: u64 = 6;

/// What an authorization must say to pay one offer, at one moment.
#[derive(Clone, Copy, Debug)]
pub struct Terms {
    /// The exact amount, in the token's atomic units.
    pub amount: U256,
    /// The recipient.
    pub pay_to: Address,
    /// Now, in unix seconds: `validAfter` must not be later.
    pub now: u64,
    /// The earliest acceptable `validBefore` (unix seconds).
    pub valid_before_from: u64,
    /// The latest acceptable `validBefore`, when there is one.
    pub valid_before_until: Option<u64>,
}

impl Terms {
    /// The terms the facilitator settles under: `validBefore` at least
    /// [`VALID_BEFORE_MARGIN`] ahead of `now`, without an upper bound.
    pub fn at_settlement(amount: U256, pay_to: Address, now: u64) -> Terms {
        Terms {
            amount,
            pay_to,
            now,
            valid_before_from: now.saturating_add(VALID_BEFORE_MARGIN),
            valid_before_until: None,
        }
    }
}

/// The rule an authorization broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    /// The value is not exactly the amount.
    Value,
    /// It pays someone else.
    Recipient,
    /// `validBefore` is too close, past, or too far ahead.
    ValidBefore,
    /// `validAfter` is in the future.
    ValidAfter,
}

/// Checks the authorization's amount, recipient and validity window, in that order.
pub fn check_terms(payment: &ExactEvmPayload, terms: &Terms) -> Result<(), Broken> {
    let auth = &payment.authorization;
    if auth.value != terms.amount {
        return Err(Broken::Value);
    }
    if auth.to != terms.pay_to {
        return Err(Broken::Recipient);
    }
    let too_late = terms
        .valid_before_until
        .is_some_and(|until| auth.valid_before > U256::from(until));
    if auth.valid_before < U256::from(terms.valid_before_from) || too_late {
        return Err(Broken::ValidBefore);
    }
    if auth.valid_after > U256::from(terms.now) {
        return Err(Broken::ValidAfter);
    }
    Ok(())
}
