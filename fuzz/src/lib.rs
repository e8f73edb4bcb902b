//! The properties the `payment_header` fuzz target checks on every input.
//!
//! The input is tried twice, as a `PAYMENT-SIGNATURE` / `X-PAYMENT` header value
//! ([`payload::decode_header`]) and as the JSON inside one ([`payload::decode_json`]), each with
//! the v2 and the v1 expectation. Whatever the bytes, the decoder must return (no panic), apply
//! the size cap before anything else, and give a version error that agrees with the other path.
//! When a payment decodes, it is re-encoded in every way the replay key must not notice (key
//! order, whitespace, address case, other signature bytes, the v1 form of a v2 payment, a header
//! exactly at the size cap) and in the ways the strict decoder refuses (leading zeros, URL-safe
//! or unpadded base64, mixed case without a valid EIP-55 checksum, a header over the cap), and
//! the outcome of each is asserted.

use alloy_primitives::U256;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};
use serde_json::{Map, Value};
use x402_runtime::Currency;
use x402_runtime::X402Version;
use x402_runtime::network::{AccountId, Asset, Network};
use x402_runtime::proto::header::{DecodeError, MAX_PAYMENT_HEADER_BYTES};
use x402_runtime::schemes::exact_evm::{Authorization, ExactEvmPayload};
use x402_runtime::schemes::{DecodedPayment, ReplayKey};

/// The decoder under test (the envelope, then the scheme's part) and its parsers.
mod payload {
    pub(crate) use x402_runtime::proto::header::parse_uint;
    pub(crate) use x402_runtime::schemes::exact_evm::payload::parse_address;
    pub(crate) use x402_runtime::schemes::{decode_header, decode_json};
}

/// The exact-EVM part of a decoded payment (every payment this crate decodes has one).
fn evm(payment: &DecodedPayment) -> &ExactEvmPayload {
    payment
        .payload_as()
        .expect("every payment the decoder reads here is exact-EVM")
}

/// The order an object's keys are written in.
#[derive(Clone, Copy, Debug)]
pub enum KeyOrder {
    /// serde_json's own order (sorted).
    Sorted,
    /// Reverse of sorted.
    Reversed,
    /// Sorted, then rotated left by this many places.
    Rotated(usize),
}

/// How [`write_json`] lays a value out.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// Key order in every object.
    pub order: KeyOrder,
    /// Whitespace written around every token (JSON whitespace only).
    pub space: &'static str,
}

/// JSON whitespace runs a layout may use.
pub const SPACES: [&str; 5] = ["", " ", "\n", "\t", "\r\n  "];

/// Writes `value` as JSON text with the given key order and whitespace.
pub fn write_json(value: &Value, layout: Layout) -> String {
    let mut out = String::new();
    write_into(value, layout, &mut out);
    out
}

fn write_into(value: &Value, layout: Layout, out: &mut String) {
    let space = layout.space;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            match layout.order {
                KeyOrder::Sorted => {}
                KeyOrder::Reversed => entries.reverse(),
                KeyOrder::Rotated(by) => {
                    if !entries.is_empty() {
                        let by = by % entries.len();
                        entries.rotate_left(by);
                    }
                }
            }
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(space);
                out.push_str(&Value::String(key.clone()).to_string());
                out.push_str(space);
                out.push(':');
                out.push_str(space);
                write_into(item, layout, out);
            }
            out.push_str(space);
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(space);
                write_into(item, layout, out);
            }
            out.push_str(space);
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The replay key the paywall would reserve for this payment if it matched an offer on the
/// network the payment names, built the way the paywall builds it: the offer's CAIP-2 network
/// and asset, the authorization's `from` and `nonce`. v2 names its asset in `accepted`; a v1
/// payment names none, so the offer's asset is the network's built-in USDC. `None` when no offer
/// could match (unknown network, unparsable asset).
pub fn replay_key(payment: &DecodedPayment) -> Option<ReplayKey> {
    let (network, asset) = match &payment.wire.accepted {
        Some(accepted) => {
            let network = Network::from_caip2(&accepted.network)?;
            // The paywall compares the offer's CAIP-2 string with `accepted.network` byte for byte.
            if network.caip2 != accepted.network {
                return None;
            }
            let asset = payload::parse_address(&accepted.asset, "accepted.asset").ok()?;
            (network, AccountId::from(asset))
        }
        None => {
            let network = Network::from_v1_name(&payment.wire.network)?;
            let asset = Asset::builtin(&network, Currency::Usdc)?.address;
            (network, asset)
        }
    };
    Some(ReplayKey {
        network: network.caip2,
        asset,
        from: evm(payment).authorization.from.into(),
        nonce: evm(payment).authorization.nonce,
    })
}

/// What must not change between two encodings of one payment.
#[derive(Debug, PartialEq, Eq)]
struct Identity {
    version: X402Version,
    scheme: String,
    network: String,
    authorization: Authorization,
    key: Option<ReplayKey>,
}

fn identity(payment: &DecodedPayment) -> Identity {
    Identity {
        version: payment.wire.version,
        scheme: payment.wire.scheme.clone(),
        network: payment.wire.network.clone(),
        authorization: evm(payment).authorization.clone(),
        key: replay_key(payment),
    }
}

fn other(version: X402Version) -> X402Version {
    match version {
        X402Version::V1 => X402Version::V2,
        X402Version::V2 => X402Version::V1,
    }
}

/// A small deterministic choice from the input, so that one input always takes the same paths.
fn pick(data: &[u8], salt: u8) -> usize {
    data.iter()
        .fold(usize::from(salt).wrapping_mul(0x9e37), |h, &b| {
            h.rotate_left(5) ^ usize::from(b)
        })
        .wrapping_add(data.len())
}

/// The JSON text without surrounding whitespace: what the decoder keeps as `raw` (the text it
/// forwards to the facilitator), byte for byte.
fn trim_json_space(json: &[u8]) -> &[u8] {
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let start = json.iter().position(|b| !space(b)).unwrap_or(json.len());
    let end = json
        .iter()
        .rposition(|b| !space(b))
        .map_or(start, |i| i + 1);
    &json[start..end]
}

/// Checks every property on one input. Panics (a fuzzer finding) when one does not hold.
pub fn check(data: &[u8]) {
    for version in [X402Version::V2, X402Version::V1] {
        let header = payload::decode_header(data, version);
        if data.len() > MAX_PAYMENT_HEADER_BYTES {
            assert_eq!(
                header.as_ref().err(),
                Some(&DecodeError::TooLarge),
                "an input over the cap must be refused as too large"
            );
        } else {
            assert_ne!(header.as_ref().err(), Some(&DecodeError::TooLarge));
        }
        if let Ok(payment) = &header {
            let json = STANDARD.decode(data).expect("a decoded header was base64");
            assert_eq!(payment.wire.raw.get().as_bytes(), trim_json_space(&json));
            check_payment(data, payment, version, &json);
        }

        let from_json = payload::decode_json(data.to_vec(), version);
        assert_ne!(from_json.as_ref().err(), Some(&DecodeError::TooLarge));
        if let Ok(payment) = &from_json {
            assert_eq!(payment.wire.raw.get().as_bytes(), trim_json_space(data));
            check_payment(data, payment, version, data);
        }
        // The header path is the JSON path behind base64: both agree on the JSON inside.
        if data.len() <= MAX_PAYMENT_HEADER_BYTES
            && let Ok(json) = STANDARD.decode(data)
            && !data.iter().all(u8::is_ascii_whitespace)
        {
            let inner = payload::decode_json(json, version);
            assert_eq!(
                header.as_ref().map(identity).map_err(Clone::clone),
                inner.as_ref().map(identity).map_err(Clone::clone)
            );
        }
    }
}

fn check_payment(data: &[u8], payment: &DecodedPayment, version: X402Version, json: &[u8]) {
    assert_eq!(payment.wire.version, version);
    assert_eq!(payment.wire.accepted.is_some(), version == X402Version::V2);
    // The same bytes under the other header are a version error, never a payment.
    let number = u64::from(version.number());
    assert_eq!(
        payload::decode_json(json.to_vec(), other(version)).err(),
        Some(DecodeError::WrongVersion(number))
    );
    let want = identity(payment);
    let value: Value = serde_json::from_slice(json).unwrap_or_else(|e| {
        panic!("the decoder accepted JSON that serde_json::Value refuses: {e}")
    });
    let decode = |text: &str| payload::decode_json(text.as_bytes().to_vec(), version);
    let same = |text: &str, what: &str| {
        let got = decode(text).unwrap_or_else(|e| panic!("{what} was refused: {e:?}\n{text}"));
        assert_eq!(identity(&got), want, "{what} changed the payment\n{text}");
        got
    };

    // Key order and whitespace.
    let orders = [
        KeyOrder::Sorted,
        KeyOrder::Reversed,
        KeyOrder::Rotated(1 + pick(data, 1) % 7),
    ];
    let layout = Layout {
        order: orders[pick(data, 2) % orders.len()],
        space: SPACES[pick(data, 3) % SPACES.len()],
    };
    let relaid = write_json(&value, layout);
    same(&relaid, "another key order and whitespace");
    let header = STANDARD.encode(&relaid);
    if header.len() <= MAX_PAYMENT_HEADER_BYTES {
        let got = payload::decode_header(header.as_bytes(), version).expect("relaid header");
        assert_eq!(identity(&got), want);
    } else {
        assert_eq!(
            payload::decode_header(header.as_bytes(), version).err(),
            Some(DecodeError::TooLarge)
        );
    }

    check_addresses(&value, version, &same);
    check_signatures(&value, payment, &same);
    check_numbers(&value, version);
    check_base64(json, version);
    check_size_cap(json, version, &want);
    if version == X402Version::V2 {
        check_v1_form(&value, &want);
    }
}

/// The JSON pointers of the addresses a payment carries.
const ADDRESSES: [&str; 4] = [
    "/payload/authorization/from",
    "/payload/authorization/to",
    "/accepted/asset",
    "/accepted/payTo",
];

fn with(value: &Value, pointer: &str, replacement: Value) -> Value {
    let mut edited = value.clone();
    if let Some(slot) = edited.pointer_mut(pointer) {
        *slot = replacement;
    }
    edited
}

fn check_addresses(
    value: &Value,
    version: X402Version,
    same: &dyn Fn(&str, &str) -> DecodedPayment,
) {
    for pointer in ADDRESSES {
        let Some(text) = value.pointer(pointer).and_then(Value::as_str) else {
            continue;
        };
        // `accepted.asset` / `payTo` are kept as strings by the decoder; only addresses that
        // parse have a canonical form to compare.
        let Ok(address) = payload::parse_address(text, pointer) else {
            continue;
        };
        let hex = alloy_primitives::hex::encode(address);
        let lower = format!("0x{hex}");
        let upper = format!("0x{}", hex.to_ascii_uppercase());
        let checksummed = address.to_checksum(None);
        for form in [&lower, &upper, &checksummed] {
            let edited = with(value, pointer, Value::String(form.clone()));
            same(&edited.to_string(), pointer);
        }
        // One letter's case flipped in a checksummed address is a bad checksum whenever the
        // result still mixes cases: refused. (Only the authorization's addresses are parsed by
        // the decoder itself.)
        if pointer.starts_with("/payload/") {
            if let Some(flipped) = flip_one_letter(&checksummed) {
                let edited = with(value, pointer, Value::String(flipped.clone()));
                let decoded = payload::decode_json(edited.to_string().into_bytes(), version);
                assert!(
                    matches!(decoded, Err(DecodeError::Malformed(_))),
                    "{pointer} with a bad checksum was accepted: {flipped}"
                );
            }
            // `0X` is not the `0x` prefix.
            let edited = with(value, pointer, Value::String(format!("0X{hex}")));
            assert!(payload::decode_json(edited.to_string().into_bytes(), version).is_err());
        }
    }
}

/// Flips the case of the first letter of a checksummed address, if the result mixes cases.
fn flip_one_letter(checksummed: &str) -> Option<String> {
    let hex = &checksummed[2..];
    let at = hex.find(|c: char| c.is_ascii_alphabetic())?;
    let mut flipped: Vec<u8> = hex.bytes().collect();
    flipped[at] ^= 0x20;
    let lower = flipped.iter().any(u8::is_ascii_lowercase);
    let upper = flipped.iter().any(u8::is_ascii_uppercase);
    (lower && upper).then(|| format!("0x{}", String::from_utf8_lossy(&flipped)))
}

/// secp256k1's group order.
const N: U256 = U256::from_be_slice(&alloy_primitives::hex!(
    "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
));

/// ERC-6492's magic suffix.
const ERC6492_MAGIC: [u8; 32] = [
    0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92,
    0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92,
];

/// Other signature bytes for the same authorization: the high-s twin, the EIP-2098 compact
/// form, an ERC-6492-style wrapper, and unrelated bytes.
pub fn signature_twins(signature: &[u8]) -> Vec<Vec<u8>> {
    let mut twins = vec![vec![0u8; 65], vec![0xab; 1], vec![7u8; 200]];
    let mut wrapped = vec![0u8; 32];
    wrapped[31] = 0x40;
    wrapped.extend_from_slice(signature);
    wrapped.extend_from_slice(&ERC6492_MAGIC);
    twins.push(wrapped);
    if signature.len() == 65 {
        let s = U256::from_be_slice(&signature[32..64]);
        if !s.is_zero() && s < N {
            let mut high = signature.to_vec();
            high[32..64].copy_from_slice(&(N - s).to_be_bytes::<32>());
            high[64] = if signature[64] == 27 { 28 } else { 27 };
            twins.push(high);
        }
        let mut compact = signature[..64].to_vec();
        if signature[64].is_multiple_of(2) {
            compact[32] |= 0x80;
        }
        twins.push(compact);
    }
    twins
}

fn check_signatures(
    value: &Value,
    payment: &DecodedPayment,
    same: &dyn Fn(&str, &str) -> DecodedPayment,
) {
    let pointer = "/payload/signature";
    for twin in signature_twins(&evm(payment).signature) {
        let hex = alloy_primitives::hex::encode(&twin);
        let edited = with(value, pointer, Value::String(format!("0x{hex}")));
        let got = same(&edited.to_string(), "other signature bytes");
        assert_eq!(evm(&got).signature.as_ref(), twin.as_slice());
        // Upper-case hex is the same bytes.
        let edited = with(
            value,
            pointer,
            Value::String(format!("0x{}", hex.to_ascii_uppercase())),
        );
        same(&edited.to_string(), "upper-case signature hex");
    }
}

fn check_numbers(value: &Value, version: X402Version) {
    for field in ["value", "validAfter", "validBefore"] {
        let pointer = format!("/payload/authorization/{field}");
        let Some(text) = value.pointer(&pointer).and_then(Value::as_str) else {
            continue;
        };
        let parsed = payload::parse_uint(text, field).expect("a decoded number is canonical");
        assert_eq!(parsed.to_string(), text, "canonical decimal round-trips");
        let variants = [
            Value::String(format!("0{text}")),
            Value::String(format!("+{text}")),
            Value::String(format!(" {text}")),
            Value::String(format!("{text} ")),
            Value::String(format!("{text}.0")),
            Value::String(format!("{text}e0")),
            Value::String(format!("0x{parsed:x}")),
            Value::String(format!("-{text}")),
            Value::String(format!("{text}{}", "0".repeat(78))),
            match u64::try_from(parsed) {
                Ok(small) => Value::from(small),
                Err(_) => Value::Null,
            },
        ];
        for variant in variants {
            let edited = with(value, &pointer, variant.clone());
            let decoded = payload::decode_json(edited.to_string().into_bytes(), version);
            assert!(
                matches!(decoded, Err(DecodeError::Malformed(_))),
                "{field} = {variant} was accepted"
            );
        }
    }
}

fn check_base64(json: &[u8], version: X402Version) {
    let standard = STANDARD.encode(json);
    if standard.len() > MAX_PAYMENT_HEADER_BYTES {
        return;
    }
    // The decoder accepts the standard padded alphabet only; each other form of the same JSON
    // is refused (A3), never read as another payment.
    let url_safe = URL_SAFE.encode(json);
    if url_safe != standard {
        assert!(matches!(
            payload::decode_header(url_safe.as_bytes(), version),
            Err(DecodeError::Malformed(_))
        ));
    }
    let unpadded = STANDARD_NO_PAD.encode(json);
    if unpadded != standard {
        assert!(matches!(
            payload::decode_header(unpadded.as_bytes(), version),
            Err(DecodeError::Malformed(_))
        ));
    }
    for wrapped in [
        format!("{standard}="),
        format!(" {standard}"),
        format!("{standard}\n"),
        format!("{standard},{standard}"),
    ] {
        assert!(matches!(
            payload::decode_header(wrapped.as_bytes(), version),
            Err(DecodeError::Malformed(_) | DecodeError::TooLarge)
        ));
    }
}

fn check_size_cap(json: &[u8], version: X402Version, want: &Identity) {
    // Base64 of `n` bytes is `4 * ceil(n / 3)` long: 12 288 bytes of JSON make a header of
    // exactly the cap, one more byte a header over it.
    let fits = MAX_PAYMENT_HEADER_BYTES / 4 * 3;
    if json.len() > fits {
        return;
    }
    let mut padded = json.to_vec();
    padded.resize(fits, b' ');
    let at_cap = STANDARD.encode(&padded);
    assert_eq!(at_cap.len(), MAX_PAYMENT_HEADER_BYTES);
    let got = payload::decode_header(at_cap.as_bytes(), version).expect("a header at the cap");
    assert_eq!(&identity(&got), want);
    padded.push(b' ');
    let over = STANDARD.encode(&padded);
    assert_eq!(
        payload::decode_header(over.as_bytes(), version).err(),
        Some(DecodeError::TooLarge)
    );
}

/// A v2 payment rewritten in the v1 shape (`scheme` and the v1 network name at the top, no
/// `accepted`) has the same key when its asset is the one a v1 offer on that network uses.
fn check_v1_form(value: &Value, want: &Identity) {
    let Some(key) = &want.key else { return };
    let Some(network) = Network::from_caip2(&key.network) else {
        return;
    };
    let (Some(name), Some(usdc)) = (network.v1_name, Asset::builtin(&network, Currency::Usdc))
    else {
        return;
    };
    if key.asset != usdc.address {
        return;
    }
    let mut v1 = Map::new();
    v1.insert("x402Version".into(), Value::from(1));
    v1.insert("scheme".into(), Value::String(want.scheme.clone()));
    v1.insert("network".into(), Value::String(name.to_owned()));
    v1.insert("payload".into(), value["payload"].clone());
    let text = Value::Object(v1).to_string();
    let got = payload::decode_json(text.into_bytes(), X402Version::V1).expect("the v1 form");
    assert_eq!(replay_key(&got).as_ref(), Some(key));
    assert_eq!(evm(&got).authorization, want.authorization);
}
