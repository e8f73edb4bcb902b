//! A paid server process for the multi-process tests: `GET /counted` costs 0.001 USDC and counts
//! its runs (`GET /runs`); payments are verified and settled through the facilitator at
//! `FACILITATOR_URL`, and recorded in the Redis replay store at `REDIS_URL` (shared by every
//! process of a test), in the Postgres store and ledger at `DATABASE_URL` (the same), or, with
//! `STORE_PATH`, in the durable settlement record in that file.
//! `SETTLE_TIMEOUT_MS` bounds `/settle` (30 s unless set); `RECONCILE_MS` sets how often unknown
//! outcomes are reconciled in the background (`off`: never; 5 s unless set).
//! Prints `listening http://127.0.0.1:<port>` once it accepts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use x402_runtime::facilitator::HttpFacilitator;
use x402_runtime::{RedisStore, X402, X402Config, paid};

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// A paid route that counts how often its body runs.
#[paid(price = "0.001", currency = "USDC")]
async fn counted() -> &'static str {
    RUNS.fetch_add(1, Ordering::SeqCst);
    "paid content"
}

async fn runs() -> String {
    RUNS.load(Ordering::SeqCst).to_string()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let facilitator_url = std::env::var("FACILITATOR_URL")?;
    let mut config = X402Config::builder()
        .pay_to("0x90F79bf6EB2c4f870365E785982E1f101E93b906")
        .network("eip155:84532")
        .facilitator_url(&facilitator_url);
    if let Ok(path) = std::env::var("STORE_PATH") {
        config = config.store_path(path);
    }
    if let Ok(url) = std::env::var("DATABASE_URL") {
        config = config.database_url(url);
    }
    if let Ok(ms) = std::env::var("SETTLE_TIMEOUT_MS") {
        config = config.settle_timeout(Duration::from_millis(ms.parse()?));
    }
    let config = config.build()?;
    let facilitator = HttpFacilitator::with_timeouts(
        &facilitator_url,
        config.verify_timeout(),
        config.settle_timeout(),
    )?;
    let reconcile = match std::env::var("RECONCILE_MS").as_deref() {
        Ok("off") => None,
        Ok(ms) => Some(Duration::from_millis(ms.parse()?)),
        Err(_) => Some(Duration::from_secs(5)),
    };
    let mut x402 = X402::builder(config)
        .facilitator(facilitator)
        .reconcile_interval(reconcile);
    if let Ok(url) = std::env::var("REDIS_URL") {
        x402 = x402.store(RedisStore::connect(&url).await?);
    }
    // Connects to DATABASE_URL when it is set.
    let x402 = x402.build_async().await?;
    let app = Router::new()
        .route("/counted", get(counted))
        .route("/runs", get(runs))
        .layer(x402.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
