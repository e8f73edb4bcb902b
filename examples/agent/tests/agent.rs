//! The agent example as a user runs it, against the paid weather API on a local chain with
//! Circle's USDC: it lists the prices, pays one call, prints the receipt, and the payer's balance
//! drops by exactly the price.

use std::time::Duration;

use alloy_primitives::U256;
use x402_runtime::facilitator::LocalFacilitator;
use x402_runtime::{X402, X402Config};
use x402_testbed::{Chain, FACILITATOR_KEY, MERCHANT, NETWORK, PAYER, PAYER_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_discovers_pays_and_prints_the_receipt() {
    if !x402_testbed::skip_unless_available("the_agent_discovers_pays_and_prints_the_receipt") {
        return;
    }
    let chain = Chain::start().await.expect("local chain");
    let facilitator = LocalFacilitator::builder()
        .network(NETWORK)
        .rpc_url(NETWORK, chain.rpc_url())
        .signer_key(NETWORK, FACILITATOR_KEY)
        .build()
        .expect("facilitator");
    let config = X402Config::builder()
        .pay_to(MERCHANT.to_checksum(None))
        .network(NETWORK)
        .build()
        .expect("config");
    let x402 = X402::builder(config)
        .facilitator(facilitator)
        .build()
        .expect("x402");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let api = format!("http://{}", listener.local_addr().expect("address"));
    let server =
        tokio::spawn(async move { axum::serve(listener, example_weather::app(x402)).await });
    let before = chain.usdc_balance(PAYER).await.expect("balance");

    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_example-agent"))
        .args([api.as_str(), "/weather?city=Paris"])
        .env("X402_PAYER_KEY", PAYER_KEY)
        .env("X402_NETWORK", NETWORK)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the agent finishes within 60 s")
        .expect("run example-agent");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "agent failed\n{stdout}\n{stderr}");
    assert!(stdout.contains("GET /weather costs 0.001 USDC"), "{stdout}");
    assert!(stdout.contains("200 OK"), "{stdout}");
    assert!(
        stdout.contains(&format!("paid by {PAYER} in transaction 0x")),
        "{stdout}"
    );
    assert!(stdout.contains("spent 0.001 USDC of 0.05"), "{stdout}");
    let after = chain.usdc_balance(PAYER).await.expect("balance");
    assert_eq!(
        before - after,
        U256::from(1_000u64),
        "exactly the price moved"
    );
    server.abort();
}
