//! The `upto` scheme on EVM networks: the payer signs a Permit2 permit for a maximum, naming the
//! facilitator allowed to settle it, and the server settles what the request actually used, at
//! most that maximum ([`crate::schemes::permit2`] holds the permit's rules).
//!
//! The offer's `amount` is the maximum; its `extra` carries `assetTransferMethod: "permit2"`,
//! the token's EIP-712 `name` and `version`, and the `facilitatorAddress` the facilitator's
//! `/supported` names for `upto` on that network. Without that address (before the facilitator
//! answered, or a facilitator that lists no `upto` there, which
//! [`X402::check_facilitator`](crate::X402::check_facilitator) warns about) the offer has no
//! `facilitatorAddress`, clients cannot sign for it, and no payment passes its check
//! (`upto_facilitator_mismatch`): the route is published, and unpayable until the facilitator
//! settles `upto`.

use alloy_primitives::Address;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::network::TransferMethod;
use crate::proto::SupportedResponse;
use crate::proto::header::{DecodeError, malformed};
use crate::schemes::exact_evm::payload::parse_address;
use crate::schemes::permit2::{self, Permit2Payload};
use crate::schemes::{
    self, Offer, OfferCheck, OfferTerms, Rejection, Scheme, SchemePayload, Window,
};

/// The scheme's name on the wire.
pub const UPTO: &str = "upto";

/// The `upto` scheme over Permit2. See the [module documentation](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct UptoEvm;

/// The address `supported` names as the `upto` facilitator on `network` (CAIP-2).
///
/// ```
/// use x402_runtime::proto::SupportedResponse;
/// use x402_runtime::schemes::upto_evm::facilitator_address;
///
/// let supported: SupportedResponse = serde_json::from_str(r#"{"kinds":[
///   {"x402Version":2,"scheme":"upto","network":"eip155:84532",
///    "extra":{"facilitatorAddress":"0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"}}]}"#).unwrap();
/// assert!(facilitator_address(&supported, "eip155:84532").is_some());
/// assert!(facilitator_address(&supported, "eip155:8453").is_none());
/// ```
pub fn facilitator_address(supported: &SupportedResponse, network: &str) -> Option<Address> {
    supported
        .kinds
        .iter()
        .filter(|k| k.x402_version == 2 && k.scheme == UPTO && k.network == network)
        .find_map(|k| {
            let text = k.extra.as_ref()?.get("facilitatorAddress")?.as_str()?;
            parse_address(text, "facilitatorAddress").ok()
        })
}

impl Scheme for UptoEvm {
    fn name(&self) -> &'static str {
        UPTO
    }

    fn offer(&self, terms: &OfferTerms<'_>) -> Option<Offer> {
        if !terms.upto || !terms.is_evm() {
            return None;
        }
        let asset = terms.asset;
        let facilitator = terms
            .supported
            .and_then(|s| facilitator_address(s, &terms.network.caip2));
        let mut extra = schemes::domain_extra(asset);
        extra.insert(
            "assetTransferMethod".into(),
            Value::String(TransferMethod::Permit2.wire_name().into()),
        );
        if let Some(address) = facilitator {
            extra.insert(
                "facilitatorAddress".into(),
                Value::String(address.to_checksum(None)),
            );
        }
        let check = Box::new(UptoOffer { facilitator });
        Some(Offer::from_terms(UPTO, terms, extra, check))
    }

    /// An `upto` payment is a Permit2 permit that names its facilitator.
    fn decode(&self, payload: &RawValue) -> Result<Box<dyn SchemePayload>, DecodeError> {
        let permit = permit2::decode(payload)?;
        if permit.authorization.facilitator.is_none() {
            return Err(malformed(
                "an upto payment's `permit2Authorization.witness` must name its `facilitator`",
            ));
        }
        Ok(Box::new(permit))
    }
}

/// What an `upto` offer precomputes: the facilitator a permit must name.
#[derive(Debug)]
pub struct UptoOffer {
    facilitator: Option<Address>,
}

impl OfferCheck for UptoOffer {
    /// The permit's spender (the upto proxy), token, maximum (the offer's amount), recipient,
    /// facilitator, window, then its signature's form.
    fn check(
        &self,
        offer: &Offer,
        payload: &dyn SchemePayload,
        window: &Window,
    ) -> Result<(), Rejection> {
        let payment = schemes::payload_as::<Permit2Payload>(payload)?;
        let Some(facilitator) = self.facilitator else {
            return Err(Rejection::Payment(permit2::codes::FACILITATOR));
        };
        let terms =
            permit2::Terms::for_offer(offer, permit2::UPTO_PROXY, Some(facilitator), window)?;
        permit2::check(payment, &terms)
    }
}
