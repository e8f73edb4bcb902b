//! The one-command demo: `cargo run -p example-demo`.
//!
//! It installs the pinned test bed on first run (anvil and Circle's FiatTokenV2_2 from npm),
//! starts a local chain with chain id 84532 and real USDC at Base Sepolia's address, serves the
//! paid weather API with the in-process facilitator (which settles on that chain), and runs an
//! agent built on `x402_runtime::client::X402Client`: it reads the prices from `/openapi.json`,
//! pays three routes (one priced per request) within a 0.015 USDC budget (printing the price,
//! the transaction and the payer's and payee's USDC balances before and after), is refused the
//! fourth by its budget before anything is signed, and prints its spend log. The API is offered on
//! Solana devnet too (a LiteSVM chain from npm with USDC at the devnet mint, the same in-process
//! facilitator paying the fees): a second agent with a Solana key pays one call there. Everything
//! runs on 127.0.0.1 and stops when the demo exits.

use std::time::Instant;

use alloy_primitives::{Address, U256};
use serde_json::json;
use x402_runtime::client::{ClientError, PaidResponse, PaymentSigner, X402Client, discover};
use x402_runtime::facilitator::LocalFacilitator;
use x402_runtime::{Currency, X402, X402Config};
use x402_testbed::svm::{self, SvmChain};
use x402_testbed::{Chain, FACILITATOR_KEY, MERCHANT, NETWORK, PAYER_KEY, PAYER2_KEY};

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
    tokio::task::spawn_blocking(x402_testbed::install_chain).await??;
    progress("starting anvil (chain 84532) with Circle's FiatTokenV2_2 at the USDC address");
    let chain = Chain::start().await?;
    println!("    chain   {}  USDC {}", chain.rpc_url(), chain.usdc());
    progress("starting a Solana devnet (LiteSVM) with USDC at the devnet mint");
    let solana = SvmChain::start().await?;
    println!(
        "    solana  {}  USDC {}",
        solana.rpc_url(),
        svm::USDC_DEVNET
    );

    let api = serve_api(&chain, &solana).await?;

    let agent = X402Client::builder(PaymentSigner::from_key(PAYER_KEY)?)
        .max_per_request(Currency::Usdc, "0.01")
        .budget(Currency::Usdc, "0.015")
        .networks([NETWORK])
        .build()?;
    println!(
        "    agent   {}  (at most 0.01 USDC a call, 0.015 USDC in all)\n    payee   {}\n",
        agent.address(),
        MERCHANT
    );

    progress("the agent reads the API's prices from /openapi.json");
    let found = discover(agent.http(), &api).await?;
    for endpoint in &found.endpoints {
        println!(
            "    {:<5} {:<10} {} {}",
            endpoint.method, endpoint.path, endpoint.price, endpoint.currency
        );
    }
    println!();

    let weather = format!("{api}/weather?city=Paris");
    pay_one(
        &agent,
        &chain,
        "GET /weather?city=Paris",
        agent.get(&weather),
    )
    .await?;
    let forecast = format!("{api}/forecast");
    let days = json!({"city": "Paris", "days": 3});
    pay_one(
        &agent,
        &chain,
        "POST /forecast",
        agent.post_json(&forecast, &days),
    )
    .await?;
    // Priced per request: the 402 quotes 0.001 USDC a day, so two days cost 0.002.
    let history = format!("{api}/history?city=Paris&days=2");
    pay_one(
        &agent,
        &chain,
        "GET /history?city=Paris&days=2",
        agent.get(&history),
    )
    .await?;
    let alerts = format!("{api}/alerts?city=Lisbon");
    match agent.get(&alerts).await {
        Err(refusal @ ClientError::OverBudget { .. }) => {
            println!("GET /alerts?city=Lisbon\n    refused   {refusal}\n");
        }
        other => return Err(format!("the budget should have refused /alerts: {other:?}").into()),
    }

    print_spend_log(&agent, &api);
    pay_on_solana(&solana, &api).await?;
    println!(
        "\ndone in {:.1} s: three calls paid and settled on the EVM chain (one priced by its \
         request), one refused by the budget before signing, one paid on Solana; stopping the \
         chains",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A second agent, with a Solana key, pays one call on Solana devnet.
async fn pay_on_solana(solana: &SvmChain, api: &str) -> Result<(), Error> {
    let signer = PaymentSigner::from_key(PAYER2_KEY)?.with_svm_key(svm::PAYER.secret_key)?;
    let agent = X402Client::builder(signer)
        .max_per_request(Currency::Usdc, "0.01")
        .networks([svm::DEVNET])
        .svm_rpc_url(solana.rpc_url())
        .build()?;
    println!(
        "\non Solana: agent {}  payee {}",
        svm::PAYER.address,
        svm::MERCHANT.address
    );
    let before = solana_balances(solana).await?;
    let answer = agent.get(&format!("{api}/weather?city=Oslo")).await?;
    let Some(receipt) = answer.receipt().filter(|r| r.success) else {
        return Err(format!("Solana: {} without a settled receipt", answer.status()).into());
    };
    let after = solana_balances(solana).await?;
    println!("GET /weather?city=Oslo (paid on {})", receipt.network);
    println!("    tx        {}", receipt.transaction);
    println!(
        "    payer     {} -> {} USDC",
        usdc(U256::from(before.0)),
        usdc(U256::from(after.0))
    );
    println!(
        "    payee     {} -> {} USDC",
        usdc(U256::from(before.1)),
        usdc(U256::from(after.1))
    );
    println!("    response  {} {}", answer.status(), answer.text());
    Ok(())
}

async fn solana_balances(solana: &SvmChain) -> Result<(u64, u64), Error> {
    Ok((
        solana.usdc_balance(svm::PAYER.address).await?,
        solana.usdc_balance(svm::MERCHANT.address).await?,
    ))
}

/// The example weather API on a free loopback port, offered on the local EVM chain and on Solana
/// devnet, settling through an in-process facilitator on both; its base URL.
async fn serve_api(chain: &Chain, solana: &SvmChain) -> Result<String, Error> {
    let facilitator = LocalFacilitator::builder()
        .network(NETWORK)
        .rpc_url(NETWORK, chain.rpc_url())
        .signer_key(NETWORK, FACILITATOR_KEY)
        .network(svm::DEVNET)
        .svm_rpc_url(svm::DEVNET, solana.rpc_url())
        .svm_signer_key(svm::FACILITATOR.secret_key)
        .build()?;
    let config = X402Config::builder()
        .pay_to(MERCHANT.to_checksum(None))
        .svm_pay_to(svm::MERCHANT.address)
        .network(NETWORK)
        .network(svm::DEVNET)
        .build()?;
    let x402 = X402::builder(config).facilitator(facilitator).build()?;
    x402.check_routes()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, example_weather::app(x402)).await });
    println!("    api     {api}  (in-process facilitator, settling on the local chain)");
    Ok(api)
}

/// What the agent paid, call by call.
fn print_spend_log(agent: &X402Client, api: &str) {
    println!("spend log");
    for spend in agent.spend_log() {
        println!(
            "    {} {} {:<6} {} -> {}  tx {}",
            spend.method,
            spend.url.trim_start_matches(api),
            spend.amount,
            spend.currency,
            spend.pay_to,
            spend.transaction.as_deref().unwrap_or("-")
        );
    }
}

fn progress(what: &str) {
    println!("... {what}");
}

/// One paid call through the client, with the payer's and payee's balances around it.
async fn pay_one(
    agent: &X402Client,
    chain: &Chain,
    label: &str,
    call: impl Future<Output = Result<PaidResponse, ClientError>>,
) -> Result<(), Error> {
    let before = balances(chain, agent.address()).await?;
    let answer = call.await?;
    let (Some(spend), Some(receipt)) = (answer.spend(), answer.receipt()) else {
        return Err(format!("{label}: {} without a payment receipt", answer.status()).into());
    };
    if !answer.status().is_success() || !receipt.success {
        return Err(format!("{label}: {}, receipt {receipt:?}", answer.status()).into());
    }
    let after = balances(chain, agent.address()).await?;
    println!("{label}");
    println!(
        "    price     {} {} ({} atomic units)",
        spend.amount, spend.currency, spend.atomic_amount
    );
    println!("    tx        {}", receipt.transaction);
    println!("    payer     {} -> {} USDC", usdc(before.0), usdc(after.0));
    println!("    payee     {} -> {} USDC", usdc(before.1), usdc(after.1));
    println!("    response  {} {}\n", answer.status(), answer.text());
    Ok(())
}

async fn balances(chain: &Chain, payer: Address) -> Result<(U256, U256), Error> {
    Ok((
        chain.usdc_balance(payer).await?,
        chain.usdc_balance(MERCHANT).await?,
    ))
}

/// Formats 6-decimal atomic units as a decimal amount.
fn usdc(atomic: U256) -> String {
    let unit = U256::from(1_000_000u64);
    format!("{}.{:06}", atomic / unit, (atomic % unit).to::<u64>())
}
