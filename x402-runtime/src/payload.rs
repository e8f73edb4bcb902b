//! Decoding a payment header into a typed, canonical payment.
//!
//! The decoder is strict and total: any input either becomes a [`DecodedPayment`] or a
//! [`DecodeError`] that the paywall answers with `400 invalid_payload` (or `402
//! invalid_x402_version` for a well-formed payment of the wrong version). Sizes are capped before
//! base64 decoding; numbers follow a strict grammar; addresses with mixed case must carry a valid
//! EIP-55 checksum.

use alloy_primitives::{Address, B256, Bytes, U256};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::proto::{PaymentRequirements, ResourceInfo};

/// Largest payment header accepted, in bytes of the header value (before base64 decoding).
pub const MAX_PAYMENT_HEADER_BYTES: usize = 16 * 1024;

/// The x402 protocol version of a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum X402Version {
    /// v1: `X-PAYMENT` / `X-PAYMENT-RESPONSE`, v1 network names.
    V1,
    /// v2: `PAYMENT-SIGNATURE` / `PAYMENT-RESPONSE`, CAIP-2 networks.
    V2,
}

impl X402Version {
    /// The number on the wire.
    pub fn number(self) -> u8 {
        match self {
            X402Version::V1 => 1,
            X402Version::V2 => 2,
        }
    }
}

/// Why a payment header could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Longer than [`MAX_PAYMENT_HEADER_BYTES`].
    TooLarge,
    /// Empty, not standard padded base64, not UTF-8 JSON, or not a payment object.
    Malformed(String),
    /// A well-formed payment whose `x402Version` does not match the header it came in.
    WrongVersion(u64),
}

/// The EIP-3009 authorization, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// Payer.
    pub from: Address,
    /// Recipient.
    pub to: Address,
    /// Amount in atomic units.
    pub value: U256,
    /// Not valid at or before this unix time.
    pub valid_after: U256,
    /// Not valid at or after this unix time.
    pub valid_before: U256,
    /// The 32-byte nonce.
    pub nonce: B256,
}

/// A decoded payment, before it is matched against an offer.
#[derive(Debug)]
pub struct DecodedPayment {
    /// Protocol version (from the header it came in, confirmed by the payload).
    pub version: X402Version,
    /// The decoded JSON, forwarded verbatim to the facilitator.
    pub raw: Box<RawValue>,
    /// v2: the offer the client says it accepted.
    pub accepted: Option<PaymentRequirements>,
    /// v2: the resource the client says it paid for.
    pub resource: Option<ResourceInfo>,
    /// Scheme (v2: `accepted.scheme`; v1: `scheme`).
    pub scheme: String,
    /// Network as written by the client (v2: CAIP-2; v1: name).
    pub network: String,
    /// The authorization.
    pub authorization: Authorization,
    /// Signature bytes.
    pub signature: Bytes,
    /// v2: the `extensions` the client echoed, as sent (read only where a route uses one, such
    /// as `payment-identifier`).
    pub extensions: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    x402_version: u64,
    #[serde(default)]
    accepted: Option<PaymentRequirements>,
    #[serde(default)]
    resource: Option<ResourceInfo>,
    #[serde(default)]
    scheme: Option<String>,
    #[serde(default)]
    network: Option<String>,
    #[serde(default)]
    extensions: Option<Box<RawValue>>,
    payload: WirePayload,
}

#[derive(Deserialize)]
struct WirePayload {
    signature: String,
    authorization: WireAuthorization,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAuthorization {
    from: String,
    to: String,
    value: String,
    valid_after: String,
    valid_before: String,
    nonce: String,
}

fn malformed(what: impl Into<String>) -> DecodeError {
    DecodeError::Malformed(what.into())
}

/// Decodes a header value: size cap, strict base64 (standard alphabet, padded), strict JSON,
/// typed payload, expected version.
pub fn decode_header(value: &[u8], expected: X402Version) -> Result<DecodedPayment, DecodeError> {
    if value.len() > MAX_PAYMENT_HEADER_BYTES {
        return Err(DecodeError::TooLarge);
    }
    if value.iter().all(u8::is_ascii_whitespace) {
        return Err(malformed("the payment header is empty"));
    }
    let json = STANDARD
        .decode(value)
        .map_err(|_| malformed("the payment header is not standard padded base64"))?;
    decode_json(json, expected)
}

/// Whether a `\uXXXX` escape encodes a UTF-16 surrogate that is not part of a high-low pair.
/// Backslashes only occur inside JSON strings, so a plain scan of the escapes is enough.
fn has_lone_surrogate(text: &[u8]) -> bool {
    let unit = |at: usize| -> Option<u16> {
        let hex = text.get(at..at + 4)?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    };
    let mut i = 0;
    while i < text.len() {
        if text[i] != b'\\' {
            i += 1;
            continue;
        }
        if text.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        match unit(i + 2) {
            Some(0xD800..=0xDBFF) => {
                let low = text.get(i + 6..i + 8) == Some(b"\\u".as_slice())
                    && matches!(unit(i + 8), Some(0xDC00..=0xDFFF));
                if !low {
                    return true;
                }
                i += 12;
            }
            Some(0xDC00..=0xDFFF) => return true,
            _ => i += 6,
        }
    }
    false
}

/// Decodes the JSON text of a payment (the base64-decoded header).
pub fn decode_json(json: Vec<u8>, expected: X402Version) -> Result<DecodedPayment, DecodeError> {
    let text = String::from_utf8(json).map_err(|_| malformed("the payment is not UTF-8 JSON"))?;
    // serde skips fields it does not read without checking their escapes; the document is
    // forwarded to the facilitator as is, so it must be valid JSON throughout.
    if has_lone_surrogate(text.as_bytes()) {
        return Err(malformed(
            "the payment contains a `\\u` escape of a lone UTF-16 surrogate, which is not valid JSON text",
        ));
    }
    let wire: Wire = serde_json::from_str(&text)
        .map_err(|e| malformed(format!("the payment is not a valid x402 payment: {e}")))?;
    let version = match (wire.x402_version, expected) {
        (2, X402Version::V2) => X402Version::V2,
        (1, X402Version::V1) => X402Version::V1,
        (other, _) => return Err(DecodeError::WrongVersion(other)),
    };
    let (scheme, network) = match version {
        X402Version::V2 => {
            let accepted = wire
                .accepted
                .as_ref()
                .ok_or_else(|| malformed("a v2 payment needs `accepted`"))?;
            (accepted.scheme.clone(), accepted.network.clone())
        }
        X402Version::V1 => match (wire.scheme, wire.network) {
            (Some(scheme), Some(network)) => (scheme, network),
            _ => return Err(malformed("a v1 payment needs `scheme` and `network`")),
        },
    };
    let auth = &wire.payload.authorization;
    let authorization = Authorization {
        from: parse_address(&auth.from, "authorization.from")?,
        to: parse_address(&auth.to, "authorization.to")?,
        value: parse_uint(&auth.value, "authorization.value")?,
        valid_after: parse_uint(&auth.valid_after, "authorization.validAfter")?,
        valid_before: parse_uint(&auth.valid_before, "authorization.validBefore")?,
        nonce: parse_nonce(&auth.nonce)?,
    };
    let signature = parse_hex_bytes(&wire.payload.signature)
        .ok_or_else(|| malformed("`signature` must be 0x-prefixed hex bytes"))?;
    let raw = RawValue::from_string(text).map_err(|e| malformed(e.to_string()))?;
    Ok(DecodedPayment {
        version,
        raw,
        accepted: wire.accepted,
        resource: wire.resource,
        scheme,
        network,
        authorization,
        signature,
        extensions: wire.extensions,
    })
}

/// Parses a uint256 written in canonical decimal: digits only, no sign, no leading zeros
/// (except `"0"` itself), at most 2^256 - 1.
pub fn parse_uint(text: &str, field: &str) -> Result<U256, DecodeError> {
    let canonical = !text.is_empty()
        && text.len() <= 78
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return Err(malformed(format!(
            "`{field}` must be a canonical decimal integer"
        )));
    }
    U256::from_str_radix(text, 10)
        .map_err(|_| malformed(format!("`{field}` does not fit in 256 bits")))
}

/// Parses an address: `0x` + 40 hex digits; mixed case must be a valid EIP-55 checksum.
pub fn parse_address(text: &str, field: &str) -> Result<Address, DecodeError> {
    let bad = || malformed(format!("`{field}` must be a 0x-prefixed 20-byte address"));
    let hex = text.strip_prefix("0x").ok_or_else(bad)?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let has_lower = hex.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = hex.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper {
        Address::parse_checksummed(text, None)
            .map_err(|_| malformed(format!("`{field}` has an invalid EIP-55 checksum")))
    } else {
        text.parse().map_err(|_| bad())
    }
}

fn parse_nonce(text: &str) -> Result<B256, DecodeError> {
    let bad = || malformed("`authorization.nonce` must be 0x + 64 hex digits");
    let hex = text.strip_prefix("0x").ok_or_else(bad)?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    text.parse().map_err(|_| bad())
}

fn parse_hex_bytes(text: &str) -> Option<Bytes> {
    let hex = text.strip_prefix("0x")?;
    if hex.is_empty() || hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    text.parse().ok()
}

/// The key a payment is deduplicated on: `(network, asset, payer, nonce)` from parsed values,
/// so every encoding of one authorization maps to one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplayKey {
    /// CAIP-2 network id of the offer the payment matched.
    pub network: String,
    /// Token contract of the offer.
    pub asset: Address,
    /// Payer.
    pub from: Address,
    /// EIP-3009 nonce.
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

    #[test]
    fn uint_grammar_is_strict() {
        assert_eq!(parse_uint("0", "v"), Ok(U256::ZERO));
        assert_eq!(parse_uint("10000", "v"), Ok(U256::from(10_000)));
        let max = U256::MAX.to_string();
        assert_eq!(parse_uint(&max, "v"), Ok(U256::MAX));
        let over = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        for bad in [
            "", "010000", "1e4", "+1", " 1", "1 ", "0x10", "-1", "1.0", "1_000", over,
        ] {
            assert!(parse_uint(bad, "v").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lone_surrogate_escapes_are_found_anywhere() {
        for bad in [
            r#"{"note":"\ud800"}"#,
            r#"{"note":"\uDC00x"}"#,
            r#"{"note":"\ud800\u0041"}"#,
            r#"{"x":"\\\ud83d"}"#,
        ] {
            assert!(has_lone_surrogate(bad.as_bytes()), "{bad}");
            assert!(
                serde_json::from_str::<serde_json::Value>(bad).is_err(),
                "{bad}"
            );
        }
        for good in [
            r#"{"note":"\ud83d\ude00"}"#,
            r#"{"note":"\\ud800"}"#,
            r#"{"note":"\u00e9\n\"\\"}"#,
            r#"{"note":"plain"}"#,
        ] {
            assert!(!has_lone_surrogate(good.as_bytes()), "{good}");
            assert!(
                serde_json::from_str::<serde_json::Value>(good).is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn addresses_need_a_valid_checksum_when_mixed_case() {
        let good = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
        let a = parse_address(good, "a").expect("checksummed");
        assert_eq!(parse_address(&good.to_lowercase(), "a"), Ok(a));
        assert_eq!(
            parse_address(&format!("0x{}", good[2..].to_uppercase()), "a"),
            Ok(a)
        );
        assert!(parse_address("0x70997970c51812dc3A010C7d01b50e0d17dc79C8", "a").is_err());
        assert!(parse_address("70997970C51812dc3A010C7d01b50e0d17dc79C8", "a").is_err());
        assert!(parse_address("0x70997970C51812dc3A010C7d01b50e0d17dc79", "a").is_err());
    }

    #[test]
    fn header_decoding_rejects_bad_base64_and_sizes() {
        assert_eq!(
            decode_header(&vec![b'A'; MAX_PAYMENT_HEADER_BYTES + 1], X402Version::V2).err(),
            Some(DecodeError::TooLarge)
        );
        for bad in ["", "   ", "!!!", "garbage-value", "e30", "e30=="] {
            assert!(
                matches!(
                    decode_header(bad.as_bytes(), X402Version::V2),
                    Err(DecodeError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
    }
}
