//! A standalone x402 facilitator: `POST /verify`, `POST /settle` and `GET /supported` over HTTP,
//! served by x402-runtime's in-process [`LocalFacilitator`]. Any x402 resource server can use it,
//! including the official TypeScript and Python ones.
//!
//! Status codes follow the reference facilitators: an invalid payment or a failed settlement is a
//! normal `200` answer (`isValid: false` / `success: false`); a body that is not a facilitator
//! request is `400`; an unreachable chain node is `503`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use x402_runtime::facilitator::{Facilitator, FacilitatorError, LocalFacilitator};
use x402_runtime::proto::FacilitatorRequest;

/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The facilitator's HTTP routes.
pub fn router(facilitator: Arc<LocalFacilitator>) -> Router {
    Router::new()
        .route("/verify", post(verify))
        .route("/settle", post(settle))
        .route("/supported", get(supported))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(facilitator)
}

fn bad_request(error: &serde_json::Error) -> Response {
    let message = format!("not a facilitator request: {error}");
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_request", "message": message})),
    )
        .into_response()
}

fn fault(error: &FacilitatorError) -> Response {
    tracing::warn!("facilitator fault: {error}");
    let (status, code) = match error {
        FacilitatorError::Timeout => (StatusCode::GATEWAY_TIMEOUT, "rpc_timeout"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "rpc_unavailable"),
    };
    let message = "the chain node could not be reached; nothing was settled";
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

async fn verify(State(facilitator): State<Arc<LocalFacilitator>>, body: Bytes) -> Response {
    let request: FacilitatorRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return bad_request(&e),
    };
    match facilitator.verify(&request).await {
        Ok(answer) => Json(answer).into_response(),
        Err(e) => fault(&e),
    }
}

async fn settle(State(facilitator): State<Arc<LocalFacilitator>>, body: Bytes) -> Response {
    let request: FacilitatorRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return bad_request(&e),
    };
    match facilitator.settle(&request).await {
        Ok(answer) => {
            if answer.success {
                tracing::info!(transaction = %answer.transaction, network = %answer.network, "settled");
            } else {
                tracing::info!(reason = ?answer.error_reason, "settlement refused");
            }
            Json(answer).into_response()
        }
        Err(e) => fault(&e),
    }
}

async fn supported(State(facilitator): State<Arc<LocalFacilitator>>) -> Response {
    match facilitator.supported().await {
        Ok(answer) => Json(answer).into_response(),
        Err(e) => fault(&e),
    }
}
