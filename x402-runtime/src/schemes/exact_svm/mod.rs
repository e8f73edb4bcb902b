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
//! [`ExactSvm`] is the scheme: its offer carries `extra.feePayer`, the fee payer the
//! facilitator's `/supported` names for `exact` on that network, so a route offered on Solana
//! answers its first 402 once `/supported` was read. Keys are raw 32-byte addresses ([`Key`]).
//!
//! A payment is identified by the SHA-256 of its message bytes (the replay key's nonce), paid
//! by the transfer's authority. A Solana transaction carries no expiry time, only a recent
//! blockhash, which the cluster accepts for 150 blocks (about a minute): its deadline is taken
//! as [`PAYMENT_LIFETIME`] after it was first read, an upper bound of when it can still land.

use std::any::Any;

use alloy_primitives::{B256, U256};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::network::{AccountId, SvmAddress};
use crate::proto::SupportedResponse;
use crate::proto::header::{DecodeError, malformed};
use crate::schemes::{
    Offer, OfferCheck, OfferTerms, Rejection, ReplayKey, Scheme, SchemePayload, Window,
};

/// Building and signing a payment transaction, as the official client does (the payer's side).
pub mod build;
pub mod payload;
pub mod program;
pub mod rpc;
pub mod rules;

pub use payload::{PayloadError, SvmTransaction};
pub use program::Key;
pub use rules::{SvmPaymentFacts, SvmTerms, check};

/// The scheme's name on the wire.
pub const EXACT: &str = "exact";

/// How long after it is first read a Solana payment is taken to be able to land: a blockhash is
/// accepted for 150 blocks, at least 400 ms each, and the payer fetched it before signing.
pub const PAYMENT_LIFETIME: u64 = 150;

impl PayloadError {
    /// The reason code of a payload that cannot be read (one of [`rules::codes`]).
    pub fn code(&self) -> &'static str {
        match self {
            Self::AddressTableLookup => rules::codes::ADDRESS_TABLE_LOOKUP,
            _ => rules::codes::COULD_NOT_BE_DECODED,
        }
    }
}

/// The `exact` scheme on Solana. See the [module documentation](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct ExactSvm;

/// The fee payer `supported` names for `exact` on `network` (CAIP-2): the `extra.feePayer` of
/// its first v2 `exact` kind there.
///
/// ```
/// use x402_runtime::proto::SupportedResponse;
/// use x402_runtime::schemes::exact_svm::fee_payer;
///
/// let supported: SupportedResponse = serde_json::from_str(r#"{"kinds":[
///   {"x402Version":2,"scheme":"exact","network":"solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
///    "extra":{"feePayer":"GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse"}}]}"#).unwrap();
/// assert!(fee_payer(&supported, "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1").is_some());
/// assert!(fee_payer(&supported, "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp").is_none());
/// ```
pub fn fee_payer(supported: &SupportedResponse, network: &str) -> Option<Key> {
    supported
        .kinds
        .iter()
        .filter(|k| k.x402_version == 2 && k.scheme == EXACT && k.network == network)
        .find_map(|k| program::parse_key(k.extra.as_ref()?.get("feePayer")?.as_str()?))
}

impl Scheme for ExactSvm {
    fn name(&self) -> &'static str {
        EXACT
    }

    fn serves(&self, network: &crate::network::Network) -> bool {
        !network.is_evm()
    }

    /// The offer on a Solana network, to a Solana recipient, in a Solana token; its
    /// `extra.feePayer` once the facilitator's `/supported` named one (until then no payment
    /// passes its check).
    fn offer(&self, terms: &OfferTerms<'_>) -> Option<Offer> {
        let (Some(mint), Some(pay_to)) = (terms.asset.address.as_svm(), terms.pay_to.as_svm())
        else {
            return None;
        };
        if terms.upto || terms.network.is_evm() {
            return None;
        }
        // An SPL token amount is a u64.
        let amount = u64::try_from(terms.price.atomic).ok()?;
        let fee_payer = terms
            .supported
            .and_then(|s| fee_payer(s, &terms.network.caip2));
        let mut extra = serde_json::Map::new();
        if let Some(key) = &fee_payer {
            extra.insert(
                "feePayer".into(),
                Value::String(program::key_to_string(key)),
            );
        }
        let check = Box::new(ExactSvmOffer {
            terms: fee_payer.map(|fee_payer| SvmTerms {
                mint: mint.0,
                pay_to: pay_to.0,
                amount,
                fee_payer,
                decimals: Some(terms.asset.decimals),
                memo: None,
            }),
        });
        Some(Offer::from_terms(EXACT, terms, extra, check))
    }

    fn decode(&self, payload: &RawValue) -> Result<Box<dyn SchemePayload>, DecodeError> {
        let transaction = SvmTransaction::from_payload_json(payload.get())
            .map_err(|e| malformed(format!("`payload`: {e}")))?;
        Ok(Box::new(SvmPayment::new(
            transaction,
            crate::base::unix_now(),
        )))
    }
}

/// What a Solana offer precomputes: the terms a payment's transaction must meet (`None` until
/// the fee payer is known).
#[derive(Debug)]
pub struct ExactSvmOffer {
    terms: Option<SvmTerms>,
}

impl OfferCheck for ExactSvmOffer {
    /// Every rule of [`rules::check`]: fee payer, signers and the payer's signature, compute
    /// budget, the transfer's mint, destination and amount, the instructions after it. A
    /// transaction carries no validity window the server can read without the network: the
    /// facilitator's simulation judges its blockhash.
    fn check(
        &self,
        _offer: &Offer,
        payload: &dyn SchemePayload,
        _window: &Window,
    ) -> Result<(), Rejection> {
        let payment = crate::schemes::payload_as::<SvmPayment>(payload)?;
        let Some(terms) = &self.terms else {
            return Err(Rejection::Payment(rules::codes::MISSING_FEE_PAYER));
        };
        rules::check(&payment.transaction, terms)
            .map(drop)
            .map_err(Rejection::Payment)
    }
}

/// A Solana payment: the transaction as sent, its payer and when it was first read.
#[derive(Debug, Clone)]
pub struct SvmPayment {
    /// The transaction.
    pub transaction: SvmTransaction,
    payer: Key,
    amount: u64,
    read_at: u64,
}

impl SvmPayment {
    /// The payment in `transaction`, read at `now` (unix seconds). Its payer and amount are
    /// those of the first token instruction with the four accounts of a `TransferChecked` (the
    /// authority is the fourth); without one, the payer is the second signer and the amount 0
    /// (the rules refuse such a payment).
    pub fn new(transaction: SvmTransaction, now: u64) -> Self {
        let transfer = transaction.instructions.iter().find(|ix| {
            program::is_token_program(&ix.program) && ix.accounts.len() >= 4 && ix.data.len() >= 9
        });
        let payer = transfer
            .map(|ix| ix.accounts[3])
            .or_else(|| transaction.keys.get(1).copied())
            .unwrap_or_default();
        let amount = transfer
            .and_then(|ix| ix.data.get(1..9))
            .and_then(|bytes| bytes.try_into().ok())
            .map_or(0, u64::from_le_bytes);
        Self {
            transaction,
            payer,
            amount,
            read_at: now,
        }
    }
}

impl SchemePayload for SvmPayment {
    fn payer(&self) -> AccountId {
        AccountId::Svm(SvmAddress(self.payer))
    }

    fn amount(&self) -> U256 {
        U256::from(self.amount)
    }

    fn deadline(&self) -> u64 {
        self.read_at.saturating_add(PAYMENT_LIFETIME)
    }

    /// The payer, and the SHA-256 of the message as the nonce: every copy of the transaction,
    /// whatever the fee payer's slot holds, is one payment.
    fn replay_key(&self, network: &str, asset: AccountId) -> ReplayKey {
        ReplayKey {
            network: network.to_owned(),
            asset,
            from: self.payer(),
            nonce: B256::from(self.transaction.message_hash()),
        }
    }

    /// The message and the signatures but the fee payer's.
    fn signed(&self) -> Vec<u8> {
        let message = self.transaction.message_bytes();
        let mut bytes = Vec::with_capacity(message.len() + 64 * self.transaction.signatures.len());
        bytes.extend_from_slice(message);
        for signature in self.transaction.signatures.iter().skip(1) {
            bytes.extend_from_slice(signature);
        }
        bytes
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests;
