//! Behaviour of `#[paid]` handlers over real HTTP on 127.0.0.1, against a facilitator double,
//! with payments signed for real (alloy, public test keys).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alloy_primitives::U256;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use support::*;
use x402_runtime::proto::{PaymentRequiredV1, SettleResponse};
use x402_runtime::{Payment, paid};

type Runs = Arc<AtomicUsize>;

/// Counted paid content.
#[paid(price = "0.001", method = "GET", path = "/counted")]
async fn counted(State(runs): State<Runs>) -> &'static str {
    runs.fetch_add(1, Ordering::SeqCst);
    "paid content"
}

#[derive(Deserialize)]
struct Code {
    code: u16,
}

/// Answers with the status asked for.
#[paid(price = "0.001", method = "GET", path = "/status")]
async fn status(State(runs): State<Runs>, Query(q): Query<Code>) -> (StatusCode, &'static str) {
    runs.fetch_add(1, Ordering::SeqCst);
    (
        StatusCode::from_u16(q.code).unwrap_or(StatusCode::OK),
        "handler body",
    )
}

/// Settles before running and reports the transaction.
#[paid(price = "0.002", method = "POST", path = "/upfront", settle = "before")]
async fn upfront(State(runs): State<Runs>, payment: Payment) -> Json<Value> {
    runs.fetch_add(1, Ordering::SeqCst);
    Json(json!({
        "transaction": payment.transaction(),
        "payer": payment.payer().to_string(),
        "amount": payment.amount().to_string(),
        "network": payment.network(),
    }))
}

/// Echoes a JSON body.
#[paid(price = "0.01", method = "POST", path = "/echo")]
async fn echo(State(runs): State<Runs>, Json(body): Json<Value>) -> Json<Value> {
    runs.fetch_add(1, Ordering::SeqCst);
    Json(body)
}

/// Priced in dollars.
#[paid(price = "$0.01", method = "GET", path = "/dollar")]
async fn dollar() -> &'static str {
    "dollar content"
}

/// Priced in euro, with every option.
#[paid(
    price = "0.05",
    currency = "EURC",
    description = "Euro content",
    max_timeout_seconds = 120,
    method = "GET",
    path = "/euro"
)]
async fn euro() -> &'static str {
    "euro content"
}

/// Panics when asked to.
#[paid(price = "0.001", method = "GET", path = "/panics")]
async fn panics(State(runs): State<Runs>, Query(q): Query<Code>) -> &'static str {
    runs.fetch_add(1, Ordering::SeqCst);
    assert!(q.code != 500, "handler bug");
    "no panic"
}

struct Harness {
    base: String,
    facilitator: Facilitator,
    runs: Runs,
    client: reqwest::Client,
    payer: Payer,
}

impl Harness {
    async fn start() -> Harness {
        let facilitator = Facilitator::start().await;
        Self::with(facilitator.clone(), paywall(&facilitator)).await
    }

    async fn with(facilitator: Facilitator, x402: x402_runtime::X402) -> Harness {
        let runs = Runs::default();
        let app = Router::new()
            .route("/counted", get(counted))
            .route("/status", get(status))
            .route("/upfront", post(upfront))
            .route("/echo", post(echo))
            .route("/dollar", get(dollar))
            .route("/panics", get(panics))
            .route("/euro", get(euro))
            .with_state(runs.clone())
            .merge(example_weather::app(x402.clone()))
            .layer(x402.layer());
        let base = serve(app).await;
        Harness {
            base,
            facilitator,
            runs,
            client: http(),
            payer: Payer::new(PAYER_KEY),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str, payment: Option<(&str, &str)>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some((name, value)) = payment {
            request = request.header(name, value);
        }
        request.send().await.expect("request")
    }

    /// A fresh, valid v2 payment for `path` (read from its live 402).
    async fn payment_for(&self, path: &str, terms: &Terms) -> String {
        let unpaid = self.get(path, None).await;
        assert_eq!(unpaid.status(), 402);
        self.payer.pay_v2(&challenge_of(&unpaid), terms)
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("json body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpaid_request_gets_the_dual_stack_challenge() {
    let h = Harness::start().await;
    let response = h.get("/weather?city=Paris", None).await;
    assert_eq!(response.status(), 402);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["content-type"], "application/json");
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii");
    assert!(exposed.contains("PAYMENT-REQUIRED") && exposed.contains("PAYMENT-RESPONSE"));
    let challenge = challenge_of(&response);
    assert_eq!(challenge.x402_version, 2);
    assert_eq!(
        challenge.error.as_deref(),
        Some("PAYMENT-SIGNATURE header is required")
    );
    assert_eq!(challenge.resource.url, h.url("/weather"));
    assert_eq!(
        challenge.resource.description.as_deref(),
        Some("Current weather for a city.")
    );
    let offer = &challenge.accepts[0];
    assert_eq!(challenge.accepts.len(), 1);
    assert_eq!(
        (offer.scheme.as_str(), offer.network.as_str()),
        ("exact", "eip155:84532")
    );
    assert_eq!(offer.amount, "1000");
    assert_eq!(offer.asset, USDC);
    assert_eq!(offer.pay_to, PAY_TO);
    assert_eq!(offer.max_timeout_seconds, 60);
    let extra = offer.extra.as_ref().expect("extra");
    assert_eq!(
        (extra["name"].as_str(), extra["version"].as_str()),
        (Some("USDC"), Some("2"))
    );
    let v1: PaymentRequiredV1 = response.json().await.expect("v1 body");
    assert_eq!(v1.x402_version, 1);
    assert_eq!(v1.accepts[0].network, "base-sepolia");
    assert_eq!(v1.accepts[0].max_amount_required, "1000");
    assert_eq!(v1.accepts[0].resource, h.url("/weather"));
    assert_eq!(v1.accepts[0].pay_to, PAY_TO);
    // The challenge is stable and priced per route.
    let again = challenge_of(&h.get("/weather", None).await);
    assert_eq!(again, challenge);
    let forecast = h
        .client
        .post(h.url("/forecast"))
        .send()
        .await
        .expect("request");
    assert_eq!(challenge_of(&forecast).accepts[0].amount, "10000");
    assert_eq!(h.facilitator.calls(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_without_query_or_body_get_402_not_400() {
    let h = Harness::start().await;
    assert_eq!(h.get("/weather", None).await.status(), 402);
    assert_eq!(
        h.client
            .post(h.url("/forecast"))
            .send()
            .await
            .expect("request")
            .status(),
        402
    );
    let garbage = h
        .client
        .post(h.url("/forecast"))
        .header("content-type", "text/plain")
        .body("{")
        .send();
    assert_eq!(garbage.await.expect("request").status(), 402);
    assert_eq!(h.get("/health", None).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_is_priced_like_get_and_never_charged() {
    let h = Harness::start().await;
    let head = h
        .client
        .head(h.url("/counted"))
        .send()
        .await
        .expect("request");
    assert_eq!(head.status(), 402);
    let get_challenge = challenge_of(&h.get("/counted", None).await);
    assert_eq!(challenge_of(&head), get_challenge);
    let payment = h.payer.pay_v2(&get_challenge, &Terms::default());
    let paid_head = h
        .client
        .head(h.url("/counted"))
        .header("PAYMENT-SIGNATURE", &payment)
        .send()
        .await
        .expect("request");
    assert_eq!(paid_head.status(), 402);
    assert_eq!(h.facilitator.calls(), vec![]);
    assert_eq!(h.runs(), 0);
    // The payment was not spent: it still buys the GET.
    assert_eq!(
        h.get("/counted", Some(("PAYMENT-SIGNATURE", &payment)))
            .await
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_v2_request_is_served_settled_and_receipted() {
    let h = Harness::start().await;
    let terms = Terms::default();
    let payment = h.payment_for("/weather", &terms).await;
    let response = h
        .get("/weather?city=Paris", Some(("payment-signature", &payment)))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "private");
    let receipt: SettleResponse = decode_b64(
        response.headers()["payment-response"]
            .to_str()
            .expect("ascii"),
    );
    assert!(receipt.success);
    assert_eq!(receipt.transaction, tx_for(&terms.nonce.to_string()));
    assert_eq!(receipt.network, "eip155:84532");
    assert_eq!(
        receipt.payer.as_deref(),
        Some(h.payer.address().to_checksum(None).as_str())
    );
    assert!(response.headers().get("x-payment-response").is_none());
    let body = json_of(response).await;
    assert_eq!(body["city"], "Paris");
    assert_eq!(body["paid_by"], h.payer.address().to_checksum(None));
    let calls = h.facilitator.calls();
    assert_eq!(
        calls.iter().map(|c| c.endpoint).collect::<Vec<_>>(),
        ["verify", "settle"]
    );
    assert_eq!(calls[0].x402_version, 2);
    // The facilitator gets our requirements, not the client's copy.
    assert_eq!(calls[1].requirements["amount"], "1000");
    assert_eq!(calls[1].requirements["payTo"], PAY_TO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_v1_request_is_served_with_a_v1_receipt() {
    let h = Harness::start().await;
    let unpaid = h.get("/counted", None).await;
    let body: PaymentRequiredV1 = unpaid.json().await.expect("v1 body");
    let terms = Terms {
        valid_after: unix_now() - 600,
        ..Terms::default()
    };
    let payment = h.payer.pay_v1(&body, &terms);
    let response = h.get("/counted", Some(("X-PAYMENT", &payment))).await;
    assert_eq!(response.status(), 200);
    let receipt: SettleResponse = decode_b64(
        response.headers()["x-payment-response"]
            .to_str()
            .expect("ascii"),
    );
    assert!(receipt.success);
    assert_eq!(receipt.network, "base-sepolia");
    assert!(response.headers().get("payment-response").is_none());
    assert_eq!(response.text().await.expect("body"), "paid content");
    let calls = h.facilitator.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c.x402_version == 1));
    assert_eq!(calls[0].requirements["maxAmountRequired"], "1000");
    assert_eq!(calls[0].requirements["network"], "base-sepolia");
    assert_eq!(h.runs(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_are_passed_through_and_never_settled() {
    let h = Harness::start().await;
    for code in [400u16, 404, 500, 503, 302] {
        let payment = h.payment_for("/status", &Terms::default()).await;
        let response = h
            .get(
                &format!("/status?code={code}"),
                Some(("PAYMENT-SIGNATURE", &payment)),
            )
            .await;
        assert_eq!(response.status().as_u16(), code);
        assert!(response.headers().get("payment-response").is_none());
        // The reservation was released: the same payment still buys a successful answer.
        let retry = h
            .get("/status?code=201", Some(("PAYMENT-SIGNATURE", &payment)))
            .await;
        assert_eq!(retry.status(), 201, "retry after {code}");
        assert!(retry.headers().get("payment-response").is_some());
    }
    assert_eq!(h.facilitator.count("settle"), 5);
    assert_eq!(h.runs(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_settlement_withholds_the_body() {
    let h = Harness::start().await;
    h.facilitator
        .set_settle(SettleMode::Fail("invalid_exact_evm_insufficient_balance"));
    let payment = h.payment_for("/counted", &Terms::default()).await;
    let response = h
        .get("/counted", Some(("PAYMENT-SIGNATURE", &payment)))
        .await;
    assert_eq!(response.status(), 402);
    assert!(response.headers().get("payment-required").is_none());
    assert_eq!(response.headers()["cache-control"], "no-store");
    let receipt: SettleResponse = decode_b64(
        response.headers()["payment-response"]
            .to_str()
            .expect("ascii"),
    );
    assert!(!receipt.success);
    assert_eq!(
        receipt.error_reason.as_deref(),
        Some("invalid_exact_evm_insufficient_balance")
    );
    assert_eq!(receipt.transaction, "");
    let body = response.text().await.expect("body");
    assert!(!body.contains("paid content"), "{body}");
    assert!(
        !body.contains("execution reverted"),
        "facilitator internals leaked: {body}"
    );
    assert_eq!(h.runs(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_copies_of_one_payment_run_and_settle_once() {
    let h = Arc::new(Harness::start().await);
    let payment = h.payment_for("/counted", &Terms::default()).await;
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (h, payment) = (h.clone(), payment.clone());
        tasks.push(tokio::spawn(async move {
            let response = h
                .get("/counted", Some(("PAYMENT-SIGNATURE", &payment)))
                .await;
            let code = response.status().as_u16();
            let body = json_of_or_text(response).await;
            (code, body)
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task"));
    }
    let ok = statuses.iter().filter(|(s, _)| *s == 200).count();
    let conflicts: Vec<_> = statuses.iter().filter(|(s, _)| *s == 409).collect();
    assert_eq!(ok, 1, "{statuses:?}");
    assert_eq!(conflicts.len(), 63, "{statuses:?}");
    assert_eq!(h.runs(), 1);
    assert_eq!(h.facilitator.count("settle"), 1);
    assert_eq!(h.facilitator.count("verify"), 1);
    // A copy after settlement is refused naming the original transaction.
    let late = h
        .get("/counted", Some(("PAYMENT-SIGNATURE", &payment)))
        .await;
    assert_eq!(late.status(), 409);
    assert!(late.headers().get("payment-response").is_none());
    let body = json_of(late).await;
    assert_eq!(body["error"], "payment_already_settled");
    let nonce = h.facilitator.calls()[0].nonce.clone();
    assert_eq!(body["transaction"], tx_for(&nonce));
    assert_eq!(h.facilitator.count("settle"), 1);
}

async fn json_of_or_text(response: reqwest::Response) -> String {
    response.text().await.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_encoded_copy_is_the_same_payment() {
    let h = Harness::start().await;
    let payment = h.payment_for("/counted", &Terms::default()).await;
    assert_eq!(
        h.get("/counted", Some(("PAYMENT-SIGNATURE", &payment)))
            .await
            .status(),
        200
    );
    // Same authorization, lower-case addresses and reordered keys: still one key.
    let copy = edit_payment(&payment, |v| {
        let auth = &mut v["payload"]["authorization"];
        let from = auth["from"].as_str().expect("from").to_lowercase();
        auth["from"] = Value::String(from);
        let nonce = auth["nonce"]
            .as_str()
            .expect("nonce")
            .to_uppercase()
            .replacen("0X", "0x", 1);
        auth["nonce"] = Value::String(nonce);
    });
    assert_ne!(copy, payment);
    let response = h.get("/counted", Some(("PAYMENT-SIGNATURE", &copy))).await;
    assert_eq!(response.status(), 409);
    assert_eq!(h.runs(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payment_headers_get_400_without_a_facilitator_call() {
    let h = Harness::start().await;
    let valid = h.payment_for("/counted", &Terms::default()).await;
    let cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("whitespace", "   ".into()),
        ("not base64", "!!!".into()),
        ("url-safe alphabet", url_safe_variant(&valid)),
        ("unpadded", valid.trim_end_matches('=').to_owned()),
        ("not json", base64_of(b"hello")),
        ("json array", base64_of(b"[1,2]")),
        ("json null", base64_of(b"null")),
        (
            "not a payment",
            base64_of(br#"{"x402Version":2,"note":"hi"}"#),
        ),
        (
            "amount with leading zero",
            edit_payment(&valid, |v| {
                v["payload"]["authorization"]["value"] = json!("01000")
            }),
        ),
        (
            "amount as number",
            edit_payment(&valid, |v| {
                v["payload"]["authorization"]["value"] = json!(1000)
            }),
        ),
        (
            "short nonce",
            edit_payment(&valid, |v| {
                v["payload"]["authorization"]["nonce"] = json!("0x01")
            }),
        ),
        (
            "bad checksum",
            edit_payment(&valid, |v| {
                v["payload"]["authorization"]["from"] =
                    json!("0x70997970c51812dc3A010C7d01b50e0d17dc79C8")
            }),
        ),
        (
            "bogus signature",
            edit_payment(&valid, |v| v["payload"]["signature"] = json!("0x00")),
        ),
        (
            "duplicate key",
            base64_of(br#"{"x402Version":2,"x402Version":2}"#),
        ),
        (
            "lone surrogate in an unread field",
            with_lone_surrogate(&valid),
        ),
    ];
    for (what, header) in &cases {
        let response = h.get("/counted", Some(("PAYMENT-SIGNATURE", header))).await;
        assert_eq!(response.status(), 400, "{what}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{what}");
        assert_eq!(
            json_of(response).await["error"],
            "invalid_payload",
            "{what}"
        );
    }
    let huge = "A".repeat(20 * 1024);
    let response = h.get("/counted", Some(("PAYMENT-SIGNATURE", &huge))).await;
    assert_eq!(response.status(), 431);
    let repeated = h
        .client
        .get(h.url("/counted"))
        .header("PAYMENT-SIGNATURE", &valid)
        .header("PAYMENT-SIGNATURE", &valid);
    assert_eq!(repeated.send().await.expect("request").status(), 400);
    assert_eq!(h.facilitator.calls(), vec![]);
    assert_eq!(h.runs(), 0);
}

/// The payment with an extra field holding `"\ud800"`: invalid JSON text that a decoder skipping
/// unknown fields would pass on to the facilitator.
fn with_lone_surrogate(valid: &str) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    let json = String::from_utf8(STANDARD.decode(valid).expect("base64")).expect("utf-8");
    let body = json.trim_end().strip_suffix('}').expect("an object");
    base64_of(format!(r#"{body},"note":"\ud800"}}"#).as_bytes())
}

/// The payment re-encoded with the URL-safe alphabet, padded so that the encoding really uses
/// `-` or `_`.
fn url_safe_variant(valid: &str) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let mut payment: Value = decode_b64(valid);
    for pad in 0.. {
        payment["pad"] = json!("?>".repeat(pad));
        let json = serde_json::to_vec(&payment).expect("json");
        if STANDARD.encode(&json).contains(['+', '/']) {
            return URL_SAFE.encode(json);
        }
    }
    unreachable!()
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_problems_are_refused_locally_with_402() {
    let h = Harness::start().await;
    let challenge = challenge_of(&h.get("/counted", None).await);
    let now = unix_now();
    let other = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
        .parse()
        .expect("address");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "overpay",
            h.payer.pay_v2(
                &challenge,
                &Terms {
                    value: Some(U256::from(1001)),
                    ..Terms::default()
                },
            ),
            "invalid_exact_evm_payload_authorization_value_mismatch",
        ),
        (
            "underpay",
            h.payer.pay_v2(
                &challenge,
                &Terms {
                    value: Some(U256::from(999)),
                    ..Terms::default()
                },
            ),
            "invalid_exact_evm_payload_authorization_value_mismatch",
        ),
        (
            "other recipient",
            h.payer.pay_v2(
                &challenge,
                &Terms {
                    to: Some(other),
                    ..Terms::default()
                },
            ),
            "invalid_exact_evm_payload_recipient_mismatch",
        ),
        (
            "expired",
            h.payer.pay_v2(
                &challenge,
                &Terms {
                    valid_before: now - 1,
                    ..Terms::default()
                },
            ),
            "invalid_exact_evm_payload_authorization_valid_before",
        ),
        (
            "within the 6 s margin",
            h.payer.pay_v2(
                &challenge,
                &Terms {
                    valid_before: now + 3,
                    ..Terms::default()
                },
            ),
            "invalid_exact_evm_payload_authorization_valid_before",
        ),
        (
            "valid for a year",
            h.payer.pay_v2(
                &challenge,
                &Terms {
                    valid_before: now + 365 * 86400,
                    ..Terms::default()
                },
            ),
            "invalid_exact_evm_payload_authorization_valid_before",
        ),
        (
            "not yet valid",
            h.payer.pay_v2(
                &challenge,
                &Terms {
                    valid_after: now + 120,
                    ..Terms::default()
                },
            ),
            "invalid_exact_evm_payload_authorization_valid_after",
        ),
        (
            "high-s twin",
            high_s(&h.payer.pay_v2(&challenge, &Terms::default())),
            "invalid_exact_evm_payload_signature",
        ),
        (
            "bad v",
            edit_payment(&h.payer.pay_v2(&challenge, &Terms::default()), |v| {
                let sig = v["payload"]["signature"].as_str().expect("sig").to_owned();
                v["payload"]["signature"] = json!(format!("{}01", &sig[..sig.len() - 2]));
            }),
            "invalid_exact_evm_payload_signature",
        ),
        (
            "lowered accepted amount",
            edit_payment(
                &h.payer.pay_v2(
                    &challenge,
                    &Terms {
                        value: Some(U256::from(1)),
                        ..Terms::default()
                    },
                ),
                |v| {
                    v["accepted"]["amount"] = json!("1");
                },
            ),
            "invalid_payment_requirements",
        ),
        (
            "other asset",
            edit_payment(&h.payer.pay_v2(&challenge, &Terms::default()), |v| {
                v["accepted"]["asset"] = json!("0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65");
            }),
            "invalid_payment_requirements",
        ),
        (
            "altered timeout",
            edit_payment(&h.payer.pay_v2(&challenge, &Terms::default()), |v| {
                v["accepted"]["maxTimeoutSeconds"] = json!(3600)
            }),
            "invalid_payment_requirements",
        ),
        (
            "altered domain name",
            edit_payment(&h.payer.pay_v2(&challenge, &Terms::default()), |v| {
                v["accepted"]["extra"]["name"] = json!("USD Coin")
            }),
            "invalid_payment_requirements",
        ),
        (
            "other network",
            edit_payment(&h.payer.pay_v2(&challenge, &Terms::default()), |v| {
                v["accepted"]["network"] = json!("eip155:8453")
            }),
            "invalid_network",
        ),
        (
            "other scheme",
            edit_payment(&h.payer.pay_v2(&challenge, &Terms::default()), |v| {
                v["accepted"]["scheme"] = json!("upto")
            }),
            "invalid_scheme",
        ),
        (
            "paid for another resource",
            edit_payment(&h.payer.pay_v2(&challenge, &Terms::default()), |v| {
                v["resource"]["url"] = json!("http://127.0.0.1/status");
            }),
            "invalid_payment_requirements",
        ),
        (
            "v1 payload in the v2 header",
            edit_payment(&h.payer.pay_v2(&challenge, &Terms::default()), |v| {
                v["x402Version"] = json!(1)
            }),
            "invalid_x402_version",
        ),
    ];
    for (what, header, code) in &cases {
        let response = h.get("/counted", Some(("PAYMENT-SIGNATURE", header))).await;
        assert_eq!(response.status(), 402, "{what}");
        let refused = challenge_of(&response);
        assert_eq!(refused.error.as_deref(), Some(*code), "{what}");
        assert_eq!(refused.accepts, challenge.accepts, "{what}");
    }
    assert_eq!(
        h.facilitator.calls(),
        vec![],
        "local refusals never reach the facilitator"
    );
    assert_eq!(h.runs(), 0);
}

/// A well-formed 65-byte signature that does not recover to `from` is not refused locally:
/// FiatTokenV2_2 checks it with the wallet's ERC-1271 `isValidSignature` when `from` has code,
/// which only the facilitator can see. The facilitator refuses these (it rebuilds the EIP-712
/// domain from our network and asset); nothing runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_by_another_signer_are_left_to_the_facilitator() {
    let h = Harness::start().await;
    let challenge = challenge_of(&h.get("/counted", None).await);
    let other = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
        .parse()
        .expect("address");
    h.facilitator
        .set_verify(VerifyMode::Invalid("invalid_exact_evm_signature"));
    let cases: Vec<(&str, String)> = vec![
        (
            "signed for another chain",
            h.payer.pay_v2(
                &challenge,
                &Terms {
                    chain_id: 8453,
                    ..Terms::default()
                },
            ),
        ),
        (
            "signed for another token",
            h.payer.pay_v2(
                &challenge,
                &Terms {
                    token: Some(other),
                    ..Terms::default()
                },
            ),
        ),
        (
            "signed by someone else",
            edit_payment(
                &Payer::new(PAYER2_KEY).pay_v2(&challenge, &Terms::default()),
                |v| {
                    v["payload"]["authorization"]["from"] =
                        json!(Payer::new(PAYER_KEY).address().to_checksum(None));
                },
            ),
        ),
    ];
    for (what, header) in &cases {
        let response = h.get("/counted", Some(("PAYMENT-SIGNATURE", header))).await;
        assert_eq!(response.status(), 402, "{what}");
        assert_eq!(
            challenge_of(&response).error.as_deref(),
            Some("invalid_exact_evm_signature"),
            "{what}"
        );
    }
    assert_eq!(h.facilitator.count("verify"), cases.len());
    assert_eq!(h.facilitator.count("settle"), 0);
    assert_eq!(h.runs(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facilitator_refusal_is_a_402_and_frees_the_payment() {
    let h = Harness::start().await;
    h.facilitator.set_verify(VerifyMode::Invalid(
        "invalid_exact_evm_insufficient_balance",
    ));
    let payment = h.payment_for("/counted", &Terms::default()).await;
    let response = h
        .get("/counted", Some(("PAYMENT-SIGNATURE", &payment)))
        .await;
    assert_eq!(response.status(), 402);
    assert_eq!(
        challenge_of(&response).error.as_deref(),
        Some("invalid_exact_evm_insufficient_balance")
    );
    let body = response.text().await.expect("body");
    assert!(
        !body.contains("secret detail"),
        "facilitator message leaked: {body}"
    );
    h.facilitator.set_verify(VerifyMode::Valid);
    assert_eq!(
        h.get("/counted", Some(("PAYMENT-SIGNATURE", &payment)))
            .await
            .status(),
        200
    );
    assert_eq!(h.runs(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facilitator_faults_are_504_or_pending_never_content() {
    let facilitator = Facilitator::start().await;
    let h = Harness::with(
        facilitator.clone(),
        paywall_with(&facilitator, Duration::from_millis(300)),
    )
    .await;
    h.facilitator.set_verify(VerifyMode::Hang);
    let payment = h.payment_for("/counted", &Terms::default()).await;
    let response = h
        .get("/counted", Some(("PAYMENT-SIGNATURE", &payment)))
        .await;
    assert_eq!(response.status(), 504);
    assert_eq!(json_of(response).await["error"], "facilitator_timeout");
    h.facilitator.set_verify(VerifyMode::Valid);
    h.facilitator.set_settle(SettleMode::Garbage);
    let response = h
        .get("/counted", Some(("PAYMENT-SIGNATURE", &payment)))
        .await;
    // An answer that is not a settle response: the outcome is unknown (money may have moved).
    assert_eq!(response.status(), 503);
    assert_eq!(json_of(response).await["error"], "settlement_pending");
    // The payment stays recorded: a resend reconciles and is not served again.
    let resend = h
        .get("/counted", Some(("PAYMENT-SIGNATURE", &payment)))
        .await;
    assert_eq!(resend.status(), 503);
    assert_eq!(h.facilitator.count("settle"), 2, "one reconciling /settle");
    h.facilitator.set_settle(SettleMode::WrongPayer);
    let other = h.payment_for("/counted", &Terms::default()).await;
    assert_eq!(
        h.get("/counted", Some(("PAYMENT-SIGNATURE", &other)))
            .await
            .status(),
        503
    );
    assert_eq!(h.runs(), 2, "handlers ran, but no content was delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlement_pending_is_not_a_402() {
    let h = Harness::start().await;
    h.facilitator.set_settle(SettleMode::Pending);
    let terms = Terms::default();
    let payment = h.payment_for("/counted", &terms).await;
    let response = h
        .get("/counted", Some(("PAYMENT-SIGNATURE", &payment)))
        .await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_some());
    let receipt: SettleResponse = decode_b64(
        response.headers()["payment-response"]
            .to_str()
            .expect("ascii"),
    );
    assert_eq!(receipt.error_reason.as_deref(), Some("settlement_pending"));
    assert_eq!(receipt.transaction, tx_for(&terms.nonce.to_string()));
    // A resend reconciles: one `/settle` with the same payload (the double still answers
    // pending), and the answer names the transaction again; never a fresh challenge.
    let resend = h
        .get("/counted", Some(("PAYMENT-SIGNATURE", &payment)))
        .await;
    assert_eq!(resend.status(), 503);
    assert!(resend.headers().get("retry-after").is_some());
    assert_eq!(
        json_of(resend).await["transaction"],
        tx_for(&terms.nonce.to_string())
    );
    let settles: Vec<_> = h
        .facilitator
        .calls()
        .into_iter()
        .filter(|c| c.endpoint == "settle")
        .collect();
    assert_eq!(settles.len(), 2, "one reconciling settle");
    assert!(settles.iter().all(|c| c.nonce == terms.nonce.to_string()));
    // Once the facilitator knows the outcome, the next resend learns it.
    h.facilitator.set_settle(SettleMode::Success);
    let settled = h
        .get("/counted", Some(("PAYMENT-SIGNATURE", &payment)))
        .await;
    assert_eq!(settled.status(), 409);
    let body = json_of(settled).await;
    assert_eq!(body["error"], "payment_already_settled");
    assert_eq!(body["transaction"], tx_for(&terms.nonce.to_string()));
    assert_eq!(h.facilitator.count("settle"), 3);
    assert_eq!(h.runs(), 1, "the handler ran once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_before_runs_the_handler_after_settlement() {
    let h = Harness::start().await;
    let terms = Terms::default();
    let unpaid = h
        .client
        .post(h.url("/upfront"))
        .send()
        .await
        .expect("request");
    let payment = h.payer.pay_v2(&challenge_of(&unpaid), &terms);
    let response = h
        .client
        .post(h.url("/upfront"))
        .header("PAYMENT-SIGNATURE", &payment)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("payment-response").is_some());
    let body = json_of(response).await;
    assert_eq!(body["transaction"], tx_for(&terms.nonce.to_string()));
    assert_eq!(body["amount"], "2000");
    assert_eq!(body["network"], "eip155:84532");
    assert_eq!(body["payer"], h.payer.address().to_checksum(None));

    h.facilitator
        .set_settle(SettleMode::Fail("invalid_exact_evm_nonce_already_used"));
    let unpaid = h
        .client
        .post(h.url("/upfront"))
        .send()
        .await
        .expect("request");
    let payment = h.payer.pay_v2(&challenge_of(&unpaid), &Terms::default());
    let response = h
        .client
        .post(h.url("/upfront"))
        .header("PAYMENT-SIGNATURE", &payment)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 402);
    assert_eq!(h.runs(), 1, "the handler never runs when settlement fails");
}

/// `payment-identifier` on a `settle = "before"` route: the resend of the same payment gets the
/// recorded response (status, JSON body, content type, receipt) without a second verify, settle
/// or handler run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_identifier_with_settle_before_gives_the_recorded_response() {
    let facilitator = Facilitator::start().await;
    let x402 = paywall(&facilitator);
    let upfront_route = x402_runtime::routes()
        .into_iter()
        .find(|r| r.handler() == "upfront")
        .expect("upfront");
    x402.declare_payment_identifier(upfront_route, true);
    let h = Harness::with(facilitator, x402).await;
    let unpaid = h
        .client
        .post(h.url("/upfront"))
        .send()
        .await
        .expect("request");
    let challenge = challenge_of(&unpaid);
    assert_eq!(
        challenge.extensions.as_ref().expect("extensions")["payment-identifier"],
        x402_runtime::server::identifier::extension(true)
    );
    let payment = edit_payment(&h.payer.pay_v2(&challenge, &Terms::default()), |v| {
        v["extensions"] = json!({"payment-identifier": {"info": {"required": true, "id": "pay_upfront_0123456789abcdef"}}});
    });
    let send = || {
        h.client
            .post(h.url("/upfront"))
            .header("PAYMENT-SIGNATURE", &payment)
            .send()
    };
    let first = send().await.expect("request");
    assert_eq!(first.status(), 200);
    let receipt = first.headers()["payment-response"].clone();
    let first_body = first.bytes().await.expect("body");
    let again = send().await.expect("request");
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["payment-response"], receipt);
    assert_eq!(again.headers()["content-type"], "application/json");
    assert_eq!(again.headers()["cache-control"], "private");
    assert_eq!(again.bytes().await.expect("body"), first_body);
    assert_eq!(h.facilitator.count("verify"), 1);
    assert_eq!(h.facilitator.count("settle"), 1);
    assert_eq!(h.runs(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_post_with_body_and_invalid_body_after_payment() {
    let h = Harness::start().await;
    let unpaid = h.client.post(h.url("/echo")).send().await.expect("request");
    let challenge = challenge_of(&unpaid);
    assert_eq!(challenge.accepts[0].amount, "10000");
    let payment = h.payer.pay_v2(&challenge, &Terms::default());
    // Paid but the body is not JSON: the extractor's 4xx goes through, nothing is settled.
    let bad = h
        .client
        .post(h.url("/echo"))
        .header("PAYMENT-SIGNATURE", &payment)
        .body("{")
        .send()
        .await
        .expect("request");
    assert!(bad.status().is_client_error());
    assert_eq!(h.facilitator.count("settle"), 0);
    let good = h
        .client
        .post(h.url("/echo"))
        .header("PAYMENT-SIGNATURE", &payment)
        .json(&json!({"a": 1}))
        .send()
        .await
        .expect("request");
    assert_eq!(good.status(), 200);
    assert_eq!(json_of(good).await, json!({"a": 1}));
    assert_eq!(h.facilitator.count("settle"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_route_without_configuration_answers_500_with_the_fix() {
    let runs = Runs::default();
    let app = Router::new()
        .route("/counted", get(counted))
        .with_state(runs.clone());
    let base = serve(app).await;
    let response = http()
        .get(format!("{base}/counted"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 500);
    let body = json_of(response).await;
    assert_eq!(body["error"], "x402_not_configured");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains(".layer(x402.layer())")
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[test]
fn the_registry_lists_every_paid_handler_with_its_atomic_price() {
    let routes = x402_runtime::routes();
    let find = |handler: &str| {
        routes
            .iter()
            .find(|r| r.handler() == handler)
            .copied()
            .expect(handler)
    };
    let weather = find("weather");
    let price = weather.price().expect("fixed");
    assert_eq!(
        (price.human.as_ref(), price.atomic, price.decimals),
        ("0.001", 1000, 6)
    );
    assert_eq!(price.currency, x402_runtime::Currency::Usdc);
    assert_eq!(
        (weather.method(), weather.path()),
        (Some("GET"), Some("/weather"))
    );
    assert_eq!(weather.operation_id(), "weather");
    assert_eq!(weather.module_path(), "example_weather::weather");
    assert!(weather.file().ends_with("weather.rs"));
    assert_eq!(find("forecast").price().expect("fixed").atomic, 10_000);
    assert_eq!(
        find("upfront").settle_timing(),
        x402_runtime::SettleTiming::Before
    );
    assert_eq!(find("echo").price().expect("fixed").atomic, 10_000);
    for handler in [
        "weather", "forecast", "counted", "status", "upfront", "echo",
    ] {
        assert_eq!(
            routes.iter().filter(|r| r.handler() == handler).count(),
            1,
            "{handler}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dollar_and_euro_prices_resolve_to_their_tokens() {
    let h = Harness::start().await;
    let dollar_offer = challenge_of(&h.get("/dollar", None).await);
    assert_eq!(dollar_offer.accepts[0].amount, "10000");
    assert_eq!(dollar_offer.accepts[0].asset, USDC);
    let unpaid = h.get("/euro", None).await;
    let euro_offer = challenge_of(&unpaid);
    let offer = &euro_offer.accepts[0];
    assert_eq!(offer.amount, "50000");
    assert_eq!(offer.asset, "0x808456652fdb597867f38412077A9182bf77359F");
    assert_eq!(offer.max_timeout_seconds, 120);
    assert_eq!(offer.extra.as_ref().expect("extra")["name"], "EURC");
    assert_eq!(
        euro_offer.resource.description.as_deref(),
        Some("Euro content")
    );
    let payment = h.payer.pay_v2(&euro_offer, &Terms::default());
    let paid = h.get("/euro", Some(("PAYMENT-SIGNATURE", &payment))).await;
    assert_eq!(paid.status(), 200);
    assert_eq!(paid.text().await.expect("body"), "euro content");
    assert_eq!(h.facilitator.calls()[1].requirements["asset"], offer.asset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_configured_network_is_an_offer() {
    let facilitator = Facilitator::start().await;
    let x402 = paywall_on(
        &facilitator,
        Duration::from_secs(5),
        &["eip155:84532", "eip155:8453"],
    );
    let h = Harness::with(facilitator, x402).await;
    let challenge = challenge_of(&h.get("/counted", None).await);
    let networks: Vec<&str> = challenge
        .accepts
        .iter()
        .map(|o| o.network.as_str())
        .collect();
    assert_eq!(networks, ["eip155:84532", "eip155:8453"]);
    let base = &challenge.accepts[1];
    assert_eq!(base.asset, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913");
    assert_eq!(base.extra.as_ref().expect("extra")["name"], "USD Coin");
    // A payment signed for the second offer's domain (Base mainnet, "USD Coin") is accepted.
    let terms = Terms {
        chain_id: 8453,
        ..Terms::default()
    };
    let payment = h.payer.pay_v2_offer(&challenge, 1, &terms);
    let response = h
        .get("/counted", Some(("PAYMENT-SIGNATURE", &payment)))
        .await;
    assert_eq!(response.status(), 200);
    let receipt: SettleResponse = decode_b64(
        response.headers()["payment-response"]
            .to_str()
            .expect("ascii"),
    );
    assert_eq!(receipt.network, "eip155:8453");
    assert_eq!(
        h.facilitator.calls()[1].requirements["network"],
        "eip155:8453"
    );
    // The v1 body lists both networks by their v1 names.
    let v1: PaymentRequiredV1 = h.get("/counted", None).await.json().await.expect("v1");
    let names: Vec<&str> = v1.accepts.iter().map(|o| o.network.as_str()).collect();
    assert_eq!(names, ["base-sepolia", "base"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_500_and_charges_nothing() {
    let h = Harness::start().await;
    let payment = h.payment_for("/panics", &Terms::default()).await;
    let response = h
        .get("/panics?code=500", Some(("PAYMENT-SIGNATURE", &payment)))
        .await;
    assert_eq!(response.status(), 500);
    assert!(response.headers().get("payment-response").is_none());
    assert_eq!(h.facilitator.count("settle"), 0);
    // The reservation was released: the same payment buys a working answer.
    let retry = h
        .get("/panics?code=200", Some(("PAYMENT-SIGNATURE", &payment)))
        .await;
    assert_eq!(retry.status(), 200);
    assert_eq!(h.facilitator.count("settle"), 1);
    assert_eq!(h.runs(), 2);
}
