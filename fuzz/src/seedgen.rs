//! Writes the seed corpus of the `payment_header` target: real payments signed with the public
//! anvil test key #1, in v2 and v1, as header values and as JSON, plus one malformed input per
//! catalogue row A2–A10 and B1–B6 (`/work/shared/reliability.md` §5).
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --features seedgen --bin seedgen -- fuzz/corpus/payment_header
//! ```
//!
//! The output is deterministic (fixed nonces and times; RFC 6979 signatures), so running it again
//! rewrites the same files.

use std::path::{Path, PathBuf};

use alloy_primitives::{Address, B256, U256, address};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};
use serde_json::{Value, json};
use x402_runtime::Currency;
use x402_runtime::network::{Asset, Network};
use x402_runtime::proto::header::MAX_PAYMENT_HEADER_BYTES;
use x402_runtime::schemes::exact_evm::Authorization;
use x402_runtime::schemes::exact_evm::eip3009;

/// anvil's public test account #1 (0x70997970C51812dc3A010C7d01b50e0d17dc79C8).
const PAYER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
/// anvil's public test account #2, the recipient.
const PAY_TO: Address = address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
const VALID_BEFORE: u64 = 1_900_000_000;

struct Seeds {
    dir: PathBuf,
    count: usize,
}

impl Seeds {
    fn bytes(&mut self, name: &str, bytes: &[u8]) {
        std::fs::write(self.dir.join(name), bytes).expect("write a seed");
        self.count += 1;
    }

    /// A JSON payment as a header value, and (for the JSON path) as JSON text.
    fn payment(&mut self, name: &str, json: &[u8]) {
        self.bytes(&format!("{name}.b64"), STANDARD.encode(json).as_bytes());
        self.bytes(&format!("{name}.json"), json);
    }

    fn value(&mut self, name: &str, value: &Value) {
        self.payment(name, value.to_string().as_bytes());
    }
}

struct Offer {
    network: Network,
    asset: Asset,
    amount: U256,
}

fn offer(chain_id: u64, currency: Currency, amount: u64) -> Offer {
    let network = Network::from_chain_id(chain_id);
    let asset = Asset::builtin(&network, currency).expect("a built-in asset");
    Offer {
        network,
        asset,
        amount: U256::from(amount),
    }
}

fn nonce(n: u8) -> B256 {
    B256::from(U256::from(n) << 200 | U256::from(0x5eed_u64))
}

/// Signs `value` for `offer` and returns `(authorization JSON, signature hex)`.
fn sign(signer: &PrivateKeySigner, offer: &Offer, value: U256, nonce: B256) -> (Value, String) {
    let authorization = Authorization {
        from: signer.address(),
        to: PAY_TO,
        value,
        valid_after: U256::ZERO,
        valid_before: U256::from(VALID_BEFORE),
        nonce,
    };
    let domain = eip3009::domain(
        &offer.asset.eip712_name,
        &offer.asset.eip712_version,
        offer.network.chain_id().expect("an EVM network"),
        offer.asset.address.as_evm().expect("an EVM token"),
    );
    // The EIP-712 digest from the runtime (checked against reference vectors in its unit tests).
    let digest = eip3009::signing_hash(&domain.separator(), &authorization);
    let signature = signer.sign_hash_sync(&digest).expect("sign");
    assert_eq!(
        eip3009::check_signature(&signature.as_bytes(), &digest, signer.address()),
        eip3009::SignatureCheck::Valid
    );
    let authorization = json!({
        "from": signer.address().to_checksum(None),
        "to": PAY_TO.to_checksum(None),
        "value": value.to_string(),
        "validAfter": "0",
        "validBefore": VALID_BEFORE.to_string(),
        "nonce": nonce.to_string(),
    });
    (
        authorization,
        format!("0x{}", alloy_primitives::hex::encode(signature.as_bytes())),
    )
}

fn accepted(offer: &Offer) -> Value {
    json!({
        "scheme": "exact",
        "network": offer.network.caip2,
        "amount": offer.amount.to_string(),
        "asset": offer.asset.address.to_string(),
        "payTo": PAY_TO.to_checksum(None),
        "maxTimeoutSeconds": 60,
        "extra": {"name": offer.asset.eip712_name, "version": offer.asset.eip712_version},
    })
}

fn v2(signer: &PrivateKeySigner, offer: &Offer, nonce: B256) -> Value {
    let (authorization, signature) = sign(signer, offer, offer.amount, nonce);
    json!({
        "x402Version": 2,
        "resource": {"url": "http://127.0.0.1:4021/weather", "description": "Weather", "mimeType": "application/json"},
        "accepted": accepted(offer),
        "payload": {"signature": signature, "authorization": authorization},
    })
}

fn v1(signer: &PrivateKeySigner, offer: &Offer, nonce: B256) -> Value {
    let (authorization, signature) = sign(signer, offer, offer.amount, nonce);
    json!({
        "x402Version": 1,
        "scheme": "exact",
        "network": offer.network.v1_name.expect("a v1 name"),
        "payload": {"signature": signature, "authorization": authorization},
    })
}

fn edit(value: &Value, pointer: &str, replacement: Value) -> Value {
    let mut edited = value.clone();
    *edited.pointer_mut(pointer).expect("the field exists") = replacement;
    edited
}

fn remove(value: &Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let mut edited = value.clone();
    edited
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("an object")
        .remove(key);
    edited
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "corpus/payment_header".into());
    std::fs::create_dir_all(&dir).expect("create the corpus folder");
    let mut seeds = Seeds {
        dir: Path::new(&dir).to_path_buf(),
        count: 0,
    };
    let signer: PrivateKeySigner = PAYER_KEY.parse().expect("the test key");

    // Real payments.
    let sepolia = offer(84532, Currency::Usdc, 1_000);
    let base = offer(8453, Currency::Usdc, 10_000);
    let eurc = offer(84532, Currency::Eurc, 2_500);
    let v2_payment = v2(&signer, &sepolia, nonce(1));
    seeds.value("valid-v2-base-sepolia-usdc", &v2_payment);
    seeds.value("valid-v2-base-usdc", &v2(&signer, &base, nonce(2)));
    seeds.value("valid-v2-base-sepolia-eurc", &v2(&signer, &eurc, nonce(3)));
    let zero = Offer {
        amount: U256::ZERO,
        ..offer(84532, Currency::Usdc, 0)
    };
    seeds.value("valid-v2-amount-zero", &v2(&signer, &zero, nonce(4)));
    let max = Offer {
        amount: U256::MAX,
        ..offer(8453, Currency::Usdc, 0)
    };
    seeds.value("valid-v2-amount-max", &v2(&signer, &max, nonce(5)));
    let mut with_extensions = v2(&signer, &sepolia, nonce(6));
    with_extensions["extensions"] = json!({
        "payment-identifier": {"info": {"required": false, "id": "pay_0123456789abcdef"}},
    });
    seeds.value("valid-v2-extensions", &with_extensions);
    let v1_payment = v1(&signer, &sepolia, nonce(7));
    seeds.value("valid-v1-base-sepolia", &v1_payment);
    seeds.value("valid-v1-base", &v1(&signer, &base, nonce(8)));
    let pretty = serde_json::to_string_pretty(&v2_payment).expect("json");
    seeds.payment("valid-v2-pretty", pretty.as_bytes());
    let header = STANDARD.encode(v2_payment.to_string());

    // A2: empty or whitespace only.
    seeds.bytes("a2-empty", b"");
    seeds.bytes("a2-spaces", b"   ");
    seeds.bytes("a2-tab-newline", b"\t\r\n");
    // A3: not base64, the URL-safe alphabet, missing or extra padding, line breaks.
    seeds.bytes("a3-bangs", b"!!!");
    seeds.bytes("a3-garbage", b"garbage-value");
    let text = v2_payment.to_string();
    // `?`, `>` and `~` make `/` and `+` in base64, where the URL-safe alphabet differs.
    let query = edit(
        &v2_payment,
        "/resource/url",
        json!("http://127.0.0.1:4021/weather?city=~>??>~"),
    )
    .to_string();
    seeds.payment("valid-v2-query", query.as_bytes());
    let url_safe = URL_SAFE.encode(&query);
    assert_ne!(url_safe, STANDARD.encode(&query), "base64 with + or /");
    seeds.bytes("a3-url-safe", url_safe.as_bytes());
    let odd = format!("{text} ");
    assert_ne!(odd.len() % 3, 0);
    seeds.bytes("a3-unpadded", STANDARD_NO_PAD.encode(&odd).as_bytes());
    seeds.bytes(
        "a3-extra-padding",
        format!("{}=", STANDARD.encode(&odd)).as_bytes(),
    );
    let wrapped: Vec<String> = header
        .as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    seeds.bytes("a3-mime-lines", wrapped.join("\r\n").as_bytes());
    seeds.bytes("a3-leading-space", format!(" {header}").as_bytes());
    // A4: not JSON, a JSON primitive or array, null.
    seeds.payment("a4-not-json", b"x402Version=2");
    seeds.payment("a4-array", b"[1,2,3]");
    seeds.payment("a4-null", b"null");
    seeds.payment("a4-number", b"402");
    seeds.payment("a4-string", b"\"payment\"");
    seeds.payment("a4-truncated", &text.as_bytes()[..text.len() / 2]);
    // A5: JSON that is not a payment.
    seeds.value("a5-note", &json!({"x402Version": 2, "note": "hello"}));
    seeds.value("a5-empty-object", &json!({}));
    // A6: a well-formed payment with a bogus signature.
    seeds.value(
        "a6-signature-00",
        &edit(&v2_payment, "/payload/signature", json!("0x00")),
    );
    seeds.value(
        "a6-signature-empty",
        &edit(&v2_payment, "/payload/signature", json!("0x")),
    );
    seeds.value(
        "a6-signature-odd",
        &edit(&v2_payment, "/payload/signature", json!("0x123")),
    );
    seeds.value(
        "a6-signature-no-prefix",
        &edit(&v2_payment, "/payload/signature", json!("abcd")),
    );
    // A7: over the size cap, deep nesting, huge numbers.
    seeds.bytes("a7-over-cap", &vec![b'A'; MAX_PAYMENT_HEADER_BYTES + 4]);
    let mut padded = text.clone().into_bytes();
    padded.resize(MAX_PAYMENT_HEADER_BYTES / 4 * 3 + 1, b' ');
    seeds.bytes("a7-valid-but-over-cap", STANDARD.encode(&padded).as_bytes());
    let depth = 600;
    let deep = format!(
        r#"{{"x402Version":2,"accepted":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    seeds.payment("a7-deep-array", deep.as_bytes());
    let deep_extra = text.replacen(
        r#""extra":{"#,
        &format!(
            r#""extra":{{"deep":{}0{},"#,
            "[".repeat(depth),
            "]".repeat(depth)
        ),
        1,
    );
    seeds.payment("a7-deep-extra", deep_extra.as_bytes());
    seeds.payment(
        "a7-huge-version",
        text.replacen(
            r#""x402Version":2"#,
            r#""x402Version":18446744073709551618"#,
            1,
        )
        .as_bytes(),
    );
    seeds.payment(
        "a7-float-version",
        text.replacen(r#""x402Version":2"#, r#""x402Version":1e400"#, 1)
            .as_bytes(),
    );
    let big = format!("1{}", "0".repeat(300));
    seeds.value(
        "a7-huge-value",
        &edit(&v2_payment, "/payload/authorization/value", json!(big)),
    );
    seeds.value(
        "a7-huge-timeout",
        &edit(&v2_payment, "/accepted/maxTimeoutSeconds", json!(u64::MAX)),
    );
    // A8: invalid UTF-8, control characters, U+2028, NaN / Infinity, duplicate keys.
    let mut bad_utf8 = text.clone().into_bytes();
    let at = text.find("Weather").expect("description");
    bad_utf8[at] = 0xff;
    seeds.payment("a8-invalid-utf8", &bad_utf8);
    seeds.payment(
        "a8-control-char",
        text.replacen("Weather", "Wea\u{1}ther", 1).as_bytes(),
    );
    seeds.payment(
        "a8-u2028",
        text.replacen("Weather", "Wea\u{2028}ther", 1).as_bytes(),
    );
    seeds.payment(
        "a8-lone-surrogate",
        text.replacen("Weather", "Wea\\ud800ther", 1).as_bytes(),
    );
    // Accepted by the decoder today: fields it does not read are skipped without checking
    // their escapes (reported; the target tolerates it).
    seeds.payment(
        "a8-lone-surrogate-unread-field",
        text.replacen(
            r#""x402Version":2"#,
            r#""x402Version":2,"note":"\ud800""#,
            1,
        )
        .as_bytes(),
    );
    seeds.payment(
        "a8-nan",
        text.replacen(r#""x402Version":2"#, r#""x402Version":NaN"#, 1)
            .as_bytes(),
    );
    seeds.payment(
        "a8-infinity",
        text.replacen(
            r#""maxTimeoutSeconds":60"#,
            r#""maxTimeoutSeconds":Infinity"#,
            1,
        )
        .as_bytes(),
    );
    seeds.payment(
        "a8-duplicate-version",
        text.replacen(
            r#""x402Version":2"#,
            r#""x402Version":2,"x402Version":1"#,
            1,
        )
        .as_bytes(),
    );
    let from = signer.address().to_checksum(None);
    seeds.payment(
        "a8-duplicate-from",
        text.replacen(
            &format!(r#""from":"{from}""#),
            &format!(r#""from":"{from}","from":"{}""#, PAY_TO.to_checksum(None)),
            1,
        )
        .as_bytes(),
    );
    seeds.payment(
        "a8-duplicate-extra-name",
        text.replacen(r#""name":"USDC""#, r#""name":"USDC","name":"USD Coin""#, 1)
            .as_bytes(),
    );
    seeds.payment("a8-trailing-data", format!("{text} {{}}").as_bytes());
    seeds.payment("a8-bom", format!("\u{feff}{text}").as_bytes());
    // A9: the v1 payment (what an `X-PAYMENT` header carries) read as v2, and both in one value.
    let v1_header = STANDARD.encode(v1_payment.to_string());
    seeds.bytes("a9-v1-header", v1_header.as_bytes());
    seeds.bytes("a9-v2-and-v1", format!("{header}, {v1_header}").as_bytes());
    // A10: a repeated header joined with a comma.
    seeds.bytes("a10-comma-joined", format!("{header},{header}").as_bytes());
    seeds.bytes(
        "a10-comma-space-joined",
        format!("{header}, {header}").as_bytes(),
    );
    // B1: v1 shape with version 2, v2 shape with version 1.
    seeds.value(
        "b1-v1-shape-version-2",
        &edit(&v1_payment, "/x402Version", json!(2)),
    );
    seeds.value(
        "b1-v2-shape-version-1",
        &edit(&v2_payment, "/x402Version", json!(1)),
    );
    // B2: unknown, string, missing, negative, fractional, null version.
    for (name, version) in [
        ("b2-version-99", json!(99)),
        ("b2-version-string", json!("2")),
        ("b2-version-negative", json!(-2)),
        ("b2-version-fraction", json!(2.5)),
        ("b2-version-null", Value::Null),
        ("b2-version-zero", json!(0)),
    ] {
        seeds.value(name, &edit(&v2_payment, "/x402Version", version));
    }
    seeds.value("b2-version-missing", &remove(&v2_payment, "/x402Version"));
    // B3: fields missing, numbers instead of strings.
    for pointer in [
        "/accepted",
        "/payload",
        "/payload/authorization",
        "/payload/signature",
        "/payload/authorization/nonce",
        "/accepted/extra",
        "/resource",
    ] {
        let name = format!("b3-missing{}", pointer.replace('/', "-"));
        seeds.value(&name, &remove(&v2_payment, pointer));
    }
    seeds.value("b3-v1-missing-network", &remove(&v1_payment, "/network"));
    seeds.value(
        "b3-value-number",
        &edit(&v2_payment, "/payload/authorization/value", json!(1000)),
    );
    seeds.value(
        "b3-valid-before-number",
        &edit(
            &v2_payment,
            "/payload/authorization/validBefore",
            json!(VALID_BEFORE),
        ),
    );
    seeds.value(
        "b3-amount-number",
        &edit(&v2_payment, "/accepted/amount", json!(1000)),
    );
    seeds.value(
        "b3-accepted-array",
        &edit(&v2_payment, "/accepted", json!([])),
    );
    // B4: non-canonical numbers.
    let over = format!("{}", U256::MAX).replacen("5", "6", 1);
    for (i, number) in [
        "010000",
        "1e4",
        "+1",
        " 1",
        "1 ",
        "0x10",
        "-1",
        "1.0",
        "1_000",
        "",
        "00",
        "٣",
        over.as_str(),
    ]
    .into_iter()
    .enumerate()
    {
        seeds.value(
            &format!("b4-value-{i:02}"),
            &edit(&v2_payment, "/payload/authorization/value", json!(number)),
        );
    }
    seeds.value(
        "b4-valid-after-leading-zero",
        &edit(
            &v2_payment,
            "/payload/authorization/validAfter",
            json!("00"),
        ),
    );
    // B5: nonces that are not 32 bytes of hex.
    let nonce_hex = nonce(1).to_string();
    for (name, bad) in [
        ("b5-nonce-31-bytes", nonce_hex[..64].to_owned()),
        ("b5-nonce-33-bytes", format!("{nonce_hex}00")),
        ("b5-nonce-not-hex", format!("0x{}", "zz".repeat(32))),
        ("b5-nonce-no-prefix", nonce_hex[2..].to_owned()),
        ("b5-nonce-decimal", "1".to_owned()),
    ] {
        seeds.value(
            name,
            &edit(&v2_payment, "/payload/authorization/nonce", json!(bad)),
        );
    }
    // B6: address case (lower and upper are accepted, a bad checksum is not) and shape.
    let hex = alloy_primitives::hex::encode(signer.address());
    let mut bad_checksum = from.clone().into_bytes();
    let letter = bad_checksum[2..]
        .iter()
        .position(u8::is_ascii_alphabetic)
        .expect("a letter")
        + 2;
    bad_checksum[letter] ^= 0x20;
    let bad_checksum = String::from_utf8(bad_checksum).expect("ascii");
    for (name, pointer, spelled) in [
        (
            "b6-from-lower",
            "/payload/authorization/from",
            format!("0x{hex}"),
        ),
        (
            "b6-from-upper",
            "/payload/authorization/from",
            format!("0x{}", hex.to_uppercase()),
        ),
        (
            "b6-from-bad-checksum",
            "/payload/authorization/from",
            bad_checksum.clone(),
        ),
        (
            "b6-from-no-prefix",
            "/payload/authorization/from",
            hex.clone(),
        ),
        (
            "b6-from-0X",
            "/payload/authorization/from",
            format!("0X{hex}"),
        ),
        (
            "b6-from-short",
            "/payload/authorization/from",
            format!("0x{}", &hex[..38]),
        ),
        (
            "b6-to-bad-checksum",
            "/payload/authorization/to",
            bad_checksum.clone(),
        ),
        (
            "b6-asset-lower",
            "/accepted/asset",
            format!(
                "0x{}",
                alloy_primitives::hex::encode(sepolia.asset.address.as_bytes())
            ),
        ),
        (
            "b6-pay-to-bad-checksum",
            "/accepted/payTo",
            bad_checksum.clone(),
        ),
    ] {
        seeds.value(name, &edit(&v2_payment, pointer, json!(spelled)));
    }
    seeds.value(
        "b6-v1-from-upper",
        &edit(
            &v1_payment,
            "/payload/authorization/from",
            json!(format!("0x{}", hex.to_uppercase())),
        ),
    );
    // E4: the high-s twin and the 64-byte compact form of the same signature.
    let signature = alloy_primitives::hex::decode(
        v2_payment["payload"]["signature"]
            .as_str()
            .expect("signature"),
    )
    .expect("hex");
    for (i, twin) in x402_fuzz::signature_twins(&signature)
        .into_iter()
        .enumerate()
    {
        seeds.value(
            &format!("e4-signature-twin-{i}"),
            &edit(
                &v2_payment,
                "/payload/signature",
                json!(format!("0x{}", alloy_primitives::hex::encode(twin))),
            ),
        );
    }

    println!("wrote {} seeds to {dir}", seeds.count);
}
