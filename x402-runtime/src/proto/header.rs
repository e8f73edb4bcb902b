//! The payment header codec: a header value becomes x402's `PaymentPayload` (the envelope every
//! scheme shares), and a value becomes a header.
//!
//! The decoder is strict and total: any input either becomes a [`PaymentPayload`] or a
//! [`DecodeError`] that the paywall answers with `400 invalid_payload` (or `402
//! invalid_x402_version` for a well-formed payment of the wrong version). Sizes are capped before
//! base64 decoding; numbers follow a strict grammar. The scheme's own `payload` is kept as sent
//! and read by its scheme ([`crate::schemes`]).

use alloy_primitives::U256;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::proto::{PaymentRequirements, ResourceInfo, X402Version};

/// Largest payment header accepted, in bytes of the header value (before base64 decoding).
pub const MAX_PAYMENT_HEADER_BYTES: usize = 16 * 1024;

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

/// A decoded payment header: x402's `PaymentPayload`, before its scheme reads `payload`.
#[derive(Debug)]
pub struct PaymentPayload {
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
    /// v2: the `extensions` the client echoed, as sent (read only where a route uses one, such
    /// as `payment-identifier`).
    pub extensions: Option<Box<RawValue>>,
    /// The scheme's part (`payload`), as sent.
    pub payload: Box<RawValue>,
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
    payload: Box<RawValue>,
}

pub(crate) fn malformed(what: impl Into<String>) -> DecodeError {
    DecodeError::Malformed(what.into())
}

/// Decodes a header value: size cap, strict base64 (standard alphabet, padded), strict JSON,
/// typed payload, expected version.
pub fn decode_header(value: &[u8], expected: X402Version) -> Result<PaymentPayload, DecodeError> {
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

/// The deepest nesting of arrays and objects a payment may have. A payment nests a handful of
/// levels; serde skips the fields it does not read without its recursion limit, so a deeper
/// document would be accepted here and then refused by the facilitator's own parser.
pub const MAX_NESTING: usize = 32;

/// The bytes of `text` outside its strings, with their positions (the quotes themselves are
/// left out).
fn outside_strings(text: &[u8]) -> impl Iterator<Item = (usize, u8)> + '_ {
    let (mut in_string, mut escaped) = (false, false);
    text.iter().enumerate().filter_map(move |(at, &byte)| {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            return None;
        }
        if byte == b'"' {
            in_string = true;
            return None;
        }
        Some((at, byte))
    })
}

/// Whether `text` nests arrays or objects deeper than `limit` (brackets inside strings do not
/// count).
fn nests_deeper_than(text: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    for (_, byte) in outside_strings(text) {
        match byte {
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Whether `text` holds a number (outside strings) too large for a 64-bit float, which serde
/// skips in the fields it does not read but a JSON parser that reads them refuses (or turns into
/// infinity): at or above 1e308 in magnitude.
fn has_huge_number(text: &[u8]) -> bool {
    let number =
        |byte: u8| byte.is_ascii_digit() || matches!(byte, b'-' | b'+' | b'.' | b'e' | b'E');
    let mut start = None;
    for (at, byte) in outside_strings(text).chain(std::iter::once((text.len(), b' '))) {
        match (start, number(byte)) {
            (None, true) => start = Some(at),
            (Some(from), false) => {
                start = None;
                let token = std::str::from_utf8(&text[from..at]).unwrap_or_default();
                if token.parse::<f64>().is_ok_and(|n| n.abs() >= 1e308) {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
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
pub fn decode_json(json: Vec<u8>, expected: X402Version) -> Result<PaymentPayload, DecodeError> {
    let text = String::from_utf8(json).map_err(|_| malformed("the payment is not UTF-8 JSON"))?;
    // serde skips fields it does not read without checking their escapes; the document is
    // forwarded to the facilitator as is, so it must be valid JSON throughout.
    if has_lone_surrogate(text.as_bytes()) {
        return Err(malformed(
            "the payment contains a `\\u` escape of a lone UTF-16 surrogate, which is not valid JSON text",
        ));
    }
    if has_huge_number(text.as_bytes()) {
        return Err(malformed(
            "the payment contains a number too large for a 64-bit float, which JSON parsers refuse",
        ));
    }
    if nests_deeper_than(text.as_bytes(), MAX_NESTING) {
        return Err(malformed(format!(
            "the payment nests arrays or objects more than {MAX_NESTING} levels deep"
        )));
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
    let raw = RawValue::from_string(text).map_err(|e| malformed(e.to_string()))?;
    Ok(PaymentPayload {
        version,
        raw,
        accepted: wire.accepted,
        resource: wire.resource,
        scheme,
        network,
        extensions: wire.extensions,
        payload: wire.payload,
    })
}

/// Standard padded base64 of compact JSON, as a header value.
#[cfg(feature = "server")]
pub(crate) fn encode_header<T: serde::Serialize>(value: &T) -> Option<http::HeaderValue> {
    let json = serde_json::to_vec(value).ok()?;
    http::HeaderValue::from_str(&STANDARD.encode(json)).ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_too_large_for_a_float_are_found_outside_strings() {
        for huge in ["1e460", "-1e308", "1E+400", "1.8e308", &"9".repeat(400)] {
            let text = format!(r#"{{"resource":{{"skipped":{{"n":{huge}}}}}}}"#);
            assert!(has_huge_number(text.as_bytes()), "{text}");
        }
        for fine in [
            r#"{"n":1e307,"m":-2.5e-400,"k":[0,1,60]}"#,
            r#"{"s":"1e460","t":"\"9e999"}"#,
        ] {
            assert!(!has_huge_number(fine.as_bytes()), "{fine}");
        }
        let payment = r#"{"x402Version":2,"accepted":{},"resource":{"x":1e460},"payload":{}}"#;
        let refused = decode_json(payment.as_bytes().to_vec(), X402Version::V2);
        assert!(
            matches!(&refused, Err(DecodeError::Malformed(why)) if why.contains("too large")),
            "{refused:?}"
        );
    }

    #[test]
    fn nesting_is_counted_outside_strings() {
        let deep = |n: usize| format!("{}0{}", "[".repeat(n), "]".repeat(n));
        assert!(!nests_deeper_than(deep(32).as_bytes(), 32));
        assert!(nests_deeper_than(deep(33).as_bytes(), 32));
        let quoted = format!(r#"{{"a":"{}\"[[["}}"#, "[".repeat(40));
        assert!(!nests_deeper_than(quoted.as_bytes(), 2), "{quoted}");
        let payment = format!(
            r#"{{"x402Version":2,"accepted":{{"extra":{{"deep":{}}}}},"payload":{{}}}}"#,
            deep(40)
        );
        let refused = decode_json(payment.into_bytes(), X402Version::V2);
        assert!(
            matches!(&refused, Err(DecodeError::Malformed(why)) if why.contains("32 levels")),
            "{refused:?}"
        );
    }

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
