//! The Solana test chain (LiteSVM behind `testbed/svm/rpc.mjs`): funded as documented, its test
//! helpers move real token balances, JSON-RPC errors come back as errors, and the chain is gone
//! once dropped.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use x402_testbed::skip_unless_available;
use x402_testbed::svm::{
    self, ACCOUNTS, DEFAULT_MINT, MERCHANT, PAYER, PAYER2, SvmChain, USDC_DEVNET, USDC_MAINNET,
};

/// seed = 32 × 7: an account outside the table, without token accounts.
const STRANGER: &str = "GmaDrppBC7P5ARKV8g3djiwP89vz1jLK23V2GBjuAEGB";

async fn start(test: &str) -> Option<SvmChain> {
    if !skip_unless_available(test) {
        return None;
    }
    Some(SvmChain::start().await.expect("Solana chain"))
}

#[tokio::test]
async fn the_solana_chain_starts_funded() {
    let Some(chain) = start("the_solana_chain_starts_funded").await else {
        return;
    };
    assert!(chain.rpc_url().starts_with("http://127.0.0.1:"));
    for account in ACCOUNTS {
        let expected = if [PAYER, PAYER2].contains(&account) {
            DEFAULT_MINT
        } else {
            0
        };
        for mint in [USDC_DEVNET, USDC_MAINNET] {
            let balance = chain.token_balance(account.address, mint).await;
            assert_eq!(balance.expect("balance"), expected, "{account:?} of {mint}");
        }
        assert!(chain.sol_balance(account.address).await.expect("SOL") > 0);
    }
    let genesis = chain
        .rpc("getGenesisHash", json!([]))
        .await
        .expect("genesis");
    assert_eq!(genesis, svm::DEVNET_GENESIS_HASH);
    let mint = chain
        .rpc(
            "getAccountInfo",
            json!([USDC_DEVNET, {"encoding": "base64"}]),
        )
        .await
        .expect("mint account");
    assert_eq!(mint["value"]["owner"], svm::TOKEN_PROGRAM);
    assert_eq!(mint["value"]["space"], 82);
}

#[tokio::test]
async fn the_helpers_move_real_balances() {
    let Some(chain) = start("the_helpers_move_real_balances").await else {
        return;
    };
    assert_eq!(chain.usdc_balance(STRANGER).await.expect("no account"), 0);
    let signature = chain.mint(STRANGER, 5).await.expect("mint");
    assert_eq!(chain.usdc_balance(STRANGER).await.expect("balance"), 5);
    let status = chain
        .signature_status(&signature)
        .await
        .expect("status")
        .expect("the mint landed");
    assert_eq!(status["err"], serde_json::Value::Null);
    assert_eq!(status["confirmationStatus"], "finalized");

    chain
        .mint_of(MERCHANT.address, 7, USDC_MAINNET)
        .await
        .expect("mint mainnet USDC");
    assert_eq!(
        chain
            .token_balance(MERCHANT.address, USDC_MAINNET)
            .await
            .expect("balance"),
        7
    );
    assert_eq!(
        chain.usdc_balance(MERCHANT.address).await.expect("devnet"),
        0
    );

    let before = chain.latest_blockhash().await.expect("blockhash");
    let after = chain.expire_blockhash().await.expect("expire");
    assert_ne!(before, after);
    assert_eq!(chain.latest_blockhash().await.expect("blockhash"), after);
    // Still works over the new blockhash.
    chain.mint(STRANGER, 1).await.expect("mint after expiry");
    assert_eq!(chain.usdc_balance(STRANGER).await.expect("balance"), 6);

    // The fault switches answer (their effect on sends is checked by testbed/svm/selftest.mjs).
    chain
        .set_send_delay(Duration::from_millis(1))
        .await
        .expect("delay");
    chain.drop_sends(0).await.expect("drop");
    chain.hold_sends(0).await.expect("hold");
    assert_eq!(chain.release_held().await.expect("release"), json!([]));
}

#[tokio::test]
async fn errors_are_errors_and_drop_kills() {
    let Some(mut chain) = start("errors_are_errors_and_drop_kills").await else {
        return;
    };
    let unknown = chain
        .rpc("getNothing", json!([]))
        .await
        .expect_err("unknown");
    assert!(unknown.to_string().contains("-32601"), "{unknown}");
    let bad = chain
        .rpc("getBalance", json!(["not an address"]))
        .await
        .expect_err("bad params");
    assert!(bad.to_string().contains("-32602"), "{bad}");
    let wrong_mint = chain.mint_of(STRANGER, 1, svm::TOKEN_PROGRAM).await;
    assert!(wrong_mint.is_err(), "only the planted mints can be minted");

    let pid = chain.pid().expect("running");
    let url = chain.rpc_url().to_owned();
    chain.kill();
    assert!(chain.pid().is_none());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the chain's process is gone"
    );
    let client = reqwest::Client::new();
    assert!(client.post(&url).body("{}").send().await.is_err());
}
