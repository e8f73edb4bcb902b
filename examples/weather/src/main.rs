//! A paid weather API.
//!
//! Run with `cargo run -p example-weather`. It needs `X402_PAY_TO` (the EIP-55 address that
//! receives payments) and reads `X402_NETWORK`, `X402_FACILITATOR_URL` and `X402_PUBLIC_URL`
//! (see the README); it listens on `X402_LISTEN` (default `127.0.0.1:4021`). `X402_PRICES` sets
//! other prices for this deployment, e.g. `X402_PRICES="weather=0.002,POST /forecast=0.02"`.
//!
//! - `GET /weather?city=Paris`: 0.001 USDC
//! - `POST /forecast` with `{"city": "Paris", "days": 3}`: 0.01 USDC
//! - `GET /alerts?city=Paris`: $0.005 (USDC)
//! - `GET /history?city=Paris&days=3`: 0.001 USDC a day (quoted per request, 0.001–0.03)
//! - `GET /climate?city=Paris`: 0.002 USDC, on Base Sepolia or Base
//! - `GET /health`: free
//! - `GET /metrics`: Prometheus metrics, when `X402_METRICS=on`
//!
//! Ctrl-C stops admitting payments, waits for those under way (up to 35 s), then exits.

use std::time::Duration;

use tracing_subscriber::EnvFilter;
use x402_runtime::X402;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    // The recorder is installed before the paywall is built, so that it counts from the start.
    let metrics = match std::env::var("X402_METRICS").as_deref() {
        Ok("on") => Some(example_weather::metrics::install()?),
        _ => None,
    };
    let x402 = X402::from_env()?;
    x402.check_routes()?;
    match x402.check_facilitator().await {
        Ok(_) => tracing::info!(
            facilitator = x402.config().facilitator_url(),
            "facilitator supports every configured network"
        ),
        Err(e) => tracing::warn!("{e}; payments offered there will be refused until it does"),
    }
    let listen = std::env::var("X402_LISTEN").unwrap_or_else(|_| "127.0.0.1:4021".to_owned());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    for route in x402_runtime::routes() {
        let pricing = x402.pricing(route);
        let set = if pricing == *route.pricing() {
            ""
        } else {
            " (set by X402_PRICES)"
        };
        tracing::info!(
            "{} {} costs {pricing}{set}",
            route.method().unwrap_or("?"),
            route.path().unwrap_or(route.handler())
        );
    }
    let mut app = example_weather::app(x402.clone());
    if let Some(handle) = metrics {
        app = app.merge(example_weather::metrics::router(handle));
        tracing::info!("metrics at /metrics");
    }
    tracing::info!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            // Payments under way finish (their settlement included) before the listener closes.
            let report = x402.shutdown(SHUTDOWN_GRACE).await;
            if !report.drained {
                tracing::warn!(
                    unfinished = report.unfinished,
                    recorded_unknown = report.recorded_unknown.len(),
                    "stopped with payments unfinished"
                );
            }
        })
        .await?;
    Ok(())
}

/// How long a shutdown waits for the payments under way: past the 30 s settle timeout, so that
/// every settlement ends with its answer or its own timeout.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(35);
