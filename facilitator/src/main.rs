//! `x402-facilitator`: serve `/verify`, `/settle` and `/supported` for the `exact` scheme on EVM
//! and (feature `svm`, on by default) on Solana.
//!
//! ```text
//! X402_RPC_URL=http://127.0.0.1:8545 X402_FACILITATOR_KEY=0x… \
//!     cargo run -p x402-runtime-facilitator -- --network eip155:84532
//! X402_SVM_RPC_URL=https://api.devnet.solana.com X402_SVM_FACILITATOR_KEY=… \
//!     cargo run -p x402-runtime-facilitator -- --network solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1
//! ```
//! The settlement keys are read only from the environment (`X402_FACILITATOR_KEY`, or
//! `X402_FACILITATOR_KEY_<chain id>`; `X402_SVM_FACILITATOR_KEY` on Solana), never from a flag,
//! and never logged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use x402_runtime::facilitator::LocalFacilitatorBuilder;
use x402_runtime::network::Network;

/// A standalone x402 facilitator for the `exact` scheme on EVM (EIP-3009 tokens) and Solana (SPL
/// tokens).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (loopback by default).
    #[arg(
        long,
        env = "X402_FACILITATOR_LISTEN",
        default_value = "127.0.0.1:4022"
    )]
    listen: SocketAddr,
    /// Networks to serve (CAIP-2: `eip155:<chain id>`, or Solana mainnet or devnet),
    /// comma-separated or repeated.
    #[arg(
        long = "network",
        env = "X402_NETWORK",
        value_delimiter = ',',
        default_value = "eip155:84532"
    )]
    networks: Vec<String>,
    /// RPC URL for every network without `X402_RPC_URL_<chain id>`.
    #[arg(long, env = "X402_RPC_URL")]
    rpc_url: Option<String>,
    /// Seconds to wait for a settlement receipt before answering `settlement_pending`.
    #[arg(long, default_value_t = 20)]
    receipt_timeout: u64,
}

/// The networks this build serves.
#[cfg(feature = "svm")]
const SERVED: &str = "`eip155:<chain id>`, `solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp` (mainnet) or `solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1` (devnet)";
#[cfg(not(feature = "svm"))]
const SERVED: &str = "`eip155:<chain id>`; Solana needs the feature `svm`";

fn served(network: &Network) -> bool {
    network.is_evm() || cfg!(feature = "svm")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let mut networks = Vec::new();
    for caip2 in args
        .networks
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
    {
        networks.push(Network::from_caip2(caip2).filter(served).ok_or_else(|| {
            format!("`{caip2}` is not a CAIP-2 id this facilitator serves ({SERVED})")
        })?);
    }
    let facilitator = LocalFacilitatorBuilder::from_lookup(&networks, |name| match name {
        "X402_RPC_URL" => args.rpc_url.clone(),
        _ => std::env::var(name).ok(),
    })
    .receipt_timeout(Duration::from_secs(args.receipt_timeout))
    .build()?;
    let facilitator = Arc::new(facilitator);
    tracing::info!("{facilitator:?}");
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(
        "x402 facilitator listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, x402_runtime_facilitator::router(facilitator))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
