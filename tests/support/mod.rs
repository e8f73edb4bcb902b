//! Test support: a facilitator double served over HTTP on 127.0.0.1, a payer that signs real
//! EIP-3009 authorizations with alloy, and a server harness.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{Eip712Domain, eip712_domain};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use x402_runtime::facilitator::HttpFacilitator;
use x402_runtime::proto::{PaymentRequired, PaymentRequiredV1};
use x402_runtime::schemes::exact_evm::eip3009::TransferWithAuthorization;
use x402_runtime::{X402, X402Config};

pub mod svm;

/// Public test key #1 (anvil/hardhat mnemonic): the payer.
pub const PAYER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
/// Public test key #6: a second payer.
pub const PAYER2_KEY: &str = "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e";
/// Test account #3: the merchant.
pub const PAY_TO: &str = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
/// USDC on Base Sepolia.
pub const USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";

/// What the facilitator double answers.
#[derive(Clone, Debug)]
pub enum VerifyMode {
    Valid,
    Invalid(&'static str),
    Hang,
}

#[derive(Clone, Debug)]
pub enum SettleMode {
    Success,
    Fail(&'static str),
    Pending,
    /// `success: true` for another payer.
    WrongPayer,
    /// Not JSON.
    Garbage,
    /// Records the call, then never answers in time (the payment "moved" at the facilitator).
    Hang,
    /// Success, after this delay.
    Slow(Duration),
}

/// One call the double received: endpoint and the payment's `(from, nonce)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub endpoint: &'static str,
    pub from: String,
    pub nonce: String,
    pub x402_version: u64,
    pub requirements: Value,
}

#[derive(Debug)]
struct Script {
    verify: VerifyMode,
    settle: SettleMode,
    calls: Vec<Call>,
}

/// A facilitator double on 127.0.0.1 that records every call in a ledger.
#[derive(Clone)]
pub struct Facilitator {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
}

impl Facilitator {
    pub async fn start() -> Facilitator {
        let script = Arc::new(Mutex::new(Script {
            verify: VerifyMode::Valid,
            settle: SettleMode::Success,
            calls: vec![],
        }));
        let app = Router::new()
            .route("/verify", post(verify))
            .route("/settle", post(settle))
            .route("/supported", get(supported))
            .with_state(script.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind facilitator");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("facilitator serve") });
        Facilitator { addr, script }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_verify(&self, mode: VerifyMode) {
        self.script.lock().expect("lock").verify = mode;
    }

    pub fn set_settle(&self, mode: SettleMode) {
        self.script.lock().expect("lock").settle = mode;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.script.lock().expect("lock").calls.clone()
    }

    pub fn count(&self, endpoint: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.endpoint == endpoint)
            .count()
    }
}

fn record(script: &Mutex<Script>, endpoint: &'static str, body: &Value) {
    let auth = payment_auth(body);
    script.lock().expect("lock").calls.push(Call {
        endpoint,
        from: auth["from"].as_str().unwrap_or_default().to_owned(),
        nonce: auth["nonce"].as_str().unwrap_or_default().to_owned(),
        x402_version: body["x402Version"].as_u64().unwrap_or_default(),
        requirements: body["paymentRequirements"].clone(),
    });
}

async fn verify(State(script): State<Arc<Mutex<Script>>>, Json(body): Json<Value>) -> Json<Value> {
    record(&script, "verify", &body);
    let mode = script.lock().expect("lock").verify.clone();
    let from = payment_auth(&body)["from"].clone();
    match mode {
        VerifyMode::Valid => Json(json!({"isValid": true, "payer": from})),
        VerifyMode::Invalid(reason) => Json(
            json!({"isValid": false, "invalidReason": reason, "invalidMessage": "rpc node said: secret detail", "payer": from}),
        ),
        VerifyMode::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Json(json!({"isValid": true}))
        }
    }
}

/// A deterministic transaction hash per payment: keccak256 of the nonce.
pub fn tx_for(nonce: &str) -> String {
    keccak256(nonce.as_bytes()).to_string()
}

async fn settle(
    State(script): State<Arc<Mutex<Script>>>,
    Json(body): Json<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    record(&script, "settle", &body);
    let mode = script.lock().expect("lock").settle.clone();
    let auth = payment_auth(&body);
    let nonce = auth["nonce"].as_str().unwrap_or_default();
    let network = body["paymentRequirements"]["network"].clone();
    match mode {
        SettleMode::Success => Json(json!({"success": true, "transaction": tx_for(nonce), "network": network, "payer": auth["from"]})).into_response(),
        SettleMode::Fail(reason) => Json(json!({"success": false, "errorReason": reason, "errorMessage": "execution reverted: internal", "transaction": "", "network": network})).into_response(),
        SettleMode::Pending => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"success": false, "errorReason": "settlement_pending", "transaction": tx_for(nonce), "network": network})),
        )
            .into_response(),
        SettleMode::WrongPayer => Json(json!({"success": true, "transaction": tx_for(nonce), "network": network, "payer": "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"})).into_response(),
        SettleMode::Garbage => "<html>502 Bad Gateway</html>".into_response(),
        SettleMode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            Json(json!({"success": true, "transaction": tx_for(nonce), "network": network, "payer": auth["from"]})).into_response()
        }
        SettleMode::Hang => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            Json(json!({"success": true, "transaction": tx_for(nonce), "network": network, "payer": auth["from"]})).into_response()
        }
    }
}

async fn supported() -> Json<Value> {
    Json(json!({"kinds": [
        {"x402Version": 2, "scheme": "exact", "network": "eip155:84532"},
        {"x402Version": 1, "scheme": "exact", "network": "base-sepolia"},
        upto_kind()
    ], "extensions": [], "signers": {}}))
}

/// The doubles settle `upto` on Base Sepolia as the test bed's facilitator account.
pub fn upto_kind() -> Value {
    json!({"x402Version": 2, "scheme": "upto", "network": "eip155:84532",
           "extra": {"facilitatorAddress": x402_testbed::FACILITATOR.to_checksum(None)}})
}

/// The scheme's signed part of a facilitator request: `authorization` (EIP-3009) or
/// `permit2Authorization`.
pub fn payment_auth(body: &Value) -> &Value {
    let payload = &body["paymentPayload"]["payload"];
    if payload["permit2Authorization"].is_object() {
        &payload["permit2Authorization"]
    } else {
        &payload["authorization"]
    }
}

/// The paywall configured for Base Sepolia, paying [`PAY_TO`], through `facilitator`.
pub fn paywall(facilitator: &Facilitator) -> X402 {
    paywall_with(facilitator, Duration::from_secs(5))
}

pub fn paywall_with(facilitator: &Facilitator, verify_timeout: Duration) -> X402 {
    paywall_on(facilitator, verify_timeout, &["eip155:84532"])
}

pub fn paywall_on(facilitator: &Facilitator, verify_timeout: Duration, networks: &[&str]) -> X402 {
    let builder = networks
        .iter()
        .fold(X402Config::builder(), |b, n| b.network(*n))
        .pay_to(PAY_TO);
    paywall_from(facilitator, builder, verify_timeout)
}

/// The paywall of `builder`'s configuration through `facilitator`, without background
/// reconciliation.
pub fn paywall_from(
    facilitator: &Facilitator,
    builder: x402_runtime::X402ConfigBuilder,
    verify_timeout: Duration,
) -> X402 {
    let config = builder
        .facilitator_url(facilitator.url())
        .verify_timeout(verify_timeout)
        .build()
        .expect("config");
    let client =
        HttpFacilitator::with_timeouts(&facilitator.url(), verify_timeout, Duration::from_secs(5))
            .expect("client");
    // Without the background reconciliation, every `/settle` a test counts is one it caused.
    X402::builder(config)
        .facilitator(client)
        .reconcile_interval(None)
        .build()
        .expect("paywall")
}

/// Serves `app` on 127.0.0.1 and returns its base URL.
pub async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind server");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{addr}")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

pub fn unix_now() -> u64 {
    x402_runtime::unix_now()
}

/// Decodes a base64 JSON header.
pub fn decode_b64<T: serde::de::DeserializeOwned>(value: &str) -> T {
    serde_json::from_slice(&STANDARD.decode(value).expect("base64")).expect("json")
}

/// The v2 challenge of a 402 response.
pub fn challenge_of(response: &reqwest::Response) -> PaymentRequired {
    decode_b64(
        response.headers()["payment-required"]
            .to_str()
            .expect("ascii"),
    )
}

/// A payer signing EIP-3009 authorizations with a real key.
pub struct Payer {
    pub signer: PrivateKeySigner,
}

/// What to put in an authorization; defaults follow the official clients.
#[derive(Clone, Debug)]
pub struct Terms {
    pub value: Option<U256>,
    pub to: Option<Address>,
    pub valid_after: u64,
    pub valid_before: u64,
    pub nonce: B256,
    pub chain_id: u64,
    pub token: Option<Address>,
}

impl Default for Terms {
    fn default() -> Self {
        let now = unix_now();
        Terms {
            value: None,
            to: None,
            valid_after: 0,
            valid_before: now + 60,
            nonce: B256::random(),
            chain_id: 84532,
            token: None,
        }
    }
}

impl Payer {
    pub fn new(key: &str) -> Payer {
        Payer {
            signer: key.parse().expect("key"),
        }
    }

    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// Signs the authorization and returns `(authorization JSON, signature bytes)`.
    pub fn sign(&self, accepted: &Value, terms: &Terms) -> (Value, [u8; 65]) {
        let value = terms.value.unwrap_or_else(|| {
            accepted["amount"]
                .as_str()
                .or(accepted["maxAmountRequired"].as_str())
                .expect("amount")
                .parse()
                .expect("u256")
        });
        let to = terms.to.unwrap_or_else(|| {
            accepted["payTo"]
                .as_str()
                .expect("payTo")
                .parse()
                .expect("address")
        });
        let token: Address = terms.token.unwrap_or_else(|| {
            accepted["asset"]
                .as_str()
                .expect("asset")
                .parse()
                .expect("address")
        });
        let domain: Eip712Domain = eip712_domain! {
            name: accepted["extra"]["name"].as_str().expect("name").to_owned(),
            version: accepted["extra"]["version"].as_str().expect("version").to_owned(),
            chain_id: terms.chain_id,
            verifying_contract: token,
        };
        let message = TransferWithAuthorization {
            from: self.address(),
            to,
            value,
            validAfter: U256::from(terms.valid_after),
            validBefore: U256::from(terms.valid_before),
            nonce: terms.nonce,
        };
        let signature = self
            .signer
            .sign_typed_data_sync(&message, &domain)
            .expect("sign");
        let authorization = json!({
            "from": self.address().to_checksum(None),
            "to": to.to_checksum(None),
            "value": value.to_string(),
            "validAfter": terms.valid_after.to_string(),
            "validBefore": terms.valid_before.to_string(),
            "nonce": terms.nonce.to_string(),
        });
        (authorization, signature.as_bytes())
    }

    /// A v2 `PAYMENT-SIGNATURE` value paying `challenge.accepts[0]`.
    pub fn pay_v2(&self, challenge: &PaymentRequired, terms: &Terms) -> String {
        self.pay_v2_offer(challenge, 0, terms)
    }

    /// A v2 `PAYMENT-SIGNATURE` value paying `challenge.accepts[index]`.
    pub fn pay_v2_offer(&self, challenge: &PaymentRequired, index: usize, terms: &Terms) -> String {
        let accepted = serde_json::to_value(&challenge.accepts[index]).expect("json");
        let (authorization, signature) = self.sign(&accepted, terms);
        let payload = json!({
            "x402Version": 2,
            "resource": challenge.resource,
            "accepted": accepted,
            "payload": {"signature": format!("0x{}", alloy_primitives::hex::encode(signature)), "authorization": authorization},
        });
        STANDARD.encode(serde_json::to_vec(&payload).expect("json"))
    }

    /// A v1 `X-PAYMENT` value paying `body.accepts[0]`.
    pub fn pay_v1(&self, body: &PaymentRequiredV1, terms: &Terms) -> String {
        let accepted = serde_json::to_value(&body.accepts[0]).expect("json");
        let (authorization, signature) = self.sign(&accepted, terms);
        let payload = json!({
            "x402Version": 1,
            "scheme": "exact",
            "network": body.accepts[0].network,
            "payload": {"signature": format!("0x{}", alloy_primitives::hex::encode(signature)), "authorization": authorization},
        });
        STANDARD.encode(serde_json::to_vec(&payload).expect("json"))
    }
}

/// What to put in a Permit2 permit; the defaults pay the offer as the official clients do
/// (spender: the scheme's proxy; witness: the offer's `payTo` and, for `upto`, its
/// `extra.facilitatorAddress`; `validAfter` 0; a random 256-bit nonce).
#[derive(Clone, Debug)]
pub struct PermitTerms {
    pub spender: Option<Address>,
    pub token: Option<Address>,
    pub amount: Option<U256>,
    pub to: Option<Address>,
    /// `Some(None)` leaves the facilitator out; `Some(Some(a))` names `a`.
    pub facilitator: Option<Option<Address>>,
    pub deadline: u64,
    pub valid_after: u64,
    pub nonce: U256,
    pub chain_id: u64,
    /// Sent instead of the real signature.
    pub signature: Option<String>,
}

impl Default for PermitTerms {
    fn default() -> Self {
        PermitTerms {
            spender: None,
            token: None,
            amount: None,
            to: None,
            facilitator: None,
            deadline: unix_now() + 60,
            valid_after: 0,
            nonce: U256::from_be_bytes(B256::random().0),
            chain_id: 84532,
            signature: None,
        }
    }
}

impl Payer {
    /// A v2 `PAYMENT-SIGNATURE` value paying `challenge.accepts[index]` (a Permit2 `exact` or an
    /// `upto` offer) with a permit.
    pub fn pay_permit2(
        &self,
        challenge: &PaymentRequired,
        index: usize,
        terms: &PermitTerms,
    ) -> String {
        use x402_runtime::schemes::permit2::{self, Permit2Authorization};
        let accepted = serde_json::to_value(&challenge.accepts[index]).expect("json");
        let offer = &challenge.accepts[index];
        let upto = offer.scheme == "upto";
        let address = |text: &str| text.parse::<Address>().expect("address");
        let named = offer
            .extra
            .as_ref()
            .and_then(|e| e.get("facilitatorAddress"))
            .and_then(Value::as_str)
            .map(address);
        let authorization = Permit2Authorization {
            from: self.address(),
            token: terms.token.unwrap_or_else(|| address(&offer.asset)),
            amount: terms
                .amount
                .unwrap_or_else(|| offer.amount.parse().expect("amount")),
            spender: terms.spender.unwrap_or(if upto {
                permit2::UPTO_PROXY
            } else {
                permit2::EXACT_PROXY
            }),
            nonce: terms.nonce,
            deadline: U256::from(terms.deadline),
            to: terms.to.unwrap_or_else(|| address(&offer.pay_to)),
            facilitator: terms.facilitator.unwrap_or(if upto { named } else { None }),
            valid_after: U256::from(terms.valid_after),
        };
        let digest = authorization.signing_hash(&permit2::domain(terms.chain_id).separator());
        let signed = self.signer.sign_hash_sync(&digest).expect("sign");
        let mut permit = permit2::encode(&permit2::Permit2Payload {
            authorization,
            signature: signed.as_bytes().to_vec().into(),
        });
        if let Some(signature) = &terms.signature {
            permit["signature"] = json!(signature);
        }
        let payload = json!({
            "x402Version": 2,
            "resource": challenge.resource,
            "accepted": accepted,
            "payload": permit,
        });
        STANDARD.encode(serde_json::to_vec(&payload).expect("json"))
    }
}

/// Re-encodes a base64 JSON payment after `edit` changed it.
pub fn edit_payment(header: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut value: Value = decode_b64(header);
    edit(&mut value);
    STANDARD.encode(serde_json::to_vec(&value).expect("json"))
}

/// Replaces the signature with its high-s twin (same signer, `s' = n - s`, `v` flipped).
pub fn high_s(header: &str) -> String {
    edit_payment(header, |v| {
        let sig = alloy_primitives::hex::decode(v["payload"]["signature"].as_str().expect("sig"))
            .expect("hex");
        let n = U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .expect("n");
        let s = U256::from_be_slice(&sig[32..64]);
        let mut twin = sig.clone();
        twin[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
        twin[64] = if sig[64] == 27 { 28 } else { 27 };
        v["payload"]["signature"] = json!(format!("0x{}", alloy_primitives::hex::encode(twin)));
    })
}

/// The in-process facilitator for Base Sepolia: offline only, or settling through `rpc` with the
/// test facilitator key.
pub fn local_facilitator(rpc: Option<&str>) -> x402_runtime::facilitator::LocalFacilitator {
    let network = x402_testbed::NETWORK;
    let mut builder = x402_runtime::facilitator::LocalFacilitator::builder()
        .network(network)
        .receipt_timeout(Duration::from_secs(10));
    if let Some(rpc) = rpc {
        builder = builder
            .rpc_url(network, rpc)
            .signer_key(network, x402_testbed::FACILITATOR_KEY);
    }
    builder.build().expect("facilitator")
}

/// The example API on 127.0.0.1, paying the test merchant, with the in-process facilitator
/// settling through `rpc`.
pub async fn chain_api(rpc: &str) -> String {
    let config = X402Config::builder()
        .pay_to(x402_testbed::MERCHANT.to_checksum(None))
        .network(x402_testbed::NETWORK)
        .build()
        .expect("config");
    let x402 = X402::builder(config)
        .facilitator(local_facilitator(Some(rpc)))
        .build()
        .expect("paywall");
    serve(example_weather::app(x402)).await
}

/// The installed test bed, or `None` when its tools are missing and the test may skip (never
/// under `CI=true`, where a missing tool fails the test).
/// Starts anvil with the test bed's contracts, or `None` when the test bed is not installed
/// (outside CI; with `CI=true` a missing tool fails the test).
pub async fn start_chain(test: &str) -> Option<x402_testbed::Chain> {
    if !x402_testbed::skip_unless_available(test) {
        return None;
    }
    Some(x402_testbed::Chain::start().await.expect("chain"))
}

/// A raw JSON-RPC call to anvil (`evm_mine`, `evm_setAutomine`, …); fails the test on an error
/// answer.
pub async fn anvil_rpc(chain: &x402_testbed::Chain, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let answer: Value = http()
        .post(chain.rpc_url())
        .json(&body)
        .send()
        .await
        .expect("rpc request")
        .json()
        .await
        .expect("rpc answer");
    assert!(answer.get("error").is_none(), "{method}: {answer}");
    answer["result"].clone()
}

pub async fn installed_testbed(test: &str) -> Option<x402_testbed::Paths> {
    if !x402_testbed::skip_unless_available(test) {
        return None;
    }
    let paths = tokio::task::spawn_blocking(x402_testbed::install)
        .await
        .expect("join")
        .expect("install");
    Some(paths)
}

/// A child process killed when dropped.
pub struct Child(pub tokio::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

/// Starts `interop/scripts/<script>` with `env` ([`x402_testbed::Script`]); returns it and its
/// base URL once GET `ready_path` answers 200, or panics with its log's tail.
pub async fn start_script(
    paths: &x402_testbed::Paths,
    script: &str,
    env: &[(&str, &str)],
    ready_path: &str,
) -> (x402_testbed::Script, String) {
    let started = x402_testbed::Script::start(paths, script, env, ready_path)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = started.url().to_owned();
    (started, url)
}

/// Starts the official `@x402/express` server (`interop/scripts/server.mjs`: GET /paid at
/// $0.001 on Base Sepolia) with our facilitator server settling on `chain`; returns the running
/// server and its base URL once `/health` answers.
pub async fn official_express_server(
    paths: &x402_testbed::Paths,
    chain: &x402_testbed::Chain,
) -> (Child, String) {
    let facilitator_url = serve(x402_runtime_facilitator::router(Arc::new(
        local_facilitator(Some(chain.rpc_url())),
    )))
    .await;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let server = Child(
        tokio::process::Command::new(&paths.node)
            .arg(paths.interop.join("scripts/server.mjs"))
            .env("PORT", port.to_string())
            .env("FACILITATOR_URL", &facilitator_url)
            .env("PAY_TO", x402_testbed::MERCHANT.to_checksum(None))
            .current_dir(&paths.interop)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("express server"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = http();
    for _ in 0..100 {
        if client
            .get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return (server, base);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the express server did not start");
}

/// A proxy on 127.0.0.1 in front of `upstream` that loses answers to paid requests: for the
/// first `drops` requests carrying a payment header it forwards the request, waits for the
/// whole answer (so the server has settled), then closes the client's connection without
/// sending it. Everything else passes through. One request per connection (the client under
/// test must not pool connections).
pub struct DropProxy {
    pub url: String,
    dropped: Arc<std::sync::atomic::AtomicUsize>,
}

impl DropProxy {
    pub async fn start(upstream: &str, drops: usize) -> DropProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let dropped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = dropped.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    let Some(request) = read_message(&mut client).await else {
                        return;
                    };
                    let head = String::from_utf8_lossy(&request).to_ascii_lowercase();
                    let paid =
                        head.contains("\r\npayment-signature:") || head.contains("\r\nx-payment:");
                    let mut server = tokio::net::TcpStream::connect(&upstream)
                        .await
                        .expect("upstream");
                    server.write_all(&request).await.expect("forward");
                    let Some(answer) = read_message(&mut server).await else {
                        return;
                    };
                    let drop_it = paid
                        && counter
                            .fetch_update(
                                std::sync::atomic::Ordering::SeqCst,
                                std::sync::atomic::Ordering::SeqCst,
                                |n| (n < drops).then_some(n + 1),
                            )
                            .is_ok();
                    if !drop_it {
                        let _ = client.write_all(&answer).await;
                    }
                });
            }
        });
        DropProxy { url, dropped }
    }

    /// How many answers were lost so far.
    pub fn dropped(&self) -> usize {
        self.dropped.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A TCP relay on 127.0.0.1 to `upstream` (`host:port`) that can be cut: then every open
/// connection is closed and new ones are refused, as when a database server stops.
pub struct TcpRelay {
    pub port: u16,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl TcpRelay {
    pub async fn start(upstream: &str) -> TcpRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let upstream = upstream.to_owned();
        let handles = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let relay = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                handles.lock().expect("tasks").push(relay);
            }
        });
        tasks.lock().expect("tasks").push(accept);
        TcpRelay { port, tasks }
    }

    /// Closes every connection and stops listening.
    pub fn cut(&self) {
        for task in self.tasks.lock().expect("tasks").drain(..) {
            task.abort();
        }
    }
}

/// Reads one HTTP/1.1 message with a `Content-Length` (or no) body.
async fn read_message(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buffer.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buffer.extend_from_slice(&chunk[..n]);
            }
            return Some(buffer);
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// The USDC balances of `payer` and the test merchant.
pub async fn usdc_balances(
    chain: &x402_testbed::Chain,
    payer: Address,
) -> (alloy_primitives::U256, alloy_primitives::U256) {
    (
        chain.usdc_balance(payer).await.expect("balance"),
        chain
            .usdc_balance(x402_testbed::MERCHANT)
            .await
            .expect("balance"),
    )
}

/// Asserts that exactly `price` moved from `payer` to the test merchant since `before`
/// (from [`usdc_balances`]).
pub async fn assert_price_moved(
    chain: &x402_testbed::Chain,
    payer: Address,
    before: (alloy_primitives::U256, alloy_primitives::U256),
    price: u64,
) {
    let after = usdc_balances(chain, payer).await;
    let price = alloy_primitives::U256::from(price);
    assert_eq!(
        before.0 - after.0,
        price,
        "the payer paid exactly the price"
    );
    assert_eq!(after.1 - before.1, price, "the payee got exactly the price");
}

/// Starts one `paid-server` process (tests/bin/paid_server.rs: `GET /counted` at 0.001 USDC,
/// `GET /runs`) with the facilitator double and extra environment; returns it and its base URL.
pub async fn paid_server(facilitator: &Facilitator, env: &[(&str, &str)]) -> (Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_paid-server"));
    command
        .env("FACILITATOR_URL", facilitator.url())
        .env_remove("REDIS_URL")
        .env_remove("DATABASE_URL")
        .env_remove("STORE_PATH")
        .env_remove("SETTLE_TIMEOUT_MS")
        .env_remove("RECONCILE_MS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("paid-server");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the server started in time")
        .expect("read")
        .unwrap_or_else(|| panic!("paid-server exited before listening"));
    let url = line
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_owned();
    (Child(child), url)
}

/// How often `paid-server`'s paid handler ran.
pub async fn runs(base: &str) -> usize {
    http()
        .get(format!("{base}/runs"))
        .send()
        .await
        .expect("runs")
        .text()
        .await
        .expect("text")
        .parse()
        .expect("a number")
}

// -------------------------------------------------------------------------------------------------
// Fault injection (tests/reliability.rs): a facilitator double that speaks raw HTTP/1.1, one
// request per connection, so that it can answer anything a broken facilitator might: HTML, cut-off
// JSON, a body that stops mid-way, or nothing at all. Every call is recorded in a ledger.
// -------------------------------------------------------------------------------------------------

/// What the faulty double's `/verify` answers.
#[derive(Clone, Debug)]
pub enum VerifyFault {
    /// `isValid: true` for the payer.
    Valid,
    /// `isValid: false` with this reason.
    Invalid(&'static str),
    /// `isValid: true`, after this delay.
    Delay(Duration),
    /// Records the call and never answers in time.
    Hang,
    /// HTTP 502 with an HTML page.
    Html502,
    /// HTTP 200 with a body that is not JSON.
    NonJson200,
    /// HTTP 200 with JSON cut off half-way (the length header matches the cut body).
    Truncated,
    /// HTTP 200 JSON without `isValid`.
    WrongSchema,
    /// `isValid: true` for another payer.
    OtherPayer,
    /// Announces a body, writes part of it, then closes the connection.
    Reset,
}

/// What the faulty double's `/settle` answers.
#[derive(Clone, Debug)]
pub enum SettleFault {
    /// `success: true` with the payment's own transaction ([`tx_for`] its nonce).
    Success,
    /// `success: false` with this reason.
    Fail(&'static str),
    /// Success, after this delay.
    Delay(Duration),
    /// Records the call and never answers in time.
    Hang,
    /// HTTP 502 with an HTML page.
    Html502,
    /// HTTP 200 with a body that is not JSON.
    NonJson200,
    /// HTTP 200 with JSON cut off half-way.
    Truncated,
    /// Announces a body, writes part of it, then closes the connection.
    Reset,
    /// HTTP 200 JSON with a transaction but no `success`.
    MissingSuccess,
    /// HTTP 200 JSON with `success: "true"` (a string).
    StringSuccess,
    /// `success: true` with an empty transaction.
    SuccessWithoutTransaction,
    /// `settlement_pending` naming the transaction, over HTTP 200.
    PendingOver200,
    /// `settlement_pending` naming the transaction, over HTTP 500.
    PendingOver500,
    /// A success body sent with HTTP 503.
    SuccessOver503,
    /// `success: false` with an ordinary reason, sent with HTTP 500.
    RefusalOver500,
    /// HTTP 307 to `/v2/settle`, where the double would answer success.
    Redirect,
    /// `success: true` with this transaction for every payment.
    SameTransaction(&'static str),
    /// `success: true` for another payer.
    OtherPayer,
    /// `success: true` for another amount.
    OtherAmount,
    /// `success: true` on another network.
    OtherNetwork,
}

/// What the faulty double's `/supported` answers.
#[derive(Clone, Debug)]
pub enum SupportedFault {
    /// `exact` on Base Sepolia (v2 and v1).
    Ok,
    /// HTTP 502 with an HTML page.
    Html502,
    /// Never answers in time.
    Hang,
    /// A 308 to `/v2/supported`, which answers like [`SupportedFault::Ok`].
    Redirect,
    /// Lists only another network.
    OtherNetwork,
}

#[derive(Debug)]
struct FaultScript {
    verify: VerifyFault,
    settle: SettleFault,
    supported: SupportedFault,
    calls: Vec<Call>,
}

/// A facilitator double on 127.0.0.1 answering from a script of faults, with a call ledger.
#[derive(Clone)]
pub struct FaultyFacilitator {
    pub addr: SocketAddr,
    script: Arc<Mutex<FaultScript>>,
}

impl FaultyFacilitator {
    pub async fn start() -> FaultyFacilitator {
        let script = Arc::new(Mutex::new(FaultScript {
            verify: VerifyFault::Valid,
            settle: SettleFault::Success,
            supported: SupportedFault::Ok,
            calls: vec![],
        }));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind facilitator");
        let addr = listener.local_addr().expect("addr");
        let shared = script.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer_faulty(stream, shared.clone()));
            }
        });
        FaultyFacilitator { addr, script }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_verify(&self, mode: VerifyFault) {
        self.script.lock().expect("lock").verify = mode;
    }

    pub fn set_settle(&self, mode: SettleFault) {
        self.script.lock().expect("lock").settle = mode;
    }

    pub fn set_supported(&self, mode: SupportedFault) {
        self.script.lock().expect("lock").supported = mode;
    }

    /// Every `/verify` and `/settle` call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.script.lock().expect("lock").calls.clone()
    }

    pub fn count(&self, endpoint: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.endpoint == endpoint)
            .count()
    }
}

/// An HTTP/1.1 answer that closes the connection.
fn raw_answer(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn json_answer(status: &str, body: &Value) -> Vec<u8> {
    raw_answer(status, "application/json", &body.to_string())
}

/// What the double writes: a whole answer, the start of one (then closes), or nothing for a while.
enum Reply {
    Whole(Vec<u8>),
    Cut(Vec<u8>),
    Silence,
}

const HTML_502: &str = "<html><body><h1>502 Bad Gateway</h1></body></html>";
const OTHER_PAYER: &str = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65";

/// Headers announcing a JSON body of `full` bytes, followed by only its first half.
fn cut_answer(full: &Value) -> Vec<u8> {
    let body = full.to_string();
    let mut bytes = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(&body.as_bytes()[..body.len() / 2]);
    bytes
}

/// A complete answer whose JSON body is cut half-way.
fn truncated_answer(full: &Value) -> Vec<u8> {
    let body = full.to_string();
    raw_answer("200 OK", "application/json", &body[..body.len() / 2])
}

async fn answer_faulty(mut stream: tokio::net::TcpStream, script: Arc<Mutex<FaultScript>>) {
    use tokio::io::AsyncWriteExt;
    let Some(request) = read_message(&mut stream).await else {
        return;
    };
    let end = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(request.len());
    let head = String::from_utf8_lossy(&request[..end]).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let body: Value =
        serde_json::from_slice(&request[(end + 4).min(request.len())..]).unwrap_or(Value::Null);
    let reply = match path.as_str() {
        "/verify" => {
            record_fault_call(&script, "verify", &body);
            let mode = script.lock().expect("lock").verify.clone();
            verify_reply(mode, &body).await
        }
        "/settle" => {
            record_fault_call(&script, "settle", &body);
            let mode = script.lock().expect("lock").settle.clone();
            settle_reply(mode, &body).await
        }
        "/supported" | "/v2/supported" => {
            let mode = script.lock().expect("lock").supported.clone();
            supported_reply(mode, &path)
        }
        _ => Reply::Whole(raw_answer("404 Not Found", "text/plain", "not found")),
    };
    match reply {
        Reply::Whole(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Reply::Cut(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.flush().await;
            drop(stream);
        }
        Reply::Silence => {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    }
}

fn record_fault_call(script: &Mutex<FaultScript>, endpoint: &'static str, body: &Value) {
    let auth = payment_auth(body);
    script.lock().expect("lock").calls.push(Call {
        endpoint,
        from: auth["from"].as_str().unwrap_or_default().to_owned(),
        nonce: auth["nonce"].as_str().unwrap_or_default().to_owned(),
        x402_version: body["x402Version"].as_u64().unwrap_or_default(),
        requirements: body["paymentRequirements"].clone(),
    });
}

async fn verify_reply(mode: VerifyFault, body: &Value) -> Reply {
    let from = payment_auth(body)["from"].clone();
    let valid = json!({"isValid": true, "payer": from});
    match mode {
        VerifyFault::Valid => Reply::Whole(json_answer("200 OK", &valid)),
        VerifyFault::Invalid(reason) => Reply::Whole(json_answer(
            "200 OK",
            &json!({"isValid": false, "invalidReason": reason, "payer": from}),
        )),
        VerifyFault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            Reply::Whole(json_answer("200 OK", &valid))
        }
        VerifyFault::Hang => Reply::Silence,
        VerifyFault::Html502 => Reply::Whole(raw_answer("502 Bad Gateway", "text/html", HTML_502)),
        VerifyFault::NonJson200 => Reply::Whole(raw_answer("200 OK", "text/plain", "OK")),
        VerifyFault::Truncated => Reply::Whole(truncated_answer(&valid)),
        VerifyFault::WrongSchema => Reply::Whole(json_answer(
            "200 OK",
            &json!({"valid": "yes", "payer": from}),
        )),
        VerifyFault::OtherPayer => Reply::Whole(json_answer(
            "200 OK",
            &json!({"isValid": true, "payer": OTHER_PAYER}),
        )),
        VerifyFault::Reset => Reply::Cut(cut_answer(&valid)),
    }
}

async fn settle_reply(mode: SettleFault, body: &Value) -> Reply {
    let auth = payment_auth(body);
    let from = auth["from"].clone();
    let tx = tx_for(auth["nonce"].as_str().unwrap_or_default());
    let network = body["paymentRequirements"]["network"].clone();
    let amount = body["paymentRequirements"]["amount"]
        .as_str()
        .or(body["paymentRequirements"]["maxAmountRequired"].as_str())
        .unwrap_or_default()
        .to_owned();
    let success = json!({"success": true, "transaction": tx, "network": network, "payer": from, "amount": amount});
    let pending = json!({"success": false, "errorReason": "settlement_pending", "transaction": tx, "network": network, "payer": from});
    match mode {
        SettleFault::Success => Reply::Whole(json_answer("200 OK", &success)),
        SettleFault::Fail(reason) => Reply::Whole(json_answer(
            "200 OK",
            &json!({"success": false, "errorReason": reason, "transaction": "", "network": network}),
        )),
        SettleFault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            Reply::Whole(json_answer("200 OK", &success))
        }
        SettleFault::Hang => Reply::Silence,
        SettleFault::Html502 => Reply::Whole(raw_answer("502 Bad Gateway", "text/html", HTML_502)),
        SettleFault::NonJson200 => Reply::Whole(raw_answer("200 OK", "text/plain", "settled")),
        SettleFault::Truncated => Reply::Whole(truncated_answer(&success)),
        SettleFault::Reset => Reply::Cut(cut_answer(&success)),
        SettleFault::MissingSuccess => Reply::Whole(json_answer(
            "200 OK",
            &json!({"transaction": tx, "network": network, "payer": from}),
        )),
        SettleFault::StringSuccess => Reply::Whole(json_answer(
            "200 OK",
            &json!({"success": "true", "transaction": tx, "network": network, "payer": from}),
        )),
        SettleFault::SuccessWithoutTransaction => Reply::Whole(json_answer(
            "200 OK",
            &json!({"success": true, "transaction": "", "network": network, "payer": from}),
        )),
        SettleFault::PendingOver200 => Reply::Whole(json_answer("200 OK", &pending)),
        SettleFault::PendingOver500 => {
            Reply::Whole(json_answer("500 Internal Server Error", &pending))
        }
        SettleFault::SuccessOver503 => {
            Reply::Whole(json_answer("503 Service Unavailable", &success))
        }
        SettleFault::RefusalOver500 => Reply::Whole(json_answer(
            "500 Internal Server Error",
            &json!({"success": false, "errorReason": "unexpected_settle_error", "transaction": "", "network": network}),
        )),
        SettleFault::Redirect => Reply::Whole(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: /v2/settle\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                .as_bytes()
                .to_vec(),
        ),
        SettleFault::SameTransaction(tx) => Reply::Whole(json_answer(
            "200 OK",
            &json!({"success": true, "transaction": tx, "network": network, "payer": from}),
        )),
        SettleFault::OtherPayer => Reply::Whole(json_answer(
            "200 OK",
            &json!({"success": true, "transaction": tx, "network": network, "payer": OTHER_PAYER}),
        )),
        SettleFault::OtherAmount => Reply::Whole(json_answer(
            "200 OK",
            &json!({"success": true, "transaction": tx, "network": network, "payer": from, "amount": "1"}),
        )),
        SettleFault::OtherNetwork => Reply::Whole(json_answer(
            "200 OK",
            &json!({"success": true, "transaction": tx, "network": "eip155:1", "payer": from}),
        )),
    }
}

fn supported_reply(mode: SupportedFault, path: &str) -> Reply {
    // Base too: the example's `/climate`, linked into the test binaries, is offered there.
    let kinds = json!({"kinds": [
        {"x402Version": 2, "scheme": "exact", "network": "eip155:84532"},
        {"x402Version": 2, "scheme": "exact", "network": "eip155:8453"},
        {"x402Version": 1, "scheme": "exact", "network": "base-sepolia"},
        upto_kind()
    ], "extensions": [], "signers": {}});
    match mode {
        SupportedFault::Ok => Reply::Whole(json_answer("200 OK", &kinds)),
        SupportedFault::Html502 => {
            Reply::Whole(raw_answer("502 Bad Gateway", "text/html", HTML_502))
        }
        SupportedFault::Hang => Reply::Silence,
        SupportedFault::Redirect if path == "/supported" => Reply::Whole(
            "HTTP/1.1 308 Permanent Redirect\r\nlocation: /v2/supported\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                .as_bytes()
                .to_vec(),
        ),
        SupportedFault::Redirect => Reply::Whole(json_answer("200 OK", &kinds)),
        SupportedFault::OtherNetwork => Reply::Whole(json_answer(
            "200 OK",
            &json!({"kinds": [{"x402Version": 2, "scheme": "exact", "network": "eip155:1"}]}),
        )),
    }
}

/// The configuration for Base Sepolia paying [`PAY_TO`] through `facilitator`, with the given
/// verify and settle budgets.
pub fn faulty_config(
    facilitator: &FaultyFacilitator,
    verify_timeout: Duration,
    settle_timeout: Duration,
) -> x402_runtime::X402ConfigBuilder {
    X402Config::builder()
        .network("eip155:84532")
        .pay_to(PAY_TO)
        .facilitator_url(facilitator.url())
        .verify_timeout(verify_timeout)
        .settle_timeout(settle_timeout)
}

/// A paywall builder for `config`, talking HTTP to `facilitator` with the same budgets, without
/// the background reconciliation (so that every `/settle` a test counts is one it caused).
pub fn faulty_paywall(
    facilitator: &FaultyFacilitator,
    config: X402Config,
) -> x402_runtime::X402Builder {
    let client = HttpFacilitator::with_timeouts(
        &facilitator.url(),
        config.verify_timeout(),
        config.settle_timeout(),
    )
    .expect("client");
    X402::builder(config)
        .facilitator(client)
        .reconcile_interval(None)
}

/// Runs an official client script (`pay.mjs`, `pay.py`) paying as `key`, with `args` and more
/// environment; returns its one JSON line.
pub async fn run_client(
    program: &Path,
    script: &Path,
    key: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Value {
    let output = tokio::time::timeout(
        CHILD_TIMEOUT,
        tokio::process::Command::new(program)
            .arg(script)
            .args(args)
            .env("PAYER_KEY", key)
            .envs(env.iter().copied())
            .current_dir(script.parent().expect("dir"))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("client finished in time")
    .expect("client ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|_| panic!("client output is not JSON\nstdout: {stdout}\nstderr: {stderr}"))
}

/// Most a child process (node and the validators) may take.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(90);

/// The installed test bed's `interop/` and `node`, or `None` when skipped (never under CI=true).
pub async fn validators(test: &str) -> Option<(PathBuf, PathBuf)> {
    let paths = installed_testbed(test).await?;
    Some((paths.interop, paths.node))
}

/// Runs `program args` in `dir`, bounded; returns stdout, panicking with both streams on failure.
pub async fn run_child(program: &Path, args: &[&str], dir: &Path) -> String {
    let output = tokio::time::timeout(
        CHILD_TIMEOUT,
        tokio::process::Command::new(program)
            .args(args)
            .current_dir(dir)
            // The pinned packages are installed; npx must not reach for the registry.
            .env("npm_config_offline", "true")
            .env("npm_config_update_notifier", "false")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{} {args:?} did not finish in time", program.display()))
    .unwrap_or_else(|e| panic!("{} did not start: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} {args:?} failed ({})\nstdout: {stdout}\nstderr: {stderr}",
        program.display(),
        output.status
    );
    stdout
}

/// `npx` from the same installation as `node`, else the one on `PATH`.
pub fn npx_next_to(node: &Path) -> PathBuf {
    let sibling = node.with_file_name("npx");
    if sibling.exists() {
        sibling
    } else {
        PathBuf::from("npx")
    }
}
