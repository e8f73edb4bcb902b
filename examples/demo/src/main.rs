//! The one-command demo: `cargo run -p example-demo`.
//!
//! It installs the pinned test bed on first run (anvil and Circle's FiatTokenV2_2 from npm),
//! starts a local chain with chain id 84532 and real USDC at Base Sepolia's address, serves the
//! paid weather API with the in-process facilitator (which settles on that chain), and runs an
//! agent that calls three paid routes, pays each one, and prints the price, the transaction and
//! the payer's and payee's USDC balances before and after. Everything runs on 127.0.0.1 and stops
//! when the demo exits.

use std::time::{Duration, Instant};

use alloy_primitives::{Address, U256};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use x402_runtime::client::PaymentSigner;
use x402_runtime::facilitator::LocalFacilitator;
use x402_runtime::proto::{PaymentRequired, SettleResponse};
use x402_runtime::{X402, X402Config};
use x402_testbed::{Chain, FACILITATOR_KEY, MERCHANT, NETWORK, PAYER_KEY};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("\ndemo failed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Error> {
    let started = Instant::now();
    println!("x402 demo: a paid API, an agent, and real USDC on a local chain\n");
    progress("installing the test bed (pinned npm packages; first run only)");
    tokio::task::spawn_blocking(x402_testbed::install).await??;
    progress("starting anvil (chain 84532) with Circle's FiatTokenV2_2 at the USDC address");
    let chain = Chain::start().await?;
    println!("    chain   {}  USDC {}", chain.rpc_url(), chain.usdc());

    let facilitator = LocalFacilitator::builder()
        .network(NETWORK)
        .rpc_url(NETWORK, chain.rpc_url())
        .signer_key(NETWORK, FACILITATOR_KEY)
        .build()?;
    let config = X402Config::builder()
        .pay_to(MERCHANT.to_checksum(None))
        .network(NETWORK)
        .build()?;
    let x402 = X402::builder(config).facilitator(facilitator).build()?;
    x402.check_routes()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, example_weather::app(x402)).await });
    println!("    api     {api}  (in-process facilitator, settling on the local chain)");

    let agent = PaymentSigner::from_key(PAYER_KEY)?;
    println!(
        "    agent   {}\n    payee   {}\n",
        agent.address(),
        MERCHANT
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let calls = [
        ("GET", "/weather?city=Paris", None),
        (
            "POST",
            "/forecast",
            Some(json!({"city": "Paris", "days": 3})),
        ),
        ("GET", "/alerts?city=Lisbon", None),
    ];
    for (method, path, body) in calls {
        pay_one(&http, &chain, &agent, &api, method, path, body).await?;
    }
    println!(
        "done in {:.1} s: three calls paid and settled on chain; stopping the chain",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn progress(what: &str) {
    println!("... {what}");
}

/// One paid call: ask, read the price from the 402, pay, and show what moved.
async fn pay_one(
    http: &reqwest::Client,
    chain: &Chain,
    agent: &PaymentSigner,
    api: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(), Error> {
    let request = |payment: Option<&str>| {
        let mut request = http.request(method.parse().expect("method"), format!("{api}{path}"));
        if let Some(body) = &body {
            request = request.json(body);
        }
        if let Some(payment) = payment {
            request = request.header("PAYMENT-SIGNATURE", payment);
        }
        request.send()
    };
    let unpaid = request(None).await?;
    if unpaid.status() != 402 {
        return Err(format!("{method} {path}: expected 402, got {}", unpaid.status()).into());
    }
    let challenge: PaymentRequired = decode(unpaid.headers().get("payment-required"))?;
    let offer = &challenge.accepts[0];
    let before = balances(chain, agent.address()).await?;
    let payment = agent.pay_v2(&challenge, 0)?;
    let paid = request(Some(&payment)).await?;
    let status = paid.status();
    let receipt: SettleResponse = decode(paid.headers().get("payment-response"))?;
    let answer = paid.text().await?;
    if !status.is_success() || !receipt.success {
        return Err(
            format!("{method} {path}: {status}, receipt {receipt:?}, body {answer}").into(),
        );
    }
    let after = balances(chain, agent.address()).await?;
    println!("{method} {path}");
    println!(
        "    price     {} USDC ({} atomic units)",
        usdc(offer.amount.parse()?),
        offer.amount
    );
    println!("    tx        {}", receipt.transaction);
    println!("    payer     {} -> {} USDC", usdc(before.0), usdc(after.0));
    println!("    payee     {} -> {} USDC", usdc(before.1), usdc(after.1));
    println!("    response  {status} {answer}\n");
    Ok(())
}

async fn balances(chain: &Chain, payer: Address) -> Result<(U256, U256), Error> {
    Ok((
        chain.usdc_balance(payer).await?,
        chain.usdc_balance(MERCHANT).await?,
    ))
}

fn decode<T: serde::de::DeserializeOwned>(
    header: Option<&axum::http::HeaderValue>,
) -> Result<T, Error> {
    let header = header.ok_or("a required x402 header is missing")?;
    Ok(serde_json::from_slice(
        &STANDARD.decode(header.as_bytes())?,
    )?)
}

/// Formats 6-decimal atomic units as a decimal amount.
fn usdc(atomic: U256) -> String {
    let unit = U256::from(1_000_000u64);
    format!("{}.{:06}", atomic / unit, (atomic % unit).to::<u64>())
}
