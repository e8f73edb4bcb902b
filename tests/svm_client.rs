//! Our paying client on Solana: `X402Client` with a Solana key (the test bed's S6) pays the
//! official `@x402/express` seller (`interop/scripts/server_svm.mjs`, $0.01 in devnet USDC),
//! whose official facilitator (`facilitator_svm.mjs`, fee payer S3) verifies, co-signs and
//! settles on the LiteSVM chain (`x402_testbed::SvmChain`). The USDC balances move by exactly
//! the price, the receipt names the Solana signature the chain knows, and the spend log records
//! one settled payment. A limit below the price pays nothing and moves nothing.

mod support;

use support::svm::{assert_landed, official_facilitator, official_seller};
use support::{PAYER_KEY, http};
use x402_runtime::Currency;
use x402_runtime::client::{ClientError, PaymentSigner, SpendStatus, X402Client};
use x402_runtime::network::AccountId;
use x402_testbed::skip_unless_available;
use x402_testbed::svm::{self, MERCHANT, PAYER2, SvmChain};

/// The seller's price: $0.01 in USDC's 6 decimals.
const PRICE: u64 = 10_000;

/// The official facilitator (fee payer S3) and the official seller (pay to S4) on `chain`;
/// the seller's base URL.
async fn official_stack(chain: &SvmChain) -> (x402_testbed::Script, x402_testbed::Script, String) {
    let (facilitator, facilitator_url) = official_facilitator(chain).await;
    let (seller, seller_url) = official_seller(chain, &facilitator_url).await;
    (facilitator, seller, seller_url)
}

/// Our client paying with S6 on Solana (its EVM key unused), reading the chain at `chain`.
fn client(chain: &SvmChain, max: &str) -> X402Client {
    let signer = PaymentSigner::from_key(PAYER_KEY)
        .expect("EVM key")
        .with_svm_key(PAYER2.secret_key)
        .expect("Solana key");
    X402Client::builder(signer)
        .http(http())
        .max_per_request(Currency::Usdc, max)
        .svm_rpc_url(chain.rpc_url())
        .build()
        .expect("client")
}

/// The payer's and the merchant's devnet USDC, and the payer's SOL.
async fn balances(chain: &SvmChain) -> [u64; 3] {
    [
        chain
            .usdc_balance(PAYER2.address)
            .await
            .expect("payer USDC"),
        chain
            .usdc_balance(MERCHANT.address)
            .await
            .expect("merchant USDC"),
        chain.sol_balance(PAYER2.address).await.expect("payer SOL"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_pays_the_official_seller_on_solana() {
    if !skip_unless_available("our_client_pays_the_official_seller_on_solana") {
        return;
    }
    let chain = SvmChain::start().await.expect("Solana chain");
    let (_facilitator, _seller, seller_url) = official_stack(&chain).await;
    let client = client(&chain, "0.01");

    let before = balances(&chain).await;
    let answer = client
        .get(&format!("{seller_url}/paid"))
        .await
        .expect("paid call");
    assert_eq!(answer.status(), 200, "{}", answer.text());
    assert_eq!(answer.text(), r#"{"paid":true}"#);
    let receipt = answer.receipt().expect("a receipt");
    assert!(receipt.success, "{receipt:?}");
    assert_eq!(receipt.network, svm::DEVNET);
    let signature = receipt.transaction.clone();
    // A Solana signature is 64 bytes of base58, its case kept.
    assert_eq!(
        bs58::decode(&signature).into_vec().map(|b| b.len()),
        Ok(64),
        "{signature}"
    );
    assert_landed(&chain, &signature).await;

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

    let log = client.spend_log();
    assert_eq!(log.len(), 1, "one payment signed: {log:?}");
    let spend = &log[0];
    assert_eq!(spend.status, SpendStatus::Settled);
    assert_eq!(spend.transaction.as_deref(), Some(signature.as_str()));
    assert_eq!(spend.network, svm::DEVNET);
    assert_eq!(spend.amount, "0.01");
    assert_eq!(
        spend.payer,
        PAYER2.address.parse::<AccountId>().expect("S6")
    );
    assert_eq!(
        spend.pay_to,
        MERCHANT.address.parse::<AccountId>().expect("S4")
    );
    assert_eq!(client.spent(Currency::Usdc), "0.01");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_below_the_price_pays_nothing_on_solana() {
    if !skip_unless_available("a_limit_below_the_price_pays_nothing_on_solana") {
        return;
    }
    let chain = SvmChain::start().await.expect("Solana chain");
    let (_facilitator, _seller, seller_url) = official_stack(&chain).await;
    let client = client(&chain, "0.009");

    let before = balances(&chain).await;
    let error = client
        .get(&format!("{seller_url}/paid"))
        .await
        .expect_err("over the limit");
    assert!(
        matches!(error, ClientError::OverRequestLimit { .. }),
        "{error:?}"
    );
    assert!(client.spend_log().is_empty(), "nothing signed");
    assert_eq!(balances(&chain).await, before, "nothing moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_solana_key_the_solana_offer_is_skipped_with_its_reason() {
    if !skip_unless_available("without_a_solana_key_the_solana_offer_is_skipped_with_its_reason") {
        return;
    }
    let chain = SvmChain::start().await.expect("Solana chain");
    let (_facilitator, _seller, seller_url) = official_stack(&chain).await;
    let client = X402Client::builder(PaymentSigner::from_key(PAYER_KEY).expect("EVM key"))
        .http(http())
        .svm_rpc_url(chain.rpc_url())
        .build()
        .expect("client");
    let before = balances(&chain).await;
    let error = client
        .get(&format!("{seller_url}/paid"))
        .await
        .expect_err("no payable offer");
    let ClientError::NoPayableOffer(reasons) = &error else {
        panic!("{error:?}");
    };
    assert!(
        reasons.iter().any(|r| r.contains("no Solana key")),
        "{reasons:?}"
    );
    assert_eq!(balances(&chain).await, before, "nothing moved");
}
