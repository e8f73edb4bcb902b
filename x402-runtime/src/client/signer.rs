//! The payer's key and what it signs for an offer: an EIP-3009 authorization (`exact`), or a
//! Permit2 permit (`exact` with `extra.assetTransferMethod: "permit2"`, and `upto`), built and
//! encoded with the scheme code the server checks them with.
//!
//! A Permit2 payment moves the token through Permit2, which the payer must have approved for
//! that token on chain (`approve(PERMIT2, max)`, once per token). The signer cannot know that
//! offline, so it signs; without the approval the server or its facilitator refuses the payment
//! with `permit2_allowance_required`.

use std::path::Path;

use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::base::{ConfigError, unix_now};
use crate::network::{AccountId, Network, TransferMethod};
use crate::proto::header::{DecodeError, parse_uint};
use crate::proto::{
    PAYMENT_SIGNATURE, PaymentRequired, PaymentRequirements, PaymentRequirementsV1, X_PAYMENT,
};
use crate::schemes::exact_evm::payload::parse_address;
use crate::schemes::exact_evm::{Authorization, EXACT, ExactEvmPayload, eip3009};
use crate::schemes::permit2::{self, Permit2Authorization, Permit2Payload};
use crate::schemes::upto_evm::UPTO;
use crate::schemes::{ReplayKey, SchemePayload};

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

/// A payer's key, used to sign EIP-3009 authorizations and Permit2 permits.
///
/// A Permit2 payment (an `exact` offer with `extra.assetTransferMethod: "permit2"`, or an `upto`
/// offer) moves the token through Uniswap's Permit2 contract, which the payer must have approved
/// for that token on chain: `approve(PERMIT2, max)` once per token, from the payer's wallet
/// ([`permit2::PERMIT2`](crate::schemes::permit2::PERMIT2)). The signer cannot know offline
/// whether it has, so it signs; without the approval the server (or its facilitator) refuses the
/// payment with `412 permit2_allowance_required` (this crate's paywall and the reference TypeScript server),
/// and nothing moves.
///
/// The key never appears in errors or `Debug` output; `Debug` shows the address only.
#[derive(Clone)]
pub struct PaymentSigner {
    signer: PrivateKeySigner,
    /// The Solana payer's key, when it pays on Solana too.
    #[cfg(feature = "svm")]
    pub(super) svm: Option<super::svm::SvmKey>,
}

impl std::fmt::Debug for PaymentSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = f.debug_struct("PaymentSigner");
        shown.field("address", &self.signer.address());
        #[cfg(feature = "svm")]
        shown.field("svm_address", &self.svm_address());
        shown.finish()
    }
}

/// One signed payment, ready to send.
///
/// What it authorizes is read with [`payer`](Self::payer), [`amount`](Self::amount),
/// [`deadline`](Self::deadline), [`nonce`](Self::nonce) and [`replay_key`](Self::replay_key),
/// whatever the transfer; [`authorization`](Self::authorization) holds the signed message
/// itself.
#[derive(Clone, Debug)]
pub struct SignedPayment {
    /// The header to send it in (lower case): `payment-signature` (v2) or `x-payment` (v1).
    pub header: &'static str,
    /// The header value: standard base64 of the payment JSON.
    pub value: String,
    /// The offer's scheme: `exact` or `upto`.
    pub scheme: &'static str,
    /// The offer's network (CAIP-2).
    pub network: String,
    /// The offer's token (its contract on EVM, its mint on Solana).
    pub asset: AccountId,
    /// The signed message and its signature.
    pub authorization: SignedAuthorization,
    /// The `payment-identifier` sent with it, when the server asked for one.
    pub payment_id: Option<String>,
}

/// What a [`SignedPayment`] signs: an EIP-3009 authorization or a Permit2 permit, with its
/// signature, as the server's scheme code reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignedAuthorization {
    /// An EIP-3009 `transferWithAuthorization` (`exact`).
    Eip3009(ExactEvmPayload),
    /// A Permit2 `PermitWitnessTransferFrom` to the x402 exact proxy (`exact`), or to the upto
    /// proxy naming its facilitator (`upto`).
    Permit2(Permit2Payload),
    /// A Solana transaction signed by the payer (`exact` on Solana), its fee payer's signature
    /// left to the facilitator.
    #[cfg(feature = "svm")]
    #[cfg_attr(docsrs, doc(cfg(feature = "svm")))]
    Svm(super::svm::SvmSignedTransfer),
}

impl SignedAuthorization {
    /// The signed payload as the schemes see it (payer, amount, deadline, replay key).
    pub fn payload(&self) -> &dyn SchemePayload {
        match self {
            SignedAuthorization::Eip3009(payload) => payload,
            SignedAuthorization::Permit2(payload) => payload,
            #[cfg(feature = "svm")]
            SignedAuthorization::Svm(payload) => payload,
        }
    }
}

impl SignedPayment {
    /// The payer.
    pub fn payer(&self) -> AccountId {
        self.authorization.payload().payer()
    }

    /// The amount authorized, in the token's atomic units: the price of an `exact` offer, the
    /// maximum of an `upto` offer (the server settles at most this).
    pub fn amount(&self) -> U256 {
        self.authorization.payload().amount()
    }

    /// The unix time from which the payment can never settle (EIP-3009's `validBefore`,
    /// Permit2's `deadline`).
    pub fn deadline(&self) -> u64 {
        self.authorization.payload().deadline()
    }

    /// The nonce: EIP-3009's, or Permit2's as 32 big-endian bytes; for a Solana payment, the
    /// SHA-256 of its message.
    pub fn nonce(&self) -> B256 {
        self.replay_key().nonce
    }

    /// The key the server deduplicates the payment on (for a permit, the asset is
    /// [`permit2::PERMIT2`]: Permit2's nonces are one space per payer).
    pub fn replay_key(&self) -> ReplayKey {
        self.authorization
            .payload()
            .replay_key(&self.network, self.asset)
    }

    /// Whether the payment is an `upto` one (the server settles at most [`amount`](Self::amount)).
    pub fn is_upto(&self) -> bool {
        self.scheme == UPTO
    }
}

/// How an offer is paid, read from its scheme and `extra`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Method {
    /// `exact` over EIP-3009.
    Eip3009,
    /// `exact` over Permit2, through the x402 exact proxy.
    Permit2Exact,
    /// `upto` over Permit2, through the x402 upto proxy, settled by `facilitator` only.
    Upto {
        /// `extra.facilitatorAddress`.
        facilitator: Address,
    },
}

impl Method {
    /// How the offer of `scheme` with `extra` is paid; `v1`: an x402 v1 offer, which is paid
    /// with EIP-3009 only.
    pub(super) fn of(
        scheme: &str,
        extra: Option<&Map<String, Value>>,
        v1: bool,
    ) -> Result<Method, SignError> {
        let transfer = match extra.and_then(|e| e.get("assetTransferMethod")) {
            None => None,
            Some(Value::String(name)) => Some(name.as_str()),
            Some(other) => {
                return Err(sign_error(format!(
                    "the offer's `extra.assetTransferMethod` is not a string: {other}"
                )));
            }
        };
        let eip3009 = TransferMethod::Eip3009.wire_name();
        let permit2 = TransferMethod::Permit2.wire_name();
        let unknown = |name: &str| {
            sign_error(format!(
                "cannot pay `{scheme}` with the asset transfer method `{name}` (known: \
                 `{eip3009}`, `{permit2}`)"
            ))
        };
        match scheme {
            EXACT => match transfer {
                None => Ok(Method::Eip3009),
                Some(name) if name == eip3009 => Ok(Method::Eip3009),
                Some(name) if name == permit2 && v1 => Err(sign_error(
                    "an x402 v1 offer is paid with EIP-3009 only, not Permit2",
                )),
                Some(name) if name == permit2 => Ok(Method::Permit2Exact),
                Some(name) => Err(unknown(name)),
            },
            UPTO if v1 => Err(sign_error("the `upto` scheme is x402 v2 only")),
            UPTO => match transfer {
                None => Ok(Method::Upto {
                    facilitator: upto_facilitator(extra)?,
                }),
                Some(name) if name == permit2 => Ok(Method::Upto {
                    facilitator: upto_facilitator(extra)?,
                }),
                Some(name) => Err(unknown(name)),
            },
            other => Err(sign_error(format!("cannot pay the `{other}` scheme"))),
        }
    }

    /// The scheme's name on the wire.
    fn scheme(self) -> &'static str {
        match self {
            Method::Eip3009 | Method::Permit2Exact => EXACT,
            Method::Upto { .. } => UPTO,
        }
    }
}

/// The facilitator an `upto` offer names (`extra.facilitatorAddress`): the only one its permit
/// lets settle it.
fn upto_facilitator(extra: Option<&Map<String, Value>>) -> Result<Address, SignError> {
    let text = extra
        .and_then(|e| e.get("facilitatorAddress"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            sign_error(
                "the upto offer names no `extra.facilitatorAddress` (the facilitator allowed \
                 to settle it): the server cannot take upto payments yet",
            )
        })?;
    parse_address(text, "extra.facilitatorAddress")
        .map_err(|e| sign_error(format!("malformed offer: {e:?}")))
}

/// The offer terms a signature depends on, from a v2 or v1 offer, read.
struct Terms<'a> {
    network: Network,
    /// The network's EIP-155 chain id (this signer pays on EVM networks only).
    chain_id: u64,
    method: Method,
    amount: U256,
    asset: Address,
    pay_to: Address,
    max_timeout_seconds: u64,
    extra: Option<&'a Map<String, Value>>,
}

impl<'a> Terms<'a> {
    /// Reads the amount, token and recipient of an offer paid with `method` on `network`.
    fn read(
        network: Network,
        method: Method,
        (amount, asset, pay_to): (&str, &str, &str),
        max_timeout_seconds: u64,
        extra: Option<&'a Map<String, Value>>,
    ) -> Result<Terms<'a>, SignError> {
        let bad = |e: DecodeError| sign_error(format!("malformed offer: {e:?}"));
        let chain_id = network.chain_id().ok_or_else(|| {
            sign_error(format!(
                "cannot pay on network `{}`: this signer pays on EVM networks only",
                network.caip2
            ))
        })?;
        Ok(Terms {
            network,
            chain_id,
            method,
            amount: parse_uint(amount, "amount").map_err(bad)?,
            asset: parse_address(asset, "asset").map_err(bad)?,
            pay_to: parse_address(pay_to, "payTo").map_err(bad)?,
            max_timeout_seconds,
            extra,
        })
    }
}

impl PaymentSigner {
    /// A signer for a hex private key (with or without `0x`).
    pub fn from_key(key: &str) -> Result<Self, ConfigError> {
        let signer = key
            .trim()
            .parse()
            .map_err(|_| ConfigError::new("the payer key is not a 32-byte hex private key"))?;
        Ok(PaymentSigner {
            signer,
            #[cfg(feature = "svm")]
            svm: None,
        })
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
        Ok(PaymentSigner {
            signer,
            #[cfg(feature = "svm")]
            svm: None,
        })
    }

    /// The signer configured in the environment: [`PAYER_KEY_ENV`] (`X402_PAYER_KEY`), or else
    /// [`KEYSTORE_ENV`] (`X402_KEYSTORE`) with [`KEYSTORE_PASSWORD_ENV`]. With feature `svm`,
    /// also the Solana key of `X402_SVM_PAYER_KEY` or the keypair file named by
    /// `X402_SVM_PAYER_KEYPAIR`, when one is set.
    pub fn from_env() -> Result<Self, ConfigError> {
        let signer = PaymentSigner::evm_from_env()?;
        #[cfg(feature = "svm")]
        let signer = signer.with_svm_from_env()?;
        Ok(signer)
    }

    /// The EVM key configured in the environment.
    fn evm_from_env() -> Result<Self, ConfigError> {
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

    /// The key, for sending the payer's own transactions.
    #[cfg(feature = "chain")]
    pub(super) fn key(&self) -> &PrivateKeySigner {
        &self.signer
    }

    /// A `PAYMENT-SIGNATURE` value paying `challenge.accepts[index]`.
    pub fn pay_v2(&self, challenge: &PaymentRequired, index: usize) -> Result<String, SignError> {
        self.sign_v2(challenge, index).map(|signed| signed.value)
    }

    /// An `X-PAYMENT` value paying a v1 offer.
    pub fn pay_v1(&self, offer: &PaymentRequirementsV1) -> Result<String, SignError> {
        self.sign_v1(offer).map(|signed| signed.value)
    }

    /// Signs `challenge.accepts[index]` into a v2 payment: an `exact` offer with an EIP-3009
    /// authorization, or with a Permit2 permit when its `extra.assetTransferMethod` is
    /// `"permit2"`; an `upto` offer with a Permit2 permit for its maximum that names its
    /// `extra.facilitatorAddress`.
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
        let terms = v2_terms(offer)?;
        let (authorization, payload) = self.authorize(&terms)?;
        let mut extensions = challenge.extensions.clone();
        let payment_id = extensions.as_mut().and_then(add_payment_identifier);
        let mut payment = json!({
            "x402Version": 2,
            "resource": challenge.resource,
            "accepted": offer,
            "payload": payload,
        });
        if let Some(extensions) = extensions {
            payment["extensions"] = Value::Object(extensions);
        }
        Ok(SignedPayment {
            header: PAYMENT_SIGNATURE,
            value: STANDARD.encode(payment.to_string()),
            scheme: terms.method.scheme(),
            network: terms.network.caip2,
            asset: terms.asset.into(),
            authorization,
            payment_id,
        })
    }

    /// Signs a v1 offer (`exact` over EIP-3009) into an `X-PAYMENT` payment.
    pub fn sign_v1(&self, offer: &PaymentRequirementsV1) -> Result<SignedPayment, SignError> {
        let network = Network::from_v1_name(&offer.network)
            .ok_or_else(|| sign_error(format!("cannot pay on network `{}`", offer.network)))?;
        let method = Method::of(&offer.scheme, offer.extra.as_ref(), true)?;
        let terms = Terms::read(
            network,
            method,
            (&offer.max_amount_required, &offer.asset, &offer.pay_to),
            offer.max_timeout_seconds,
            offer.extra.as_ref(),
        )?;
        let (authorization, payload) = self.authorize(&terms)?;
        let payment = json!({
            "x402Version": 1,
            "scheme": offer.scheme,
            "network": offer.network,
            "payload": payload,
        });
        Ok(SignedPayment {
            header: X_PAYMENT,
            value: STANDARD.encode(payment.to_string()),
            scheme: terms.method.scheme(),
            network: terms.network.caip2,
            asset: terms.asset.into(),
            authorization,
            payment_id: None,
        })
    }

    /// Signs what `terms` ask for; returns it and the payment's `payload` object.
    fn authorize(&self, terms: &Terms<'_>) -> Result<(SignedAuthorization, Value), SignError> {
        match terms.method {
            Method::Eip3009 => self.transfer_with_authorization(terms),
            Method::Permit2Exact => self.permit(terms, permit2::EXACT_PROXY, None),
            Method::Upto { facilitator } => {
                self.permit(terms, permit2::UPTO_PROXY, Some(facilitator))
            }
        }
    }

    /// An EIP-3009 authorization of exactly the amount to the recipient, under the token's
    /// EIP-712 domain (`extra.name`, `extra.version`).
    fn transfer_with_authorization(
        &self,
        terms: &Terms<'_>,
    ) -> Result<(SignedAuthorization, Value), SignError> {
        let field = |key: &str| {
            terms
                .extra
                .and_then(|e| e.get(key))
                .and_then(Value::as_str)
                .ok_or_else(|| sign_error(format!("the offer has no EIP-712 `extra.{key}`")))
        };
        let (name, version) = (field("name")?, field("version")?);
        let now = unix_now();
        let authorization = Authorization {
            from: self.address(),
            to: terms.pay_to,
            value: terms.amount,
            // Back-dated like the reference clients, so a payee clock slightly behind still accepts it.
            valid_after: U256::from(now.saturating_sub(600)),
            valid_before: U256::from(now.saturating_add(terms.max_timeout_seconds)),
            nonce: B256::random(),
        };
        let separator = eip3009::domain(name, version, terms.chain_id, terms.asset).separator();
        let signature = self.sign_digest(&eip3009::signing_hash(&separator, &authorization))?;
        let payload = json!({
            "signature": format!("0x{}", alloy_primitives::hex::encode(&signature)),
            "authorization": {
                "from": authorization.from.to_checksum(None),
                "to": authorization.to.to_checksum(None),
                "value": authorization.value.to_string(),
                "validAfter": authorization.valid_after.to_string(),
                "validBefore": authorization.valid_before.to_string(),
                "nonce": authorization.nonce.to_string(),
            },
        });
        let signed = ExactEvmPayload {
            authorization,
            signature,
        };
        Ok((SignedAuthorization::Eip3009(signed), payload))
    }

    /// A Permit2 permit of the amount to `spender`, with the witness binding the recipient (and
    /// the facilitator, for `upto`), under Permit2's domain; as the reference clients build it:
    /// a random 256-bit nonce, `validAfter` 0, the deadline `maxTimeoutSeconds` from now.
    fn permit(
        &self,
        terms: &Terms<'_>,
        spender: Address,
        facilitator: Option<Address>,
    ) -> Result<(SignedAuthorization, Value), SignError> {
        let authorization = Permit2Authorization {
            from: self.address(),
            token: terms.asset,
            amount: terms.amount,
            spender,
            nonce: U256::from_be_bytes(B256::random().0),
            deadline: U256::from(unix_now().saturating_add(terms.max_timeout_seconds)),
            to: terms.pay_to,
            facilitator,
            valid_after: U256::ZERO,
        };
        let separator = permit2::domain(terms.chain_id).separator();
        let signature = self.sign_digest(&authorization.signing_hash(&separator))?;
        let signed = Permit2Payload {
            authorization,
            signature,
        };
        let payload = permit2::encode(&signed);
        Ok((SignedAuthorization::Permit2(signed), payload))
    }

    /// The 65-byte signature of an EIP-712 digest.
    fn sign_digest(&self, digest: &B256) -> Result<Bytes, SignError> {
        let signature = self
            .signer
            .sign_hash_sync(digest)
            .map_err(|e| sign_error(format!("signing failed: {e}")))?;
        Ok(Bytes::copy_from_slice(&signature.as_bytes()))
    }
}

/// Adds `info.id` to a declared `payment-identifier` extension; returns the id.
pub(super) fn add_payment_identifier(extensions: &mut Map<String, Value>) -> Option<String> {
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

/// The terms of a v2 offer.
fn v2_terms(offer: &PaymentRequirements) -> Result<Terms<'_>, SignError> {
    let network = Network::from_caip2(&offer.network)
        .ok_or_else(|| sign_error(format!("cannot pay on network `{}`", offer.network)))?;
    let method = Method::of(&offer.scheme, offer.extra.as_ref(), false)?;
    Terms::read(
        network,
        method,
        (&offer.amount, &offer.asset, &offer.pay_to),
        offer.max_timeout_seconds,
        offer.extra.as_ref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::challenge::Challenge;
    use crate::client::policy::Policy;
    use crate::price::Currency;
    use crate::proto::X402Version;
    use crate::schemes::exact_evm::eip3009::SignatureCheck;
    use crate::schemes::{Rejection, Scheme};

    /// Public test key #1 of the anvil/hardhat mnemonic.
    const PAYER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
    /// USDC on Base Sepolia.
    const USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
    const PAY_TO: &str = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
    const FACILITATOR: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
    const TIMEOUT: u64 = 120;

    fn signer() -> PaymentSigner {
        PaymentSigner::from_key(PAYER_KEY).expect("key")
    }

    fn address(text: &str) -> Address {
        text.parse().expect("address")
    }

    /// A v2 challenge with one offer of 1000 atomic USDC on Base Sepolia, of `scheme` with
    /// `extra`.
    fn challenge(scheme: &str, extra: Value) -> PaymentRequired {
        serde_json::from_value(json!({
            "x402Version": 2,
            "resource": {"url": "http://127.0.0.1/report"},
            "accepts": [{
                "scheme": scheme, "network": "eip155:84532", "amount": "1000",
                "asset": USDC, "payTo": PAY_TO, "maxTimeoutSeconds": TIMEOUT, "extra": extra
            }]
        }))
        .expect("challenge")
    }

    /// The payment's scheme part as the server reads it: the header decoded, then its
    /// `payload` read by `permit2::decode`; the decoded envelope names the offer's scheme.
    fn read_permit(signed: &SignedPayment, scheme: &str) -> Permit2Payload {
        assert_eq!(signed.header, PAYMENT_SIGNATURE);
        let wire = crate::proto::header::decode_header(signed.value.as_bytes(), X402Version::V2)
            .expect("a v2 payment header");
        assert_eq!(wire.scheme, scheme);
        let permit = permit2::decode(&wire.payload).expect("a Permit2 payload");
        // The scheme the server dispatches to reads the same permit.
        let by_scheme = crate::schemes::decode(wire).expect("read by its scheme");
        assert_eq!(by_scheme.payload_as::<Permit2Payload>(), Some(&permit));
        assert_eq!(
            signed.authorization,
            SignedAuthorization::Permit2(permit.clone())
        );
        permit
    }

    /// The terms the paywall checks a permit for this test's offer against, now.
    fn terms(spender: Address, facilitator: Option<Address>) -> permit2::Terms {
        let now = unix_now();
        permit2::Terms {
            spender,
            token: address(USDC),
            amount: U256::from(1000),
            pay_to: address(PAY_TO),
            facilitator,
            now,
            deadline_from: now + permit2::DEADLINE_MARGIN,
            deadline_until: Some(now + TIMEOUT + 5),
        }
    }

    /// The signature recovers to the payer (not merely a well-formed one by someone).
    fn signed_by_payer(permit: &Permit2Payload, separator: &B256) -> bool {
        let digest = permit.authorization.signing_hash(separator);
        eip3009::check_signature(&permit.signature, &digest, signer().address())
            == SignatureCheck::Valid
    }

    #[test]
    fn a_permit2_exact_offer_is_paid_with_a_permit_the_paywall_accepts() {
        let offer = challenge(
            "exact",
            json!({"name": "USDC", "version": "2", "assetTransferMethod": "permit2"}),
        );
        let signed = signer().sign_v2(&offer, 0).expect("signed");
        let permit = read_permit(&signed, "exact");
        let auth = &permit.authorization;
        assert_eq!(auth.spender, permit2::EXACT_PROXY);
        assert_eq!(auth.facilitator, None);
        assert_eq!(auth.valid_after, U256::ZERO);
        let separator = permit2::domain(84532).separator();
        assert!(signed_by_payer(&permit, &separator));
        permit2::check(&permit, &terms(permit2::EXACT_PROXY, None))
            .expect("the paywall's rules accept it");
        // The same rules refuse it for other terms, and under another chain's domain the
        // signature is someone else's.
        let mut dearer = terms(permit2::EXACT_PROXY, None);
        dearer.amount = U256::from(1001);
        assert_eq!(
            permit2::check(&permit, &dearer),
            Err(Rejection::Payment(permit2::codes::AMOUNT))
        );
        assert!(!signed_by_payer(
            &permit,
            &permit2::domain(8453).separator()
        ));

        // What the payment exposes, whatever its transfer.
        assert_eq!(signed.scheme, "exact");
        assert!(!signed.is_upto());
        assert_eq!(signed.payer(), signer().address());
        assert_eq!(signed.amount(), U256::from(1000));
        assert_eq!(signed.nonce(), B256::from(auth.nonce));
        assert_eq!(U256::from(signed.deadline()), auth.deadline);
        let key = signed.replay_key();
        assert_eq!(
            (key.network.as_str(), key.asset, key.from),
            (
                "eip155:84532",
                permit2::PERMIT2.into(),
                signer().address().into()
            )
        );
        // A fresh 256-bit nonce each time.
        let again = signer().sign_v2(&offer, 0).expect("signed");
        assert_ne!(again.nonce(), signed.nonce());
    }

    #[test]
    fn an_upto_offer_is_paid_with_a_permit_for_its_maximum_naming_the_facilitator() {
        let offer = challenge(
            "upto",
            json!({"name": "USDC", "version": "2", "assetTransferMethod": "permit2",
                   "facilitatorAddress": FACILITATOR}),
        );
        let signed = signer().sign_v2(&offer, 0).expect("signed");
        let permit = read_permit(&signed, "upto");
        let facilitator = address(FACILITATOR);
        assert_eq!(permit.authorization.spender, permit2::UPTO_PROXY);
        assert_eq!(permit.authorization.facilitator, Some(facilitator));
        assert_eq!(permit.authorization.amount, U256::from(1000));
        let separator = permit2::domain(84532).separator();
        assert!(signed_by_payer(&permit, &separator));
        permit2::check(&permit, &terms(permit2::UPTO_PROXY, Some(facilitator)))
            .expect("the paywall's rules accept it");
        let other = address("0x0000000000000000000000000000000000000001");
        assert_eq!(
            permit2::check(&permit, &terms(permit2::UPTO_PROXY, Some(other))),
            Err(Rejection::Payment(permit2::codes::FACILITATOR))
        );
        // The upto scheme reads it as one of its own.
        let wire = crate::proto::header::decode_header(signed.value.as_bytes(), X402Version::V2)
            .expect("header");
        crate::schemes::upto_evm::UptoEvm
            .decode(&wire.payload)
            .expect("an upto payload");
        assert!(signed.is_upto());
        assert_eq!(signed.amount(), U256::from(1000));
    }

    /// Policy allowing USDC on any network, without limits.
    fn any_usdc() -> Policy {
        Policy {
            max_per_request: Default::default(),
            budget: Default::default(),
            networks: Vec::new(),
            currencies: vec![Currency::Usdc],
            assets: Vec::new(),
            resend_attempts: 1,
            max_wait: None,
            #[cfg(feature = "svm")]
            svm_rpc_url: None,
        }
    }

    /// Why the only offer of `challenge` is not a candidate (`None`: it is one).
    fn not_payable(challenge: PaymentRequired) -> Option<String> {
        let (candidates, reasons) = Challenge::V2(challenge).candidates(&any_usdc(), false);
        assert_eq!(candidates.len() + reasons.len(), 1);
        reasons.into_iter().next()
    }

    #[test]
    fn an_upto_offer_without_its_facilitator_is_a_clear_sign_error() {
        let offer = challenge(
            "upto",
            json!({"name": "USDC", "version": "2", "assetTransferMethod": "permit2"}),
        );
        let error = signer().sign_v2(&offer, 0).expect_err("no facilitator");
        assert!(
            error.to_string().contains("no `extra.facilitatorAddress`"),
            "{error}"
        );
        let why = not_payable(offer).expect("not a candidate");
        assert!(why.contains("facilitatorAddress"), "{why}");
        let bad = challenge("upto", json!({"facilitatorAddress": "0x1234"}));
        let error = signer().sign_v2(&bad, 0).expect_err("not an address");
        assert!(error.to_string().contains("malformed offer"), "{error}");
        let eip3009 = challenge(
            "upto",
            json!({"assetTransferMethod": "eip3009", "facilitatorAddress": FACILITATOR}),
        );
        assert!(signer().sign_v2(&eip3009, 0).is_err());
    }

    #[test]
    fn transfer_methods_are_known_or_refused() {
        let unknown = challenge(
            "exact",
            json!({"name": "USDC", "version": "2", "assetTransferMethod": "eip2612"}),
        );
        let error = signer().sign_v2(&unknown, 0).expect_err("unknown method");
        assert!(
            error
                .to_string()
                .contains("asset transfer method `eip2612`"),
            "{error}"
        );
        let why = not_payable(unknown).expect("not a candidate");
        assert!(why.contains("eip2612"), "{why}");
        let not_text = challenge("exact", json!({"assetTransferMethod": 1}));
        assert!(signer().sign_v2(&not_text, 0).is_err());

        // Explicit and implicit EIP-3009 are both an EIP-3009 authorization; upto and Permit2
        // exact offers are candidates.
        for extra in [
            json!({"name": "USDC", "version": "2"}),
            json!({"name": "USDC", "version": "2", "assetTransferMethod": "eip3009"}),
        ] {
            let offer = challenge("exact", extra);
            let signed = signer().sign_v2(&offer, 0).expect("signed");
            assert!(matches!(
                signed.authorization,
                SignedAuthorization::Eip3009(_)
            ));
            assert_eq!(signed.replay_key().asset, AccountId::Evm(address(USDC)));
            assert_eq!(not_payable(offer), None);
        }
        let permit2 = challenge("exact", json!({"assetTransferMethod": "permit2"}));
        assert_eq!(not_payable(permit2), None);
        let upto = challenge("upto", json!({"facilitatorAddress": FACILITATOR}));
        assert_eq!(not_payable(upto), None);
        let other = challenge("stream", json!({}));
        assert!(
            not_payable(other).is_some_and(|why| why.contains("`stream` scheme")),
            "unknown schemes are not candidates"
        );

        // v1 stays EIP-3009 exact.
        let v1: PaymentRequirementsV1 = serde_json::from_value(json!({
            "scheme": "exact", "network": "base-sepolia", "maxAmountRequired": "1000",
            "resource": "http://127.0.0.1/report", "description": "", "mimeType": "",
            "payTo": PAY_TO, "maxTimeoutSeconds": 60, "asset": USDC,
            "extra": {"name": "USDC", "version": "2", "assetTransferMethod": "permit2"}
        }))
        .expect("v1 offer");
        let error = signer().sign_v1(&v1).expect_err("v1 permit2");
        assert!(error.to_string().contains("v1"), "{error}");
    }

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
