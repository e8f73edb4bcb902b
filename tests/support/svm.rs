//! A facilitator proxy that counts the calls it forwards (the Solana tests count the official
//! facilitator's calls through it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
