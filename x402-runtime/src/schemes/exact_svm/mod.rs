//! `exact` on Solana (SVM): the payer signs a transaction that moves the offer's amount of a
//! token with `TransferChecked` to the recipient's associated token account; the facilitator
//! adds its fee payer's signature and sends it.
//!
//! - [`payload`] reads the payload (`{"transaction": "<base64>"}`) into an [`SvmTransaction`];
//! - [`rules`] checks it against the offer's [`SvmTerms`] and names the payment
//!   ([`SvmPaymentFacts`]) or the first broken rule ([`rules::codes`]);
//! - [`program`] holds the program ids, the USDC mints, the limits and the associated token
//!   account derivation;
//! - [`rpc`] talks to a Solana node (blockhash, accounts, simulation, sending, status).
//!
//! Keys are raw 32-byte addresses ([`Key`]). Not yet offered by the paywall nor settled by a
//! facilitator.

/// Building and signing a payment transaction, as the official client does (the payer's side).
pub mod build;
pub mod payload;
pub mod program;
pub mod rpc;
pub mod rules;

pub use payload::{PayloadError, SvmTransaction};
pub use program::Key;
pub use rules::{SvmPaymentFacts, SvmTerms, check};

impl PayloadError {
    /// The reason code of a payload that cannot be read (one of [`rules::codes`]).
    pub fn code(&self) -> &'static str {
        match self {
            Self::AddressTableLookup => rules::codes::ADDRESS_TABLE_LOOKUP,
            _ => rules::codes::COULD_NOT_BE_DECODED,
        }
    }
}

#[cfg(test)]
mod tests;
