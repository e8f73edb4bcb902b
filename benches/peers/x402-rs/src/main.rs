//! The x402-rs peer of the load benchmark: `GET /weather?city=...` for 0.001 USDC on Base Sepolia
//! (`eip155:84532`, USDC `0x036CbD53842c5426634e7929541eC2318f3dCF7e`), paid to the benchmark
//! merchant, through `x402-axum`'s middleware and its HTTP facilitator client.
//!
//! Usage: `x402-rs-peer --facilitator <url> --listen <addr>`; without arguments the environment
//! variables `X402_FACILITATOR_URL` and `X402_LISTEN` are read. It prints `listening on <addr>`
//! once the socket is bound. It installs no log subscriber (and the crate's `telemetry` feature,
//! which emits the spans and warnings, is off), so nothing is written per request.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use x402_axum::X402Middleware;
use x402_chain_eip155::chain::ChecksummedAddress;
use x402_chain_eip155::{KnownNetworkEip155, V2Eip155Exact};
use x402_types::networks::USDC;

/// The merchant every benchmark pays (the test bed's merchant account).
const PAY_TO: &str = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
/// The price in USDC's atomic units (6 decimals): 0.001 USDC.
const PRICE_ATOMIC: u64 = 1_000;
/// The paid body, the same bytes the example weather API answers for Paris.
const BODY: &str = r#"{"city":"Paris","celsius":21.5,"conditions":"clear"}"#;

struct Args {
    facilitator: String,
    listen: SocketAddr,
}

fn args() -> Result<Args, String> {
    let mut facilitator = std::env::var("X402_FACILITATOR_URL").ok();
    let mut listen = std::env::var("X402_LISTEN").ok();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let value = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--facilitator" => facilitator = Some(value),
            "--listen" => listen = Some(value),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let facilitator = facilitator.ok_or("--facilitator (or X402_FACILITATOR_URL) is required")?;
    let listen = listen
        .unwrap_or_else(|| "127.0.0.1:0".to_owned())
        .parse()
        .map_err(|e| format!("--listen: {e}"))?;
    Ok(Args {
        facilitator,
        listen,
    })
}

async fn weather() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    ([(CONTENT_TYPE, "application/json")], BODY)
}

fn app(facilitator: &str, origin: &str) -> Result<Router, String> {
    let base = origin.parse().map_err(|e| format!("origin: {e}"))?;
    let pay_to: ChecksummedAddress = PAY_TO.parse().map_err(|e| format!("payTo: {e:?}"))?;
    let x402 = X402Middleware::try_new(facilitator)
        .map_err(|e| format!("facilitator: {e}"))?
        .with_base_url(base);
    let price = V2Eip155Exact::price_tag(pay_to, USDC::base_sepolia().amount(PRICE_ATOMIC));
    Ok(Router::new().route("/weather", get(weather).layer(x402.with_price_tag(price))))
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("x402-rs-peer: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("x402-rs-peer: bind {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        let addr = listener.local_addr().expect("a bound address");
        let app = match app(&args.facilitator, &format!("http://{addr}")) {
            Ok(app) => app,
            Err(e) => {
                eprintln!("x402-rs-peer: {e}");
                return ExitCode::from(2);
            }
        };
        println!("listening on {addr}");
        match axum::serve(listener, app).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("x402-rs-peer: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
