//! The `exact` scheme on EVM networks with EIP-3009 tokens (USDC, EURC): the payer signs a
//! `transferWithAuthorization` of exactly the price to the recipient, and the facilitator submits
//! it.
//!
//! - [`eip3009`]: the EIP-712 digest and the offline signature check (FiatToken's rules).
//! - [`payload`]: the payment's `payload` (authorization and signature), parsed strictly.
//! - [`rules`]: what an authorization must say to pay an offer, shared by the paywall and the
//!   in-process facilitator.
//! - [`chain`]: what happened to an authorization on chain (used, unused, expired).
//!
//! The offer's `extra` carries the token's EIP-712 domain `name` and `version`. A token
//! configured with [`TransferMethod::Permit2`] is offered with
//! `extra.assetTransferMethod = "permit2"` instead: the payer signs a Permit2 transfer to the
//! x402 exact proxy ([`permit2`]), and a payment is read as one or the other by
//! its shape (`permit2Authorization` or `authorization`).

use std::any::Any;

use alloy_primitives::U256;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::network::{AccountId, TransferMethod};
use crate::proto::codes;
use crate::proto::header::DecodeError;
use crate::schemes;
use crate::schemes::permit2::{self, Permit2Payload};
use crate::schemes::{
    Offer, OfferCheck, OfferTerms, Rejection, ReplayKey, Scheme, SchemePayload, Window,
};

pub mod chain;
pub mod eip3009;
pub mod payload;
pub mod rules;

pub use payload::{Authorization, ExactEvmPayload};
use rules::{Broken, Terms};

/// The scheme's name on the wire.
pub const EXACT: &str = "exact";

/// The `exact` scheme over EIP-3009. See the [module documentation](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct ExactEvm;

impl Scheme for ExactEvm {
    fn name(&self) -> &'static str {
        EXACT
    }

    fn offer(&self, terms: &OfferTerms<'_>) -> Option<Offer> {
        if terms.upto || !terms.is_evm() {
            return None;
        }
        let asset = terms.asset;
        let mut extra = schemes::domain_extra(asset);
        let check: Box<dyn OfferCheck> = match asset.transfer {
            TransferMethod::Eip3009 => Box::new(ExactEvmOffer),
            TransferMethod::Permit2 => {
                extra.insert(
                    "assetTransferMethod".into(),
                    Value::String(TransferMethod::Permit2.wire_name().into()),
                );
                Box::new(ExactPermit2Offer)
            }
        };
        Some(Offer::from_terms(EXACT, terms, extra, check))
    }

    /// A payment with `permit2Authorization` is a Permit2 one, any other an EIP-3009 one.
    fn decode(&self, payload: &RawValue) -> Result<Box<dyn SchemePayload>, DecodeError> {
        if permit2::is_permit2(payload) {
            return Ok(Box::new(permit2::decode(payload)?));
        }
        Ok(Box::new(payload::decode(payload)?))
    }
}

/// The check of a payment for an exact offer over Permit2.
#[derive(Debug)]
pub struct ExactPermit2Offer;

impl OfferCheck for ExactPermit2Offer {
    /// The permit's spender (the exact proxy), token, exact amount, recipient, window, then its
    /// signature's form.
    fn check(
        &self,
        offer: &Offer,
        payload: &dyn SchemePayload,
        window: &Window,
    ) -> Result<(), Rejection> {
        let payment = schemes::payload_as::<Permit2Payload>(payload)?;
        let terms = permit2::Terms::for_offer(offer, permit2::EXACT_PROXY, None, window)?;
        permit2::check(payment, &terms)
    }
}

/// The check of a payment for an exact offer over EIP-3009.
#[derive(Debug)]
pub struct ExactEvmOffer;

impl OfferCheck for ExactEvmOffer {
    /// Exact amount, recipient, validity window, then the signature's form (who signed it is
    /// the facilitator's to judge: see [`eip3009::signature_form`]).
    fn check(
        &self,
        offer: &Offer,
        payload: &dyn SchemePayload,
        window: &Window,
    ) -> Result<(), Rejection> {
        let payment = schemes::payload_as::<ExactEvmPayload>(payload)?;
        let terms = Terms {
            amount: offer.amount,
            pay_to: schemes::evm_pay_to(offer)?,
            now: window.now,
            valid_before_from: window.earliest,
            valid_before_until: Some(window.latest),
        };
        rules::check_terms(payment, &terms).map_err(|broken| {
            Rejection::Payment(match broken {
                Broken::Value => codes::VALUE_MISMATCH,
                Broken::Recipient => codes::RECIPIENT_MISMATCH,
                Broken::ValidBefore => codes::VALID_BEFORE,
                Broken::ValidAfter => codes::VALID_AFTER,
            })
        })?;
        eip3009::check_form(&payment.signature, codes::INVALID_SIGNATURE)
    }
}

impl SchemePayload for ExactEvmPayload {
    fn payer(&self) -> AccountId {
        AccountId::Evm(self.authorization.from)
    }

    fn amount(&self) -> U256 {
        self.authorization.value
    }

    fn deadline(&self) -> u64 {
        u64::try_from(self.authorization.valid_before).unwrap_or(u64::MAX)
    }

    fn replay_key(&self, network: &str, asset: AccountId) -> ReplayKey {
        ReplayKey {
            network: network.to_owned(),
            asset,
            from: AccountId::Evm(self.authorization.from),
            nonce: self.authorization.nonce,
        }
    }

    fn signed(&self) -> Vec<u8> {
        let a = &self.authorization;
        let mut bytes = Vec::with_capacity(20 * 2 + 32 * 4 + self.signature.len());
        bytes.extend_from_slice(a.from.as_slice());
        bytes.extend_from_slice(a.to.as_slice());
        for word in [a.value, a.valid_after, a.valid_before] {
            bytes.extend_from_slice(&word.to_be_bytes::<32>());
        }
        bytes.extend_from_slice(a.nonce.as_slice());
        bytes.extend_from_slice(&self.signature);
        bytes
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
