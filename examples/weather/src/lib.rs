//! The paid weather API of `example-weather`, as a library so tests can mount it.
//!
//! - `GET /weather?city=Paris`: 0.001 USDC
//! - `POST /forecast` with `{"city": "Paris", "days": 3}`: 0.01 USDC
//! - `GET /alerts?city=Paris`: $0.005 (USDC)
//! - `GET /health`: free

use axum::routing::{get, post};
use axum::{Json, Router};
use x402_runtime::X402;

pub mod weather;

/// The example's router with the paywall installed.
pub fn app(x402: X402) -> Router {
    Router::new()
        .route("/weather", get(weather::weather))
        .route("/forecast", post(weather::forecast))
        .route("/alerts", get(weather::alerts))
        .route("/health", get(health))
        .layer(x402.layer())
}

/// Free liveness probe.
async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}
