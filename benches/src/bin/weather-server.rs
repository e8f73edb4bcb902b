//! The example weather API (`example_weather::app`) as its own process, for the peers
//! comparison of `load` (section "Peers" of BENCHMARKS.md): every server compared there runs as
//! a child process of the harness and is measured alike.
//!
//! ```text
//! weather-server --facilitator http://127.0.0.1:PORT [--listen 127.0.0.1:0]
//! ```
//!
//! The paywall is `X402::new` as the example's `main` builds it (the HTTP facilitator client,
//! the in-memory replay store), paying the benchmark merchant on Base Sepolia; the startup
//! check reads the facilitator's `/supported` and, as in the example, a network it lacks is
//! said once on stderr. No log subscriber is installed, so nothing is written per request. It prints `listening on <addr>` once the socket is bound.

use std::process::ExitCode;

use x402_bench::fixture;
use x402_runtime::{X402, X402Config};

fn args() -> Result<(String, String), String> {
    let mut facilitator = None;
    let mut listen = "127.0.0.1:0".to_owned();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let value = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--facilitator" => facilitator = Some(value),
            "--listen" => listen = value,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok((facilitator.ok_or("--facilitator is required")?, listen))
}

async fn serve(facilitator: String, listen: String) -> Result<(), String> {
    let config = X402Config::builder()
        .pay_to(x402_testbed::MERCHANT.to_checksum(None))
        .network(fixture::NETWORK)
        .facilitator_url(facilitator)
        .build()
        .map_err(|e| format!("configuration: {e}"))?;
    let x402 = X402::new(config).map_err(|e| format!("paywall: {e}"))?;
    x402.check_routes().map_err(|e| format!("routes: {e}"))?;
    // As the example's `main`: a network the facilitator lacks (the double knows only Base
    // Sepolia; `/climate` is also offered on Base) is said once, and its offers are refused.
    if let Err(e) = x402.check_facilitator().await {
        eprintln!("weather-server: {e}");
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("bind {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on {addr}");
    axum::serve(listener, example_weather::app(x402))
        .await
        .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let (facilitator, listen) = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("weather-server: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(serve(facilitator, listen)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weather-server: {e}");
            ExitCode::FAILURE
        }
    }
}
