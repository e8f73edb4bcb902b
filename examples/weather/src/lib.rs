//! The paid weather API of `example-weather`, as a library so tests can mount it.
//!
//! - `GET /weather?city=Paris`: 0.001 USDC
//! - `POST /forecast` with `{"city": "Paris", "days": 3}`: 0.01 USDC
//! - `GET /alerts?city=Paris`: $0.005 (USDC)
//! - `GET /history?city=Paris&days=3`: 0.001 USDC a day (quoted per request, 0.001–0.03)
//! - `GET /climate?city=Paris`: 0.002 USDC, on Base Sepolia or Base
//! - `GET /observations?city=Paris&limit=20`: up to 0.01 USDC (`upto`): 0.0002 USDC per
//!   observation found, charged after the handler counted them
//! - `GET /health`: free
//!
//! and, for agents and people: `GET /openapi.json` (the priced OpenAPI document), `GET /docs`,
//! `GET /llms.txt` and `GET /.well-known/x402`; for operators, `GET /metrics` when the binary
//! runs with `X402_METRICS=on` ([`metrics`]).

use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::{ContactBuilder, InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use x402_runtime::X402;
use x402_runtime::discovery::Discovery;
use x402_runtime::openapi::CheckError;

pub mod metrics;
pub mod weather;

/// Who answers for this API (the document's `info.contact`).
pub const CONTACT_EMAIL: &str = "weather-api@example.com";

/// The example's router with the paywall installed and the discovery endpoints mounted.
///
/// # Panics
///
/// If the startup check fails (see [`try_app`]): the example's handlers are fixed, so that is a
/// bug in the example.
pub fn app(x402: X402) -> Router {
    try_app(x402).unwrap_or_else(|e| panic!("{e}"))
}

/// [`app`], returning the startup check's error instead of panicking.
pub fn try_app(x402: X402) -> Result<Router, CheckError> {
    let (router, api) = OpenApiRouter::with_openapi(api_doc())
        .routes(routes!(weather::weather))
        .routes(routes!(weather::forecast))
        .routes(routes!(weather::alerts))
        .routes(routes!(weather::history))
        .routes(routes!(weather::climate))
        .routes(routes!(weather::observations))
        .routes(routes!(health))
        .split_for_parts();
    let discovery = Discovery::builder(&x402, api)
        .scope(module_path!())
        .free_operations_security(true)
        .llms_txt(true)
        .well_known(true)
        .build(&router)?;
    Ok(router.merge(discovery.router()).layer(x402.layer()))
}

/// The document the routes are added to: its `info` is this crate's.
pub fn api_doc() -> OpenApi {
    let info = InfoBuilder::new()
        .title(env!("CARGO_PKG_NAME"))
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(env!("CARGO_PKG_DESCRIPTION")))
        .contact(Some(
            ContactBuilder::new()
                .name(Some("Weather API operators"))
                .email(Some(CONTACT_EMAIL))
                .build(),
        ))
        .license(Some(
            LicenseBuilder::new()
                .name(env!("CARGO_PKG_LICENSE"))
                .identifier(Some(env!("CARGO_PKG_LICENSE")))
                .build(),
        ))
        .build();
    OpenApiBuilder::new().info(info).build()
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `"ok"`.
    pub status: &'static str,
}

/// Free liveness probe.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "The server is up", body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}
