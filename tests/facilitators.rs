//! Facilitator credentials and several facilitators, against facilitator doubles on 127.0.0.1.
//!
//! The doubles check what a real one would: a CDP JWT's signature with the key's public half,
//! its header and claims, its `uris` against the request it came with, its validity window; or
//! a static header. They answer 401 otherwise, and count every call they accept, so that each
//! case asserts where `/verify` and `/settle` went and that no refused call moved money.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Value, json};
use support::{PAY_TO, PAYER_KEY, Payer, Terms, challenge_of, http, serve, tx_for, unix_now};
use tokio::net::TcpListener;
use x402_runtime::facilitator::{CdpAuth, Facilitators, HttpFacilitator};
use x402_runtime::{StartupError, X402, X402Config, X402ConfigBuilder, codes, paid};

const PAID: &str = "PAID-CONTENT";
const KEY_ID: &str = "organizations/test-org/apiKeys/test-key";
const BASE_SEPOLIA: &str = "eip155:84532";
const BASE: &str = "eip155:8453";

/// Paid content that counts its runs.
#[paid(price = "0.001", method = "GET", path = "/paid")]
async fn paid_content(State(runs): State<Arc<AtomicUsize>>) -> &'static str {
    runs.fetch_add(1, Ordering::SeqCst);
    PAID
}

/// What a double demands of each call.
#[derive(Clone)]
enum Demand {
    Nothing,
    /// This header with this value.
    Header(&'static str, &'static str),
    /// A CDP JWT by `KEY_ID`, verified with this public key.
    Jwt {
        key: DecodingKey,
        alg: Algorithm,
    },
}

struct Double {
    addr: SocketAddr,
    state: Arc<DoubleState>,
}

struct DoubleState {
    addr: SocketAddr,
    demand: Demand,
    /// `/supported` answers without credentials (as the public facilitators do).
    open_supported: bool,
    /// Seconds the double's clock is ahead of (or behind) the real one.
    clock_offset: i64,
    /// The host the double believes it serves (a token for another host is refused).
    host: Option<&'static str>,
    networks: Vec<&'static str>,
    signer: &'static str,
    verify_delay: Mutex<Duration>,
    settle_delay: Mutex<Duration>,
    /// Accepted calls: (endpoint, nonce of the authorization).
    calls: Mutex<Vec<(String, String)>>,
    refused: AtomicUsize,
}

struct DoubleSpec {
    demand: Demand,
    open_supported: bool,
    clock_offset: i64,
    host: Option<&'static str>,
    networks: Vec<&'static str>,
    signer: &'static str,
}

impl Default for DoubleSpec {
    fn default() -> Self {
        DoubleSpec {
            demand: Demand::Nothing,
            open_supported: false,
            clock_offset: 0,
            host: None,
            networks: vec![BASE_SEPOLIA],
            signer: "0x1111111111111111111111111111111111111111",
        }
    }
}

impl Double {
    async fn start(spec: DoubleSpec) -> Double {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind double");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(DoubleState {
            addr,
            demand: spec.demand,
            open_supported: spec.open_supported,
            clock_offset: spec.clock_offset,
            host: spec.host,
            networks: spec.networks,
            signer: spec.signer,
            verify_delay: Mutex::new(Duration::ZERO),
            settle_delay: Mutex::new(Duration::ZERO),
            calls: Mutex::new(Vec::new()),
            refused: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/verify", post(answer))
            .route("/settle", post(answer))
            .route("/supported", get(answer))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("double serve") });
        Double { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn count(&self, endpoint: &str) -> usize {
        let calls = self.state.calls.lock().expect("lock");
        calls.iter().filter(|(e, _)| e == endpoint).count()
    }

    fn nonces(&self, endpoint: &str) -> Vec<String> {
        let calls = self.state.calls.lock().expect("lock");
        calls
            .iter()
            .filter(|(e, _)| e == endpoint)
            .map(|(_, n)| n.clone())
            .collect()
    }

    fn refused(&self) -> usize {
        self.state.refused.load(Ordering::SeqCst)
    }

    fn set_verify_delay(&self, delay: Duration) {
        *self.state.verify_delay.lock().expect("lock") = delay;
    }

    fn set_settle_delay(&self, delay: Duration) {
        *self.state.settle_delay.lock().expect("lock") = delay;
    }
}

/// The URL of a port nothing listens on: connections are refused.
async fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

async fn answer(
    State(state): State<Arc<DoubleState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let endpoint = uri.path().trim_start_matches('/').to_owned();
    let exempt = endpoint == "supported" && state.open_supported;
    if !exempt && let Err(why) = state.admit(&method, uri.path(), &headers) {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": why}))).into_response();
    }
    if endpoint == "supported" {
        let kinds: Vec<Value> = state
            .networks
            .iter()
            .map(|n| json!({"x402Version": 2, "scheme": "exact", "network": n}))
            .collect();
        return axum::Json(json!({
            "kinds": kinds,
            "extensions": [],
            "signers": {"eip155:*": [state.signer]},
        }))
        .into_response();
    }
    let body: Value = serde_json::from_slice(&body).expect("json body");
    let authorization = &body["paymentPayload"]["payload"]["authorization"];
    let nonce = authorization["nonce"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    state
        .calls
        .lock()
        .expect("lock")
        .push((endpoint.clone(), nonce.clone()));
    let payer = authorization["from"].clone();
    if endpoint == "verify" {
        let delay = *state.verify_delay.lock().expect("lock");
        tokio::time::sleep(delay).await;
        return axum::Json(json!({"isValid": true, "payer": payer})).into_response();
    }
    let delay = *state.settle_delay.lock().expect("lock");
    tokio::time::sleep(delay).await;
    let network = body["paymentRequirements"]["network"].clone();
    axum::Json(
        json!({"success": true, "transaction": tx_for(&nonce), "network": network, "payer": payer}),
    )
    .into_response()
}

impl DoubleState {
    fn admit(&self, method: &Method, path: &str, headers: &HeaderMap) -> Result<(), String> {
        match &self.demand {
            Demand::Nothing => Ok(()),
            Demand::Header(name, value) => match headers.get(*name) {
                Some(sent) if sent == value => Ok(()),
                Some(_) => Err(format!("wrong {name}")),
                None => Err(format!("no {name}")),
            },
            Demand::Jwt { key, alg } => {
                let bearer = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .ok_or("no bearer token")?;
                let host = self
                    .host
                    .map_or_else(|| self.addr.to_string(), str::to_owned);
                let uri = format!("{method} {host}{path}");
                let now = unix_now().saturating_add_signed(self.clock_offset);
                check_jwt(bearer, key, *alg, &uri, now)
            }
        }
    }
}

/// What the CDP facilitator checks of a token, at `now`.
fn check_jwt(
    token: &str,
    key: &DecodingKey,
    alg: Algorithm,
    uri: &str,
    now: u64,
) -> Result<(), String> {
    let header = decode_header(token).map_err(|e| format!("header: {e}"))?;
    if header.alg != alg || header.kid.as_deref() != Some(KEY_ID) {
        return Err("wrong alg or kid".into());
    }
    if header.typ.as_deref() != Some("JWT") {
        return Err("typ is not JWT".into());
    }
    let nonce = header.nonce.ok_or("no nonce")?;
    if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("nonce is not 16 bytes of hex".into());
    }
    // The signature is checked here; the times against the double's own clock below.
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    let claims = decode::<Value>(token, key, &validation)
        .map_err(|e| format!("signature: {e}"))?
        .claims;
    let time = |name: &str| claims[name].as_u64().ok_or(format!("no {name}"));
    let (nbf, exp, iat) = (time("nbf")?, time("exp")?, time("iat")?);
    if claims["iss"] != "cdp" || claims["sub"] != KEY_ID {
        return Err("wrong iss or sub".into());
    }
    if now < nbf || now < iat.saturating_sub(5) {
        return Err("not valid yet".into());
    }
    if now >= exp || exp - nbf > 120 {
        return Err("expired".into());
    }
    if claims["uris"] != json!([uri]) {
        return Err(format!("uris {} is not [{uri}]", claims["uris"]));
    }
    Ok(())
}

/// An Ed25519 CDP key: (secret as the portal gives it, public key for the double).
fn ed25519_key() -> (String, DecodingKey) {
    let seed = alloy_primitives::B256::random();
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed.0);
    let public = signing.verifying_key().to_bytes();
    let secret = STANDARD.encode(signing.to_keypair_bytes());
    (secret, DecodingKey::from_ed_der(&public))
}

/// An EC P-256 CDP key: (PEM `EC PRIVATE KEY`, public key for the double).
fn es256_key() -> (String, DecodingKey) {
    use p256::pkcs8::LineEnding;
    let secret = loop {
        let bytes = alloy_primitives::B256::random();
        if let Ok(secret) = p256::SecretKey::from_slice(bytes.as_slice()) {
            break secret;
        }
    };
    let pem = secret.to_sec1_pem(LineEnding::LF).expect("pem");
    let point = secret.public_key().to_sec1_bytes();
    (pem.to_string(), DecodingKey::from_ec_der(&point))
}

/// The configuration of these tests, through `url`, verify and settle timeouts of 2 s.
fn config(url: &str) -> X402ConfigBuilder {
    X402Config::builder()
        .pay_to(PAY_TO)
        .network(BASE_SEPOLIA)
        .facilitator_url(url)
        .verify_timeout(Duration::from_secs(2))
        .settle_timeout(Duration::from_secs(2))
}

/// A server with the paywall of `config` (its own facilitators), and its handler runs.
async fn server(config: X402Config) -> (String, Arc<AtomicUsize>) {
    let x402 = X402::builder(config)
        .reconcile_interval(None)
        .build()
        .expect("paywall");
    server_with(x402).await
}

async fn server_with(x402: X402) -> (String, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route("/paid", get(paid_content))
        .with_state(runs.clone())
        .layer(x402.layer());
    (serve(app).await, runs)
}

struct Answer {
    status: u16,
    code: Option<String>,
    text: String,
}

/// A payment for the offer at `index` (0: Base Sepolia), and its nonce.
async fn payment(base: &str, index: usize, chain_id: u64) -> (String, String) {
    let unpaid = http()
        .get(format!("{base}/paid"))
        .send()
        .await
        .expect("request");
    assert_eq!(unpaid.status(), 402);
    let terms = Terms {
        chain_id,
        ..Terms::default()
    };
    let header = Payer::new(PAYER_KEY).pay_v2_offer(&challenge_of(&unpaid), index, &terms);
    (header, terms.nonce.to_string())
}

async fn send(base: &str, header: &str) -> Answer {
    let response = http()
        .get(format!("{base}/paid"))
        .header("PAYMENT-SIGNATURE", header)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body: Value = serde_json::from_str(&text).unwrap_or_default();
    Answer {
        status,
        code: body["error"].as_str().map(str::to_owned),
        text,
    }
}

/// Pays once for Base Sepolia.
async fn pay(base: &str) -> Answer {
    let (header, _) = payment(base, 0, 84532).await;
    send(base, &header).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdp_keys_of_both_kinds_pay_through_a_double_that_checks_the_jwt() {
    for (kind, (secret, key), alg) in [
        ("Ed25519", ed25519_key(), Algorithm::EdDSA),
        ("ES256", es256_key(), Algorithm::ES256),
    ] {
        let double = Double::start(DoubleSpec {
            demand: Demand::Jwt { key, alg },
            ..DoubleSpec::default()
        })
        .await;
        let auth = CdpAuth::new(KEY_ID, &secret).expect("key");
        let (base, runs) = server(
            config(&double.url())
                .cdp_api_key(auth)
                .build()
                .expect("config"),
        )
        .await;
        let paid = pay(&base).await;
        assert_eq!(paid.status, 200, "{kind}: {}", paid.text);
        assert_eq!(paid.text, PAID, "{kind}");
        assert_eq!(double.refused(), 0, "{kind}: every token accepted");
        assert_eq!(
            (double.count("verify"), double.count("settle")),
            (1, 1),
            "{kind}"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdp_keys_from_the_environment_pay() {
    let (secret, key) = es256_key();
    let double = Double::start(DoubleSpec {
        demand: Demand::Jwt {
            key,
            alg: Algorithm::ES256,
        },
        ..DoubleSpec::default()
    })
    .await;
    // As a `.env` line holds a PEM: on one line, with `\n`.
    let one_line = secret.replace('\n', "\\n");
    let url = double.url();
    let vars = [
        ("X402_PAY_TO", PAY_TO),
        ("X402_NETWORK", BASE_SEPOLIA),
        ("X402_FACILITATOR_URL", url.as_str()),
        ("X402_STORE_PATH", "memory"),
        ("CDP_API_KEY_ID", KEY_ID),
        ("CDP_API_KEY_SECRET", one_line.as_str()),
    ];
    let config = X402Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .expect("config");
    let shown = format!("{config:?}");
    assert!(
        shown.contains(KEY_ID) && !shown.contains("PRIVATE"),
        "{shown}"
    );
    let (base, _) = server(config).await;
    let paid = pay(&base).await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    assert_eq!(double.refused(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_a_clear_answer_and_moves_nothing() {
    let (_, key) = ed25519_key();
    let (wrong_secret, _) = ed25519_key();
    // Every endpoint demands the token: without a readable /supported nothing is verified.
    let strict = Double::start(DoubleSpec {
        demand: Demand::Jwt {
            key: key.clone(),
            alg: Algorithm::EdDSA,
        },
        ..DoubleSpec::default()
    })
    .await;
    let auth = CdpAuth::new(KEY_ID, &wrong_secret).expect("key");
    let (base, runs) = server(
        config(&strict.url())
            .cdp_api_key(auth.clone())
            .build()
            .expect("config"),
    )
    .await;
    let answer = pay(&base).await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.code.as_deref(), Some(codes::FACILITATOR_UNAVAILABLE));
    assert!(strict.refused() >= 1);
    assert_eq!((strict.count("verify"), strict.count("settle")), (0, 0));
    assert_eq!(runs.load(Ordering::SeqCst), 0);

    // With an open /supported, /verify is where the token is refused: 502, nothing charged.
    let (right_secret, right_key) = ed25519_key();
    let cases: [(&str, &str, i64, Option<&'static str>); 4] = [
        ("wrong key", &wrong_secret, 0, None),
        ("expired", &right_secret, 300, None),
        ("not valid yet", &right_secret, -300, None),
        ("wrong uri", &right_secret, 0, Some("api.cdp.coinbase.com")),
    ];
    for (case, secret, clock_offset, host) in cases {
        let double = Double::start(DoubleSpec {
            demand: Demand::Jwt {
                key: right_key.clone(),
                alg: Algorithm::EdDSA,
            },
            open_supported: true,
            clock_offset,
            host,
            ..DoubleSpec::default()
        })
        .await;
        let auth = CdpAuth::new(KEY_ID, secret).expect("key");
        let (base, runs) = server(
            config(&double.url())
                .cdp_api_key(auth)
                .build()
                .expect("config"),
        )
        .await;
        let answer = pay(&base).await;
        assert_eq!(answer.status, 502, "{case}: {}", answer.text);
        assert_eq!(
            answer.code.as_deref(),
            Some(codes::UNEXPECTED_VERIFY_ERROR),
            "{case}"
        );
        assert!(answer.text.contains("nothing was charged"), "{case}");
        assert_eq!(double.refused(), 1, "{case}: the /verify");
        assert_eq!(double.count("settle"), 0, "{case}");
        assert_eq!(runs.load(Ordering::SeqCst), 0, "{case}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_headers_reach_the_facilitator() {
    let double = Double::start(DoubleSpec {
        demand: Demand::Header("x-api-key", "k-123"),
        ..DoubleSpec::default()
    })
    .await;
    // In code.
    let with = config(&double.url())
        .facilitator_header("X-Api-Key", "k-123")
        .build()
        .expect("config");
    let shown = format!("{with:?}");
    assert!(
        shown.contains("x-api-key") && !shown.contains("k-123"),
        "{shown}"
    );
    let (base, _) = server(with).await;
    assert_eq!(pay(&base).await.status, 200);
    // From the environment, among other headers.
    let url = double.url();
    let vars = [
        ("X402_PAY_TO", PAY_TO),
        ("X402_FACILITATOR_URL", url.as_str()),
        ("X402_STORE_PATH", "memory"),
        ("X402_FACILITATOR_HEADERS", "X-Other: 1; X-Api-Key: k-123"),
    ];
    let config = X402Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .expect("config");
    let (base, _) = server(config).await;
    assert_eq!(pay(&base).await.status, 200);
    assert_eq!(double.refused(), 0);
    assert_eq!(double.count("settle"), 2);
    // Without the header: refused, and nothing is verified.
    let (base, runs) = server(config_without_headers(&double)).await;
    let answer = pay(&base).await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert!(double.refused() >= 1);
    assert_eq!(double.count("verify"), 2);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    // The startup check says what to fix.
    let x402 = X402::builder(config_without_headers(&double))
        .reconcile_interval(None)
        .build()
        .expect("paywall");
    let refused = x402.check_facilitator().await.expect_err("401");
    assert!(matches!(refused, StartupError::Facilitator(_)));
    assert!(
        refused.to_string().contains("X402_FACILITATOR_HEADERS"),
        "{refused}"
    );
}

fn config_without_headers(double: &Double) -> X402Config {
    config(&double.url()).build().expect("config")
}

/// Two plain doubles: a first facilitator and its fallback.
async fn pair() -> (Double, Double) {
    (
        Double::start(DoubleSpec::default()).await,
        Double::start(DoubleSpec::default()).await,
    )
}

/// The configuration that asks `first`, then `second`.
fn in_order(first: &Double, second: &Double) -> X402ConfigBuilder {
    config(&first.url()).fallback_facilitator_url(second.url())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_fails_over_to_the_next_facilitator() {
    let second = Double::start(DoubleSpec::default()).await;
    let config = config(&refused_url().await)
        .fallback_facilitator_url(second.url())
        .build()
        .expect("config");
    assert_eq!(config.facilitator_urls().len(), 2);
    let (base, runs) = server(config).await;
    for _ in 0..2 {
        let paid = pay(&base).await;
        assert_eq!(paid.status, 200, "{}", paid.text);
    }
    assert_eq!((second.count("verify"), second.count("settle")), (2, 2));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_timeout_skips_the_facilitator_for_the_cooldown() {
    let (first, second) = pair().await;
    first.set_verify_delay(Duration::from_secs(5));
    // The first facilitator's own /verify timeout is shorter than the paywall's: the request
    // that meets the timeout fails over within itself.
    let quick = |url: &str| {
        HttpFacilitator::builder(url)
            .timeouts(Duration::from_millis(300), Duration::from_secs(2))
            .build()
            .expect("client")
    };
    let facilitators = Facilitators::builder()
        .facilitator(quick(&first.url()))
        .facilitator(quick(&second.url()))
        .cooldown(Duration::from_secs(1))
        .build()
        .expect("facilitators");
    let x402 = X402::builder(config(&first.url()).build().expect("config"))
        .facilitator(facilitators)
        .reconcile_interval(None)
        .build()
        .expect("paywall");
    let (base, _) = server_with(x402).await;
    assert_eq!(pay(&base).await.status, 200);
    assert_eq!((first.count("verify"), second.count("verify")), (1, 1));
    assert_eq!(pay(&base).await.status, 200);
    assert_eq!(
        (first.count("verify"), second.count("verify")),
        (1, 2),
        "skipped while cooling down"
    );
    // After the cool-down it is asked again (and, now quick, answers).
    first.set_verify_delay(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(pay(&base).await.status, 200);
    assert_eq!((first.count("verify"), second.count("verify")), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_cut_short_by_the_paywall_timeout_cools_the_facilitator_down() {
    let (first, second) = pair().await;
    first.set_verify_delay(Duration::from_secs(5));
    let config = in_order(&first, &second)
        .verify_timeout(Duration::from_millis(500))
        .build()
        .expect("config");
    let (base, runs) = server(config).await;
    let answer = pay(&base).await;
    assert_eq!(answer.status, 504, "{}", answer.text);
    assert_eq!(answer.code.as_deref(), Some(codes::FACILITATOR_TIMEOUT));
    let paid = pay(&base).await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    assert_eq!(first.count("verify"), 1, "skipped while cooling down");
    // The second may or may not have received the first request's failover before the deadline.
    assert!(second.count("verify") >= 1);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_without_answer_is_never_sent_to_another_facilitator() {
    let (first, second) = pair().await;
    first.set_settle_delay(Duration::from_secs(5));
    let config = in_order(&first, &second)
        .settle_timeout(Duration::from_millis(500))
        .build()
        .expect("config");
    let (base, runs) = server(config).await;
    let (header, nonce) = payment(&base, 0, 84532).await;
    let pending = send(&base, &header).await;
    assert_eq!(pending.status, 503, "{}", pending.text);
    assert_eq!(pending.code.as_deref(), Some(codes::SETTLEMENT_PENDING));
    assert_eq!((first.count("settle"), second.count("settle")), (1, 0));
    // The first facilitator answers again; the resend's reconciliation goes to it alone, even
    // though it is cooling down.
    first.set_settle_delay(Duration::ZERO);
    let settled = send(&base, &header).await;
    assert_eq!(settled.status, 409, "{}", settled.text);
    assert_eq!(
        settled.code.as_deref(),
        Some(codes::PAYMENT_ALREADY_SETTLED)
    );
    assert!(settled.text.contains(&tx_for(&nonce)), "{}", settled.text);
    assert_eq!(first.nonces("settle"), [nonce.clone(), nonce]);
    assert_eq!(
        second.count("settle"),
        0,
        "never sent to a second facilitator"
    );
    assert_eq!(second.count("verify"), 0);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_network_pays_through_its_own_facilitators() {
    let sepolia = Double::start(DoubleSpec::default()).await;
    let mainnet = Double::start(DoubleSpec {
        networks: vec![BASE],
        ..DoubleSpec::default()
    })
    .await;
    let (sepolia_url, mainnet_url) = (sepolia.url(), mainnet.url());
    let vars = [
        ("X402_PAY_TO", PAY_TO),
        ("X402_NETWORK", "eip155:84532,eip155:8453"),
        ("X402_FACILITATOR_URL", sepolia_url.as_str()),
        ("X402_FACILITATOR_URL_8453", mainnet_url.as_str()),
        ("X402_STORE_PATH", "memory"),
    ];
    let config = X402Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .expect("config");
    let routes: Vec<_> = config.network_facilitator_urls().collect();
    assert_eq!(routes, [(BASE, &[mainnet_url.clone()][..])]);
    let (base, _) = server(config).await;
    let (on_sepolia, sepolia_nonce) = payment(&base, 0, 84532).await;
    assert_eq!(send(&base, &on_sepolia).await.status, 200);
    let (on_mainnet, mainnet_nonce) = payment(&base, 1, 8453).await;
    let paid = send(&base, &on_mainnet).await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    assert_eq!(sepolia.nonces("settle"), sepolia.nonces("verify"));
    assert_eq!(sepolia.nonces("settle"), [sepolia_nonce]);
    assert_eq!(mainnet.nonces("settle"), mainnet.nonces("verify"));
    assert_eq!(mainnet.nonces("settle"), [mainnet_nonce]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_facilitator_reports_the_merged_view() {
    let sepolia = Double::start(DoubleSpec::default()).await;
    let mainnet = Double::start(DoubleSpec {
        networks: vec![BASE],
        signer: "0x2222222222222222222222222222222222222222",
        ..DoubleSpec::default()
    })
    .await;
    let build = |networks: &[&str]| {
        let config = networks
            .iter()
            .fold(X402Config::builder(), |b, n| b.network(*n))
            .pay_to(PAY_TO)
            .build()
            .expect("config");
        let facilitators = Facilitators::builder()
            .facilitator(HttpFacilitator::new(&refused_url_sync()).expect("client"))
            .facilitator(HttpFacilitator::new(&sepolia.url()).expect("client"))
            .facilitator(HttpFacilitator::new(&mainnet.url()).expect("client"))
            .build()
            .expect("facilitators");
        X402::builder(config)
            .facilitator(facilitators)
            .reconcile_interval(None)
            .build()
            .expect("paywall")
    };
    let both = build(&[BASE_SEPOLIA, BASE])
        .check_facilitator()
        .await
        .expect("both networks supported, the unreachable facilitator left out");
    assert!(both.supports(2, "exact", BASE_SEPOLIA) && both.supports(2, "exact", BASE));
    assert_eq!(
        both.signers["eip155:*"],
        json!([
            "0x1111111111111111111111111111111111111111",
            "0x2222222222222222222222222222222222222222"
        ])
    );
    match build(&[BASE_SEPOLIA, BASE, "eip155:10"])
        .check_facilitator()
        .await
    {
        Err(StartupError::Unsupported(missing)) => {
            assert_eq!(missing, [(2, "eip155:10".to_owned())]);
        }
        other => panic!("expected eip155:10 missing, got {other:?}"),
    }
}

/// A port nothing listens on, without a runtime (std's listener, dropped at once).
fn refused_url_sync() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_routed_to_a_facilitator_that_does_not_support_it_is_missing() {
    // The default facilitator supports both networks, but Base's payments go to its own list,
    // whose facilitator supports only Base Sepolia: Base is reported missing.
    let everything = Double::start(DoubleSpec {
        networks: vec![BASE_SEPOLIA, BASE],
        ..DoubleSpec::default()
    })
    .await;
    let sepolia_only = Double::start(DoubleSpec::default()).await;
    let config = X402Config::builder()
        .pay_to(PAY_TO)
        .network(BASE_SEPOLIA)
        .network(BASE)
        .facilitator_url(everything.url())
        .network_facilitator_url(BASE, sepolia_only.url())
        .build()
        .expect("config");
    let x402 = X402::builder(config)
        .reconcile_interval(None)
        .build()
        .expect("paywall");
    match x402.check_facilitator().await {
        Err(StartupError::Unsupported(missing)) => {
            assert_eq!(missing, [(2, BASE.to_owned())]);
        }
        other => panic!("expected Base missing, got {other:?}"),
    }
}
