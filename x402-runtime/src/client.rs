//! Paying side: sign an offer from a 402 challenge into a payment header.
//!
//! [`PaymentSigner`] holds an alloy local signer and turns one offer of a challenge into a
//! `PAYMENT-SIGNATURE` (v2) or `X-PAYMENT` (v1) header value: an EIP-3009
//! `TransferWithAuthorization` for exactly the offered amount, to the offered recipient, valid
//! from now for the offer's `maxTimeoutSeconds`, with a random nonce.

use alloy_primitives::{Address, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::config::{ConfigError, unix_now};
use crate::eip3009;
use crate::network::Network;
use crate::payload::{self, Authorization};
use crate::proto::{PaymentRequired, PaymentRequirements, PaymentRequirementsV1};

/// Why an offer could not be signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignError(String);

impl std::fmt::Display for SignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SignError {}

fn sign_error(message: impl Into<String>) -> SignError {
    SignError(message.into())
}

/// A payer's key, used to sign EIP-3009 authorizations.
#[derive(Clone)]
pub struct PaymentSigner {
    signer: PrivateKeySigner,
}

impl std::fmt::Debug for PaymentSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentSigner")
            .field("address", &self.signer.address())
            .finish()
    }
}

/// The offer fields a signature depends on, from a v2 or v1 offer.
struct Terms<'a> {
    network: Network,
    amount: &'a str,
    asset: &'a str,
    pay_to: &'a str,
    max_timeout_seconds: u64,
    extra: Option<&'a serde_json::Map<String, Value>>,
}

impl PaymentSigner {
    /// A signer for a hex private key. The key never appears in errors or `Debug` output.
    pub fn from_key(key: &str) -> Result<Self, ConfigError> {
        let signer = key
            .trim()
            .parse()
            .map_err(|_| ConfigError::new("the payer key is not a 32-byte hex private key"))?;
        Ok(PaymentSigner { signer })
    }

    /// The paying address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// A `PAYMENT-SIGNATURE` value paying `challenge.accepts[index]`.
    pub fn pay_v2(&self, challenge: &PaymentRequired, index: usize) -> Result<String, SignError> {
        let offer = challenge
            .accepts
            .get(index)
            .ok_or_else(|| sign_error(format!("the challenge has no offer #{index}")))?;
        let network = Network::from_caip2(&offer.network)
            .ok_or_else(|| sign_error(format!("cannot pay on network `{}`", offer.network)))?;
        let (authorization, signature) = self.authorize(&v2_terms(offer, network)?)?;
        let payment = json!({
            "x402Version": 2,
            "resource": challenge.resource,
            "accepted": offer,
            "payload": { "signature": signature, "authorization": authorization },
            "extensions": challenge.extensions,
        });
        Ok(STANDARD.encode(payment.to_string()))
    }

    /// An `X-PAYMENT` value paying a v1 offer.
    pub fn pay_v1(&self, offer: &PaymentRequirementsV1) -> Result<String, SignError> {
        let network = Network::from_v1_name(&offer.network)
            .ok_or_else(|| sign_error(format!("cannot pay on network `{}`", offer.network)))?;
        let terms = Terms {
            network,
            amount: &offer.max_amount_required,
            asset: &offer.asset,
            pay_to: &offer.pay_to,
            max_timeout_seconds: offer.max_timeout_seconds,
            extra: offer.extra.as_ref(),
        };
        let (authorization, signature) = self.authorize(&terms)?;
        let payment = json!({
            "x402Version": 1,
            "scheme": offer.scheme,
            "network": offer.network,
            "payload": { "signature": signature, "authorization": authorization },
        });
        Ok(STANDARD.encode(payment.to_string()))
    }

    fn authorize(&self, terms: &Terms<'_>) -> Result<(Value, String), SignError> {
        let field = |key: &str| {
            terms
                .extra
                .and_then(|e| e.get(key))
                .and_then(Value::as_str)
                .ok_or_else(|| sign_error(format!("the offer has no EIP-712 `extra.{key}`")))
        };
        let (name, version) = (field("name")?, field("version")?);
        let bad = |e: payload::DecodeError| sign_error(format!("malformed offer: {e:?}"));
        let asset = payload::parse_address(terms.asset, "asset").map_err(bad)?;
        let now = unix_now();
        let authorization = Authorization {
            from: self.address(),
            to: payload::parse_address(terms.pay_to, "payTo").map_err(bad)?,
            value: payload::parse_uint(terms.amount, "amount").map_err(bad)?,
            // Back-dated like the reference clients, so a payee clock slightly behind still accepts it.
            valid_after: U256::from(now.saturating_sub(600)),
            valid_before: U256::from(now.saturating_add(terms.max_timeout_seconds)),
            nonce: B256::random(),
        };
        let separator = eip3009::domain(name, version, terms.network.chain_id, asset).separator();
        let digest = eip3009::signing_hash(&separator, &authorization);
        let signature = self
            .signer
            .sign_hash_sync(&digest)
            .map_err(|e| sign_error(format!("signing failed: {e}")))?;
        let json = json!({
            "from": authorization.from.to_checksum(None),
            "to": authorization.to.to_checksum(None),
            "value": authorization.value.to_string(),
            "validAfter": authorization.valid_after.to_string(),
            "validBefore": authorization.valid_before.to_string(),
            "nonce": authorization.nonce.to_string(),
        });
        Ok((
            json,
            format!("0x{}", alloy_primitives::hex::encode(signature.as_bytes())),
        ))
    }
}

fn v2_terms(offer: &PaymentRequirements, network: Network) -> Result<Terms<'_>, SignError> {
    if offer.scheme != "exact" {
        return Err(sign_error(format!(
            "cannot pay the `{}` scheme",
            offer.scheme
        )));
    }
    Ok(Terms {
        network,
        amount: &offer.amount,
        asset: &offer.asset,
        pay_to: &offer.pay_to,
        max_timeout_seconds: offer.max_timeout_seconds,
        extra: offer.extra.as_ref(),
    })
}
