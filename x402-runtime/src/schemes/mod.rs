//! Payment schemes: where a price becomes an offer, and where a payment made for an offer is
//! read and checked.
//!
//! A scheme implements [`Scheme`]: it builds its offer (the [`PaymentRequirements`] with its
//! `extra`) from a route's price on one network, and reads the scheme's part of a payment (the
//! `payload` object) into a [`SchemePayload`]. The offer carries the scheme's [`OfferCheck`],
//! which checks a payload against that offer without the network (amounts, recipient, validity
//! window, signature). The payload names its payer, its deadline, the [`ReplayKey`] that makes
//! it single-use, and the bytes that make two payloads the same payment. The paywall, the
//! settlement record and the facilitator client only speak to these traits; what a facilitator
//! needs is the payment as the client sent it and the offer it paid, which every scheme shares
//! ([`FacilitatorRequest`](crate::proto::FacilitatorRequest)).
//!
//! | scheme | network | transfer | module |
//! |---|---|---|---|
//! | `exact` | EVM (`eip155:*`) | EIP-3009 `transferWithAuthorization` | [`exact_evm`] |
//! | `exact` | EVM, tokens set to [`TransferMethod::Permit2`](crate::network::TransferMethod) | Permit2 through the x402 exact proxy | [`exact_evm`], [`permit2`] |
//! | `upto` | EVM, any ERC-20 | Permit2 through the x402 upto proxy, settling what was used | [`upto_evm`], [`permit2`] |
//! | `exact` | Solana (`solana:*`), feature `svm` | SPL `TransferChecked` in a transaction the facilitator pays for | `exact_svm` |

use std::any::Any;
use std::fmt;

use alloy_primitives::{B256, U256};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::network::{AccountId, Asset, Network};
use crate::price::Price;
use crate::proto::header::{self, DecodeError, PaymentPayload};
use crate::proto::{PaymentRequirements, SupportedResponse, X402Version};

pub mod exact_evm;
#[cfg(feature = "svm")]
#[cfg_attr(docsrs, doc(cfg(feature = "svm")))]
pub mod exact_svm;
pub mod permit2;
pub mod upto_evm;

/// A payment scheme on one family of networks.
pub trait Scheme: Send + Sync + fmt::Debug + 'static {
    /// The scheme's name on the wire (`accepted.scheme`, v1 `scheme`).
    fn name(&self) -> &'static str;

    /// Whether the scheme pays on `network`'s family: of the schemes of one name, the one that
    /// serves the payment's network reads it.
    fn serves(&self, network: &Network) -> bool {
        network.is_evm()
    }

    /// The offer of `price` in `asset` on `terms.network`; `None` when this scheme cannot take
    /// that token there.
    fn offer(&self, terms: &OfferTerms<'_>) -> Option<Offer>;

    /// Reads the scheme's part of a payment (the `payload` object), strictly.
    fn decode(&self, payload: &RawValue) -> Result<Box<dyn SchemePayload>, DecodeError>;
}

/// What an offer is built from: a route's price, on one network, in one token.
#[derive(Debug)]
pub struct OfferTerms<'a> {
    /// The network.
    pub network: &'a Network,
    /// The token the price is paid in there.
    pub asset: &'a Asset,
    /// The route's price.
    pub price: &'a Price,
    /// The recipient.
    pub pay_to: AccountId,
    /// The offer's `maxTimeoutSeconds`.
    pub max_timeout_seconds: u64,
    /// Whether the price is a maximum (the route is `#[paid(upto = …)]`): only the `upto`
    /// scheme offers it.
    pub upto: bool,
    /// The facilitator's `/supported`, once read (the `upto` offer names the facilitator it
    /// lists).
    pub supported: Option<&'a SupportedResponse>,
}

impl OfferTerms<'_> {
    /// Whether the terms are all EVM: the network, the token and the recipient (what the EVM
    /// schemes can offer).
    pub fn is_evm(&self) -> bool {
        self.network.is_evm()
            && self.asset.address.as_evm().is_some()
            && self.pay_to.as_evm().is_some()
    }
}

/// One offer of one route: the v2 requirements, the values they were built from, and the
/// scheme's check of a payment for it, precomputed.
pub struct Offer {
    /// The requirements, as the 402 shows them.
    pub requirements: PaymentRequirements,
    /// The network.
    pub network: Network,
    /// The token.
    pub asset: Asset,
    /// The amount in the token's atomic units.
    pub amount: U256,
    /// The recipient.
    pub pay_to: AccountId,
    /// The scheme's local check of a payment for this offer.
    pub check: Box<dyn OfferCheck>,
}

impl Offer {
    /// The offer of `scheme` built from `terms`: the price in atomic units, the recipient and
    /// timeout of the terms, `extra` as the scheme fills it, checked by `check`.
    pub fn from_terms(
        scheme: &str,
        terms: &OfferTerms<'_>,
        extra: Map<String, Value>,
        check: Box<dyn OfferCheck>,
    ) -> Offer {
        let asset = terms.asset;
        Offer {
            requirements: PaymentRequirements {
                scheme: scheme.to_owned(),
                network: terms.network.caip2.clone(),
                amount: terms.price.atomic.to_string(),
                asset: account_text(&asset.address),
                pay_to: account_text(&terms.pay_to),
                max_timeout_seconds: terms.max_timeout_seconds,
                extra: Some(extra),
            },
            network: terms.network.clone(),
            asset: asset.clone(),
            amount: U256::from(terms.price.atomic),
            pay_to: terms.pay_to,
            check,
        }
    }
}

/// The `extra` every EVM offer starts from: the token's EIP-712 domain `name` and `version`.
pub fn domain_extra(asset: &Asset) -> Map<String, Value> {
    let mut extra = Map::new();
    extra.insert("name".into(), Value::String(asset.eip712_name.clone()));
    extra.insert(
        "version".into(),
        Value::String(asset.eip712_version.clone()),
    );
    extra
}

/// The text of an account, as offers and receipts write it (an EVM address EIP-55 checksummed,
/// through the memo of [`exact_evm::payload::checksummed`]; a Solana one in base58).
pub fn account_text(account: &AccountId) -> String {
    match account {
        AccountId::Evm(address) => exact_evm::payload::checksummed(address),
        AccountId::Svm(_) => account.to_string(),
    }
}

/// Reads the account in a payment's `field` (an offer's `asset` or `payTo` as the payer echoed
/// it): `0x` + 40 hex digits (EIP-55 when mixed case) or base58 of 32 bytes.
pub fn parse_account(text: &str, field: &str) -> Result<AccountId, DecodeError> {
    text.parse()
        .map_err(|e| header::malformed(format!("`{field}`: {e}")))
}

/// The recipient of an EVM offer; an offer to another family's account is refused with
/// [`RECIPIENT_MISMATCH`](crate::proto::codes::RECIPIENT_MISMATCH) (the EVM schemes never make
/// one, so this only guards the types).
pub fn evm_pay_to(offer: &Offer) -> Result<alloy_primitives::Address, Rejection> {
    offer
        .pay_to
        .as_evm()
        .ok_or(Rejection::Payment(crate::proto::codes::RECIPIENT_MISMATCH))
}

/// The scheme's part of a payment as its own type `T`; a payment read by another scheme is
/// refused with `invalid_scheme`.
pub fn payload_as<T: SchemePayload>(payload: &dyn SchemePayload) -> Result<&T, Rejection> {
    payload
        .as_any()
        .downcast_ref::<T>()
        .ok_or(Rejection::Payment(crate::proto::codes::INVALID_SCHEME))
}

/// The EIP-712 digest `keccak256(0x19 0x01 ‖ domain separator ‖ struct hash)`.
pub fn eip712_digest(domain_separator: &B256, struct_hash: &B256) -> B256 {
    let mut buf = [0u8; 66];
    buf[0] = 0x19;
    buf[1] = 0x01;
    buf[2..34].copy_from_slice(domain_separator.as_slice());
    buf[34..66].copy_from_slice(struct_hash.as_slice());
    alloy_primitives::keccak256(buf)
}

impl fmt::Debug for Offer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Offer")
            .field("requirements", &self.requirements)
            .field("check", &self.check)
            .finish_non_exhaustive()
    }
}

/// When a payment for an offer is acceptable: the moment of the check and the window its
/// deadline must fall in.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Now (unix seconds).
    pub now: u64,
    /// The earliest acceptable deadline: long enough to serve and settle.
    pub earliest: u64,
    /// The latest acceptable deadline: the offer's timeout plus the clock-skew allowance.
    pub latest: u64,
}

/// Why a payment failed a scheme's local check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// A payment problem, answered `402` with a fresh challenge whose `error` is this code.
    Payment(&'static str),
    /// Not a well-formed payment, answered `400 invalid_payload`.
    Malformed(String),
}

/// The scheme's check of a payment against one of its offers, without the network.
pub trait OfferCheck: Send + Sync + fmt::Debug {
    /// Checks `payload` (read by the same scheme) against the offer within `window`.
    fn check(
        &self,
        offer: &Offer,
        payload: &dyn SchemePayload,
        window: &Window,
    ) -> Result<(), Rejection>;
}

/// The scheme's part of a payment, decoded.
pub trait SchemePayload: Send + Sync + fmt::Debug + Any {
    /// The payer.
    fn payer(&self) -> AccountId;
    /// The amount authorized, in the token's atomic units.
    fn amount(&self) -> U256;
    /// The moment (unix seconds) from which the payment can never settle.
    fn deadline(&self) -> u64;
    /// The key that makes the payment single-use, for an offer of `asset` on `network`.
    fn replay_key(&self, network: &str, asset: AccountId) -> ReplayKey;
    /// What the payer signed and the signature, canonically: two payloads are the same payment
    /// exactly when these bytes are equal, however they were encoded.
    fn signed(&self) -> Vec<u8>;
    /// The payload as [`Any`], for the scheme's own [`OfferCheck`].
    fn as_any(&self) -> &dyn Any;
}

/// A decoded payment: the envelope every scheme shares, and the scheme's part read by it.
#[derive(Debug)]
pub struct DecodedPayment {
    /// The envelope, as decoded from the header (its `payload` as sent).
    pub wire: PaymentPayload,
    /// The scheme's part, read by its scheme.
    pub payload: Box<dyn SchemePayload>,
}

impl DecodedPayment {
    /// The scheme's part as the scheme's own type (`None` when another scheme read it).
    ///
    /// ```
    /// use x402_runtime::schemes::exact_evm::ExactEvmPayload;
    /// # fn f(decoded: &x402_runtime::schemes::DecodedPayment) -> Option<()> {
    /// let evm: &ExactEvmPayload = decoded.payload_as()?;
    /// println!("{} pays {}", evm.authorization.from, evm.authorization.value);
    /// # Some(()) }
    /// ```
    pub fn payload_as<T: SchemePayload>(&self) -> Option<&T> {
        self.payload.as_any().downcast_ref()
    }
}

/// The schemes this build serves, preferred first.
static SCHEMES: &[&dyn Scheme] = &[
    &exact_evm::ExactEvm,
    &upto_evm::UptoEvm,
    #[cfg(feature = "svm")]
    &exact_svm::ExactSvm,
];

/// The schemes this build serves, preferred first.
pub fn all() -> &'static [&'static dyn Scheme] {
    SCHEMES
}

/// Reads the scheme's part of a decoded header. The scheme the payment names reads it; a
/// payment naming a scheme this build does not serve is read by the first scheme that can, so
/// that a copy of a known payment is still recognised by its key and a payload no scheme can read
/// is malformed (the offer match then refuses the scheme).
pub fn decode(wire: PaymentPayload) -> Result<DecodedPayment, DecodeError> {
    let network = match wire.accepted {
        Some(_) => Network::from_caip2(&wire.network),
        None => Network::from_v1_name(&wire.network),
    };
    let named = all()
        .iter()
        .find(|s| s.name() == wire.scheme && network.as_ref().is_none_or(|n| s.serves(n)));
    let payload = match named {
        // A payload in another scheme's shape is still read (the offer match then refuses
        // the scheme), so that a copy of a known payment is recognised by its key.
        Some(scheme) => scheme
            .decode(&wire.payload)
            .or_else(|e| read_by_any(&wire.payload).map_err(|_| e))?,
        None => read_by_any(&wire.payload)?,
    };
    Ok(DecodedPayment { wire, payload })
}

fn read_by_any(payload: &RawValue) -> Result<Box<dyn SchemePayload>, DecodeError> {
    let mut first_error = None;
    for scheme in all() {
        match scheme.decode(payload) {
            Ok(read) => return Ok(read),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| header::malformed("no scheme can read this payment")))
}

/// Decodes a payment header value into a payment: the envelope ([`header::decode_header`]),
/// then the scheme's part.
pub fn decode_header(value: &[u8], expected: X402Version) -> Result<DecodedPayment, DecodeError> {
    decode(header::decode_header(value, expected)?)
}

/// Decodes the JSON text of a payment (a header's base64-decoded value, or a recorded request's
/// payload).
pub fn decode_json(json: Vec<u8>, expected: X402Version) -> Result<DecodedPayment, DecodeError> {
    decode(header::decode_json(json, expected)?)
}

/// The key a payment is deduplicated on: `(network, asset, payer, nonce)` from parsed values,
/// so every encoding of one authorization maps to one key. `asset` is the contract whose nonce
/// space the authorization consumes: the token for EIP-3009, [`permit2::PERMIT2`] for a permit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplayKey {
    /// CAIP-2 network id of the offer the payment matched.
    pub network: String,
    /// The account whose nonce space the payment consumes: the token contract of the offer
    /// (or Permit2) on EVM.
    pub asset: AccountId,
    /// Payer.
    pub from: AccountId,
    /// The nonce (EIP-3009's, or Permit2's as 32 big-endian bytes).
    pub nonce: B256,
}

impl std::fmt::Display for ReplayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.network, self.asset, self.from, self.nonce
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::{SOLANA_DEVNET, SvmAddress};
    use crate::price::Currency;

    /// The EVM schemes offer on EVM networks only, to EVM recipients only.
    #[test]
    fn evm_schemes_offer_nothing_on_another_family() {
        let price = Price::from_atomic(1000, Currency::Usdc);
        let evm_to = AccountId::Evm(alloy_primitives::Address::repeat_byte(2));
        let svm_to = AccountId::Svm(SvmAddress([2; 32]));
        let base = Network::from_caip2("eip155:84532").expect("Base Sepolia");
        let devnet = Network::from_caip2(SOLANA_DEVNET).expect("Solana devnet");
        let usdc = |network: &Network| Asset::builtin(network, Currency::Usdc).expect("USDC");
        let (base_usdc, devnet_usdc) = (usdc(&base), usdc(&devnet));
        let offers = |network: &Network, asset: &Asset, pay_to: AccountId, upto: bool| {
            let terms = OfferTerms {
                network,
                asset,
                price: &price,
                pay_to,
                max_timeout_seconds: 60,
                upto,
                supported: None,
            };
            let evm = all().iter().filter(|s| s.serves(&base));
            evm.filter_map(|s| s.offer(&terms)).count()
        };
        for upto in [false, true] {
            assert_eq!(offers(&base, &base_usdc, evm_to, upto), 1, "upto: {upto}");
            assert_eq!(offers(&devnet, &devnet_usdc, svm_to, upto), 0);
            assert_eq!(offers(&devnet, &devnet_usdc, evm_to, upto), 0);
            assert_eq!(offers(&base, &base_usdc, svm_to, upto), 0);
            assert_eq!(offers(&base, &devnet_usdc, evm_to, upto), 0);
        }
    }
}
