//! Uniswap's Permit2 as x402 uses it: the payer signs a `PermitWitnessTransferFrom` whose spender
//! is an x402 Permit2 proxy and whose witness binds the recipient (and, for `upto`, the
//! facilitator allowed to settle), and the facilitator submits it through that proxy.
//!
//! One home for what both Permit2 schemes share: the contract addresses, the EIP-712 types and
//! digest, the payload (`permit2Authorization` and `signature`) read strictly, the rules a
//! permit must follow to pay an offer, and its replay key. Permit2's nonces are one unordered
//! bitmap per owner across every token, so a permit's key is the owner and nonce in Permit2's
//! nonce space ([`PERMIT2`] stands in the key's `asset`).
//!
//! | | exact ([`EXACT_PROXY`]) | upto ([`UPTO_PROXY`]) |
//! |---|---|---|
//! | witness | `Witness(address to,uint256 validAfter)` | `Witness(address to,address facilitator,uint256 validAfter)` |
//! | amount moved | `permitted.amount` | what the server settles, at most `permitted.amount` |
//! | who may settle | anyone | `witness.facilitator` |

use std::any::Any;

use alloy_primitives::{Address, B256, Bytes, U256, address};
use alloy_sol_types::{Eip712Domain, SolStruct};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::exact_evm::eip3009;
use super::exact_evm::payload::{parse_address, parse_hex_bytes};
use super::{Rejection, ReplayKey, SchemePayload};
use crate::network::AccountId;
use crate::proto::header::{DecodeError, malformed, parse_uint};

/// Uniswap's Permit2, at the same address on every EVM chain.
pub const PERMIT2: Address = address!("0x000000000022D473030F116dDEE9F6B43aC78BA3");
/// The x402 `exact` Permit2 proxy: the spender of an `exact` permit.
pub const EXACT_PROXY: Address = address!("0x402085c248EeA27D92E8b30b2C58ed07f9E20001");
/// The x402 `upto` Permit2 proxy: the spender of an `upto` permit.
pub const UPTO_PROXY: Address = address!("0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002");

/// Seconds the deadline must still be ahead of now when a permit is settled (the margin the
/// reference facilitators keep for block inclusion).
pub const DEADLINE_MARGIN: u64 = 6;

/// The stable codes of a broken Permit2 rule (the reference implementation's).
pub mod codes {
    /// The spender is not the proxy of the offer's scheme.
    pub const SPENDER: &str = "invalid_permit2_spender";
    /// The permit names another token.
    pub const TOKEN: &str = "permit2_token_mismatch";
    /// The permitted amount is not the offer's amount.
    pub const AMOUNT: &str = "permit2_amount_mismatch";
    /// The witness pays someone else.
    pub const RECIPIENT: &str = "invalid_permit2_recipient_mismatch";
    /// The deadline is past, too close to settle, or further ahead than the offer allows.
    pub const DEADLINE: &str = "permit2_deadline_expired";
    /// `witness.validAfter` is in the future.
    pub const NOT_YET_VALID: &str = "permit2_not_yet_valid";
    /// The signature is not one Permit2 accepts for the owner.
    pub const SIGNATURE: &str = "invalid_permit2_signature";
    /// An `upto` permit names another facilitator (or an `exact` permit names one).
    pub const FACILITATOR: &str = "upto_facilitator_mismatch";
    /// The owner has not approved Permit2 for the token (or not for enough).
    pub const ALLOWANCE_REQUIRED: &str = "permit2_allowance_required";
    /// The owner's balance is below the amount.
    pub const INSUFFICIENT_BALANCE: &str = "permit2_insufficient_balance";
    /// The permit's nonce is already used.
    pub const NONCE_USED: &str = "permit2_invalid_nonce";
    /// The settlement asked for more than the permit allows (an `upto` server bug).
    pub const SETTLEMENT_EXCEEDS: &str = "invalid_upto_evm_payload_settlement_exceeds_amount";
}

mod exact_types {
    alloy_sol_types::sol! {
        /// Permit2's token and amount.
        #[derive(Debug)]
        struct TokenPermissions {
            address token;
            uint256 amount;
        }
        /// The `exact` proxy's witness.
        #[derive(Debug)]
        struct Witness {
            address to;
            uint256 validAfter;
        }
        /// The message an `exact` payer signs.
        #[derive(Debug)]
        struct PermitWitnessTransferFrom {
            TokenPermissions permitted;
            address spender;
            uint256 nonce;
            uint256 deadline;
            Witness witness;
        }
    }
}

mod upto_types {
    alloy_sol_types::sol! {
        /// Permit2's token and amount.
        #[derive(Debug)]
        struct TokenPermissions {
            address token;
            uint256 amount;
        }
        /// The `upto` proxy's witness.
        #[derive(Debug)]
        struct Witness {
            address to;
            address facilitator;
            uint256 validAfter;
        }
        /// The message an `upto` payer signs.
        #[derive(Debug)]
        struct PermitWitnessTransferFrom {
            TokenPermissions permitted;
            address spender;
            uint256 nonce;
            uint256 deadline;
            Witness witness;
        }
    }
}

/// Permit2's EIP-712 domain on chain `chain_id` (name `"Permit2"`, no version).
pub fn domain(chain_id: u64) -> Eip712Domain {
    Eip712Domain::new(
        Some("Permit2".into()),
        None,
        Some(U256::from(chain_id)),
        Some(PERMIT2),
        None,
    )
}

/// A signed Permit2 transfer with its x402 witness, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permit2Authorization {
    /// The owner (payer).
    pub from: Address,
    /// The token permitted.
    pub token: Address,
    /// The amount permitted (the most an `upto` settlement may move).
    pub amount: U256,
    /// The spender: the x402 proxy that may use the permit.
    pub spender: Address,
    /// Permit2's unordered nonce.
    pub nonce: U256,
    /// Not usable after this unix time.
    pub deadline: U256,
    /// The recipient (`witness.to`).
    pub to: Address,
    /// The facilitator allowed to settle (`witness.facilitator`): `upto` permits only.
    pub facilitator: Option<Address>,
    /// Not usable before this unix time (`witness.validAfter`).
    pub valid_after: U256,
}

/// The scheme part of a Permit2 payment: the permit and the owner's signature over it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permit2Payload {
    /// The permit.
    pub authorization: Permit2Authorization,
    /// Signature bytes.
    pub signature: Bytes,
}

impl Permit2Authorization {
    /// The EIP-712 digest the owner signs, under Permit2's `domain_separator` (see [`domain`]):
    /// with the `upto` witness when the permit names a facilitator, else the `exact` one.
    pub fn signing_hash(&self, domain_separator: &B256) -> B256 {
        let struct_hash = match self.facilitator {
            None => exact_types::PermitWitnessTransferFrom {
                permitted: exact_types::TokenPermissions {
                    token: self.token,
                    amount: self.amount,
                },
                spender: self.spender,
                nonce: self.nonce,
                deadline: self.deadline,
                witness: exact_types::Witness {
                    to: self.to,
                    validAfter: self.valid_after,
                },
            }
            .eip712_hash_struct(),
            Some(facilitator) => upto_types::PermitWitnessTransferFrom {
                permitted: upto_types::TokenPermissions {
                    token: self.token,
                    amount: self.amount,
                },
                spender: self.spender,
                nonce: self.nonce,
                deadline: self.deadline,
                witness: upto_types::Witness {
                    to: self.to,
                    facilitator,
                    validAfter: self.valid_after,
                },
            }
            .eip712_hash_struct(),
        };
        super::eip712_digest(domain_separator, &struct_hash)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePayload {
    signature: String,
    permit2_authorization: WireAuthorization,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAuthorization {
    from: String,
    permitted: WirePermitted,
    spender: String,
    nonce: String,
    deadline: String,
    witness: WireWitness,
}

#[derive(Deserialize)]
struct WirePermitted {
    token: String,
    amount: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireWitness {
    to: String,
    facilitator: Option<String>,
    valid_after: String,
}

/// Whether `payload` is a Permit2 payment (it has `permit2Authorization`), without reading it.
pub fn is_permit2(payload: &RawValue) -> bool {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe<'a> {
        #[serde(borrow)]
        permit2_authorization: Option<&'a RawValue>,
    }
    serde_json::from_str::<Probe<'_>>(payload.get())
        .is_ok_and(|probe| probe.permit2_authorization.is_some())
}

/// Reads the `payload` object of a Permit2 payment, strictly: numbers in the canonical decimal
/// grammar, addresses with a valid checksum when mixed case, the signature as hex bytes.
pub fn decode(payload: &RawValue) -> Result<Permit2Payload, DecodeError> {
    let wire: WirePayload = serde_json::from_str(payload.get()).map_err(|e| {
        malformed(format!(
            "the payment is not a valid x402 payment: payload: {e}"
        ))
    })?;
    let auth = &wire.permit2_authorization;
    let facilitator = auth
        .witness
        .facilitator
        .as_deref()
        .map(|text| parse_address(text, "permit2Authorization.witness.facilitator"))
        .transpose()?;
    let authorization = Permit2Authorization {
        from: parse_address(&auth.from, "permit2Authorization.from")?,
        token: parse_address(
            &auth.permitted.token,
            "permit2Authorization.permitted.token",
        )?,
        amount: parse_uint(
            &auth.permitted.amount,
            "permit2Authorization.permitted.amount",
        )?,
        spender: parse_address(&auth.spender, "permit2Authorization.spender")?,
        nonce: parse_uint(&auth.nonce, "permit2Authorization.nonce")?,
        deadline: parse_uint(&auth.deadline, "permit2Authorization.deadline")?,
        to: parse_address(&auth.witness.to, "permit2Authorization.witness.to")?,
        facilitator,
        valid_after: parse_uint(
            &auth.witness.valid_after,
            "permit2Authorization.witness.validAfter",
        )?,
    };
    let signature = parse_hex_bytes(&wire.signature)
        .ok_or_else(|| malformed("`signature` must be 0x-prefixed hex bytes"))?;
    Ok(Permit2Payload {
        authorization,
        signature,
    })
}

/// The `eip2612GasSponsoring` extension's key: a payer who has not approved Permit2 signs an
/// EIP-2612 `permit` of the token to Permit2, and the facilitator submits it with the transfer
/// (the proxy's `settleWithPermit`).
pub const EIP2612_GAS_SPONSORING: &str = "eip2612GasSponsoring";

/// What the server declares under [`EIP2612_GAS_SPONSORING`] in a 402 whose offers a Permit2
/// payment can pay, when its facilitator lists the extension.
pub fn eip2612_declaration() -> serde_json::Value {
    let address = serde_json::json!({"type": "string", "pattern": "^0x[a-fA-F0-9]{40}$"});
    let number = serde_json::json!({"type": "string", "pattern": "^[0-9]+$"});
    serde_json::json!({
        "info": {
            "description": "The facilitator accepts an EIP-2612 permit of the token to the canonical Permit2 contract, and submits it with the payment.",
            "version": "1",
        },
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "from": address, "asset": address, "spender": address,
                "amount": number, "nonce": number, "deadline": number,
                "signature": {"type": "string", "pattern": "^0x[a-fA-F0-9]+$"},
                "version": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)*$"},
            },
            "required": ["from", "asset", "spender", "amount", "nonce", "deadline", "signature", "version"],
        },
    })
}

/// The `payload` object of a Permit2 payment, as [`decode`] reads it: addresses checksummed,
/// numbers (the nonce too) as decimal strings, the signature as `0x` hex.
///
/// ```
/// use alloy_primitives::{Address, Bytes, U256};
/// use x402_runtime::schemes::permit2::{self, Permit2Authorization, Permit2Payload};
///
/// let payment = Permit2Payload {
///     authorization: Permit2Authorization {
///         from: Address::repeat_byte(1),
///         token: Address::repeat_byte(2),
///         amount: U256::from(1000),
///         spender: permit2::EXACT_PROXY,
///         nonce: U256::MAX,
///         deadline: U256::from(1_900_000_000u64),
///         to: Address::repeat_byte(3),
///         facilitator: None,
///         valid_after: U256::ZERO,
///     },
///     signature: Bytes::from(vec![0x11; 65]),
/// };
/// let json = permit2::encode(&payment);
/// assert_eq!(json["permit2Authorization"]["permitted"]["amount"], "1000");
/// let raw = serde_json::value::to_raw_value(&json).unwrap();
/// assert_eq!(permit2::decode(&raw).unwrap(), payment);
/// ```
pub fn encode(payment: &Permit2Payload) -> serde_json::Value {
    let auth = &payment.authorization;
    let mut witness = serde_json::json!({
        "to": auth.to.to_checksum(None),
        "validAfter": auth.valid_after.to_string(),
    });
    if let Some(facilitator) = auth.facilitator {
        witness["facilitator"] = facilitator.to_checksum(None).into();
    }
    serde_json::json!({
        "signature": format!("0x{}", alloy_primitives::hex::encode(&payment.signature)),
        "permit2Authorization": {
            "from": auth.from.to_checksum(None),
            "permitted": {
                "token": auth.token.to_checksum(None),
                "amount": auth.amount.to_string(),
            },
            "spender": auth.spender.to_checksum(None),
            "nonce": auth.nonce.to_string(),
            "deadline": auth.deadline.to_string(),
            "witness": witness,
        },
    })
}

/// A payer's EIP-2612 `permit(owner, PERMIT2, value, deadline)` of a token, carried in the
/// payment's `extensions.eip2612GasSponsoring.info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eip2612Permit {
    /// The owner (must be the payer).
    pub from: Address,
    /// The token (must be the offer's).
    pub asset: Address,
    /// The spender (must be [`PERMIT2`]).
    pub spender: Address,
    /// The allowance granted.
    pub amount: U256,
    /// The owner's EIP-2612 nonce on the token.
    pub nonce: U256,
    /// Not usable after this unix time.
    pub deadline: U256,
    /// `r ‖ s ‖ v`, 65 bytes.
    pub signature: Bytes,
}

/// Reads the `eip2612GasSponsoring` permit of a payment's `extensions`, if it carries one (the
/// declaration echoed without a signed permit is none). `Err` names what is malformed.
pub fn eip2612_permit(extensions: Option<&RawValue>) -> Result<Option<Eip2612Permit>, String> {
    #[derive(Deserialize)]
    struct Extension {
        info: Info,
    }
    #[derive(Deserialize)]
    struct Info {
        from: String,
        asset: String,
        spender: String,
        amount: String,
        nonce: String,
        deadline: String,
        signature: String,
    }
    let Some(extensions) = extensions else {
        return Ok(None);
    };
    let all: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(extensions.get()).map_err(|e| e.to_string())?;
    let Some(value) = all.get(EIP2612_GAS_SPONSORING) else {
        return Ok(None);
    };
    // A client echoes the server's declaration unsigned when it has approved Permit2: an
    // `info` without the permit's fields carries no permit.
    let signed = value
        .get("info")
        .is_some_and(|info| info.get("signature").is_some() && info.get("from").is_some());
    if !signed {
        return Ok(None);
    }
    let info = Extension::deserialize(value)
        .map_err(|e| format!("{EIP2612_GAS_SPONSORING}: {e}"))?
        .info;
    let field = |e: DecodeError| format!("{EIP2612_GAS_SPONSORING}: {e:?}");
    let signature = parse_hex_bytes(&info.signature)
        .filter(|s| s.len() == 65)
        .ok_or_else(|| format!("{EIP2612_GAS_SPONSORING}: the signature must be 65 bytes"))?;
    Ok(Some(Eip2612Permit {
        from: parse_address(&info.from, "from").map_err(field)?,
        asset: parse_address(&info.asset, "asset").map_err(field)?,
        spender: parse_address(&info.spender, "spender").map_err(field)?,
        amount: parse_uint(&info.amount, "amount").map_err(field)?,
        nonce: parse_uint(&info.nonce, "nonce").map_err(field)?,
        deadline: parse_uint(&info.deadline, "deadline").map_err(field)?,
        signature,
    }))
}

/// What a permit must say to pay one offer, at one moment.
#[derive(Clone, Copy, Debug)]
pub struct Terms {
    /// The proxy of the offer's scheme.
    pub spender: Address,
    /// The token.
    pub token: Address,
    /// The exact amount permitted.
    pub amount: U256,
    /// The recipient.
    pub pay_to: Address,
    /// The facilitator an `upto` permit must name; `None` for `exact`, whose permits name none.
    pub facilitator: Option<Address>,
    /// Now (unix seconds): `validAfter` must not be later.
    pub now: u64,
    /// The earliest acceptable deadline.
    pub deadline_from: u64,
    /// The latest acceptable deadline, when there is one.
    pub deadline_until: Option<u64>,
}

impl Terms {
    /// The terms of a payment for `offer` within `window`: its token, amount and recipient, the
    /// scheme's proxy as spender, and the facilitator an `upto` permit names. An offer whose
    /// recipient is not an EVM account is refused (see [`evm_pay_to`](super::evm_pay_to)).
    pub fn for_offer(
        offer: &super::Offer,
        spender: Address,
        facilitator: Option<Address>,
        window: &super::Window,
    ) -> Result<Terms, Rejection> {
        Ok(Terms {
            spender,
            token: offer
                .asset
                .address
                .as_evm()
                .ok_or(Rejection::Payment(codes::TOKEN))?,
            amount: offer.amount,
            pay_to: super::evm_pay_to(offer)?,
            facilitator,
            now: window.now,
            deadline_from: window.earliest,
            deadline_until: Some(window.latest),
        })
    }
}

/// Checks a permit against `terms`, then its signature's form.
///
/// The form follows the same rules as EIP-3009's local check (65 bytes, low `s`, `v` of 27 or
/// 28: [`eip3009::check_form`]); who signed it is left to the facilitator, which reads the chain
/// (a contract wallet's signature, or one by an ERC-1271 owner, can only be judged there).
pub fn check(payment: &Permit2Payload, terms: &Terms) -> Result<(), Rejection> {
    let auth = &payment.authorization;
    let refuse = |code| Err(Rejection::Payment(code));
    if auth.spender != terms.spender {
        return refuse(codes::SPENDER);
    }
    if auth.token != terms.token {
        return refuse(codes::TOKEN);
    }
    if auth.amount != terms.amount {
        return refuse(codes::AMOUNT);
    }
    if auth.to != terms.pay_to {
        return refuse(codes::RECIPIENT);
    }
    if auth.facilitator != terms.facilitator {
        return refuse(codes::FACILITATOR);
    }
    let too_late = terms
        .deadline_until
        .is_some_and(|until| auth.deadline > U256::from(until));
    if auth.deadline < U256::from(terms.deadline_from) || too_late {
        return refuse(codes::DEADLINE);
    }
    if auth.valid_after > U256::from(terms.now) {
        return refuse(codes::NOT_YET_VALID);
    }
    eip3009::check_form(&payment.signature, codes::SIGNATURE)
}

impl SchemePayload for Permit2Payload {
    fn payer(&self) -> AccountId {
        AccountId::Evm(self.authorization.from)
    }

    fn amount(&self) -> U256 {
        self.authorization.amount
    }

    fn deadline(&self) -> u64 {
        u64::try_from(self.authorization.deadline).unwrap_or(u64::MAX)
    }

    /// Permit2's nonces are one space per owner, across tokens: the key names [`PERMIT2`]
    /// whatever the offer's token.
    fn replay_key(&self, network: &str, _asset: AccountId) -> ReplayKey {
        ReplayKey {
            network: network.to_owned(),
            asset: AccountId::Evm(PERMIT2),
            from: AccountId::Evm(self.authorization.from),
            nonce: B256::from(self.authorization.nonce),
        }
    }

    fn signed(&self) -> Vec<u8> {
        let a = &self.authorization;
        let mut bytes = Vec::with_capacity(20 * 5 + 32 * 4 + self.signature.len());
        for address in [a.from, a.token, a.spender, a.to] {
            bytes.extend_from_slice(address.as_slice());
        }
        bytes.extend_from_slice(a.facilitator.unwrap_or(Address::ZERO).as_slice());
        for word in [a.amount, a.nonce, a.deadline, a.valid_after] {
            bytes.extend_from_slice(&word.to_be_bytes::<32>());
        }
        bytes.extend_from_slice(&self.signature);
        bytes
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_strings_are_permit2s() {
        let exact = exact_types::PermitWitnessTransferFrom::eip712_encode_type();
        assert_eq!(
            exact,
            "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,\
             uint256 deadline,Witness witness)TokenPermissions(address token,uint256 amount)\
             Witness(address to,uint256 validAfter)"
        );
        let upto = upto_types::PermitWitnessTransferFrom::eip712_encode_type();
        assert!(
            upto.ends_with("Witness(address to,address facilitator,uint256 validAfter)"),
            "{upto}"
        );
    }

    fn payload_json(facilitator: Option<&str>) -> String {
        let facilitator = facilitator
            .map(|f| format!(r#","facilitator":"{f}""#))
            .unwrap_or_default();
        format!(
            r#"{{"signature":"0x{sig}","permit2Authorization":{{"from":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","permitted":{{"token":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","amount":"1000"}},"spender":"0x402085c248EeA27D92E8b30b2C58ed07f9E20001","nonce":"115792089237316195423570985008687907853269984665640564039457584007913129639935","deadline":"1900000000","witness":{{"to":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","validAfter":"0"{facilitator}}}}}}}"#,
            sig = "11".repeat(65)
        )
    }

    #[test]
    fn decodes_exact_and_upto_permits() {
        let raw = RawValue::from_string(payload_json(None)).expect("json");
        assert!(is_permit2(&raw));
        let exact = decode(&raw).expect("exact permit");
        assert_eq!(exact.authorization.nonce, U256::MAX);
        assert_eq!(exact.authorization.facilitator, None);
        assert_eq!(
            exact.replay_key("eip155:84532", Address::ZERO.into()).asset,
            PERMIT2
        );
        let facilitator = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
        let raw = RawValue::from_string(payload_json(Some(facilitator))).expect("json");
        let upto = decode(&raw).expect("upto permit");
        assert_eq!(
            upto.authorization.facilitator,
            Some(facilitator.parse().expect("address"))
        );
        assert_ne!(exact.signed(), upto.signed());
        let digest = |p: &Permit2Payload| p.authorization.signing_hash(&domain(84532).separator());
        assert_ne!(digest(&exact), digest(&upto));
        let eip3009 = RawValue::from_string(r#"{"signature":"0x11","authorization":{}}"#.into())
            .expect("json");
        assert!(!is_permit2(&eip3009));
        let bad = payload_json(None).replace(r#""deadline":"1900000000""#, r#""deadline":"01""#);
        assert!(decode(&RawValue::from_string(bad).expect("json")).is_err());
    }
}
