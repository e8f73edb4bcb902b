//! Interoperability with the official x402 SDKs, settled on a real chain:
//! the official Python client (PyPI `x402` 2.25.0) and TypeScript client (`@x402/fetch` +
//! `@x402/evm` 2.27.0) pay our example server (a route priced per request too, at two sizes); a
//! v1 payment settles; our standalone facilitator serves the official `@x402/express` server,
//! which the TypeScript client pays.

mod support;

use std::path::Path;

use alloy_primitives::{Address, U256};
use serde_json::Value;
use support::{
    assert_price_moved, chain_api, decode_b64, http, installed_testbed, official_express_server,
    usdc_balances,
};
use x402_runtime::client::PaymentSigner;
use x402_runtime::proto::{PaymentRequiredV1, SettleResponse};
use x402_testbed::{Chain, PAYER, PAYER_KEY, PAYER2, PAYER2_KEY, Paths};

struct Bed {
    chain: Chain,
    paths: Paths,
}

async fn bed(test: &str) -> Option<Bed> {
    let paths = installed_testbed(test).await?;
    let chain = Chain::start().await.expect("chain");
    Some(Bed { chain, paths })
}

/// Runs an official client script; returns its one JSON line.
async fn run_client(program: &Path, script: &Path, key: &str, args: &[&str]) -> Value {
    support::run_client(program, script, key, args, &[]).await
}

async fn python_pays(bed: &Bed, key: &str, args: &[&str]) -> Value {
    run_client(
        &bed.paths.python,
        &bed.paths.interop.join("scripts/pay.py"),
        key,
        args,
    )
    .await
}

async fn typescript_pays(bed: &Bed, key: &str, args: &[&str]) -> Value {
    run_client(
        &bed.paths.node,
        &bed.paths.interop.join("scripts/pay.mjs"),
        key,
        args,
    )
    .await
}

/// Asserts a paid answer and that exactly `price` moved from `payer` to the merchant.
async fn assert_paid(
    result: &Value,
    chain: &Chain,
    payer: Address,
    before: (U256, U256),
    price: u64,
) {
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["receipt"]["success"], true, "{result}");
    let transaction = result["receipt"]["transaction"]
        .as_str()
        .expect("transaction");
    assert_eq!(transaction.len(), 66, "{result}");
    assert_price_moved(chain, payer, before, price).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_client_pays_our_server() {
    let Some(bed) = bed("the_official_python_client_pays_our_server").await else {
        return;
    };
    let base = chain_api(bed.chain.rpc_url()).await;
    let before = usdc_balances(&bed.chain, PAYER).await;
    let result = python_pays(&bed, PAYER_KEY, &[&format!("{base}/weather?city=Lima")]).await;
    assert_paid(&result, &bed.chain, PAYER, before, 1000).await;
    assert!(result["body"].as_str().expect("body").contains("Lima"));

    let before = usdc_balances(&bed.chain, PAYER).await;
    let body = r#"{"city":"Lima","days":2}"#;
    let result = python_pays(
        &bed,
        PAYER_KEY,
        &[&format!("{base}/forecast"), "POST", body],
    )
    .await;
    assert_paid(&result, &bed.chain, PAYER, before, 10_000).await;

    // A route priced per request, at two sizes: each settles exactly its quote.
    for (days, quote) in [(2, 2_000), (7, 7_000)] {
        let before = usdc_balances(&bed.chain, PAYER).await;
        let url = format!("{base}/history?city=Lima&days={days}");
        let result = python_pays(&bed, PAYER_KEY, &[&url]).await;
        assert_paid(&result, &bed.chain, PAYER, before, quote).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_typescript_client_pays_our_server() {
    let Some(bed) = bed("the_official_typescript_client_pays_our_server").await else {
        return;
    };
    let base = chain_api(bed.chain.rpc_url()).await;
    let before = usdc_balances(&bed.chain, PAYER2).await;
    let result = typescript_pays(&bed, PAYER2_KEY, &[&format!("{base}/alerts?city=Cairo")]).await;
    assert_paid(&result, &bed.chain, PAYER2, before, 5000).await;

    let before = usdc_balances(&bed.chain, PAYER2).await;
    let body = r#"{"city":"Cairo","days":5}"#;
    let result = typescript_pays(
        &bed,
        PAYER2_KEY,
        &[&format!("{base}/forecast"), "POST", body],
    )
    .await;
    assert_paid(&result, &bed.chain, PAYER2, before, 10_000).await;

    // A route priced per request, at two sizes: each settles exactly its quote.
    for (days, quote) in [(3, 3_000), (30, 30_000)] {
        let before = usdc_balances(&bed.chain, PAYER2).await;
        let url = format!("{base}/history?city=Cairo&days={days}");
        let result = typescript_pays(&bed, PAYER2_KEY, &[&url]).await;
        assert_paid(&result, &bed.chain, PAYER2, before, quote).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_payment_settles() {
    let Some(bed) = bed("a_v1_payment_settles").await else {
        return;
    };
    let base = chain_api(bed.chain.rpc_url()).await;
    let client = http();
    let unpaid = client
        .get(format!("{base}/weather?city=Quito"))
        .send()
        .await
        .expect("request");
    let v1: PaymentRequiredV1 = unpaid.json().await.expect("v1 body");
    let payer = PaymentSigner::from_key(PAYER_KEY).expect("key");
    let payment = payer.pay_v1(&v1.accepts[0]).expect("sign");
    let before = usdc_balances(&bed.chain, PAYER).await;
    let paid = client
        .get(format!("{base}/weather?city=Quito"))
        .header("X-PAYMENT", payment)
        .send()
        .await
        .expect("request");
    assert_eq!(paid.status(), 200);
    let receipt: SettleResponse = decode_b64(
        paid.headers()["x-payment-response"]
            .to_str()
            .expect("ascii"),
    );
    assert!(receipt.success);
    assert_eq!(receipt.network, "base-sepolia");
    let result = serde_json::json!({"status": 200, "receipt": receipt});
    assert_paid(&result, &bed.chain, PAYER, before, 1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_facilitator_serves_the_official_express_server() {
    let Some(bed) = bed("our_facilitator_serves_the_official_express_server").await else {
        return;
    };
    let (_server, base) = official_express_server(&bed.paths, &bed.chain).await;
    let client = http();
    let unpaid = client
        .get(format!("{base}/paid"))
        .send()
        .await
        .expect("request");
    assert_eq!(unpaid.status(), 402);
    let before = usdc_balances(&bed.chain, PAYER2).await;
    let result = typescript_pays(&bed, PAYER2_KEY, &[&format!("{base}/paid")]).await;
    assert_paid(&result, &bed.chain, PAYER2, before, 1000).await;
    assert_eq!(result["body"], r#"{"paid":true}"#);
}
