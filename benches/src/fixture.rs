//! What every benchmark shares: the paid route, the paywall configuration, pre-signed payments,
//! the facilitator with settlement stubbed at the chain boundary, a facilitator double served
//! over HTTP, and the plain axum baseline.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_signer::SignerSync as _;
use alloy_signer_local::PrivateKeySigner;
use axum::Router;
use axum::body::Bytes;
use axum::extract::Query;
use axum::http::header::CONTENT_TYPE;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use x402_runtime::X402Version;
use x402_runtime::facilitator::{HttpFacilitator, LocalFacilitator};
use x402_runtime::proto::{
    FacilitatorRequest, PaymentRequired, Requirements, SettleResponse, SupportedResponse,
    VerifyResponse,
};
use x402_runtime::schemes::exact_evm::eip3009::{self, TransferWithAuthorization};
use x402_runtime::schemes::{self, exact_evm::ExactEvmPayload};
use x402_runtime::{
    BoxFuture, Facilitator, FacilitatorError, Quote, X402, X402Config, paid, quote,
};

/// Path of the paid route.
pub const PAID_PATH: &str = "/report";
/// Path of the quoted route (priced per request by a trivial quote: 0.001 USDC a row).
pub const QUOTED_PATH: &str = "/quoted";
/// Path of the plain baseline route.
pub const PLAIN_PATH: &str = "/plain";
/// The body the paid handler answers with once paid.
pub const PAID_BODY: &str = r#"{"city":"Paris","celsius":21.5,"conditions":"clear"}"#;
/// Seconds a pre-signed payment stays valid; the paid route accepts up to 900.
pub const PAYMENT_LIFETIME: u64 = 840;
/// The network every benchmark pays on (the test bed's Base Sepolia).
pub const NETWORK: &str = x402_testbed::NETWORK;

/// The paid route of every benchmark: a small JSON report for 0.001 USDC.
///
/// `max_timeout_seconds = 900` lets payments signed before a measurement stay valid for all of it.
#[paid(price = "0.001", currency = "USDC", max_timeout_seconds = 900)]
pub async fn report() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    ([(CONTENT_TYPE, "application/json")], PAID_BODY)
}

/// Query of the quoted route.
#[derive(serde::Deserialize)]
pub struct Rows {
    /// How many rows; each costs 0.001 USDC.
    pub rows: u32,
}

/// The trivial quote of [`quoted_report`]: 0.001 USDC a row.
#[quote]
pub async fn quote_rows(Query(q): Query<Rows>) -> Quote {
    Quote::atomic(1_000 * u128::from(q.rows))
}

/// The route of [`report`], priced per request: `?rows=1` costs what [`report`] does, so the two
/// 402s differ only by how the price was found.
#[paid(quote = quote_rows, min = "0.001", max = "0.05", currency = "USDC", max_timeout_seconds = 900)]
pub async fn quoted_report(
    Query(_): Query<Rows>,
) -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    ([(CONTENT_TYPE, "application/json")], PAID_BODY)
}

/// The paywall configuration: Base Sepolia, paying the test bed's merchant.
pub fn config() -> X402Config {
    X402Config::builder()
        .pay_to(x402_testbed::MERCHANT.to_checksum(None))
        .network(NETWORK)
        .build()
        .expect("the benchmark configuration is valid")
}

/// A paywall over `facilitator`.
pub fn paywall(facilitator: impl Facilitator) -> X402 {
    X402::builder(config())
        .facilitator(facilitator)
        .build()
        .expect("the benchmark paywall builds")
}

/// The paid app: [`report`] at [`PAID_PATH`] behind `x402`.
pub fn paid_app(x402: &X402) -> Router {
    Router::new()
        .route(PAID_PATH, get(report))
        .route(QUOTED_PATH, get(quoted_report))
        .layer(x402.layer())
}

/// The baseline: a plain axum handler at [`PLAIN_PATH`] answering `body` as JSON, with no
/// paywall installed.
pub fn plain_app(body: Bytes) -> Router {
    Router::new().route(
        PLAIN_PATH,
        get(move || {
            let body = body.clone();
            async move { ([(CONTENT_TYPE, "application/json")], body) }
        }),
    )
}

/// The in-process facilitator for [`NETWORK`] without any RPC: verification only.
pub fn offline_facilitator() -> LocalFacilitator {
    LocalFacilitator::builder()
        .network(NETWORK)
        .build()
        .expect("the offline facilitator builds")
}

/// The in-process facilitator settling through `rpc` with the test bed's facilitator key.
pub fn chain_facilitator(rpc: &str) -> LocalFacilitator {
    LocalFacilitator::builder()
        .network(NETWORK)
        .rpc_url(NETWORK, rpc)
        .signer_key(NETWORK, x402_testbed::FACILITATOR_KEY)
        .receipt_timeout(Duration::from_secs(20))
        .build()
        .expect("the chain facilitator builds")
}

/// The in-process facilitator with settlement stubbed at the chain boundary.
///
/// `verify` is [`LocalFacilitator`]'s own, offline (EIP-712 digest, ecrecover with FiatToken's
/// rules, validity window, exact value, recipient; no RPC). `settle` sends nothing: it decodes
/// the payment again and answers success with the payer, our network and a transaction hash
/// derived from the payment (`keccak256(chain id ‖ payer ‖ nonce)`), which is exactly what the
/// paywall checks in a real settlement answer.
pub struct StubbedSettlement {
    local: LocalFacilitator,
}

impl StubbedSettlement {
    /// Verification by an offline [`LocalFacilitator`] for [`NETWORK`].
    pub fn new() -> Self {
        StubbedSettlement {
            local: offline_facilitator(),
        }
    }
}

impl Default for StubbedSettlement {
    fn default() -> Self {
        StubbedSettlement::new()
    }
}

/// The transaction hash the settlement stubs and doubles answer for a payment:
/// `keccak256(chain id (8 bytes, big-endian) ‖ payer ‖ nonce)`, distinct for every payment.
pub fn settlement_transaction(chain_id: u64, payer: Address, nonce: B256) -> B256 {
    let mut preimage = Vec::with_capacity(8 + 20 + 32);
    preimage.extend_from_slice(&chain_id.to_be_bytes());
    preimage.extend_from_slice(payer.as_slice());
    preimage.extend_from_slice(nonce.as_slice());
    keccak256(&preimage)
}

/// The answer [`StubbedSettlement`] gives to `/settle`.
pub fn stub_settle(request: &FacilitatorRequest) -> SettleResponse {
    let version = match request.x402_version {
        1 => X402Version::V1,
        _ => X402Version::V2,
    };
    let network = match &request.payment_requirements {
        Requirements::V2(r) => r.network.clone(),
        Requirements::V1(r) => r.network.clone(),
    };
    let json = request.payment_payload.get().as_bytes().to_vec();
    let decoded = schemes::decode_json(json, version);
    let evm = decoded.as_ref().map(|d| d.payload_as::<ExactEvmPayload>());
    match evm {
        Ok(Some(evm)) => {
            let auth = &evm.authorization;
            SettleResponse {
                success: true,
                error_reason: None,
                error_message: None,
                payer: Some(auth.from.to_checksum(None)),
                transaction: settlement_transaction(x402_testbed::CHAIN_ID, auth.from, auth.nonce)
                    .to_string(),
                network,
                amount: None,
            }
        }
        other => SettleResponse {
            success: false,
            error_reason: Some("invalid_payload".to_owned()),
            error_message: Some(format!("{:?}", other.err())),
            payer: None,
            transaction: String::new(),
            network,
            amount: None,
        },
    }
}

impl Facilitator for StubbedSettlement {
    fn verify<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<VerifyResponse, FacilitatorError>> {
        self.local.verify(request)
    }

    fn settle<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<SettleResponse, FacilitatorError>> {
        Box::pin(async move { Ok(stub_settle(request)) })
    }

    fn supported(&self) -> BoxFuture<'_, Result<SupportedResponse, FacilitatorError>> {
        self.local.supported()
    }
}

/// Time the server spent waiting on the facilitator, per payment nonce.
pub type FacilitatorTimes = Arc<Mutex<HashMap<B256, Duration>>>;

/// Wraps a facilitator and adds the time of each `verify` and `settle` call (as the server sees
/// it: request encoding, the HTTP round trip and the answer's decoding) to the payment's entry.
pub struct Timed<F> {
    inner: F,
    times: FacilitatorTimes,
}

impl<F: Facilitator> Timed<F> {
    /// Wraps `inner`; the times go to the returned map.
    pub fn new(inner: F) -> (Self, FacilitatorTimes) {
        let times = FacilitatorTimes::default();
        (
            Timed {
                inner,
                times: times.clone(),
            },
            times,
        )
    }

    fn add(&self, request: &FacilitatorRequest, spent: Duration) {
        if let Some(nonce) = nonce_of(request.payment_payload.get()) {
            let mut times = self.times.lock().unwrap_or_else(PoisonError::into_inner);
            *times.entry(nonce).or_default() += spent;
        }
    }
}

/// The authorization nonce in a payment's JSON text, found without parsing the whole payment.
pub fn nonce_of(json: &str) -> Option<B256> {
    let at = json.find("\"nonce\"")?;
    let rest = &json[at + 7..];
    let start = rest.find("0x")?;
    rest.get(start..start + 66)?.parse().ok()
}

impl<F: Facilitator> Facilitator for Timed<F> {
    fn verify<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<VerifyResponse, FacilitatorError>> {
        Box::pin(async move {
            let start = Instant::now();
            let answer = self.inner.verify(request).await;
            self.add(request, start.elapsed());
            answer
        })
    }

    fn settle<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<SettleResponse, FacilitatorError>> {
        Box::pin(async move {
            let start = Instant::now();
            let answer = self.inner.settle(request).await;
            self.add(request, start.elapsed());
            answer
        })
    }

    fn supported(&self) -> BoxFuture<'_, Result<SupportedResponse, FacilitatorError>> {
        self.inner.supported()
    }
}

/// The HTTP facilitator client for a double at `addr`.
pub fn http_facilitator(addr: SocketAddr) -> HttpFacilitator {
    HttpFacilitator::with_timeouts(
        &format!("http://{addr}"),
        Duration::from_secs(10),
        Duration::from_secs(10),
    )
    .expect("the HTTP facilitator client builds")
}

/// A facilitator double speaking the standard API: `/verify` vouches for the payer, `/settle`
/// answers success with a transaction hash derived from the payment, `/supported` lists
/// `exact` on [`NETWORK`]. It parses each body as JSON, as a real facilitator does, and does no
/// cryptography and no chain work, so its time is close to the least any facilitator takes.
pub fn facilitator_double() -> Router {
    Router::new()
        .route("/verify", post(double_verify))
        .route("/settle", post(double_settle))
        .route("/supported", get(double_supported))
}

/// What a recording facilitator double ([`recording_facilitator_double`]) was asked, per
/// payment nonce.
#[derive(Clone, Debug, Default)]
pub struct DoubleCalls {
    /// `/supported` calls.
    pub supported: u64,
    /// `/verify` calls, per nonce.
    pub verify: HashMap<B256, u64>,
    /// `/settle` calls, per nonce.
    pub settle: HashMap<B256, u64>,
    /// `/verify` and `/settle` calls whose body named no nonce.
    pub unreadable: u64,
}

/// The shared record of a recording facilitator double.
pub type DoubleLog = Arc<Mutex<DoubleCalls>>;

/// [`facilitator_double`] answering the same, and counting every call in `log` (by the
/// payment's nonce for `/verify` and `/settle`). The existing scenarios use the double without
/// a record, so the record's lock costs them nothing.
pub fn recording_facilitator_double(log: DoubleLog) -> Router {
    Router::new()
        .route("/verify", post(recorded_verify))
        .route("/settle", post(recorded_settle))
        .route("/supported", get(recorded_supported))
        .with_state(log)
}

fn record(log: &DoubleLog, body: &[u8], settle: bool) {
    let nonce = std::str::from_utf8(body).ok().and_then(nonce_of);
    let mut calls = log.lock().unwrap_or_else(PoisonError::into_inner);
    match nonce {
        Some(nonce) if settle => *calls.settle.entry(nonce).or_default() += 1,
        Some(nonce) => *calls.verify.entry(nonce).or_default() += 1,
        None => calls.unreadable += 1,
    }
}

async fn recorded_verify(
    axum::extract::State(log): axum::extract::State<DoubleLog>,
    body: Bytes,
) -> axum::Json<Value> {
    record(&log, &body, false);
    double_verify(body).await
}

async fn recorded_settle(
    axum::extract::State(log): axum::extract::State<DoubleLog>,
    body: Bytes,
) -> axum::Json<Value> {
    record(&log, &body, true);
    double_settle(body).await
}

async fn recorded_supported(
    axum::extract::State(log): axum::extract::State<DoubleLog>,
) -> axum::Json<Value> {
    log.lock().unwrap_or_else(PoisonError::into_inner).supported += 1;
    double_supported().await
}

async fn double_verify(body: Bytes) -> axum::Json<Value> {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let from = body["paymentPayload"]["payload"]["authorization"]["from"].clone();
    axum::Json(json!({"isValid": true, "payer": from}))
}

async fn double_settle(body: Bytes) -> axum::Json<Value> {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let auth = &body["paymentPayload"]["payload"]["authorization"];
    let nonce = auth["nonce"].as_str().unwrap_or_default();
    axum::Json(json!({
        "success": true,
        "transaction": keccak256(nonce.as_bytes()).to_string(),
        "network": body["paymentRequirements"]["network"],
        "payer": auth["from"],
    }))
}

async fn double_supported() -> axum::Json<Value> {
    axum::Json(json!({
        "kinds": [{"x402Version": 2, "scheme": "exact", "network": NETWORK}],
        "extensions": [],
        "signers": {}
    }))
}

/// Serves `app` on a free port of 127.0.0.1 on the current runtime.
pub async fn serve(app: Router) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("server on {addr} stopped: {e}");
        }
    });
    Ok(addr)
}

/// Decodes the `PAYMENT-REQUIRED` header value of a 402.
pub fn decode_challenge(header: &[u8]) -> Result<PaymentRequired, String> {
    let json = STANDARD
        .decode(header)
        .map_err(|e| format!("PAYMENT-REQUIRED is not base64: {e}"))?;
    serde_json::from_slice(&json).map_err(|e| format!("PAYMENT-REQUIRED is not a challenge: {e}"))
}

/// Signs v2 payments for the first offer of a challenge, the way an x402 client does.
pub struct Payer {
    signer: PrivateKeySigner,
}

impl Payer {
    /// A payer with a hex private key.
    pub fn new(key: &str) -> Self {
        Payer {
            signer: key.parse().expect("a valid private key"),
        }
    }

    /// The paying address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// A `PAYMENT-SIGNATURE` value paying `challenge.accepts[0]` with `nonce`, valid until
    /// `valid_before` (unix seconds).
    pub fn pay(&self, challenge: &PaymentRequired, nonce: B256, valid_before: u64) -> String {
        let offer = &challenge.accepts[0];
        let extra = offer
            .extra
            .as_ref()
            .expect("the offer names its EIP-712 domain");
        let name = extra["name"].as_str().expect("extra.name");
        let version = extra["version"].as_str().expect("extra.version");
        let chain_id: u64 = offer
            .network
            .strip_prefix("eip155:")
            .and_then(|id| id.parse().ok())
            .expect("an eip155 network");
        let asset: Address = offer.asset.parse().expect("asset address");
        let to: Address = offer.pay_to.parse().expect("payTo address");
        let value: U256 = offer.amount.parse().expect("amount");
        let domain = eip3009::domain(name, version, chain_id, asset);
        let message = TransferWithAuthorization {
            from: self.address(),
            to,
            value,
            validAfter: U256::ZERO,
            validBefore: U256::from(valid_before),
            nonce,
        };
        let signature = self
            .signer
            .sign_typed_data_sync(&message, &domain)
            .expect("signing never fails with a local key");
        let payment = json!({
            "x402Version": 2,
            "resource": challenge.resource,
            "accepted": offer,
            "payload": {
                "signature": format!("0x{}", alloy_primitives::hex::encode(signature.as_bytes())),
                "authorization": {
                    "from": self.address().to_checksum(None),
                    "to": to.to_checksum(None),
                    "value": value.to_string(),
                    "validAfter": "0",
                    "validBefore": valid_before.to_string(),
                    "nonce": nonce.to_string(),
                }
            }
        });
        STANDARD.encode(serde_json::to_vec(&payment).expect("JSON"))
    }
}

/// `count` payments for `challenge`, signed in parallel by `keys` in turn, each with a unique
/// nonce and valid for [`PAYMENT_LIFETIME`] seconds from now. Returns `(nonce, header value)`.
pub fn presign(challenge: &PaymentRequired, keys: &[&str], count: usize) -> Vec<(B256, String)> {
    let valid_before = x402_runtime::unix_now() + PAYMENT_LIFETIME;
    presign_payments(challenge, keys, count, valid_before)
        .into_iter()
        .map(|p| (p.nonce, p.header))
        .collect()
}

/// One pre-signed payment.
#[derive(Clone, Debug)]
pub struct SignedPayment {
    /// Its EIP-3009 nonce (unique per payment).
    pub nonce: B256,
    /// Who signed it.
    pub payer: Address,
    /// The `PAYMENT-SIGNATURE` header value.
    pub header: String,
}

/// `count` payments for `challenge`, signed in parallel (one thread per core) by `keys` in turn,
/// each with a unique nonce and valid until `valid_before` (unix seconds), in order.
pub fn presign_payments(
    challenge: &PaymentRequired,
    keys: &[&str],
    count: usize,
    valid_before: u64,
) -> Vec<SignedPayment> {
    let payers: Vec<Payer> = keys.iter().map(|k| Payer::new(k)).collect();
    let salt = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = count.div_ceil(threads).max(1);
    let indices: Vec<usize> = (0..count).collect();
    let mut out: Vec<SignedPayment> = Vec::with_capacity(count);
    std::thread::scope(|scope| {
        let handles: Vec<_> = indices
            .chunks(chunk)
            .map(|part| {
                let payers = &payers;
                scope.spawn(move || {
                    part.iter()
                        .map(|&i| {
                            let mut seed = [0u8; 24];
                            seed[..16].copy_from_slice(&salt.to_be_bytes());
                            seed[16..].copy_from_slice(&(i as u64).to_be_bytes());
                            let nonce = keccak256(seed);
                            let payer = &payers[i % payers.len()];
                            SignedPayment {
                                nonce,
                                payer: payer.address(),
                                header: payer.pay(challenge, nonce, valid_before),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            out.extend(handle.join().expect("signing thread"));
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::{DoubleLog, recording_facilitator_double, serve};
    use crate::loadgen;
    use alloy_primitives::B256;
    use std::sync::PoisonError;

    #[test]
    fn the_recording_double_counts_calls_by_nonce() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let log = DoubleLog::default();
        let nonce = B256::repeat_byte(7);
        let body = format!(
            r#"{{"x402Version":2,"paymentPayload":{{"payload":{{"authorization":{{"from":"0x1","nonce":"{nonce}"}}}}}},"paymentRequirements":{{"network":"eip155:84532"}}}}"#
        );
        let answers = rt.block_on(async {
            let addr = serve(recording_facilitator_double(log.clone()))
                .await
                .expect("serve the double");
            let mut answers = Vec::new();
            for path in ["/verify", "/settle", "/settle"] {
                let request = loadgen::post_json_request(addr, path, body.as_bytes());
                answers.push(loadgen::fetch(addr, &request).await.expect("an answer"));
            }
            let supported = loadgen::get_request(addr, "/supported", &[]);
            answers.push(loadgen::fetch(addr, &supported).await.expect("an answer"));
            answers
        });
        assert!(answers.iter().all(|a| a.status == 200));
        assert!(String::from_utf8_lossy(&answers[1].body).contains(r#""success":true"#));
        let calls = log.lock().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(calls.verify.get(&nonce), Some(&1));
        assert_eq!(calls.settle.get(&nonce), Some(&2));
        assert_eq!((calls.supported, calls.unreadable), (1, 0));
    }
}
