//! The payer's key and the EIP-3009 authorizations it signs.

use std::path::Path;

use alloy_primitives::{Address, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::base::{ConfigError, unix_now};
use crate::network::Network;
use crate::proto::header::{DecodeError, parse_uint};
use crate::proto::{
    PAYMENT_SIGNATURE, PaymentRequired, PaymentRequirements, PaymentRequirementsV1, X_PAYMENT,
};
use crate::schemes::exact_evm::Authorization;
use crate::schemes::exact_evm::eip3009;
use crate::schemes::exact_evm::payload::parse_address;

/// Environment variable holding the payer's hex private key.
pub const PAYER_KEY_ENV: &str = "X402_PAYER_KEY";
/// Environment variable naming an encrypted JSON keystore file (used when no key is set).
pub const KEYSTORE_ENV: &str = "X402_KEYSTORE";
/// Environment variable holding the keystore's password.
pub const KEYSTORE_PASSWORD_ENV: &str = "X402_KEYSTORE_PASSWORD";

/// The `payment-identifier` extension key (idempotency of one payment across resends).
pub const PAYMENT_IDENTIFIER: &str = "payment-identifier";

/// Why an offer could not be signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignError(String);

impl std::fmt::Display for SignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SignError {}

pub(super) fn sign_error(message: impl Into<String>) -> SignError {
    SignError(message.into())
}

/// A payer's key, used to sign EIP-3009 authorizations.
///
/// The key never appears in errors or `Debug` output; `Debug` shows the address only.
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

/// One signed payment, ready to send.
#[derive(Clone, Debug)]
pub struct SignedPayment {
    /// The header to send it in (lower case): `payment-signature` (v2) or `x-payment` (v1).
    pub header: &'static str,
    /// The header value: standard base64 of the payment JSON.
    pub value: String,
    /// The signed authorization.
    pub authorization: Authorization,
    /// The `payment-identifier` sent with it, when the server asked for one.
    pub payment_id: Option<String>,
}

/// The offer fields a signature depends on, from a v2 or v1 offer.
struct Terms<'a> {
    network: Network,
    amount: &'a str,
    asset: &'a str,
    pay_to: &'a str,
    max_timeout_seconds: u64,
    extra: Option<&'a Map<String, Value>>,
}

impl PaymentSigner {
    /// A signer for a hex private key (with or without `0x`).
    pub fn from_key(key: &str) -> Result<Self, ConfigError> {
        let signer = key
            .trim()
            .parse()
            .map_err(|_| ConfigError::new("the payer key is not a 32-byte hex private key"))?;
        Ok(PaymentSigner { signer })
    }

    /// A signer decrypted from an encrypted JSON keystore file (the Web3 Secret Storage format
    /// written by geth, `cast wallet` and `eth_account`).
    pub fn from_keystore(path: impl AsRef<Path>, password: &str) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let signer = PrivateKeySigner::decrypt_keystore(path, password).map_err(|e| {
            ConfigError::new(format!(
                "cannot open the keystore {}: {}",
                path.display(),
                keystore_reason(&e)
            ))
        })?;
        Ok(PaymentSigner { signer })
    }

    /// The signer configured in the environment: [`PAYER_KEY_ENV`] (`X402_PAYER_KEY`), or else
    /// [`KEYSTORE_ENV`] (`X402_KEYSTORE`) with [`KEYSTORE_PASSWORD_ENV`].
    pub fn from_env() -> Result<Self, ConfigError> {
        if let Some(key) = std::env::var(PAYER_KEY_ENV)
            .ok()
            .filter(|k| !k.trim().is_empty())
        {
            return PaymentSigner::from_key(&key)
                .map_err(|e| ConfigError::new(format!("{PAYER_KEY_ENV}: {e}")));
        }
        if let Some(path) = std::env::var_os(KEYSTORE_ENV).filter(|p| !p.is_empty()) {
            let password = std::env::var(KEYSTORE_PASSWORD_ENV).map_err(|_| {
                ConfigError::new(format!(
                    "{KEYSTORE_ENV} is set but {KEYSTORE_PASSWORD_ENV} is not"
                ))
            })?;
            return PaymentSigner::from_keystore(path, &password);
        }
        Err(ConfigError::new(format!(
            "no payer key: set {PAYER_KEY_ENV} to a hex private key, or {KEYSTORE_ENV} and \
             {KEYSTORE_PASSWORD_ENV} to an encrypted keystore and its password"
        )))
    }

    /// The paying address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// A `PAYMENT-SIGNATURE` value paying `challenge.accepts[index]`.
    pub fn pay_v2(&self, challenge: &PaymentRequired, index: usize) -> Result<String, SignError> {
        self.sign_v2(challenge, index).map(|signed| signed.value)
    }

    /// An `X-PAYMENT` value paying a v1 offer.
    pub fn pay_v1(&self, offer: &PaymentRequirementsV1) -> Result<String, SignError> {
        self.sign_v1(offer).map(|signed| signed.value)
    }

    /// Signs `challenge.accepts[index]` into a v2 payment.
    ///
    /// The server's extensions are echoed. When it declares `payment-identifier`, a fresh id
    /// (`pay_` and 32 hex digits) is added to that extension's `info`; resending the same
    /// [`SignedPayment`] resends the same id.
    pub fn sign_v2(
        &self,
        challenge: &PaymentRequired,
        index: usize,
    ) -> Result<SignedPayment, SignError> {
        let offer = challenge
            .accepts
            .get(index)
            .ok_or_else(|| sign_error(format!("the challenge has no offer #{index}")))?;
        let network = Network::from_caip2(&offer.network)
            .ok_or_else(|| sign_error(format!("cannot pay on network `{}`", offer.network)))?;
        let (authorization, json, signature) = self.authorize(&v2_terms(offer, network)?)?;
        let mut extensions = challenge.extensions.clone();
        let payment_id = extensions.as_mut().and_then(add_payment_identifier);
        let mut payment = json!({
            "x402Version": 2,
            "resource": challenge.resource,
            "accepted": offer,
            "payload": { "signature": signature, "authorization": json },
        });
        if let Some(extensions) = extensions {
            payment["extensions"] = Value::Object(extensions);
        }
        Ok(SignedPayment {
            header: PAYMENT_SIGNATURE,
            value: STANDARD.encode(payment.to_string()),
            authorization,
            payment_id,
        })
    }

    /// Signs a v1 offer into an `X-PAYMENT` payment.
    pub fn sign_v1(&self, offer: &PaymentRequirementsV1) -> Result<SignedPayment, SignError> {
        let network = Network::from_v1_name(&offer.network)
            .ok_or_else(|| sign_error(format!("cannot pay on network `{}`", offer.network)))?;
        if offer.scheme != "exact" {
            return Err(sign_error(format!(
                "cannot pay the `{}` scheme",
                offer.scheme
            )));
        }
        let terms = Terms {
            network,
            amount: &offer.max_amount_required,
            asset: &offer.asset,
            pay_to: &offer.pay_to,
            max_timeout_seconds: offer.max_timeout_seconds,
            extra: offer.extra.as_ref(),
        };
        let (authorization, json, signature) = self.authorize(&terms)?;
        let payment = json!({
            "x402Version": 1,
            "scheme": offer.scheme,
            "network": offer.network,
            "payload": { "signature": signature, "authorization": json },
        });
        Ok(SignedPayment {
            header: X_PAYMENT,
            value: STANDARD.encode(payment.to_string()),
            authorization,
            payment_id: None,
        })
    }

    fn authorize(&self, terms: &Terms<'_>) -> Result<(Authorization, Value, String), SignError> {
        let field = |key: &str| {
            terms
                .extra
                .and_then(|e| e.get(key))
                .and_then(Value::as_str)
                .ok_or_else(|| sign_error(format!("the offer has no EIP-712 `extra.{key}`")))
        };
        let (name, version) = (field("name")?, field("version")?);
        let bad = |e: DecodeError| sign_error(format!("malformed offer: {e:?}"));
        let asset = parse_address(terms.asset, "asset").map_err(bad)?;
        let now = unix_now();
        let authorization = Authorization {
            from: self.address(),
            to: parse_address(terms.pay_to, "payTo").map_err(bad)?,
            value: parse_uint(terms.amount, "amount").map_err(bad)?,
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
            authorization,
            json,
            format!("0x{}", alloy_primitives::hex::encode(signature.as_bytes())),
        ))
    }
}

/// Adds `info.id` to a declared `payment-identifier` extension; returns the id.
fn add_payment_identifier(extensions: &mut Map<String, Value>) -> Option<String> {
    let extension = extensions.get_mut(PAYMENT_IDENTIFIER)?.as_object_mut()?;
    let info = extension
        .entry("info")
        .or_insert_with(|| Value::Object(Map::new()));
    let info = info.as_object_mut()?;
    let id = format!(
        "pay_{}",
        alloy_primitives::hex::encode(B256::random().0.get(..16)?)
    );
    info.insert("id".to_owned(), Value::String(id.clone()));
    Some(id)
}

/// The keystore failure without anything secret in it.
fn keystore_reason(error: &alloy_signer_local::LocalSignerError) -> String {
    let text = error.to_string();
    if text.to_ascii_lowercase().contains("mac") {
        "wrong password (MAC mismatch)".to_owned()
    } else {
        text
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_payment_identifier_gets_an_id() {
        let mut extensions = serde_json::from_value::<Map<String, Value>>(json!({
            "payment-identifier": {"info": {"required": false}, "schema": {}},
            "bazaar": {"info": {}}
        }))
        .expect("map");
        let id = add_payment_identifier(&mut extensions).expect("id");
        assert!(id.starts_with("pay_") && id.len() == 36, "{id}");
        assert!(id[4..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(extensions["payment-identifier"]["info"]["id"], id.as_str());
        assert_eq!(extensions["payment-identifier"]["info"]["required"], false);
        let mut none = Map::new();
        assert_eq!(add_payment_identifier(&mut none), None);
    }
}
