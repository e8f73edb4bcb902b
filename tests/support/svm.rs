//! The Solana tests' shared pieces: the official facilitator, seller and client on the LiteSVM
//! chain, a check that a transaction landed, and a facilitator proxy that counts the calls it
//! forwards.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use x402_testbed::Script;
use x402_testbed::svm::{MERCHANT, SvmAccount, SvmChain, TS_FACILITATOR};

use super::{http, serve};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A proxy in front of a facilitator that counts the calls of each path it forwards.
#[derive(Clone)]
pub struct CountingProxy {
    pub url: String,
    calls: Arc<Mutex<HashMap<String, usize>>>,
}

#[derive(Clone)]
struct Forward {
    target: String,
    calls: Arc<Mutex<HashMap<String, usize>>>,
}

impl CountingProxy {
    /// Serves the proxy to `target` on 127.0.0.1.
    pub async fn start(target: &str) -> CountingProxy {
        let calls = Arc::new(Mutex::new(HashMap::new()));
        let state = Forward {
            target: target.to_owned(),
            calls: calls.clone(),
        };
        let app = Router::new().fallback(forward).with_state(state);
        CountingProxy {
            url: serve(app).await,
            calls,
        }
    }

    /// How many calls of `path` (e.g. `/verify`) were forwarded.
    pub fn count(&self, path: &str) -> usize {
        self.calls
            .lock()
            .expect("lock")
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

async fn forward(State(state): State<Forward>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    *state
        .calls
        .lock()
        .expect("lock")
        .entry(path.clone())
        .or_default() += 1;
    let method = request.method().clone();
    let body: Bytes = match axum::body::to_bytes(request.into_body(), 1 << 20).await {
        Ok(body) => body,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let sent = http()
        .request(method, format!("{}{path}", state.target))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).expect("status");
            let body = answer.bytes().await.unwrap_or_default();
            (status, [("content-type", "application/json")], body).into_response()
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

/// The official facilitator (`facilitator_svm.mjs`, fee payer S3) settling on `chain`; it and
/// its base URL.
pub async fn official_facilitator(chain: &SvmChain) -> (Script, String) {
    super::start_script(
        chain.paths(),
        "facilitator_svm.mjs",
        &[
            ("FACILITATOR_KEY", TS_FACILITATOR.secret_key),
            ("RPC_URL", chain.rpc_url()),
        ],
        "/supported",
    )
    .await
}

/// The official seller (`server_svm.mjs`: GET /paid at $0.01 on devnet, paying S4) verified and
/// settled by the facilitator at `facilitator_url`; it and its base URL.
pub async fn official_seller(chain: &SvmChain, facilitator_url: &str) -> (Script, String) {
    super::start_script(
        chain.paths(),
        "server_svm.mjs",
        &[
            ("FACILITATOR_URL", facilitator_url),
            ("PAY_TO", MERCHANT.address),
        ],
        "/health",
    )
    .await
}

/// The official client (`pay_svm.mjs`) pays `url` with `payer`'s key, reading `chain`; its one
/// JSON line.
pub async fn official_client_pays(chain: &SvmChain, url: &str, payer: &SvmAccount) -> Value {
    let paths = chain.paths();
    super::run_client(
        &paths.node,
        &paths.interop.join("scripts/pay_svm.mjs"),
        payer.secret_key,
        &[url],
        &[("PAY_RPC_URL", chain.rpc_url())],
    )
    .await
}

/// Asserts that `signature` landed on `chain` without an error.
pub async fn assert_landed(chain: &SvmChain, signature: &str) {
    let status = chain
        .signature_status(signature)
        .await
        .expect("status")
        .unwrap_or_else(|| panic!("the transaction {signature} never landed"));
    assert_eq!(status["err"], Value::Null, "{status}");
}
