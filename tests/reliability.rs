//! The reliability catalogue as tests: every bad input of the reference (groups A–G), every
//! facilitator fault, and client disconnects, against `#[paid]` handlers served on 127.0.0.1
//! with a facilitator double that records every call.
//!
//! Each case asserts the status and the `error` code, and from the ledgers whether the
//! facilitator was called, whether the handler ran and whether anything was settled. Every row
//! of groups A–G is covered; none is ignored.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::U256;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, HeaderName, LOCATION};
use axum::routing::{any, get};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use reqwest::Method;
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use x402_runtime::codes;
use x402_runtime::proto::{PaymentRequired, PaymentRequiredV1, SettleResponse};
use x402_runtime::{X402, paid};

/// Verify and settle budgets of the paywall under test: every hang resolves within them.
const BUDGET: Duration = Duration::from_millis(500);
/// What every paid handler here answers; never seen in a refusal.
const PAID: &str = "PAID-CONTENT";
/// A contract wallet (no key): the payer of the smart-wallet rows.
const WALLET: &str = "0x000000000000000000000000000000000000c0de";

#[derive(Default)]
struct Counters {
    /// Handlers that finished.
    runs: AtomicUsize,
    /// Handlers that started.
    started: AtomicUsize,
    /// How long `/r/slow` takes, in milliseconds.
    delay_ms: AtomicU64,
}

type Shared = Arc<Counters>;

/// Counted paid content.
#[paid(price = "0.001", method = "GET", path = "/r/counted")]
async fn r_counted(State(c): State<Shared>) -> &'static str {
    c.started.fetch_add(1, Ordering::SeqCst);
    c.runs.fetch_add(1, Ordering::SeqCst);
    PAID
}

/// The same content at twice the price.
#[paid(price = "0.002", method = "GET", path = "/r/dear")]
async fn r_dear(State(c): State<Shared>) -> &'static str {
    c.started.fetch_add(1, Ordering::SeqCst);
    c.runs.fetch_add(1, Ordering::SeqCst);
    PAID
}

/// Another resource at the same price and recipient as `/r/counted`.
#[paid(price = "0.001", method = "GET", path = "/r/twin")]
async fn r_twin(State(c): State<Shared>) -> &'static str {
    c.started.fetch_add(1, Ordering::SeqCst);
    c.runs.fetch_add(1, Ordering::SeqCst);
    PAID
}

/// Reading an item.
#[paid(price = "0.001", method = "GET", path = "/r/item")]
async fn r_item_get(State(c): State<Shared>) -> &'static str {
    c.started.fetch_add(1, Ordering::SeqCst);
    c.runs.fetch_add(1, Ordering::SeqCst);
    PAID
}

/// Writing an item costs more.
#[paid(price = "0.003", method = "POST", path = "/r/item")]
async fn r_item_post(State(c): State<Shared>) -> &'static str {
    c.started.fetch_add(1, Ordering::SeqCst);
    c.runs.fetch_add(1, Ordering::SeqCst);
    PAID
}

/// Takes `delay_ms` to answer.
#[paid(price = "0.001", method = "GET", path = "/r/slow")]
async fn r_slow(State(c): State<Shared>) -> &'static str {
    c.started.fetch_add(1, Ordering::SeqCst);
    let delay = c.delay_ms.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    c.runs.fetch_add(1, Ordering::SeqCst);
    PAID
}

/// Paid files under a wildcard.
#[paid(price = "0.001", method = "GET", path = "/r/files/{*rest}")]
async fn r_files(State(c): State<Shared>) -> &'static str {
    c.started.fetch_add(1, Ordering::SeqCst);
    c.runs.fetch_add(1, Ordering::SeqCst);
    PAID
}

/// Creates something: 201 with a location and a public cache policy.
#[paid(price = "0.001", method = "POST", path = "/r/created")]
async fn r_created(
    State(c): State<Shared>,
) -> (StatusCode, [(HeaderName, &'static str); 2], &'static str) {
    c.started.fetch_add(1, Ordering::SeqCst);
    c.runs.fetch_add(1, Ordering::SeqCst);
    (
        StatusCode::CREATED,
        [
            (LOCATION, "/r/things/7"),
            (CACHE_CONTROL, "public, max-age=60"),
        ],
        PAID,
    )
}

/// Mounted for every method.
#[paid(price = "0.001", method = "GET", path = "/r/any")]
async fn r_any(State(c): State<Shared>) -> &'static str {
    c.started.fetch_add(1, Ordering::SeqCst);
    c.runs.fetch_add(1, Ordering::SeqCst);
    PAID
}

/// A body one byte over what `payment-identifier` records for a resend.
#[paid(price = "0.001", method = "GET", path = "/r/large")]
async fn r_large(State(c): State<Shared>) -> Vec<u8> {
    c.started.fetch_add(1, Ordering::SeqCst);
    c.runs.fetch_add(1, Ordering::SeqCst);
    vec![b'x'; x402_runtime::server::identifier::MAX_CACHED_BODY_BYTES + 1]
}

/// A streamed body of unknown length, which `payment-identifier` does not wait for.
#[paid(price = "0.001", method = "GET", path = "/r/stream")]
async fn r_stream(State(c): State<Shared>) -> axum::body::Body {
    c.started.fetch_add(1, Ordering::SeqCst);
    c.runs.fetch_add(1, Ordering::SeqCst);
    let chunks = ["streamed ", "content"].map(|c| Ok::<_, std::io::Error>(c.as_bytes()));
    axum::body::Body::from_stream(futures_util::stream::iter(chunks))
}

/// Seconds added to the clock of the paywalls built with [`late_clock`].
static CLOCK_OFFSET: AtomicU64 = AtomicU64::new(0);

fn late_clock() -> u64 {
    unix_now() + CLOCK_OFFSET.load(Ordering::SeqCst)
}

/// A handler so slow that two minutes pass on [`late_clock`] while it runs.
#[paid(price = "0.001", method = "GET", path = "/r/ages")]
async fn r_ages(State(c): State<Shared>) -> &'static str {
    c.started.fetch_add(1, Ordering::SeqCst);
    CLOCK_OFFSET.fetch_add(120, Ordering::SeqCst);
    c.runs.fetch_add(1, Ordering::SeqCst);
    PAID
}

/// Free content next to the paid routes.
async fn free() -> &'static str {
    "free"
}

const COUNTED: &str = "/r/counted";

// ------------------------------------------------------------------------------------------------
// Harness
// ------------------------------------------------------------------------------------------------

/// An answer, read over reqwest or a raw socket (status 0: the connection closed without one).
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn challenge(&self) -> Option<PaymentRequired> {
        self.header("payment-required").map(decode_b64)
    }

    /// The `error` code: the challenge's when there is one, else the JSON body's.
    fn code(&self) -> Option<String> {
        match self.challenge() {
            Some(challenge) => challenge.error,
            None => self.json()["error"].as_str().map(str::to_owned),
        }
    }

    fn receipt(&self) -> Option<SettleResponse> {
        self.header("payment-response").map(decode_b64)
    }
}

/// A request to the server under test.
#[derive(Clone, Debug)]
struct Req {
    method: Method,
    path: String,
    headers: Vec<(&'static str, Vec<u8>)>,
}

impl Req {
    fn get(path: &str) -> Req {
        Req::method(Method::GET, path)
    }

    fn method(method: Method, path: &str) -> Req {
        Req {
            method,
            path: path.to_owned(),
            headers: vec![],
        }
    }

    fn with(mut self, name: &'static str, value: impl AsRef<[u8]>) -> Req {
        self.headers.push((name, value.as_ref().to_vec()));
        self
    }

    fn pay(self, header: impl AsRef<[u8]>) -> Req {
        self.with("PAYMENT-SIGNATURE", header)
    }
}

/// What a case must produce. `verify`, `settle` and `runs` count the calls the case added to the
/// facilitator's ledger and the handler runs.
#[derive(Clone, Copy, Debug)]
struct Expect {
    status: u16,
    code: Option<&'static str>,
    verify: usize,
    settle: usize,
    runs: usize,
}

/// Refused by the paywall itself: no facilitator call, no handler, nothing settled.
const fn local(status: u16, code: &'static str) -> Expect {
    Expect {
        status,
        code: Some(code),
        verify: 0,
        settle: 0,
        runs: 0,
    }
}

/// Refused at `/verify` with the facilitator's reason.
const fn at_verify(status: u16, code: &'static str) -> Expect {
    Expect {
        status,
        code: Some(code),
        verify: 1,
        settle: 0,
        runs: 0,
    }
}

/// The handler ran, settlement did not succeed: the body is withheld.
const fn withheld(status: u16, code: &'static str) -> Expect {
    Expect {
        status,
        code: Some(code),
        verify: 1,
        settle: 1,
        runs: 1,
    }
}

/// Served and settled once.
const fn served(status: u16) -> Expect {
    Expect {
        status,
        code: None,
        verify: 1,
        settle: 1,
        runs: 1,
    }
}

struct Rig {
    base: String,
    addr: String,
    facilitator: FaultyFacilitator,
    counters: Shared,
    client: reqwest::Client,
    payer: Payer,
}

impl Rig {
    async fn start() -> Rig {
        let facilitator = FaultyFacilitator::start().await;
        let config = faulty_config(&facilitator, BUDGET, BUDGET)
            .build()
            .expect("config");
        let x402 = faulty_paywall(&facilitator, config)
            .build()
            .expect("paywall");
        Rig::with(facilitator, x402).await
    }

    async fn with(facilitator: FaultyFacilitator, x402: X402) -> Rig {
        let counters = Shared::default();
        let app = Router::new()
            .route(COUNTED, get(r_counted))
            .route("/r/dear", get(r_dear))
            .route("/r/twin", get(r_twin))
            .route("/r/item", get(r_item_get).post(r_item_post))
            .route("/r/slow", get(r_slow))
            .route("/r/files/{*rest}", get(r_files))
            .route("/r/created", axum::routing::post(r_created))
            .route("/r/any", any(r_any))
            .route("/r/ages", get(r_ages))
            .route("/r/large", get(r_large))
            .route("/r/stream", get(r_stream))
            .route("/r/free/{*rest}", get(free))
            .with_state(counters.clone())
            .layer(x402.layer());
        let base = serve(app).await;
        Rig {
            addr: base.trim_start_matches("http://").to_owned(),
            base,
            facilitator,
            counters,
            client: http(),
            payer: Payer::new(PAYER_KEY),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, req: Req) -> Answer {
        let mut request = self.client.request(req.method, self.url(&req.path));
        for (name, value) in &req.headers {
            let value =
                axum::http::HeaderValue::from_bytes(value).expect("a sendable header value");
            request = request.header(*name, value);
        }
        match request.send().await {
            Ok(response) => Answer {
                status: response.status().as_u16(),
                headers: response.headers().clone(),
                body: response
                    .bytes()
                    .await
                    .map(|b| b.to_vec())
                    .unwrap_or_default(),
            },
            Err(e) => {
                eprintln!("request failed: {e}");
                Answer {
                    status: 0,
                    headers: axum::http::HeaderMap::new(),
                    body: vec![],
                }
            }
        }
    }

    /// Sends `request` as raw bytes and reads the answer until the server closes.
    async fn raw(&self, request: &[u8]) -> Answer {
        let mut stream = TcpStream::connect(&self.addr).await.expect("connect");
        stream.write_all(request).await.expect("write");
        let mut buffer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buffer)).await;
        parse_answer(&buffer)
    }

    /// A raw `GET path` with `Connection: close`, exactly as written.
    async fn raw_get(&self, path: &[u8], payment: Option<&str>) -> Answer {
        let mut request = b"GET ".to_vec();
        request.extend_from_slice(path);
        request.extend_from_slice(format!(" HTTP/1.1\r\nhost: {}\r\n", self.addr).as_bytes());
        if let Some(payment) = payment {
            request.extend_from_slice(format!("payment-signature: {payment}\r\n").as_bytes());
        }
        request.extend_from_slice(b"connection: close\r\n\r\n");
        self.raw(&request).await
    }

    async fn challenge(&self, path: &str) -> PaymentRequired {
        let answer = self.send(Req::get(path)).await;
        assert_eq!(answer.status, 402, "unpaid {path}");
        answer.challenge().expect("a challenge")
    }

    async fn challenge_v1(&self, path: &str) -> PaymentRequiredV1 {
        let answer = self.send(Req::get(path)).await;
        serde_json::from_slice(&answer.body).expect("v1 body")
    }

    fn runs(&self) -> usize {
        self.counters.runs.load(Ordering::SeqCst)
    }

    fn started(&self) -> usize {
        self.counters.started.load(Ordering::SeqCst)
    }

    fn verifies(&self) -> usize {
        self.facilitator.count("verify")
    }

    fn settles(&self) -> usize {
        self.facilitator.count("settle")
    }

    /// Sends `req` and checks it against `expect` and the money invariants.
    async fn check(&self, row: &str, req: Req, expect: Expect) -> Answer {
        let (verify, settle, runs) = (self.verifies(), self.settles(), self.runs());
        let answer = self.send(req).await;
        self.judge(row, &answer, expect, (verify, settle, runs));
        answer
    }

    fn judge(&self, row: &str, answer: &Answer, expect: Expect, before: (usize, usize, usize)) {
        let body = answer.text();
        assert_eq!(answer.status, expect.status, "{row}: status; body {body}");
        if let Some(code) = expect.code {
            assert_eq!(answer.code().as_deref(), Some(code), "{row}: error code");
        }
        assert_eq!(
            self.verifies() - before.0,
            expect.verify,
            "{row}: /verify calls"
        );
        assert_eq!(
            self.settles() - before.1,
            expect.settle,
            "{row}: /settle calls"
        );
        assert_eq!(self.runs() - before.2, expect.runs, "{row}: handler runs");
        if (200..300).contains(&answer.status) && expect.settle > 0 {
            let receipt = answer.receipt().expect("a paid answer carries a receipt");
            assert!(receipt.success, "{row}: receipt");
            assert!(
                !receipt.transaction.is_empty(),
                "{row}: receipt names the transaction"
            );
        } else {
            assert!(!body.contains(PAID), "{row}: paid content leaked: {body}");
            assert!(
                answer.receipt().is_none_or(|r| !r.success),
                "{row}: a refusal with a success receipt"
            );
            if matches!(answer.status, 400 | 402 | 409) {
                assert_eq!(answer.header("cache-control"), Some("no-store"), "{row}");
            }
        }
    }
}

fn parse_answer(bytes: &[u8]) -> Answer {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Answer {
            status: 0,
            headers: axum::http::HeaderMap::new(),
            body: vec![],
        };
    };
    let head = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = axum::http::HeaderMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.trim().as_bytes()),
                axum::http::HeaderValue::from_str(value.trim()),
            )
        {
            headers.append(name, value);
        }
    }
    Answer {
        status,
        headers,
        body: bytes[end + 4..].to_vec(),
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

fn json_text(header: &str) -> String {
    String::from_utf8(STANDARD.decode(header).expect("base64")).expect("utf-8")
}

fn set(header: &str, pointer: &str, value: Value) -> String {
    edit_payment(header, |v| {
        *v.pointer_mut(pointer).expect(pointer) = value;
    })
}

fn remove(header: &str, pointer: &str) -> String {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    edit_payment(header, |v| {
        v.pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .expect(parent)
            .remove(key);
    })
}

/// The payment re-encoded with padding, so that the unpadded form differs.
fn padded(header: &str) -> String {
    let mut text = json_text(header);
    while text.len().is_multiple_of(3) {
        text.push(' ');
    }
    b64(text)
}

/// The payment re-encoded with the URL-safe alphabet, with an extra field chosen so that the
/// encoding really contains `-` or `_`.
fn url_safe(header: &str) -> String {
    let mut value: Value = decode_b64(header);
    for n in 0.. {
        value["note"] = json!("?>~".repeat(n));
        let bytes = serde_json::to_vec(&value).expect("json");
        if b64(&bytes).contains(['+', '/']) {
            return URL_SAFE.encode(bytes);
        }
    }
    unreachable!()
}

/// Signature bytes of the payment.
fn signature_of(header: &str) -> Vec<u8> {
    let value: Value = decode_b64(header);
    alloy_primitives::hex::decode(value["payload"]["signature"].as_str().expect("signature"))
        .expect("hex")
}

fn with_signature(header: &str, signature: &[u8]) -> String {
    set(
        header,
        "/payload/signature",
        json!(format!("0x{}", alloy_primitives::hex::encode(signature))),
    )
}

/// The signature wrapped as EIP-6492 (a deployment prefix and the magic suffix): the same
/// authorization with other signature bytes.
fn eip6492(signature: &[u8]) -> Vec<u8> {
    let mut wrapped = vec![0u8; 96];
    wrapped.extend_from_slice(signature);
    wrapped.extend_from_slice(&[0u8; 31]);
    wrapped.extend_from_slice(&[0x64, 0x92].repeat(16));
    wrapped
}

/// Polls `done` every 10 ms for up to 5 s.
async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn route(handler: &str) -> &'static x402_runtime::PaidRoute {
    x402_runtime::routes()
        .into_iter()
        .find(|r| r.handler() == handler)
        .expect(handler)
}

// ------------------------------------------------------------------------------------------------
// A. Transport and decoding of PAYMENT-SIGNATURE
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_and_decoding() {
    let rig = Rig::start().await;
    let challenge = rig.challenge(COUNTED).await;
    let pay = || rig.payer.pay_v2(&challenge, &Terms::default());
    let ok = padded(&pay());
    let bad_json = |text: String| Req::get(COUNTED).pay(b64(text));
    let valid_text = json_text(&ok);
    let body_of = |text: &str| {
        text.trim_end()
            .strip_suffix('}')
            .expect("object")
            .to_owned()
    };

    let bad = local(400, codes::INVALID_PAYLOAD);
    let cases: Vec<(&str, Req, Expect)> = vec![
        (
            "A1 header absent",
            Req::get(COUNTED),
            local(402, codes::PAYMENT_REQUIRED),
        ),
        ("A2 empty value", Req::get(COUNTED).pay(""), bad),
        (
            "A2 whitespace-only value",
            Req::get(COUNTED).pay("   "),
            bad,
        ),
        ("A3 not base64 (!!!)", Req::get(COUNTED).pay("!!!"), bad),
        (
            "A3 not base64 (garbage-value)",
            Req::get(COUNTED).pay("garbage-value"),
            bad,
        ),
        (
            "A3 url-safe alphabet",
            Req::get(COUNTED).pay(url_safe(&ok)),
            bad,
        ),
        (
            "A3 missing padding",
            Req::get(COUNTED).pay(ok.trim_end_matches('=')),
            bad,
        ),
        (
            "A3 extra padding",
            Req::get(COUNTED).pay(format!("{ok}=")),
            bad,
        ),
        (
            "A4 base64 of non-JSON",
            Req::get(COUNTED).pay(b64("hello")),
            bad,
        ),
        ("A4 JSON number", Req::get(COUNTED).pay(b64("42")), bad),
        ("A4 JSON string", Req::get(COUNTED).pay(b64("\"x\"")), bad),
        ("A4 JSON array", Req::get(COUNTED).pay(b64("[1,2]")), bad),
        ("A4 JSON null", Req::get(COUNTED).pay(b64("null")), bad),
        (
            "A5 JSON that is not a payment",
            bad_json(r#"{"x402Version":2,"note":"…"}"#.into()),
            bad,
        ),
        (
            "A6 signature 0x00",
            Req::get(COUNTED).pay(set(&ok, "/payload/signature", json!("0x00"))),
            bad,
        ),
        (
            "A6 65 bytes with v = 17",
            Req::get(COUNTED).pay(with_signature(&ok, &[0x11u8; 65])),
            local(402, codes::INVALID_SIGNATURE),
        ),
        (
            "A7 deep nesting",
            bad_json(format!(
                r#"{{"x402Version":2,"accepted":{}{}}}"#,
                "[".repeat(4000),
                "]".repeat(4000)
            )),
            bad,
        ),
        (
            "A7 value above 2^256",
            Req::get(COUNTED).pay(set(
                &ok,
                "/payload/authorization/value",
                json!(format!("1{}", "0".repeat(90))),
            )),
            bad,
        ),
        (
            "A7 huge x402Version",
            bad_json(valid_text.replacen(r#""x402Version":2"#, r#""x402Version":1e400"#, 1)),
            bad,
        ),
        (
            "A7 header over the 16 KiB cap",
            Req::get(COUNTED).pay("A".repeat(17 * 1024)),
            local(431, codes::INVALID_PAYLOAD),
        ),
        (
            "A8 invalid UTF-8",
            Req::get(COUNTED).pay(b64([
                body_of(&valid_text).as_bytes(),
                b",\"note\":\"\xff\"}",
            ]
            .concat())),
            bad,
        ),
        (
            "A8 raw control character in a string",
            bad_json(format!("{},\"note\":\"a\u{1}b\"}}", body_of(&valid_text))),
            bad,
        ),
        (
            "A8 U+2028 in the header",
            Req::get(COUNTED).pay([ok.as_bytes(), "\u{2028}".as_bytes()].concat()),
            bad,
        ),
        (
            "A8 NaN",
            bad_json(valid_text.replacen(r#""x402Version":2"#, r#""x402Version":NaN"#, 1)),
            bad,
        ),
        (
            "A8 Infinity",
            bad_json(valid_text.replacen(r#""x402Version":2"#, r#""x402Version":Infinity"#, 1)),
            bad,
        ),
        (
            "A8 duplicate key (refused)",
            bad_json(valid_text.replacen(r#""nonce":"#, r#""nonce":"0x00","nonce":"#, 1)),
            bad,
        ),
        (
            "A10 header repeated",
            Req::get(COUNTED).pay(&ok).pay(&ok),
            bad,
        ),
        (
            "A10 comma-joined",
            Req::get(COUNTED).pay(format!("{ok}, {ok}")),
            bad,
        ),
    ];
    for (row, req, expect) in cases {
        let answer = rig.check(row, req, expect).await;
        if row.starts_with("A1 ") {
            assert!(answer.challenge().is_some(), "{row}: PAYMENT-REQUIRED");
        }
    }

    // A6: 65 well-formed bytes that sign nothing. For an EOA the token would refuse them, but
    // if `from` has code FiatToken asks the wallet (ERC-1271), which only the facilitator can
    // do (see E8), so the answer is "402 with the facilitator's reason" (reliability A6).
    rig.facilitator
        .set_verify(VerifyFault::Invalid("invalid_exact_evm_signature"));
    rig.check(
        "A6 65 well-formed bytes that sign nothing",
        Req::get(COUNTED).pay(with_signature(&ok, &{
            let mut s = [0x11u8; 65];
            s[64] = 27;
            s
        })),
        at_verify(402, "invalid_exact_evm_signature"),
    )
    .await;
    rig.facilitator.set_verify(VerifyFault::Valid);

    // A7: a ≈ 1 MB header gets a clean 4xx, not a dropped connection.
    let before = (rig.verifies(), rig.settles(), rig.runs());
    let huge = rig
        .send(Req::get(COUNTED).pay("A".repeat(1024 * 1024)))
        .await;
    assert!(
        matches!(huge.status, 400 | 431),
        "A7 1 MB header: status {}",
        huge.status
    );
    assert_eq!(
        (rig.verifies(), rig.settles(), rig.runs()),
        before,
        "A7 1 MB header"
    );

    // A9: PAYMENT-SIGNATURE wins over X-PAYMENT; the legacy header smuggles nothing past it.
    let v1_body = rig.challenge_v1(COUNTED).await;
    let v1_terms = Terms {
        valid_after: unix_now() - 600,
        ..Terms::default()
    };
    let v1 = rig.payer.pay_v1(&v1_body, &v1_terms);
    rig.check(
        "A9 garbage v2 with a valid v1",
        Req::get(COUNTED).pay("!!!").with("X-PAYMENT", &v1),
        bad,
    )
    .await;
    let v2_terms = Terms::default();
    let v2 = rig.payer.pay_v2(&challenge, &v2_terms);
    rig.check(
        "A9 valid v2 with a garbage v1",
        Req::get(COUNTED).pay(&v2).with("X-PAYMENT", "!!!"),
        served(200),
    )
    .await;
    let v2_terms = Terms::default();
    let v2 = rig.payer.pay_v2(&challenge, &v2_terms);
    rig.check(
        "A9 valid v2 with a valid v1",
        Req::get(COUNTED).pay(&v2).with("X-PAYMENT", &v1),
        served(200),
    )
    .await;
    let settled: Vec<String> = rig
        .facilitator
        .calls()
        .into_iter()
        .filter(|c| c.endpoint == "settle")
        .map(|c| c.nonce)
        .collect();
    assert_eq!(
        settled.last(),
        Some(&v2_terms.nonce.to_string()),
        "A9: the v2 payment was settled"
    );
    assert!(
        !settled.contains(&v1_terms.nonce.to_string()),
        "A9: the v1 payment was not touched"
    );
}

// ------------------------------------------------------------------------------------------------
// B. Version and shape
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_version_and_shape() {
    let rig = Rig::start().await;
    let challenge = rig.challenge(COUNTED).await;
    let pay = || rig.payer.pay_v2(&challenge, &Terms::default());
    let bad = local(400, codes::INVALID_PAYLOAD);
    let v1_body = rig.challenge_v1(COUNTED).await;
    let value =
        |v: &str| Req::get(COUNTED).pay(set(&pay(), "/payload/authorization/value", json!(v)));

    let mut cases: Vec<(&str, Req, Expect)> = vec![
        (
            "B1 a v1 payment in the v2 header",
            Req::get(COUNTED).pay(rig.payer.pay_v1(&v1_body, &Terms::default())),
            local(402, codes::INVALID_X402_VERSION),
        ),
        (
            "B2 x402Version 99",
            Req::get(COUNTED).pay(set(&pay(), "/x402Version", json!(99))),
            local(402, codes::INVALID_X402_VERSION),
        ),
        (
            "B2 x402Version as a string",
            Req::get(COUNTED).pay(set(&pay(), "/x402Version", json!("2"))),
            bad,
        ),
        (
            "B2 x402Version missing",
            Req::get(COUNTED).pay(remove(&pay(), "/x402Version")),
            bad,
        ),
        (
            "B3 accepted missing",
            Req::get(COUNTED).pay(remove(&pay(), "/accepted")),
            bad,
        ),
        (
            "B3 payload missing",
            Req::get(COUNTED).pay(remove(&pay(), "/payload")),
            bad,
        ),
        (
            "B3 authorization missing",
            Req::get(COUNTED).pay(remove(&pay(), "/payload/authorization")),
            bad,
        ),
        (
            "B3 signature missing",
            Req::get(COUNTED).pay(remove(&pay(), "/payload/signature")),
            bad,
        ),
        (
            "B3 authorization.to missing",
            Req::get(COUNTED).pay(remove(&pay(), "/payload/authorization/to")),
            bad,
        ),
        (
            "B3 value as a number",
            Req::get(COUNTED).pay(set(&pay(), "/payload/authorization/value", json!(1000))),
            bad,
        ),
        (
            "B3 validBefore as a number",
            Req::get(COUNTED).pay(set(
                &pay(),
                "/payload/authorization/validBefore",
                json!(unix_now() + 60),
            )),
            bad,
        ),
        (
            "B3 accepted.amount as a number",
            Req::get(COUNTED).pay(set(&pay(), "/accepted/amount", json!(1000))),
            bad,
        ),
    ];
    for (what, v) in [
        ("B4 value \"01000\"", "01000"),
        ("B4 value \"1e3\"", "1e3"),
        ("B4 value \"+1000\"", "+1000"),
        ("B4 value \" 1000\"", " 1000"),
        ("B4 value \"1000 \"", "1000 "),
        ("B4 value hex", "0x3e8"),
        ("B4 value negative", "-1000"),
        ("B4 value empty", ""),
        ("B4 value 1abc", "1abc"),
    ] {
        cases.push((what, value(v), bad));
    }
    cases.extend([
        (
            "B4 value above 2^256",
            value(&format!("{}0", U256::MAX)),
            bad,
        ),
        (
            "B4 accepted.amount \"01000\"",
            Req::get(COUNTED).pay(set(&pay(), "/accepted/amount", json!("01000"))),
            bad,
        ),
        (
            "B4 validBefore with a leading zero",
            Req::get(COUNTED).pay(set(
                &pay(),
                "/payload/authorization/validBefore",
                json!(format!("0{}", unix_now() + 60)),
            )),
            bad,
        ),
        (
            "B5 nonce of 31 bytes",
            Req::get(COUNTED).pay(set(
                &pay(),
                "/payload/authorization/nonce",
                json!(format!("0x{}", "ab".repeat(31))),
            )),
            bad,
        ),
        (
            "B5 nonce of 33 bytes",
            Req::get(COUNTED).pay(set(
                &pay(),
                "/payload/authorization/nonce",
                json!(format!("0x{}", "ab".repeat(33))),
            )),
            bad,
        ),
        (
            "B5 nonce not hex",
            Req::get(COUNTED).pay(set(
                &pay(),
                "/payload/authorization/nonce",
                json!(format!("0x{}", "zz".repeat(32))),
            )),
            bad,
        ),
        (
            "B5 nonce without 0x",
            Req::get(COUNTED).pay(set(
                &pay(),
                "/payload/authorization/nonce",
                json!("ab".repeat(32)),
            )),
            bad,
        ),
        (
            "B6 mixed case with a bad EIP-55 checksum",
            Req::get(COUNTED).pay(set(
                &pay(),
                "/payload/authorization/to",
                json!("0x90f79bf6EB2c4f870365E785982E1f101E93b906"),
            )),
            bad,
        ),
    ]);
    for (row, req, expect) in cases {
        let answer = rig.check(row, req, expect).await;
        if expect.status == 402 {
            let refused = answer.challenge().expect("B1/B2 carry the v2 offer");
            assert_eq!(refused.accepts, challenge.accepts, "{row}");
        }
    }

    // B6: addresses in another case than offered are the same addresses.
    let lower = |v: &mut Value, pointer: &str| {
        let text = v
            .pointer(pointer)
            .and_then(Value::as_str)
            .expect(pointer)
            .to_lowercase();
        *v.pointer_mut(pointer).expect(pointer) = json!(text);
    };
    let lowered = edit_payment(&pay(), |v| {
        for pointer in [
            "/accepted/payTo",
            "/accepted/asset",
            "/payload/authorization/from",
            "/payload/authorization/to",
        ] {
            lower(v, pointer);
        }
    });
    rig.check(
        "B6 lower-case addresses",
        Req::get(COUNTED).pay(lowered),
        served(200),
    )
    .await;
}

// ------------------------------------------------------------------------------------------------
// C. Matching against the route's own offer
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_matching_against_our_offer() {
    let rig = Rig::start().await;
    let challenge = rig.challenge(COUNTED).await;
    let pay = |terms: Terms| rig.payer.pay_v2(&challenge, &terms);
    let fresh = || pay(Terms::default());
    let other: alloy_primitives::Address = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
        .parse()
        .expect("address");
    let requirements = local(402, codes::INVALID_PAYMENT_REQUIREMENTS);
    let item_get = rig.challenge("/r/item").await;

    let cases: Vec<(&str, Req, Expect)> = vec![
        (
            "C1 wrong scheme",
            Req::get(COUNTED).pay(set(&fresh(), "/accepted/scheme", json!("upto"))),
            local(402, codes::INVALID_SCHEME),
        ),
        (
            "C2 wrong network",
            Req::get(COUNTED).pay(set(&fresh(), "/accepted/network", json!("eip155:8453"))),
            local(402, codes::INVALID_NETWORK),
        ),
        (
            "C3 look-alike asset",
            Req::get(COUNTED).pay(set(
                &fresh(),
                "/accepted/asset",
                json!(other.to_checksum(None)),
            )),
            requirements,
        ),
        (
            "C3 asset signed for another token",
            Req::get(COUNTED).pay(set(
                &pay(Terms {
                    token: Some(other),
                    ..Terms::default()
                }),
                "/accepted/asset",
                json!(other.to_checksum(None)),
            )),
            requirements,
        ),
        (
            "C4 accepted.amount lowered, signature consistent",
            Req::get(COUNTED).pay(set(
                &pay(Terms {
                    value: Some(U256::from(1)),
                    ..Terms::default()
                }),
                "/accepted/amount",
                json!("1"),
            )),
            requirements,
        ),
        (
            "C5 value below the price",
            Req::get(COUNTED).pay(pay(Terms {
                value: Some(U256::from(999)),
                ..Terms::default()
            })),
            local(402, codes::VALUE_MISMATCH),
        ),
        (
            "C6 value above the price",
            Req::get(COUNTED).pay(pay(Terms {
                value: Some(U256::from(1001)),
                ..Terms::default()
            })),
            local(402, codes::VALUE_MISMATCH),
        ),
        (
            "C7 to is not payTo",
            Req::get(COUNTED).pay(pay(Terms {
                to: Some(other),
                ..Terms::default()
            })),
            local(402, codes::RECIPIENT_MISMATCH),
        ),
        (
            "C8 maxTimeoutSeconds altered",
            Req::get(COUNTED).pay(set(&fresh(), "/accepted/maxTimeoutSeconds", json!(3600))),
            requirements,
        ),
        (
            "C8 extra.name altered",
            Req::get(COUNTED).pay(set(&fresh(), "/accepted/extra/name", json!("USD Coin"))),
            requirements,
        ),
        (
            "C8 extra.version altered",
            Req::get(COUNTED).pay(set(&fresh(), "/accepted/extra/version", json!("1"))),
            requirements,
        ),
        (
            "C8 accepted.payTo altered",
            Req::get(COUNTED).pay(set(
                &fresh(),
                "/accepted/payTo",
                json!(other.to_checksum(None)),
            )),
            requirements,
        ),
        (
            "C9 cheap route's payment at a dear route",
            Req::get("/r/dear").pay(fresh()),
            requirements,
        ),
        (
            "C9 payment for one route at another with the same price",
            Req::get("/r/twin").pay(fresh()),
            requirements,
        ),
        (
            "C10 GET payment on the dearer POST",
            Req::method(Method::POST, "/r/item")
                .pay(rig.payer.pay_v2(&item_get, &Terms::default())),
            requirements,
        ),
    ];
    for (row, req, expect) in cases {
        let answer = rig.check(row, req, expect).await;
        assert!(
            answer.challenge().is_some_and(|c| !c.accepts.is_empty()),
            "{row}: a fresh offer"
        );
    }
    // C10: the price is per method (the query does not change it: pricing is fixed per
    // handler). The GET payment still buys the GET.
    rig.check(
        "C10 GET payment on GET",
        Req::get("/r/item").pay(rig.payer.pay_v2(&item_get, &Terms::default())),
        served(200),
    )
    .await;
}

// ------------------------------------------------------------------------------------------------
// D. Authorization time window
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d_time_window() {
    let rig = Rig::start().await;
    let challenge = rig.challenge(COUNTED).await;
    let now = unix_now();
    let pay = |terms: Terms| rig.payer.pay_v2(&challenge, &terms);
    let before = |valid_before: u64| {
        pay(Terms {
            valid_before,
            ..Terms::default()
        })
    };
    let cases: Vec<(&str, Req, Expect)> = vec![
        (
            "D1 validBefore past",
            Req::get(COUNTED).pay(before(now - 10)),
            local(402, codes::VALID_BEFORE),
        ),
        (
            "D1 validBefore within 6 s",
            Req::get(COUNTED).pay(before(now + 3)),
            local(402, codes::VALID_BEFORE),
        ),
        (
            "D2 validAfter in the future",
            Req::get(COUNTED).pay(pay(Terms {
                valid_after: now + 30,
                ..Terms::default()
            })),
            local(402, codes::VALID_AFTER),
        ),
        (
            "D3 validBefore a day ahead",
            Req::get(COUNTED).pay(before(now + 86_400)),
            local(402, codes::VALID_BEFORE),
        ),
        (
            "D3 validBefore years ahead",
            Req::get(COUNTED).pay(before(now + 10 * 365 * 86_400)),
            local(402, codes::VALID_BEFORE),
        ),
        (
            "D2 client default validAfter (now - 600 s) is fine",
            Req::get(COUNTED).pay(pay(Terms {
                valid_after: now - 600,
                ..Terms::default()
            })),
            served(200),
        ),
    ];
    for (row, req, expect) in cases {
        rig.check(row, req, expect).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d4_window_shorter_than_the_budgets_is_refused_up_front() {
    let facilitator = FaultyFacilitator::start().await;
    let config = faulty_config(&facilitator, BUDGET, Duration::from_secs(30))
        .build()
        .expect("config");
    let rig = Rig::with(
        facilitator.clone(),
        faulty_paywall(&facilitator, config)
            .build()
            .expect("paywall"),
    )
    .await;
    let challenge = rig.challenge(COUNTED).await;
    // Valid for 10 s: past the 6 s margin, but shorter than the 30 s settle budget.
    let payment = rig.payer.pay_v2(
        &challenge,
        &Terms {
            valid_before: unix_now() + 10,
            ..Terms::default()
        },
    );
    rig.check(
        "D4 window shorter than the settle budget",
        Req::get(COUNTED).pay(payment),
        local(402, codes::VALID_BEFORE),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d4_window_that_expires_in_the_handler_is_not_settled() {
    let facilitator = FaultyFacilitator::start().await;
    let config = faulty_config(&facilitator, BUDGET, BUDGET)
        .build()
        .expect("config");
    let x402 = faulty_paywall(&facilitator, config)
        .clock(late_clock)
        .build()
        .expect("paywall");
    let rig = Rig::with(facilitator, x402).await;
    let challenge = rig.challenge("/r/ages").await;
    let payment = rig.payer.pay_v2(
        &challenge,
        &Terms {
            valid_before: late_clock() + 60,
            ..Terms::default()
        },
    );
    // The handler takes two minutes (on the paywall's clock): the authorization has expired
    // when it is done, so settling it would revert on chain.
    let answer = rig.send(Req::get("/r/ages").pay(payment)).await;
    assert_eq!(answer.status, 402, "D4: {}", answer.text());
    assert_eq!(answer.code().as_deref(), Some(codes::VALID_BEFORE));
    assert_eq!(
        rig.settles(),
        0,
        "D4: an expired authorization is never sent to /settle"
    );
    assert!(!answer.text().contains(PAID));
}

// ------------------------------------------------------------------------------------------------
// E. Signatures
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e_signatures() {
    let rig = Rig::start().await;
    let challenge = rig.challenge(COUNTED).await;
    let pay = |terms: Terms| rig.payer.pay_v2(&challenge, &terms);
    let fresh = || pay(Terms::default());
    let signature = local(402, codes::INVALID_SIGNATURE);
    let with_v = |v: u8| {
        let payment = fresh();
        let mut sig = signature_of(&payment);
        sig[64] = v;
        with_signature(&payment, &sig)
    };
    // E1: the facilitator would name it `invalid_exact_evm_signature`; the paywall refuses it
    // locally for a 65-byte signature.
    rig.facilitator
        .set_verify(VerifyFault::Invalid("invalid_exact_evm_signature"));
    let someone_else = {
        let other = Payer::new(PAYER2_KEY);
        let payment = other.pay_v2(&challenge, &Terms::default());
        set(
            &payment,
            "/payload/authorization/from",
            json!(rig.payer.address().to_checksum(None)),
        )
    };
    let before = (rig.verifies(), rig.settles(), rig.runs());
    let answer = rig.send(Req::get(COUNTED).pay(someone_else)).await;
    assert_eq!(answer.status, 402, "E1 signed by someone other than from");
    assert!(
        matches!(
            answer.code().as_deref(),
            Some(codes::INVALID_SIGNATURE | "invalid_exact_evm_signature")
        ),
        "E1: {:?}",
        answer.code()
    );
    assert_eq!(
        (rig.settles(), rig.runs()),
        (before.1, before.2),
        "E1: nothing ran or settled"
    );
    rig.facilitator.set_verify(VerifyFault::Valid);

    // E2: a well-formed signature over another domain recovers to some other address. That is
    // also what a contract wallet's ERC-1271 signature looks like offline (E8), so the
    // facilitator, which rebuilds the domain from our network and asset, refuses it.
    rig.facilitator
        .set_verify(VerifyFault::Invalid("invalid_exact_evm_signature"));
    let at_facilitator = at_verify(402, "invalid_exact_evm_signature");
    for (row, terms) in [
        (
            "E2 signed for another chain id",
            Terms {
                chain_id: 1,
                ..Terms::default()
            },
        ),
        (
            "E2 signed for another token",
            Terms {
                token: Some(
                    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
                        .parse()
                        .expect("address"),
                ),
                ..Terms::default()
            },
        ),
    ] {
        rig.check(row, Req::get(COUNTED).pay(pay(terms)), at_facilitator)
            .await;
    }
    rig.facilitator.set_verify(VerifyFault::Valid);

    let cases: Vec<(&str, Req, Expect)> = vec![
        (
            "E3 high-s",
            Req::get(COUNTED).pay(high_s(&fresh())),
            signature,
        ),
        ("E3 v = 0", Req::get(COUNTED).pay(with_v(0)), signature),
        ("E3 v = 1", Req::get(COUNTED).pay(with_v(1)), signature),
        ("E3 v = 29", Req::get(COUNTED).pay(with_v(29)), signature),
    ];
    for (row, req, expect) in cases {
        rig.check(row, req, expect).await;
    }

    // E4: other signature bytes for a settled authorization are the same payment.
    let original = fresh();
    rig.check("E4 original", Req::get(COUNTED).pay(&original), served(200))
        .await;
    let tx = tx_for(&rig.facilitator.calls().last().expect("settle").nonce);
    let sig = signature_of(&original);
    // A high-s twin fails the signature form check, but its key is the settled payment's, so
    // it is answered from the record like the original.
    rig.check(
        "E4 high-s twin",
        Req::get(COUNTED).pay(high_s(&original)),
        local(409, codes::PAYMENT_ALREADY_SETTLED),
    )
    .await;
    rig.check(
        "E4 EIP-2098 64-byte twin",
        Req::get(COUNTED).pay(with_signature(&original, &sig[..64])),
        local(400, codes::INVALID_PAYLOAD),
    )
    .await;
    let wrapped = rig
        .check(
            "E4 EIP-6492 wrapped twin",
            Req::get(COUNTED).pay(with_signature(&original, &eip6492(&sig))),
            local(409, codes::PAYMENT_ALREADY_SETTLED),
        )
        .await;
    assert_eq!(
        wrapped.json()["transaction"],
        tx.as_str(),
        "E4: names the original transaction"
    );

    // E5–E8 need a smart wallet or a chain: the facilitator double answers as the real one would.
    let wallet = |signature: &[u8]| {
        with_signature(
            &set(&fresh(), "/payload/authorization/from", json!(WALLET)),
            signature,
        )
    };
    rig.check(
        "E5 deployed smart wallet (EIP-1271), facilitator accepts",
        Req::get(COUNTED).pay(wallet(&[0x5a; 160])),
        served(200),
    )
    .await;
    rig.facilitator.set_settle(SettleFault::Fail(
        "invalid_exact_evm_payload_undeployed_smart_wallet",
    ));
    let e6 = rig
        .check(
            "E6 undeployed wallet with EIP-6492, verify OK and settle fails",
            Req::get(COUNTED).pay(wallet(&eip6492(&[0x5a; 65]))),
            withheld(402, "invalid_exact_evm_payload_undeployed_smart_wallet"),
        )
        .await;
    let receipt = e6.receipt().expect("E6: a failure receipt");
    assert_eq!(
        receipt.error_reason.as_deref(),
        Some("invalid_exact_evm_payload_undeployed_smart_wallet")
    );
    rig.facilitator.set_settle(SettleFault::Success);
    rig.facilitator.set_verify(VerifyFault::Invalid(
        "invalid_exact_evm_payload_undeployed_smart_wallet",
    ));
    rig.check(
        "E7 undeployed wallet without EIP-6492",
        Req::get(COUNTED).pay(wallet(&[0x5a; 160])),
        at_verify(402, "invalid_exact_evm_payload_undeployed_smart_wallet"),
    )
    .await;
    rig.facilitator.set_verify(VerifyFault::Valid);
    rig.facilitator
        .set_settle(SettleFault::Fail("invalid_exact_evm_transaction_failed"));
    rig.check(
        "E8 EOA signature the token rejects on chain",
        Req::get(COUNTED).pay(fresh()),
        withheld(402, "invalid_exact_evm_transaction_failed"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e8_a_65_byte_contract_wallet_signature_is_left_to_the_facilitator() {
    let rig = Rig::start().await;
    let challenge = rig.challenge(COUNTED).await;
    // A wallet contract whose owner signs with an ordinary key: the token (FiatTokenV2_2's
    // SignatureChecker.isValidSignatureNow) calls the wallet's isValidSignature because `from`
    // has code, whatever the signature's length. Only the facilitator, with the chain, can
    // tell; here it accepts.
    let payment = set(
        &rig.payer.pay_v2(&challenge, &Terms::default()),
        "/payload/authorization/from",
        json!(WALLET),
    );
    rig.check(
        "E8 65-byte EIP-1271 signature",
        Req::get(COUNTED).pay(payment),
        served(200),
    )
    .await;
}

// ------------------------------------------------------------------------------------------------
// F. Replay and concurrency
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f_replay_and_concurrency() {
    let rig = Arc::new(Rig::start().await);
    let challenge = rig.challenge(COUNTED).await;
    let fresh = || rig.payer.pay_v2(&challenge, &Terms::default());

    // F1: the same payment after it settled.
    let terms = Terms::default();
    let payment = rig.payer.pay_v2(&challenge, &terms);
    rig.check("F1 first use", Req::get(COUNTED).pay(&payment), served(200))
        .await;
    let again = rig
        .check(
            "F1 same payload after it settled",
            Req::get(COUNTED).pay(&payment),
            local(409, codes::PAYMENT_ALREADY_SETTLED),
        )
        .await;
    assert_eq!(
        again.json()["transaction"],
        tx_for(&terms.nonce.to_string()),
        "F1"
    );
    assert!(again.receipt().is_none(), "F1: never a success receipt");

    // F2: the same payment while the first copy is in the handler.
    rig.counters.delay_ms.store(600, Ordering::SeqCst);
    let slow = rig
        .payer
        .pay_v2(&rig.challenge("/r/slow").await, &Terms::default());
    let started = rig.started();
    let first = {
        let (rig, slow) = (rig.clone(), slow.clone());
        tokio::spawn(async move { rig.send(Req::get("/r/slow").pay(slow)).await })
    };
    wait_for("the first copy in the handler", || rig.started() > started).await;
    rig.check(
        "F2 same payload while the first is in the handler",
        Req::get("/r/slow").pay(&slow),
        local(409, codes::PAYMENT_IN_PROGRESS),
    )
    .await;
    let first = first.await.expect("first");
    assert_eq!(first.status, 200, "F2: the first copy is served");
    rig.counters.delay_ms.store(0, Ordering::SeqCst);

    // F3: N concurrent identical requests.
    let payment = fresh();
    let (verify, settle, runs) = (rig.verifies(), rig.settles(), rig.runs());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (rig, payment) = (rig.clone(), payment.clone());
        tasks.push(tokio::spawn(async move {
            rig.send(Req::get(COUNTED).pay(payment)).await
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        let answer = task.await.expect("task");
        if answer.status != 200 {
            assert!(!answer.text().contains(PAID), "F3: leaked");
        }
        statuses.push(answer.status);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409], "F3");
    assert_eq!(
        (
            rig.verifies() - verify,
            rig.settles() - settle,
            rig.runs() - runs
        ),
        (1, 1, 1),
        "F3: one verify, one handler run, one settle"
    );

    // F5: re-encoded copies of a settled payment are the same payment.
    let terms = Terms::default();
    let original = rig.payer.pay_v2(&challenge, &terms);
    rig.check("F5 original", Req::get(COUNTED).pay(&original), served(200))
        .await;
    let value: Value = decode_b64(&original);
    let reordered = {
        let object = value.as_object().expect("object");
        let fields: Vec<String> = object
            .iter()
            .rev()
            .map(|(k, v)| format!("{}: {}", json!(k), v))
            .collect();
        b64(format!("{{ {} }}", fields.join(" ,\n ")))
    };
    let pretty = b64(serde_json::to_vec_pretty(&value).expect("json"));
    let lower_from = edit_payment(&original, |v| {
        let from = v["payload"]["authorization"]["from"]
            .as_str()
            .expect("from")
            .to_lowercase();
        v["payload"]["authorization"]["from"] = json!(from);
    });
    let upper_nonce = edit_payment(&original, |v| {
        let nonce = v["payload"]["authorization"]["nonce"]
            .as_str()
            .expect("nonce");
        v["payload"]["authorization"]["nonce"] = json!(format!("0x{}", nonce[2..].to_uppercase()));
    });
    let twin = with_signature(&original, &eip6492(&signature_of(&original)));
    let settled = local(409, codes::PAYMENT_ALREADY_SETTLED);
    for (row, header, expect) in [
        ("F5 keys reordered", reordered, settled),
        ("F5 whitespace", pretty, settled),
        ("F5 from in lower case", lower_from, settled),
        ("F5 nonce in upper case", upper_nonce, settled),
        ("F5 signature twin (EIP-6492)", twin, settled),
        ("F5 signature twin (high-s)", high_s(&original), settled),
        (
            "F5 value \"01000\"",
            set(&original, "/payload/authorization/value", json!("01000")),
            local(400, codes::INVALID_PAYLOAD),
        ),
    ] {
        let answer = rig.check(row, Req::get(COUNTED).pay(header), expect).await;
        if expect.status == 409 {
            assert_eq!(
                answer.json()["transaction"],
                tx_for(&terms.nonce.to_string()),
                "{row}"
            );
        }
    }

    // F6: a payment for resource A replayed at B with the same price and payTo.
    rig.check(
        "F6 payment for /r/counted at /r/twin",
        Req::get("/r/twin").pay(fresh()),
        local(402, codes::INVALID_PAYMENT_REQUIREMENTS),
    )
    .await;

    // F10: a verify outage does not burn the payment.
    let payment = fresh();
    rig.facilitator.set_verify(VerifyFault::Html502);
    rig.check(
        "F10 facilitator outage at verify",
        Req::get(COUNTED).pay(&payment),
        at_verify(502, codes::UNEXPECTED_VERIFY_ERROR),
    )
    .await;
    rig.facilitator.set_verify(VerifyFault::Valid);
    rig.check(
        "F10 the same payment after the outage",
        Req::get(COUNTED).pay(&payment),
        served(200),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f4_two_instances_share_one_store() {
    let facilitator = FaultyFacilitator::start().await;
    let store = Arc::new(x402_runtime::MemoryStore::new());
    let instance = || {
        let config = faulty_config(&facilitator, BUDGET, BUDGET)
            .public_url("https://api.example.com")
            .build()
            .expect("config");
        faulty_paywall(&facilitator, config)
            .store(store.clone())
            .build()
            .expect("paywall")
    };
    let a = Rig::with(facilitator.clone(), instance()).await;
    let b = Rig::with(facilitator.clone(), instance()).await;
    let challenge = a.challenge(COUNTED).await;
    assert_eq!(challenge, b.challenge(COUNTED).await, "one canonical offer");
    let terms = Terms::default();
    let payment = a.payer.pay_v2(&challenge, &terms);
    a.check(
        "F4 first instance",
        Req::get(COUNTED).pay(&payment),
        served(200),
    )
    .await;
    let answer = b
        .check(
            "F4 second instance",
            Req::get(COUNTED).pay(&payment),
            local(409, codes::PAYMENT_ALREADY_SETTLED),
        )
        .await;
    assert_eq!(
        answer.json()["transaction"],
        tx_for(&terms.nonce.to_string())
    );

    // Concurrently on both: one served, one refused.
    let payment = a.payer.pay_v2(&challenge, &Terms::default());
    let (x, y) = tokio::join!(
        a.send(Req::get(COUNTED).pay(&payment)),
        b.send(Req::get(COUNTED).pay(&payment))
    );
    let mut statuses = [x.status, y.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "F4 concurrent");
    assert_eq!(facilitator.count("settle"), 2, "F4: one settle per payment");
    assert_eq!(a.runs() + b.runs(), 2, "F4: one handler run per payment");
}

/// The `payment-identifier` extension with `required` as given.
fn identifier_extension(required: bool) -> serde_json::Map<String, Value> {
    let mut extensions = serde_json::Map::new();
    extensions.insert(
        "payment-identifier".into(),
        json!({
            "info": {"required": required},
            "schema": {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": {
                    "required": {"type": "boolean"},
                    "id": {"type": "string", "minLength": 16, "maxLength": 128, "pattern": "^[a-zA-Z0-9_-]+$"}
                },
                "required": ["required"]
            }
        }),
    );
    extensions
}

/// A fresh payment for `/r/counted` carrying the payment identifier `id`.
fn with_identifier(header: &str, id: &str) -> String {
    edit_payment(header, |v| {
        v["extensions"] = json!({"payment-identifier": {"info": {"required": false, "id": id}}});
    })
}

/// A rig whose `/r/counted` advertises `payment-identifier`.
async fn identifier_rig(required: bool) -> (Rig, PaymentRequired) {
    let facilitator = FaultyFacilitator::start().await;
    let config = faulty_config(&facilitator, BUDGET, BUDGET)
        .build()
        .expect("config");
    let x402 = faulty_paywall(&facilitator, config)
        .build()
        .expect("paywall");
    x402.set_route_extensions(route("r_counted"), identifier_extension(required));
    let rig = Rig::with(facilitator, x402).await;
    let challenge = rig.challenge(COUNTED).await;
    assert!(
        challenge
            .extensions
            .as_ref()
            .is_some_and(|e| e.contains_key("payment-identifier")),
        "the route advertises payment-identifier"
    );
    (rig, challenge)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f7_same_identifier_same_payload_gets_the_cached_response() {
    let (rig, challenge) = identifier_rig(false).await;
    let id = "pay_0123456789abcdef0123456789abcdef";
    let payment = with_identifier(&rig.payer.pay_v2(&challenge, &Terms::default()), id);
    let first = rig
        .check("F7 first", Req::get(COUNTED).pay(&payment), served(200))
        .await;
    let again = rig.send(Req::get(COUNTED).pay(&payment)).await;
    assert_eq!(again.status, 200, "F7: the cached response");
    assert_eq!(again.text(), first.text());
    assert_eq!(again.receipt(), first.receipt(), "F7: the same receipt");
    assert_eq!(
        (rig.verifies(), rig.settles(), rig.runs()),
        (1, 1, 1),
        "F7: nothing new ran"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f8_same_identifier_other_payload_is_a_conflict() {
    let (rig, challenge) = identifier_rig(false).await;
    let id = "pay_0123456789abcdef0123456789abcdef";
    let first = with_identifier(&rig.payer.pay_v2(&challenge, &Terms::default()), id);
    rig.check("F8 first", Req::get(COUNTED).pay(&first), served(200))
        .await;
    let second = with_identifier(&rig.payer.pay_v2(&challenge, &Terms::default()), id);
    let answer = rig.send(Req::get(COUNTED).pay(&second)).await;
    assert_eq!(answer.status, 409, "F8: {}", answer.text());
    assert!(!answer.text().contains(PAID));
    assert_eq!(
        (rig.settles(), rig.runs()),
        (1, 1),
        "F8: the second payload is never settled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f9_required_identifier_missing_is_a_400() {
    let (rig, challenge) = identifier_rig(true).await;
    let payment = rig.payer.pay_v2(&challenge, &Terms::default());
    let answer = rig.send(Req::get(COUNTED).pay(&payment)).await;
    assert_eq!(answer.status, 400, "F9: {}", answer.text());
    assert_eq!(
        (rig.verifies(), rig.settles(), rig.runs()),
        (0, 0, 0),
        "F9: refused before the facilitator"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f7_to_f9_the_extension_is_advertised_per_the_specification() {
    let (rig, challenge) = identifier_rig(true).await;
    let declared = &challenge.extensions.as_ref().expect("extensions")["payment-identifier"];
    assert_eq!(declared, &identifier_extension(true)["payment-identifier"]);
    assert_eq!(
        declared,
        &x402_runtime::server::identifier::extension(true),
        "the declaration the runtime builds"
    );
    // Ids outside 16–128 of [A-Za-z0-9_-], or an extension of the wrong shape: 400 before the
    // facilitator.
    let invalid = local(400, codes::INVALID_PAYMENT_IDENTIFIER);
    for (row, id) in [
        ("F9 id of 15 characters", json!("pay_0123456789a")),
        ("F9 id of 129 characters", json!("a".repeat(129))),
        ("F9 id with a slash", json!("pay_0123456789abcdef/")),
        ("F9 id with a space", json!("pay 0123456789abcdef")),
        ("F9 id that is a number", json!(1234567890123456789u64)),
    ] {
        let payment = edit_payment(&rig.payer.pay_v2(&challenge, &Terms::default()), |v| {
            v["extensions"] = json!({"payment-identifier": {"info": {"required": true, "id": id}}});
        });
        rig.check(row, Req::get(COUNTED).pay(payment), invalid)
            .await;
    }
    let payment = edit_payment(&rig.payer.pay_v2(&challenge, &Terms::default()), |v| {
        v["extensions"] = json!({"payment-identifier": "pay_0123456789abcdef"});
    });
    rig.check(
        "F9 extension not an object",
        Req::get(COUNTED).pay(payment),
        invalid,
    )
    .await;
    rig.check(
        "F9 required and missing",
        Req::get(COUNTED).pay(rig.payer.pay_v2(&challenge, &Terms::default())),
        local(400, codes::PAYMENT_IDENTIFIER_REQUIRED),
    )
    .await;
    // 128 characters is the longest id.
    let payment = with_identifier(
        &rig.payer.pay_v2(&challenge, &Terms::default()),
        &"Az09_-".repeat(22)[..128],
    );
    rig.check(
        "F9 id of 128 characters",
        Req::get(COUNTED).pay(payment),
        served(200),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f7_the_id_alone_never_authorizes() {
    let (rig, challenge) = identifier_rig(false).await;
    let id = "pay_fedcba9876543210fedcba9876543210";
    let payment = with_identifier(&rig.payer.pay_v2(&challenge, &Terms::default()), id);
    rig.check("F7 first", Req::get(COUNTED).pay(&payment), served(200))
        .await;
    let conflict = local(409, codes::PAYMENT_IDENTIFIER_CONFLICT);
    // The same authorization with other signature bytes (an EIP-6492 wrapper) is not the same
    // payment: no recorded response for it.
    let twin = with_signature(&payment, &eip6492(&signature_of(&payment)));
    rig.check("F7 signature twin", Req::get(COUNTED).pay(twin), conflict)
        .await;
    // Another payer's payment with the same id.
    let other = with_identifier(
        &Payer::new(PAYER2_KEY).pay_v2(&challenge, &Terms::default()),
        id,
    );
    rig.check("F7 another payer", Req::get(COUNTED).pay(other), conflict)
        .await;
    // A copy with a broken signature never reaches the cache: it is answered from the record.
    rig.check(
        "F7 high-s copy",
        Req::get(COUNTED).pay(high_s(&payment)),
        local(409, codes::PAYMENT_ALREADY_SETTLED),
    )
    .await;
    // The same id on another route is another purchase, served and settled on its own.
    let dear = rig.challenge("/r/dear").await;
    let elsewhere = with_identifier(&rig.payer.pay_v2(&dear, &Terms::default()), id);
    rig.check(
        "F7 the same id on another route (no extension there)",
        Req::get("/r/dear").pay(elsewhere),
        served(200),
    )
    .await;
    // The recorded response is still the original's.
    let again = rig.send(Req::get(COUNTED).pay(&payment)).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.text(), PAID);
    assert_eq!(again.header("cache-control"), Some("private"));
    // A copy of the settled payment under a new id is answered from the replay store, and that
    // id is not kept: copies of a used payment cannot occupy ids.
    let new_id = "pay_copy_0123456789abcdef0123";
    rig.check(
        "F7 a copy under a new id",
        Req::get(COUNTED).pay(with_identifier(&payment, new_id)),
        local(409, codes::PAYMENT_ALREADY_SETTLED),
    )
    .await;
    rig.check(
        "F7 that id is still free",
        Req::get(COUNTED).pay(with_identifier(
            &rig.payer.pay_v2(&challenge, &Terms::default()),
            new_id,
        )),
        served(200),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f7_a_refused_payment_frees_its_id() {
    let (rig, challenge) = identifier_rig(false).await;
    let id = "pay_00000000000000000000000000000001";
    rig.facilitator.set_verify(VerifyFault::Invalid(
        "invalid_exact_evm_insufficient_balance",
    ));
    let first = with_identifier(&rig.payer.pay_v2(&challenge, &Terms::default()), id);
    rig.check(
        "F7 refused at verify",
        Req::get(COUNTED).pay(&first),
        at_verify(402, "invalid_exact_evm_insufficient_balance"),
    )
    .await;
    rig.facilitator.set_verify(VerifyFault::Valid);
    rig.facilitator
        .set_settle(SettleFault::Fail("invalid_exact_evm_insufficient_balance"));
    let second = with_identifier(&rig.payer.pay_v2(&challenge, &Terms::default()), id);
    rig.check(
        "F7 settlement failed",
        Req::get(COUNTED).pay(&second),
        withheld(402, "invalid_exact_evm_insufficient_balance"),
    )
    .await;
    rig.facilitator.set_settle(SettleFault::Success);
    let third = with_identifier(&rig.payer.pay_v2(&challenge, &Terms::default()), id);
    rig.check(
        "F7 paid with the same id after two refusals",
        Req::get(COUNTED).pay(&third),
        served(200),
    )
    .await;
    // A settlement whose outcome is unknown keeps its id.
    let id = "pay_00000000000000000000000000000002";
    rig.facilitator.set_settle(SettleFault::PendingOver200);
    let pending = with_identifier(&rig.payer.pay_v2(&challenge, &Terms::default()), id);
    rig.check(
        "F8 pending",
        Req::get(COUNTED).pay(&pending),
        withheld(503, codes::SETTLEMENT_PENDING),
    )
    .await;
    rig.facilitator.set_settle(SettleFault::Success);
    let fresh = with_identifier(&rig.payer.pay_v2(&challenge, &Terms::default()), id);
    rig.check(
        "F8 a fresh payload while the first is pending",
        Req::get(COUNTED).pay(&fresh),
        local(409, codes::PAYMENT_IDENTIFIER_CONFLICT),
    )
    .await;
    // The pending payment itself reconciles (one /settle, no handler run) and is settled.
    let (settles, runs) = (rig.settles(), rig.runs());
    let resend = rig.send(Req::get(COUNTED).pay(&pending)).await;
    assert_eq!(resend.status, 409, "{}", resend.text());
    assert_eq!(
        resend.code().as_deref(),
        Some(codes::PAYMENT_ALREADY_SETTLED)
    );
    assert_eq!((rig.settles(), rig.runs()), (settles + 1, runs));
}

/// A response that is not recorded (over 1 MiB, or streamed) still binds its id; a resend of
/// the payment is refused naming the transaction, as without the extension.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f7_an_unrecorded_response_falls_back_to_payment_already_settled() {
    let facilitator = FaultyFacilitator::start().await;
    let config = faulty_config(&facilitator, BUDGET, BUDGET)
        .build()
        .expect("config");
    let x402 = faulty_paywall(&facilitator, config)
        .build()
        .expect("paywall");
    x402.declare_payment_identifier(route("r_large"), false);
    x402.declare_payment_identifier(route("r_stream"), false);
    let rig = Rig::with(facilitator, x402).await;
    for (path, length) in [
        (
            "/r/large",
            x402_runtime::server::identifier::MAX_CACHED_BODY_BYTES + 1,
        ),
        ("/r/stream", "streamed content".len()),
    ] {
        let challenge = rig.challenge(path).await;
        let terms = Terms::default();
        let id = "pay_unrecorded_0123456789abcdef";
        let payment = with_identifier(&rig.payer.pay_v2(&challenge, &terms), id);
        let first = rig
            .check(path, Req::get(path).pay(&payment), served(200))
            .await;
        assert_eq!(first.body.len(), length, "{path}: the whole body");
        let again = rig
            .check(
                path,
                Req::get(path).pay(&payment),
                local(409, codes::PAYMENT_ALREADY_SETTLED),
            )
            .await;
        assert_eq!(
            again.json()["transaction"],
            tx_for(&terms.nonce.to_string()),
            "{path}"
        );
        let fresh = with_identifier(&rig.payer.pay_v2(&challenge, &Terms::default()), id);
        rig.check(
            path,
            Req::get(path).pay(fresh),
            local(409, codes::PAYMENT_IDENTIFIER_CONFLICT),
        )
        .await;
    }
}

/// §9.3: one id with 8 fresh payloads at once: one settle; the rest 409 or the recorded response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f8_one_identifier_with_eight_fresh_payloads_at_once_settles_once() {
    let (rig, challenge) = identifier_rig(false).await;
    let rig = Arc::new(rig);
    let id = "pay_8888888888888888888888888888888a";
    let payments: Vec<String> = (0..8)
        .map(|_| with_identifier(&rig.payer.pay_v2(&challenge, &Terms::default()), id))
        .collect();
    let tasks: Vec<_> = payments
        .iter()
        .cloned()
        .map(|payment| {
            let rig = rig.clone();
            tokio::spawn(async move { rig.send(Req::get(COUNTED).pay(payment)).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    let served: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    assert_eq!(
        served.len(),
        1,
        "one served: {:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    for answer in answers.iter().filter(|a| a.status != 200) {
        assert_eq!(answer.status, 409, "{}", answer.text());
        assert_eq!(
            answer.code().as_deref(),
            Some(codes::PAYMENT_IDENTIFIER_CONFLICT),
            "{}",
            answer.text()
        );
        assert!(!answer.text().contains(PAID));
    }
    assert_eq!(
        (rig.verifies(), rig.settles(), rig.runs()),
        (1, 1, 1),
        "one verify, one handler run, one settle"
    );
    // Afterwards, every one of the 8 gets the recorded response (the settled one) or a 409.
    let receipt = served[0].receipt().expect("receipt");
    let mut recorded = 0;
    for payment in &payments {
        let again = rig.send(Req::get(COUNTED).pay(payment)).await;
        match again.status {
            200 => {
                recorded += 1;
                assert_eq!(again.receipt().as_ref(), Some(&receipt));
            }
            409 => assert_eq!(
                again.code().as_deref(),
                Some(codes::PAYMENT_IDENTIFIER_CONFLICT)
            ),
            other => panic!("{other}: {}", again.text()),
        }
    }
    assert_eq!(recorded, 1);
    assert_eq!((rig.verifies(), rig.settles(), rig.runs()), (1, 1, 1));
}

// ------------------------------------------------------------------------------------------------
// G. Routing, methods and caching
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g_routing_methods_and_caching() {
    let rig = Rig::start().await;

    // G1: every spelling that reaches the paid wildcard route gets its 402; spellings the router
    // does not match are 404 (or 400 from the HTTP parser). The paid handler never runs unpaid.
    let canonical = rig.raw_get(b"/r/files/a", None).await;
    assert_eq!(canonical.status, 402, "G1 canonical");
    let paid_tail: &[&[u8]] = &[
        b"/r/files/a%2Fb",
        b"/r/files/a%252Fb",
        b"/r/files/a%5Cb",
        b"/r/files/a%0Ab",
        b"/r/files/a%0Db",
        b"/r/files/a%E2%80%A8b",
        b"/r/files/%2e%2e/secret",
        b"/r/files/%2E%2E%2Fsecret",
        b"/r/files/..%2Fsecret",
        b"/r/files/./a",
        b"/r/files/a/",
        b"/r/files//a",
        b"/r/files/a?x=1",
    ];
    for path in paid_tail {
        let answer = rig.raw_get(path, None).await;
        let row = format!("G1 {}", String::from_utf8_lossy(path));
        assert_eq!(answer.status, 402, "{row}: {}", answer.text());
        assert_eq!(
            answer.code().as_deref(),
            Some(codes::PAYMENT_REQUIRED),
            "{row}"
        );
    }
    let elsewhere: &[&[u8]] = &[
        b"/r/files/",
        b"/r/files",
        b"/r/counted/",
        b"/r//counted",
        b"/r/%63ounted",
        b"/R/counted",
        b"/r/free/../counted",
        b"/r/free/%2e%2e/counted",
        b"/r/free/..%2Fcounted",
        b"/r/files/a\\b",
        b"/r/files/a\x0bb",
        "/r/files/a\u{2028}b".as_bytes(),
    ];
    for path in elsewhere {
        let answer = rig.raw_get(path, None).await;
        let row = format!("G1 {}", String::from_utf8_lossy(path));
        // 200 only from the free route the path really names.
        assert!(
            matches!(answer.status, 400 | 402 | 404) || answer.text() == "free",
            "{row}: status {}",
            answer.status
        );
        assert!(!answer.text().contains(PAID), "{row}: paid content");
    }
    assert_eq!(rig.started(), 0, "G1: the paid handler never ran unpaid");
    assert_eq!(rig.facilitator.calls(), vec![], "G1");

    // G2/G3: HEAD is priced like GET and never charged.
    let challenge = rig.challenge(COUNTED).await;
    let unpaid_head = rig
        .check(
            "G3 unpaid HEAD",
            Req::method(Method::HEAD, COUNTED),
            local(402, codes::PAYMENT_REQUIRED),
        )
        .await;
    assert_eq!(
        unpaid_head.challenge(),
        Some(challenge.clone()),
        "G3: the GET challenge"
    );
    let payment = rig.payer.pay_v2(&challenge, &Terms::default());
    rig.check(
        "G2 HEAD with a valid payment",
        Req::method(Method::HEAD, COUNTED).pay(&payment),
        local(402, codes::PAYMENT_REQUIRED),
    )
    .await;
    rig.check(
        "G2 the payment is still unspent",
        Req::get(COUNTED).pay(&payment),
        served(200),
    )
    .await;

    // G4: OPTIONS is never gated; the 402 exposes the x402 headers.
    let preflight = rig
        .check(
            "G4 OPTIONS on a paid route",
            Req::method(Method::OPTIONS, "/r/any")
                .with("origin", "https://app.example")
                .with("access-control-request-method", "GET"),
            Expect {
                status: 204,
                code: None,
                verify: 0,
                settle: 0,
                runs: 0,
            },
        )
        .await;
    assert!(preflight.challenge().is_none(), "G4: no challenge");
    let options_get_only = rig.send(Req::method(Method::OPTIONS, COUNTED)).await;
    assert_ne!(
        options_get_only.status, 402,
        "G4 OPTIONS on a GET-only route"
    );
    assert!(options_get_only.challenge().is_none());
    let unpaid = rig.send(Req::get(COUNTED)).await;
    let exposed = unpaid
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_uppercase();
    assert!(
        exposed.contains("PAYMENT-REQUIRED") && exposed.contains("PAYMENT-RESPONSE"),
        "G4: exposed headers {exposed}"
    );

    // G5: refusals are no-store; a paid answer gets `private` merged into its own policy.
    assert_eq!(unpaid.header("cache-control"), Some("no-store"), "G5 402");
    let malformed = rig.send(Req::get(COUNTED).pay("!!!")).await;
    assert_eq!(
        malformed.header("cache-control"),
        Some("no-store"),
        "G5 400"
    );
    let replay = rig.send(Req::get(COUNTED).pay(&payment)).await;
    assert_eq!(replay.status, 409);
    assert_eq!(replay.header("cache-control"), Some("no-store"), "G5 409");
    let created_challenge = rig
        .send(Req::method(Method::POST, "/r/created"))
        .await
        .challenge()
        .expect("challenge");
    let created = rig
        .check(
            "G7 201 with Location",
            Req::method(Method::POST, "/r/created")
                .pay(rig.payer.pay_v2(&created_challenge, &Terms::default())),
            served(201),
        )
        .await;
    assert_eq!(
        created.header("location"),
        Some("/r/things/7"),
        "G7: Location kept"
    );
    assert_eq!(created.text(), PAID, "G7: body kept");
    assert_eq!(
        created.header("cache-control"),
        Some("private, max-age=60"),
        "G5: private merged, public dropped"
    );

    // G6: every route's PAYMENT-REQUIRED stays under 8 KB.
    for path in [
        COUNTED,
        "/r/dear",
        "/r/twin",
        "/r/item",
        "/r/slow",
        "/r/files/x",
        "/r/any",
    ] {
        let answer = rig.send(Req::get(path)).await;
        let size = answer.header("payment-required").map_or(0, str::len);
        assert!(size > 0 && size < 8 * 1024, "G6 {path}: {size} bytes");
    }
    let answer = rig.send(Req::method(Method::POST, "/r/created")).await;
    let size = answer.header("payment-required").map_or(0, str::len);
    assert!(size > 0 && size < 8 * 1024, "G6 /r/created: {size} bytes");
}

// ------------------------------------------------------------------------------------------------
// Fault table: every facilitator fault fails closed.
// ------------------------------------------------------------------------------------------------

/// One scripted fault and what it must produce.
struct Fault {
    name: &'static str,
    verify: VerifyFault,
    settle: SettleFault,
    /// The first answer.
    expect: Expect,
    /// Whether the settlement outcome is known to be "nothing moved" (then a 402 is allowed).
    outcome_known: bool,
    /// What a resend of the same header gets: `None` = the same status and code as the first.
    resend: Option<(u16, &'static str)>,
    /// Whether the settlement is pending, so that a resend reconciles: exactly one more
    /// `/settle`, with the same payload (reliability §7.4, fault table "/settle hangs",
    /// "settlement_pending over HTTP 500 or 200").
    reconciles: bool,
    /// Whether the facilitator named the transaction (not when `/settle` never answered).
    tx_known: bool,
}

const fn verify_fault(
    name: &'static str,
    verify: VerifyFault,
    status: u16,
    code: &'static str,
) -> Fault {
    Fault {
        name,
        verify,
        settle: SettleFault::Success,
        expect: at_verify(status, code),
        outcome_known: true,
        resend: None,
        reconciles: false,
        tx_known: true,
    }
}

const fn settle_fault(
    name: &'static str,
    settle: SettleFault,
    status: u16,
    code: &'static str,
) -> Fault {
    Fault {
        name,
        verify: VerifyFault::Valid,
        settle,
        expect: withheld(status, code),
        outcome_known: false,
        resend: Some((503, codes::SETTLEMENT_PENDING)),
        reconciles: true,
        tx_known: false,
    }
}

/// A `/settle` answer that leaves the outcome unknown: 503 `settlement_pending`, and every resend
/// reconciles once with the same payload.
const fn unknown_settle(name: &'static str, settle: SettleFault) -> Fault {
    settle_fault(name, settle, 503, codes::SETTLEMENT_PENDING)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_fail_closed() {
    let faults = [
        verify_fault(
            "verify hangs",
            VerifyFault::Hang,
            504,
            codes::FACILITATOR_TIMEOUT,
        ),
        verify_fault(
            "verify HTML 502",
            VerifyFault::Html502,
            502,
            codes::UNEXPECTED_VERIFY_ERROR,
        ),
        verify_fault(
            "verify non-JSON 200",
            VerifyFault::NonJson200,
            502,
            codes::UNEXPECTED_VERIFY_ERROR,
        ),
        verify_fault(
            "verify truncated JSON",
            VerifyFault::Truncated,
            502,
            codes::UNEXPECTED_VERIFY_ERROR,
        ),
        verify_fault(
            "verify wrong schema",
            VerifyFault::WrongSchema,
            502,
            codes::UNEXPECTED_VERIFY_ERROR,
        ),
        verify_fault(
            "verify reset mid-body",
            VerifyFault::Reset,
            502,
            codes::UNEXPECTED_VERIFY_ERROR,
        ),
        verify_fault(
            "verify valid for another payer",
            VerifyFault::OtherPayer,
            502,
            codes::UNEXPECTED_VERIFY_ERROR,
        ),
        // Every answer that is neither a definite success nor a definite refusal: money may
        // have moved, so the payment is pending (503, never a 402 inviting a new signature, never
        // a 409 "in progress" that nothing resolves), and each resend reconciles once.
        unknown_settle("settle hangs", SettleFault::Hang),
        unknown_settle("settle HTML 502", SettleFault::Html502),
        unknown_settle("settle non-JSON 200", SettleFault::NonJson200),
        unknown_settle("settle truncated JSON", SettleFault::Truncated),
        unknown_settle("settle reset mid-body", SettleFault::Reset),
        unknown_settle("settle without success", SettleFault::MissingSuccess),
        unknown_settle("settle success as a string", SettleFault::StringSuccess),
        unknown_settle("settle success body over 503", SettleFault::SuccessOver503),
        // A 5xx may come after the transaction was sent, whatever its body says; a redirected
        // `/settle` may have been processed before the redirect (and is never followed).
        unknown_settle("settle refusal body over 500", SettleFault::RefusalOver500),
        unknown_settle("settle redirected", SettleFault::Redirect),
        unknown_settle("settle success for another payer", SettleFault::OtherPayer),
        unknown_settle(
            "settle success for another amount",
            SettleFault::OtherAmount,
        ),
        unknown_settle(
            "settle success on another network",
            SettleFault::OtherNetwork,
        ),
        unknown_settle(
            "settle success without a transaction",
            SettleFault::SuccessWithoutTransaction,
        ),
        Fault {
            tx_known: true,
            ..unknown_settle("settlement_pending over 200", SettleFault::PendingOver200)
        },
        Fault {
            tx_known: true,
            ..unknown_settle("settlement_pending over 500", SettleFault::PendingOver500)
        },
        Fault {
            outcome_known: true,
            resend: None,
            reconciles: false,
            ..settle_fault(
                "settle success: false",
                SettleFault::Fail("invalid_exact_evm_insufficient_balance"),
                402,
                "invalid_exact_evm_insufficient_balance",
            )
        },
    ];
    let started = Instant::now();
    for fault in faults {
        let rig = Rig::start().await;
        rig.facilitator.set_verify(fault.verify.clone());
        rig.facilitator.set_settle(fault.settle.clone());
        let challenge = rig.challenge(COUNTED).await;
        let terms = Terms::default();
        let payment = rig.payer.pay_v2(&challenge, &terms);
        let name = fault.name;
        let first = rig
            .check(name, Req::get(COUNTED).pay(&payment), fault.expect)
            .await;
        assert_fails_closed(name, &first, fault.outcome_known);
        if first.status == 503 {
            assert!(first.header("retry-after").is_some(), "{name}: Retry-After");
            let receipt = first.receipt().expect("a pending receipt");
            assert_eq!(
                receipt.error_reason.as_deref(),
                Some(codes::SETTLEMENT_PENDING)
            );
            assert_eq!(receipt.network, "eip155:84532", "{name}");
            if fault.tx_known {
                assert_eq!(
                    receipt.transaction,
                    tx_for(&terms.nonce.to_string()),
                    "{name}: names the tx"
                );
            } else {
                assert_eq!(receipt.transaction, "", "{name}: no tx is known");
            }
        }
        if first.status == 402 && fault.expect.settle == 1 {
            let receipt = first.receipt().expect("a failure receipt");
            assert!(!receipt.success, "{name}");
            assert!(
                first.challenge().is_none(),
                "{name}: no fresh challenge after a settle"
            );
        }

        // A resend of the same header gets a consistent answer and never a second settlement.
        let settles = rig.settles();
        let resend = rig.send(Req::get(COUNTED).pay(&payment)).await;
        let row = format!("{name}, resend");
        assert_fails_closed(&row, &resend, fault.outcome_known);
        match fault.resend {
            Some((status, code)) => {
                assert_eq!(resend.status, status, "{row}: {}", resend.text());
                assert_eq!(resend.code().as_deref(), Some(code), "{row}");
                if fault.reconciles {
                    let calls = rig.facilitator.calls();
                    let settled: Vec<&Call> =
                        calls.iter().filter(|c| c.endpoint == "settle").collect();
                    assert_eq!(settled.len(), settles + 1, "{row}: one reconciling settle");
                    assert!(
                        settled.iter().all(|c| c.nonce == terms.nonce.to_string()),
                        "{row}: with the same payload"
                    );
                    let receipt = resend.receipt().expect("a pending receipt");
                    assert_eq!(
                        receipt.error_reason.as_deref(),
                        Some(codes::SETTLEMENT_PENDING),
                        "{row}"
                    );
                } else {
                    assert_eq!(rig.settles(), settles, "{row}: no second settle");
                }
                if code == codes::SETTLEMENT_PENDING && fault.tx_known {
                    assert_eq!(
                        resend.json()["transaction"],
                        tx_for(&terms.nonce.to_string()),
                        "{row}"
                    );
                }
            }
            None => {
                assert_eq!(resend.status, first.status, "{row}: {}", resend.text());
                assert_eq!(resend.code(), first.code(), "{row}");
            }
        }
        // A definitive failure releases the payment, so the resend runs the handler again.
        let runs = match fault.resend {
            None => 2 * fault.expect.runs,
            Some(_) => fault.expect.runs,
        };
        assert_eq!(rig.runs(), runs, "{row}: handler runs");
        if fault.reconciles {
            // The facilitator recovers: the next resend learns the outcome, which names the
            // transaction, and the one after it is answered from the record.
            rig.facilitator.set_settle(SettleFault::Success);
            let tx = tx_for(&terms.nonce.to_string());
            for attempt in ["healed resend", "resend after the outcome"] {
                let answer = rig.send(Req::get(COUNTED).pay(&payment)).await;
                let row = format!("{name}, {attempt}");
                assert_eq!(answer.status, 409, "{row}: {}", answer.text());
                assert_eq!(
                    answer.code().as_deref(),
                    Some(codes::PAYMENT_ALREADY_SETTLED),
                    "{row}"
                );
                assert_eq!(answer.json()["transaction"], tx, "{row}: names the tx");
            }
            assert_eq!(
                rig.settles(),
                settles + 2,
                "{name}: one /settle per reconciliation"
            );
            assert_eq!(rig.runs(), runs, "{name}: the handler ran once");
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "fault table took {:?}",
        started.elapsed()
    );
}

/// No unpaid 2xx; no 402 while the settlement outcome is unknown; no facilitator fault blamed
/// on the client (4xx other than a payment refusal or a conflict).
fn assert_fails_closed(row: &str, answer: &Answer, outcome_known: bool) {
    assert!(
        !(200..300).contains(&answer.status),
        "{row}: an unpaid {}",
        answer.status
    );
    assert!(!answer.text().contains(PAID), "{row}: content leaked");
    if !outcome_known {
        assert_ne!(
            answer.status, 402,
            "{row}: a 402 for an unknown settlement outcome"
        );
    }
    assert!(
        matches!(answer.status, 402 | 409 | 500..=599),
        "{row}: {} blames the client",
        answer.status
    );
    if answer.status >= 500 {
        assert!(
            matches!(
                answer.code().as_deref(),
                Some(
                    codes::FACILITATOR_TIMEOUT
                        | codes::UNEXPECTED_VERIFY_ERROR
                        | codes::UNEXPECTED_SETTLE_ERROR
                        | codes::SETTLEMENT_PENDING
                )
            ),
            "{row}: {:?}",
            answer.code()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_transaction_is_never_credited_twice() {
    let rig = Rig::start().await;
    rig.facilitator.set_settle(SettleFault::SameTransaction(
        "0x1111111111111111111111111111111111111111111111111111111111111111",
    ));
    let challenge = rig.challenge(COUNTED).await;
    let first = rig.payer.pay_v2(&challenge, &Terms::default());
    rig.check(
        "one transaction, first payment",
        Req::get(COUNTED).pay(&first),
        served(200),
    )
    .await;
    let second = rig.payer.pay_v2(&challenge, &Terms::default());
    let answer = rig
        .check(
            "one transaction, second payment",
            Req::get(COUNTED).pay(&second),
            withheld(503, codes::SETTLEMENT_PENDING),
        )
        .await;
    assert_fails_closed("one transaction, second payment", &answer, false);
    let resend = rig.send(Req::get(COUNTED).pay(&second)).await;
    assert_eq!(resend.status, 503, "resend of the second payment");
    assert_eq!(resend.code().as_deref(), Some(codes::SETTLEMENT_PENDING));
    assert_eq!(
        rig.settles(),
        3,
        "the resend reconciles once, and the transaction is still not credited twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supported_at_startup() {
    let facilitator = FaultyFacilitator::start().await;
    let config = faulty_config(&facilitator, BUDGET, BUDGET)
        .build()
        .expect("config");
    let x402 = faulty_paywall(&facilitator, config)
        .build()
        .expect("paywall");
    assert!(x402.check_facilitator().await.is_ok(), "healthy");
    facilitator.set_supported(SupportedFault::Redirect);
    let redirected = x402.check_facilitator().await;
    assert!(redirected.is_ok(), "a redirect is followed: {redirected:?}");
    facilitator.set_supported(SupportedFault::Html502);
    assert!(
        matches!(
            x402.check_facilitator().await,
            Err(x402_runtime::StartupError::Facilitator(_))
        ),
        "HTML 502"
    );
    facilitator.set_supported(SupportedFault::OtherNetwork);
    assert!(
        matches!(
            x402.check_facilitator().await,
            Err(x402_runtime::StartupError::Unsupported(_))
        ),
        "another network only"
    );
    facilitator.set_supported(SupportedFault::Hang);
    let started = Instant::now();
    assert!(
        matches!(
            x402.check_facilitator().await,
            Err(x402_runtime::StartupError::Facilitator(
                x402_runtime::FacilitatorError::Timeout
            ))
        ),
        "hang"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by the verify budget"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_routes_answer_503_while_supported_is_unknown() {
    let rig = Rig::start().await;
    rig.facilitator.set_supported(SupportedFault::Html502);
    let challenge = rig.challenge(COUNTED).await;
    let payment = rig.payer.pay_v2(&challenge, &Terms::default());
    let answer = rig.send(Req::get(COUNTED).pay(&payment)).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert!(answer.header("retry-after").is_some());
    assert_eq!((rig.verifies(), rig.settles(), rig.runs()), (0, 0, 0));
}

// ------------------------------------------------------------------------------------------------
// Client disconnects
// ------------------------------------------------------------------------------------------------

/// Opens a connection, sends a paid GET and returns the socket without reading the answer.
async fn open_paid_get(rig: &Rig, path: &str, payment: &str) -> TcpStream {
    let mut stream = TcpStream::connect(&rig.addr).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: {}\r\npayment-signature: {payment}\r\nconnection: close\r\n\r\n",
        rig.addr
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    stream
}

/// After an aborted request: a resend gets the recorded outcome, and the payment is settled
/// exactly once.
async fn resend_gets_the_recorded_outcome(
    row: &str,
    rig: &Rig,
    path: &str,
    payment: &str,
    tx: &str,
) {
    let settled_before = rig.settles();
    eprintln!("{row}: settlements before the resend: {settled_before}");
    assert!(settled_before <= 1, "{row}: settled {settled_before} times");
    let resend = rig.send(Req::get(path).pay(payment)).await;
    if settled_before == 1 {
        assert_eq!(resend.status, 409, "{row}: {}", resend.text());
        assert_eq!(
            resend.code().as_deref(),
            Some(codes::PAYMENT_ALREADY_SETTLED),
            "{row}"
        );
        assert_eq!(
            resend.json()["transaction"],
            tx,
            "{row}: names the transaction"
        );
    } else {
        assert_eq!(
            resend.status, 200,
            "{row}: nothing was settled, so the resend is served"
        );
    }
    assert_eq!(rig.settles(), 1, "{row}: settled exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_aborts_during_verify() {
    let rig = Rig::start().await;
    rig.facilitator
        .set_verify(VerifyFault::Delay(Duration::from_millis(300)));
    let challenge = rig.challenge(COUNTED).await;
    let terms = Terms::default();
    let payment = rig.payer.pay_v2(&challenge, &terms);
    let socket = open_paid_get(&rig, COUNTED, &payment).await;
    wait_for("/verify", || rig.verifies() == 1).await;
    drop(socket);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let tx = tx_for(&terms.nonce.to_string());
    resend_gets_the_recorded_outcome("abort during verify", &rig, COUNTED, &payment, &tx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_aborts_during_the_handler() {
    let rig = Rig::start().await;
    rig.counters.delay_ms.store(400, Ordering::SeqCst);
    let challenge = rig.challenge("/r/slow").await;
    let terms = Terms::default();
    let payment = rig.payer.pay_v2(&challenge, &terms);
    let socket = open_paid_get(&rig, "/r/slow", &payment).await;
    wait_for("the handler", || rig.started() == 1).await;
    drop(socket);
    tokio::time::sleep(Duration::from_millis(800)).await;
    rig.counters.delay_ms.store(0, Ordering::SeqCst);
    let tx = tx_for(&terms.nonce.to_string());
    resend_gets_the_recorded_outcome("abort during the handler", &rig, "/r/slow", &payment, &tx)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_aborts_during_settle() {
    let rig = Rig::start().await;
    rig.facilitator
        .set_settle(SettleFault::Delay(Duration::from_millis(300)));
    let challenge = rig.challenge(COUNTED).await;
    let terms = Terms::default();
    let payment = rig.payer.pay_v2(&challenge, &terms);
    let socket = open_paid_get(&rig, COUNTED, &payment).await;
    wait_for("/settle", || rig.settles() == 1).await;
    drop(socket);
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Settlement had started: it must have completed and been recorded.
    assert_eq!(rig.settles(), 1);
    let tx = tx_for(&terms.nonce.to_string());
    resend_gets_the_recorded_outcome("abort during settle", &rig, COUNTED, &payment, &tx).await;
    assert_eq!(rig.runs(), 1, "the handler ran once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_timeout_is_pending_and_a_resend_reconciles_once() {
    let rig = Rig::start().await;
    rig.facilitator.set_settle(SettleFault::Hang);
    let challenge = rig.challenge(COUNTED).await;
    let terms = Terms::default();
    let payment = rig.payer.pay_v2(&challenge, &terms);
    let first = rig.send(Req::get(COUNTED).pay(&payment)).await;
    assert_fails_closed("settle timeout", &first, false);
    let receipt = first.receipt().expect("a pending receipt");
    assert_eq!(
        receipt.error_reason.as_deref(),
        Some(codes::SETTLEMENT_PENDING)
    );
    assert_eq!(receipt.network, "eip155:84532");
    // The facilitator has settled meanwhile: the resend retries once with the same payload
    // and answers from the outcome.
    rig.facilitator.set_settle(SettleFault::Success);
    let resend = rig.send(Req::get(COUNTED).pay(&payment)).await;
    assert_eq!(resend.status, 409, "{}", resend.text());
    assert_eq!(
        resend.code().as_deref(),
        Some(codes::PAYMENT_ALREADY_SETTLED)
    );
    assert_eq!(
        resend.json()["transaction"],
        tx_for(&terms.nonce.to_string())
    );
    let settles: Vec<Call> = rig
        .facilitator
        .calls()
        .into_iter()
        .filter(|c| c.endpoint == "settle")
        .collect();
    assert_eq!(settles.len(), 2, "one reconciling retry");
    assert!(
        settles.iter().all(|c| c.nonce == terms.nonce.to_string()),
        "the same payload"
    );
    assert_eq!(rig.runs(), 1, "the handler ran once");
}
