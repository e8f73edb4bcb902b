//! Properties of the payment decoder (reliability plan §9.1, rows B4, B6, E4, F5): the strict
//! number grammar, address case, and one replay key for every encoding of one authorization.
//! Payments are signed with real keys through alloy, so every payload is one a client could send.
//!
//! The decoder has no function that returns a [`ReplayKey`]: the paywall builds it from the
//! offer the payment matched (its CAIP-2 network and asset) and the authorization's `from` and
//! `nonce`. [`key_of`] does the same from the decoded payment (v2: `accepted`; v1: the network's
//! built-in USDC, the asset a v1 offer on that network uses).

#![allow(missing_docs)]

use alloy_primitives::{Address, B256, U256, hex};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolStruct;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};
use proptest::prelude::*;
use serde_json::{Value, json};
use x402_runtime::network::{Asset, Network};
use x402_runtime::proto::header::{DecodeError, parse_uint};
use x402_runtime::schemes::exact_evm::eip3009::{self, SignatureCheck, TransferWithAuthorization};
use x402_runtime::schemes::exact_evm::payload::parse_address;
use x402_runtime::schemes::exact_evm::{Authorization, ExactEvmPayload};
use x402_runtime::schemes::{DecodedPayment, decode_header, decode_json};
use x402_runtime::{Currency, ReplayKey, X402Version};

/// secp256k1's group order.
const N: U256 = U256::from_be_slice(&hex!(
    "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
));

// ---------------------------------------------------------------------------------------------
// Payments

/// One signed authorization and the offer it pays.
#[derive(Clone, Debug)]
struct Signed {
    network: Network,
    asset: Asset,
    from: Address,
    to: Address,
    value: U256,
    valid_after: u64,
    valid_before: u64,
    nonce: B256,
    signature: [u8; 65],
}

fn signer_from(secret: [u8; 32]) -> PrivateKeySigner {
    // A random 32-byte string is a valid key unless it is 0 or ≥ n (odds ≈ 2^-128); fall back
    // to a fixed key in that case.
    PrivateKeySigner::from_bytes(&B256::from(secret)).unwrap_or_else(|_| {
        PrivateKeySigner::from_bytes(&B256::with_last_byte(1)).expect("1 is a valid key")
    })
}

const OFFERS: [(u64, Currency); 4] = [
    (84532, Currency::Usdc),
    (8453, Currency::Usdc),
    (84532, Currency::Eurc),
    (1, Currency::Usdc),
];

prop_compose! {
    fn signed()(
        secret in any::<[u8; 32]>(),
        offer in 0..OFFERS.len(),
        to in any::<[u8; 20]>(),
        value in prop_oneof![any::<u64>().prop_map(U256::from), any::<[u8; 32]>().prop_map(U256::from_be_bytes)],
        valid_after in any::<u64>(),
        valid_before in any::<u64>(),
        nonce in any::<[u8; 32]>(),
    ) -> Signed {
        let signer = signer_from(secret);
        let (chain_id, currency) = OFFERS[offer];
        let network = Network::from_chain_id(chain_id);
        let asset = Asset::builtin(&network, currency).expect("a built-in asset");
        let message = TransferWithAuthorization {
            from: signer.address(),
            to: Address::from(to),
            value,
            validAfter: U256::from(valid_after),
            validBefore: U256::from(valid_before),
            nonce: B256::from(nonce),
        };
        let domain = eip3009::domain(
            &asset.eip712_name,
            &asset.eip712_version,
            network.chain_id().expect("an EVM network"),
            asset.address.as_evm().expect("an EVM token"),
        );
        let signature = signer
            .sign_hash_sync(&message.eip712_signing_hash(&domain))
            .expect("sign")
            .as_bytes();
        Signed {
            network,
            asset,
            from: signer.address(),
            to: Address::from(to),
            value,
            valid_after,
            valid_before,
            nonce: B256::from(nonce),
            signature,
        }
    }
}

impl Signed {
    fn digest(&self) -> B256 {
        let domain = eip3009::domain(
            &self.asset.eip712_name,
            &self.asset.eip712_version,
            self.network.chain_id().expect("an EVM network"),
            self.asset.address.as_evm().expect("an EVM token"),
        );
        let auth = Authorization {
            from: self.from,
            to: self.to,
            value: self.value,
            valid_after: U256::from(self.valid_after),
            valid_before: U256::from(self.valid_before),
            nonce: self.nonce,
        };
        eip3009::signing_hash(&domain.separator(), &auth)
    }

    fn payload(&self, signature: &[u8]) -> Value {
        json!({
            "signature": format!("0x{}", hex::encode(signature)),
            "authorization": {
                "from": self.from.to_checksum(None),
                "to": self.to.to_checksum(None),
                "value": self.value.to_string(),
                "validAfter": self.valid_after.to_string(),
                "validBefore": self.valid_before.to_string(),
                "nonce": self.nonce.to_string(),
            },
        })
    }

    /// The v2 `PaymentPayload` as a JSON value.
    fn v2(&self) -> Value {
        json!({
            "x402Version": 2,
            "resource": {"url": "http://127.0.0.1:4021/weather?city=Paris", "mimeType": "application/json"},
            "accepted": {
                "scheme": "exact",
                "network": self.network.caip2,
                "amount": self.value.to_string(),
                "asset": self.asset.address.to_string(),
                "payTo": self.to.to_checksum(None),
                "maxTimeoutSeconds": 60,
                "extra": {"name": self.asset.eip712_name, "version": self.asset.eip712_version},
            },
            "payload": self.payload(&self.signature),
        })
    }

    /// The v1 payment, when the network has a v1 name.
    fn v1(&self) -> Option<Value> {
        Some(json!({
            "x402Version": 1,
            "scheme": "exact",
            "network": self.network.v1_name?,
            "payload": self.payload(&self.signature),
        }))
    }

    /// The key the paywall reserves for this payment.
    fn key(&self) -> ReplayKey {
        ReplayKey {
            network: self.network.caip2.clone(),
            asset: self.asset.address,
            from: self.from.into(),
            nonce: self.nonce,
        }
    }
}

/// The replay key the paywall would build for a decoded payment (see the module docs).
fn key_of(payment: &DecodedPayment) -> ReplayKey {
    let (network, asset) = match &payment.wire.accepted {
        Some(accepted) => (
            Network::from_caip2(&accepted.network).expect("a CAIP-2 network"),
            parse_address(&accepted.asset, "accepted.asset")
                .expect("an asset address")
                .into(),
        ),
        None => {
            let network = Network::from_v1_name(&payment.wire.network).expect("a v1 network");
            let usdc = Asset::builtin(&network, Currency::Usdc).expect("USDC on the network");
            (network, usdc.address)
        }
    };
    ReplayKey {
        network: network.caip2,
        asset,
        from: evm(payment).authorization.from.into(),
        nonce: evm(payment).authorization.nonce,
    }
}

/// The exact-EVM part of a decoded payment.
fn evm(payment: &DecodedPayment) -> &ExactEvmPayload {
    payment.payload_as().expect("an exact-EVM payload")
}

fn decode(text: &str, version: X402Version) -> Result<DecodedPayment, DecodeError> {
    decode_json(text.as_bytes().to_vec(), version)
}

fn decode_v2(value: &Value) -> DecodedPayment {
    decode(&value.to_string(), X402Version::V2).expect("the payment decodes")
}

fn replace(value: &Value, pointer: &str, replacement: Value) -> Value {
    let mut edited = value.clone();
    *edited.pointer_mut(pointer).expect("the field exists") = replacement;
    edited
}

// ---------------------------------------------------------------------------------------------
// JSON layouts

/// Writes `value` with each object's keys in the order given by `shuffle` (keys sorted by a
/// hash of the key and the next shuffle word) and `spaces` cycled between tokens.
fn write_json(value: &Value, shuffle: &[u64], spaces: &[&str]) -> String {
    struct Writer<'a> {
        shuffle: &'a [u64],
        spaces: &'a [&'a str],
        turn: usize,
        out: String,
    }
    impl Writer<'_> {
        fn space(&mut self) {
            if !self.spaces.is_empty() {
                let space = self.spaces[self.turn % self.spaces.len()];
                self.out.push_str(space);
            }
            self.turn += 1;
        }
        fn word(&mut self) -> u64 {
            if self.shuffle.is_empty() {
                return 0;
            }
            self.shuffle[self.turn % self.shuffle.len()]
        }
        fn value(&mut self, value: &Value) {
            match value {
                Value::Object(map) => {
                    let word = self.word();
                    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                    entries.sort_by_key(|(k, _)| {
                        k.bytes().fold(word, |h, b| {
                            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                        })
                    });
                    self.out.push('{');
                    for (i, (key, item)) in entries.into_iter().enumerate() {
                        if i > 0 {
                            self.out.push(',');
                        }
                        self.space();
                        self.out.push_str(&Value::String(key.clone()).to_string());
                        self.space();
                        self.out.push(':');
                        self.space();
                        self.value(item);
                    }
                    self.space();
                    self.out.push('}');
                }
                Value::Array(items) => {
                    self.out.push('[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            self.out.push(',');
                        }
                        self.space();
                        self.value(item);
                    }
                    self.space();
                    self.out.push(']');
                }
                other => self.out.push_str(&other.to_string()),
            }
        }
    }
    let mut writer = Writer {
        shuffle,
        spaces,
        turn: 0,
        out: String::new(),
    };
    writer.space();
    writer.value(value);
    writer.space();
    writer.out
}

fn spaces() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(
        prop::sample::select(vec!["", " ", "\n", "\t", "\r", "  \r\n\t"]),
        0..8,
    )
}

// ---------------------------------------------------------------------------------------------
// B4: numbers

/// The oracle: canonical decimal (no sign, no leading zero but "0", digits only) below 2^256.
fn canonical_u256(text: &str) -> bool {
    let max = U256::MAX.to_string();
    !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
        && (text.len() < max.len() || (text.len() == max.len() && text <= max.as_str()))
}

/// Adds `k` to a decimal string (for numbers just above 2^256 - 1).
fn add_decimal(text: &str, k: u64) -> String {
    let mut digits: Vec<u8> = text.bytes().rev().map(|b| b - b'0').collect();
    let mut carry = k;
    for d in digits.iter_mut() {
        let sum = u64::from(*d) + carry;
        *d = (sum % 10) as u8;
        carry = sum / 10;
    }
    while carry > 0 {
        digits.push((carry % 10) as u8);
        carry /= 10;
    }
    digits.iter().rev().map(|d| char::from(b'0' + d)).collect()
}

fn u256() -> impl Strategy<Value = U256> {
    prop_oneof![
        any::<u64>().prop_map(U256::from),
        any::<[u8; 32]>().prop_map(U256::from_be_bytes),
        (0u64..1000).prop_map(|k| U256::MAX - U256::from(k)),
        (0u32..256).prop_map(|bits| U256::from(1) << bits),
    ]
}

/// Strings near the grammar: canonical numbers with one defect, and free text over a small
/// alphabet of digits, signs, exponents, hex, dots, underscores and whitespace.
fn number_text() -> impl Strategy<Value = String> {
    let defect = prop::sample::select(vec![
        "0", "00", "+", "-", " ", "\t", "\n", "e0", "E2", ".0", "_", "0x", "x", "\u{0663}",
    ]);
    prop_oneof![
        u256().prop_map(|n| n.to_string()),
        (u256(), defect.clone()).prop_map(|(n, d)| format!("{d}{n}")),
        (u256(), defect).prop_map(|(n, d)| format!("{n}{d}")),
        u256().prop_map(|n| format!("{n:x}")),
        u256().prop_map(|n| format!("{n:#x}")),
        (1u64..5000).prop_map(|k| add_decimal(&U256::MAX.to_string(), k)),
        "[0-9]{1,80}",
        "[-+ 0-9a-fA-FxXeE._\t]{0,12}",
    ]
}

// ---------------------------------------------------------------------------------------------
// B6: address case

/// An address spelled with letters in the case `mask` says (true = upper), or in one of the
/// accepted spellings.
fn spell(address: Address, how: u8, mask: &[bool; 40]) -> String {
    let lower = hex::encode(address);
    match how % 4 {
        0 => format!("0x{lower}"),
        1 => format!("0x{}", lower.to_ascii_uppercase()),
        2 => address.to_checksum(None),
        _ => {
            let mixed: String = lower
                .chars()
                .zip(mask)
                .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c })
                .collect();
            format!("0x{mixed}")
        }
    }
}

/// The oracle: all letters lower, all upper, or exactly the EIP-55 spelling.
fn accepted_spelling(address: Address, text: &str) -> bool {
    let hex = &text[2..];
    let lower = !hex.bytes().any(|b| b.is_ascii_uppercase());
    let upper = !hex.bytes().any(|b| b.is_ascii_lowercase());
    lower || upper || text == address.to_checksum(None)
}

/// Default case counts; failures are reported, not written to a regressions file.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(ProptestConfig::default().cases))]

    #[test]
    fn uint_grammar_is_exactly_canonical_decimal(text in number_text()) {
        let parsed = parse_uint(&text, "value");
        prop_assert_eq!(parsed.is_ok(), canonical_u256(&text), "{:?} -> {:?}", text, parsed);
        if let Ok(n) = parsed {
            prop_assert_eq!(n.to_string(), text);
        }
    }

    #[test]
    fn every_u256_round_trips(n in u256()) {
        prop_assert_eq!(parse_uint(&n.to_string(), "value"), Ok(n));
    }

    #[test]
    fn address_case_gives_one_address_or_a_refusal(
        bytes in any::<[u8; 20]>(),
        how in any::<u8>(),
        mask in any::<[bool; 40]>(),
    ) {
        let address = Address::from(bytes);
        let text = spell(address, how, &mask);
        let parsed = parse_address(&text, "from");
        if accepted_spelling(address, &text) {
            prop_assert_eq!(parsed, Ok(address));
        } else {
            prop_assert!(matches!(parsed, Err(DecodeError::Malformed(_))), "{} was accepted", text);
        }
    }

    #[test]
    fn numbers_in_a_payment_follow_the_grammar(payment in signed(), text in number_text()) {
        let edited = replace(&payment.v2(), "/payload/authorization/value", json!(text));
        let decoded = decode(&edited.to_string(), X402Version::V2);
        if canonical_u256(&text) {
            let decoded = decoded.expect("a canonical value decodes");
            prop_assert_eq!(evm(&decoded).authorization.value.to_string(), text);
            prop_assert_eq!(key_of(&decoded), payment.key());
        } else {
            prop_assert!(matches!(decoded, Err(DecodeError::Malformed(_))));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// F5 / E4: one key per authorization

proptest! {
    #![proptest_config(config(ProptestConfig::default().cases))]

    #[test]
    fn a_signed_payment_decodes_to_its_own_key(payment in signed()) {
        let decoded = decode_v2(&payment.v2());
        prop_assert_eq!(key_of(&decoded), payment.key());
        prop_assert_eq!(evm(&decoded).signature.as_ref(), payment.signature.as_slice());
        prop_assert_eq!(
            eip3009::check_signature(&evm(&decoded).signature, &payment.digest(), payment.from),
            SignatureCheck::Valid
        );
    }

    #[test]
    fn key_order_and_whitespace_do_not_change_the_key(
        payment in signed(),
        shuffle in prop::collection::vec(any::<u64>(), 0..6),
        spaces in spaces(),
    ) {
        let text = write_json(&payment.v2(), &shuffle, &spaces);
        let decoded = decode(&text, X402Version::V2).expect("the relaid payment decodes");
        prop_assert_eq!(key_of(&decoded), payment.key());
        // The same through the header, when it fits.
        let header = STANDARD.encode(&text);
        if let Ok(decoded) = decode_header(header.as_bytes(), X402Version::V2) {
            prop_assert_eq!(key_of(&decoded), payment.key());
        }
        if let Some(v1) = payment.v1().filter(|_| payment.asset.currency == Currency::Usdc) {
            let text = write_json(&v1, &shuffle, &spaces);
            let decoded = decode(&text, X402Version::V1).expect("the relaid v1 payment decodes");
            prop_assert_eq!(key_of(&decoded), payment.key());
        }
    }

    #[test]
    fn address_case_does_not_change_the_key(
        payment in signed(),
        how in any::<[u8; 4]>(),
        masks in any::<[[bool; 40]; 4]>(),
    ) {
        let fields = [
            ("/payload/authorization/from", payment.from),
            ("/payload/authorization/to", payment.to),
            ("/accepted/asset", payment.asset.address.as_evm().expect("an EVM token")),
            ("/accepted/payTo", payment.to),
        ];
        let mut edited = payment.v2();
        let mut acceptable = true;
        let mut decoder_checks = true;
        for (i, (pointer, address)) in fields.into_iter().enumerate() {
            let text = spell(address, how[i], &masks[i]);
            let ok = accepted_spelling(address, &text);
            // The decoder itself parses the authorization's addresses; `accepted.asset` is parsed
            // when the key is built (and `payTo` when the offer is matched).
            if pointer.starts_with("/payload/") {
                decoder_checks &= ok;
            }
            acceptable &= ok;
            edited = replace(&edited, pointer, json!(text));
        }
        let decoded = decode(&edited.to_string(), X402Version::V2);
        if decoder_checks {
            let decoded = decoded.expect("accepted spellings decode");
            let asset = decoded.wire.accepted.as_ref().map(|a| parse_address(&a.asset, "asset"));
            let pay_to = decoded.wire.accepted.as_ref().map(|a| parse_address(&a.pay_to, "payTo"));
            if acceptable {
                prop_assert_eq!(key_of(&decoded), payment.key());
            } else {
                prop_assert!(matches!(asset, Some(Err(_))) || matches!(pay_to, Some(Err(_))));
            }
        } else {
            prop_assert!(matches!(decoded, Err(DecodeError::Malformed(_))));
        }
    }

    #[test]
    fn the_high_s_twin_has_the_same_key(payment in signed()) {
        let s = U256::from_be_slice(&payment.signature[32..64]);
        let mut twin = payment.signature;
        twin[32..64].copy_from_slice(&(N - s).to_be_bytes::<32>());
        twin[64] = if payment.signature[64] == 27 { 28 } else { 27 };
        let edited = replace(&payment.v2(), "/payload", payment.payload(&twin));
        let decoded = decode_v2(&edited);
        prop_assert_eq!(key_of(&decoded), payment.key());
        prop_assert_eq!(key_of(&decoded), key_of(&decode_v2(&payment.v2())));
        // It recovers the same signer, but the local check refuses it, as USDC would (E3).
        let digest = payment.digest();
        prop_assert_eq!(
            eip3009::check_signature(&payment.signature, &digest, payment.from),
            SignatureCheck::Valid
        );
        prop_assert_eq!(
            eip3009::check_signature(&twin, &digest, payment.from),
            SignatureCheck::Invalid
        );
    }

    #[test]
    fn any_signature_bytes_leave_the_key_alone(
        payment in signed(),
        signature in prop::collection::vec(any::<u8>(), 1..300),
    ) {
        // Compact (EIP-2098), wrapped (ERC-6492) or garbage: the key never includes the bytes.
        let edited = replace(&payment.v2(), "/payload", payment.payload(&signature));
        let decoded = decode_v2(&edited);
        prop_assert_eq!(evm(&decoded).signature.as_ref(), signature.as_slice());
        prop_assert_eq!(key_of(&decoded), payment.key());
    }

    #[test]
    fn v1_and_v2_of_one_authorization_have_one_key(payment in signed()) {
        prop_assume!(payment.asset.currency == Currency::Usdc);
        let v1 = payment.v1().expect("the built-in USDC networks have v1 names");
        let v1 = decode(&v1.to_string(), X402Version::V1).expect("the v1 payment decodes");
        let v2 = decode_v2(&payment.v2());
        prop_assert_eq!(&evm(&v1).authorization, &evm(&v2).authorization);
        prop_assert_eq!(key_of(&v1), key_of(&v2));
        // Each shape is a version error under the other header, never a payment.
        prop_assert_eq!(
            decode(&payment.v2().to_string(), X402Version::V1).err(),
            Some(DecodeError::WrongVersion(2))
        );
    }

    #[test]
    fn other_base64_alphabets_are_refused_not_rekeyed(payment in signed(), pad in 0usize..3) {
        let text = format!("{}{}", payment.v2(), " ".repeat(pad));
        let standard = STANDARD.encode(&text);
        let decoded = decode_header(standard.as_bytes(), X402Version::V2).expect("standard base64");
        prop_assert_eq!(key_of(&decoded), payment.key());
        for other in [URL_SAFE.encode(&text), STANDARD_NO_PAD.encode(&text)] {
            if other != standard {
                prop_assert!(matches!(
                    decode_header(other.as_bytes(), X402Version::V2),
                    Err(DecodeError::Malformed(_))
                ));
            }
        }
    }
}
