//! The smallest paid API: `X402_PAY_TO=0x… cargo run -p example-minimal`, then
//! `curl -i http://127.0.0.1:4021/joke` answers 402 with the price.

use axum::{Router, routing::get};
use x402_runtime::{X402, paid};

/// A joke, for a tenth of a cent.
#[paid(price = "0.001", currency = "USDC")]
async fn joke() -> &'static str {
    "Why did the agent pay? It got a 402 and had the change."
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let x402 = X402::from_env()?; // X402_PAY_TO, and X402_NETWORK, X402_FACILITATOR_URL if set
    let app = Router::new().route("/joke", get(joke)).layer(x402.layer());
    let listen = std::env::var("X402_LISTEN").unwrap_or_else(|_| "127.0.0.1:4021".into());
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
