//! The Solana test bed with the official x402 Solana pieces (`@x402/svm` 2.27.0): the official
//! client (`@x402/fetch`, `interop/scripts/pay_svm.mjs`) pays the official `@x402/express` seller
//! (`interop/scripts/server_svm.mjs`), whose official facilitator (`facilitator_svm.mjs`, fee payer
//! S3) verifies, co-signs and settles on the chain (`x402_testbed::SvmChain`: LiteSVM behind
//! `testbed/svm/rpc.mjs`). The USDC balances move by exactly the price and the fee payer, not the
//! payer, pays the fees. And the chain's own node self-check (`testbed/svm/selftest.mjs`: its
//! JSON-RPC answers to good and bad requests, the slow, lost and held sends, the same payment).

mod support;

use serde_json::Value;
use support::svm::{assert_landed, official_client_pays, official_facilitator, official_seller};
use support::{http, run_child};
use x402_testbed::skip_unless_available;
use x402_testbed::svm::{self, MERCHANT, PAYER, SvmChain, TS_FACILITATOR};

/// The seller's price: $0.01 in USDC's 6 decimals.
const PRICE: u64 = 10_000;

/// The payer's and the merchant's devnet USDC, and the payer's and the fee payer's SOL.
async fn balances(chain: &SvmChain) -> [u64; 4] {
    [
        chain.usdc_balance(PAYER.address).await.expect("payer USDC"),
        chain
            .usdc_balance(MERCHANT.address)
            .await
            .expect("merchant USDC"),
        chain.sol_balance(PAYER.address).await.expect("payer SOL"),
        chain
            .sol_balance(TS_FACILITATOR.address)
            .await
            .expect("fee payer SOL"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_pays_the_official_seller_on_solana() {
    if !skip_unless_available("the_official_client_pays_the_official_seller_on_solana") {
        return;
    }
    let chain = SvmChain::start().await.expect("Solana chain");
    let (_facilitator, facilitator_url) = official_facilitator(&chain).await;
    let supported: Value = http()
        .get(format!("{facilitator_url}/supported"))
        .send()
        .await
        .expect("supported")
        .json()
        .await
        .expect("json");
    let kinds = supported["kinds"].as_array().expect("kinds");
    assert!(
        kinds.iter().any(|k| k["network"] == svm::DEVNET
            && k["x402Version"] == 2
            && k["extra"]["feePayer"] == TS_FACILITATOR.address),
        "{supported}"
    );
    let (_seller, seller_url) = official_seller(&chain, &facilitator_url).await;

    let before = balances(&chain).await;
    let result = official_client_pays(&chain, &format!("{seller_url}/paid"), &PAYER).await;
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["body"], r#"{"paid":true}"#, "{result}");
    let receipt = &result["receipt"];
    assert_eq!(receipt["success"], true, "{result}");
    assert_eq!(receipt["network"], svm::DEVNET, "{result}");
    assert_eq!(receipt["payer"], PAYER.address, "{result}");
    let signature = receipt["transaction"].as_str().expect("transaction");
    assert_landed(&chain, signature).await;

    let after = balances(&chain).await;
    assert_eq!(
        before[0] - after[0],
        PRICE,
        "the payer paid exactly the price"
    );
    assert_eq!(
        after[1] - before[1],
        PRICE,
        "the merchant got exactly the price"
    );
    assert_eq!(after[2], before[2], "the payer paid no fee");
    assert!(after[3] < before[3], "the fee payer paid the fee");
}

#[tokio::test]
async fn the_node_self_check_of_the_solana_chain_passes() {
    if !skip_unless_available("the_node_self_check_of_the_solana_chain_passes") {
        return;
    }
    let paths = tokio::task::spawn_blocking(x402_testbed::install_chain)
        .await
        .expect("join")
        .expect("install");
    let script = paths.root.join("testbed/svm/selftest.mjs");
    let output = run_child(
        &paths.node,
        &[script.to_str().expect("utf-8 path")],
        &paths.root,
    )
    .await;
    assert!(output.contains("selftest: all checks passed"), "{output}");
}
