//! Our in-process facilitator on Solana (`LocalFacilitator`, feature `svm`, fee payer S5) with
//! payments signed by the official TypeScript client (`@x402/svm` 2.27.0 through
//! `interop/scripts/sign_svm.mjs`) on the LiteSVM test bed (`x402_testbed::SvmChain`): it verifies
//! them, settles each once (the USDC balances move by exactly the amount, the fee payer pays the
//! fee), refuses a second settlement, a tampered amount and an expired blockhash, answers a send
//! it has not seen confirmed `settlement_pending` with the transaction's signature and settles the
//! same payment with that signature once it lands. Then the official client pays the official
//! seller (`@x402/express`, `interop/scripts/server_svm.mjs`) through the `x402-facilitator`
//! server's routes (`x402_runtime_facilitator::router`, served here).

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use support::serve;
use support::svm::{assert_landed, official_client_pays, official_seller};
use x402_runtime::facilitator::{Facilitator, FacilitatorError, LocalFacilitator};
use x402_runtime::proto::FacilitatorRequest;
use x402_testbed::skip_unless_available;
use x402_testbed::svm::{self, FACILITATOR, MERCHANT, PAYER, SvmChain};

/// The price: $0.01 in USDC's 6 decimals.
const PRICE: u64 = 10_000;

/// Our facilitator on devnet, settling on `chain` with fee payer S5.
fn facilitator(chain: &SvmChain, receipt_timeout: Duration) -> LocalFacilitator {
    LocalFacilitator::builder()
        .network(svm::DEVNET)
        .default_svm_rpc_url(chain.rpc_url())
        .svm_signer_key(FACILITATOR.secret_key)
        .receipt_timeout(receipt_timeout)
        .build()
        .expect("facilitator")
}

/// Devnet USDC requirements for `amount`, paid to the merchant, with our fee payer.
fn requirements(amount: u64) -> Value {
    json!({
        "scheme": "exact",
        "network": svm::DEVNET,
        "amount": amount.to_string(),
        "asset": svm::USDC_DEVNET,
        "payTo": MERCHANT.address,
        "maxTimeoutSeconds": 60,
        "extra": {"feePayer": FACILITATOR.address},
    })
}

/// The v1 shape of the same requirements.
fn requirements_v1(amount: u64) -> Value {
    json!({
        "scheme": "exact",
        "network": svm::DEVNET_V1,
        "maxAmountRequired": amount.to_string(),
        "resource": "http://127.0.0.1/paid",
        "description": "",
        "mimeType": "application/json",
        "payTo": MERCHANT.address,
        "maxTimeoutSeconds": 60,
        "asset": svm::USDC_DEVNET,
        "extra": {"feePayer": FACILITATOR.address},
    })
}

/// The payer's payment for `requirements`, signed by the official client (`version` 1 or 2).
async fn sign(chain: &SvmChain, requirements: &Value, version: u8) -> Value {
    let paths = chain.paths();
    // This repository's script, next to this test (its imports resolve from its own folder).
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../interop/scripts/sign_svm.mjs"
    );
    let output = tokio::time::timeout(
        support::CHILD_TIMEOUT,
        tokio::process::Command::new(&paths.node)
            .arg(script)
            .arg(requirements.to_string())
            .arg(version.to_string())
            .env("PAYER_KEY", PAYER.secret_key)
            .env("PAY_RPC_URL", chain.rpc_url())
            .current_dir(&paths.interop)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("sign_svm.mjs finished in time")
    .expect("node ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "sign_svm.mjs failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("a payment payload")
}

/// The facilitator request carrying `payment` against `requirements`.
fn request(payment: &Value, requirements: &Value) -> FacilitatorRequest {
    serde_json::from_value(json!({
        "x402Version": payment["x402Version"],
        "paymentPayload": payment,
        "paymentRequirements": requirements,
    }))
    .expect("request")
}

/// `payment` with its `TransferChecked` of [`PRICE`] rewritten to move `amount` (and `accepted`
/// asking for it), the signatures left as they were.
fn raise_amount(payment: &Value, amount: u64) -> Value {
    use base64::Engine as _;
    let base64 = base64::engine::general_purpose::STANDARD;
    let text = payment["payload"]["transaction"]
        .as_str()
        .expect("transaction");
    let mut wire = base64.decode(text).expect("base64");
    // TransferChecked: 12, the amount (u64 little-endian), the decimals.
    let mut transfer = vec![12];
    transfer.extend_from_slice(&PRICE.to_le_bytes());
    transfer.push(6);
    let at = wire
        .windows(transfer.len())
        .position(|w| w == transfer.as_slice())
        .expect("the transfer's data");
    wire[at + 1..at + 9].copy_from_slice(&amount.to_le_bytes());
    let mut rewritten = payment.clone();
    rewritten["payload"]["transaction"] = Value::String(base64.encode(&wire));
    rewritten["accepted"]["amount"] = Value::String(amount.to_string());
    rewritten
}

/// The payer's and the merchant's devnet USDC, and the payer's and our fee payer's SOL.
async fn balances(chain: &SvmChain) -> [u64; 4] {
    [
        chain.usdc_balance(PAYER.address).await.expect("payer USDC"),
        chain
            .usdc_balance(MERCHANT.address)
            .await
            .expect("merchant USDC"),
        chain.sol_balance(PAYER.address).await.expect("payer SOL"),
        chain
            .sol_balance(FACILITATOR.address)
            .await
            .expect("fee payer SOL"),
    ]
}

/// The price moved once from the payer to the merchant, and our fee payer paid the fee.
fn assert_paid_once(before: [u64; 4], after: [u64; 4]) {
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

async fn start_chain(test: &str) -> Option<SvmChain> {
    if !skip_unless_available(test) {
        return None;
    }
    Some(SvmChain::start().await.expect("Solana chain"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_facilitator_verifies_and_settles_the_official_clients_payment_once() {
    let Some(chain) =
        start_chain("our_facilitator_verifies_and_settles_the_official_clients_payment_once").await
    else {
        return;
    };
    let facilitator = facilitator(&chain, Duration::from_secs(10));
    let wanted = requirements(PRICE);
    let payment = sign(&chain, &wanted, 2).await;
    let request = request(&payment, &wanted);

    let verdict = facilitator.verify(&request).await.expect("verify");
    assert!(verdict.is_valid, "{verdict:?}");
    assert_eq!(verdict.payer.as_deref(), Some(PAYER.address));

    // The same payment against a higher amount.
    let tampered = self::request(&payment, &requirements(PRICE * 2));
    let verdict = facilitator.verify(&tampered).await.expect("verify");
    assert!(!verdict.is_valid);
    assert_eq!(
        verdict.invalid_reason.as_deref(),
        Some("invalid_exact_svm_payload_amount_mismatch")
    );
    let refused = facilitator.settle(&tampered).await.expect("settle");
    assert!(!refused.success, "{refused:?}");
    // The transaction itself rewritten to move twice the amount: the payer never signed that.
    let rewritten = raise_amount(&payment, PRICE * 2);
    let tampered = self::request(&rewritten, &requirements(PRICE * 2));
    let verdict = facilitator.verify(&tampered).await.expect("verify");
    assert_eq!(
        verdict.invalid_reason.as_deref(),
        Some("invalid_exact_svm_payload_signature_invalid"),
        "{verdict:?}"
    );
    let refused = facilitator.settle(&tampered).await.expect("settle");
    assert!(!refused.success, "{refused:?}");

    let before = balances(&chain).await;
    let settled = facilitator.settle(&request).await.expect("settle");
    assert!(settled.success, "{settled:?}");
    assert_eq!(settled.network, svm::DEVNET);
    assert_eq!(settled.payer.as_deref(), Some(PAYER.address));
    let status = chain
        .signature_status(&settled.transaction)
        .await
        .expect("status")
        .expect("the receipt's transaction landed");
    assert_eq!(status["err"], Value::Null, "{status}");
    assert_paid_once(before, balances(&chain).await);

    // The same payment again: nothing is sent, nothing moves.
    let again = facilitator.settle(&request).await.expect("settle");
    assert!(!again.success, "{again:?}");
    assert_eq!(again.error_reason.as_deref(), Some("duplicate_settlement"));
    assert_paid_once(before, balances(&chain).await);
    // And through a new facilitator, which remembers nothing: the chain knows the transaction.
    let fresh = self::facilitator(&chain, Duration::from_secs(10));
    let again = fresh.settle(&request).await.expect("settle");
    assert!(!again.success, "{again:?}");
    assert_eq!(again.error_reason.as_deref(), Some("duplicate_settlement"));
    assert_eq!(again.transaction, settled.transaction);
    assert_paid_once(before, balances(&chain).await);

    // A v1 payment settles the same way.
    let wanted = requirements_v1(PRICE);
    let payment = sign(&chain, &wanted, 1).await;
    let request = self::request(&payment, &wanted);
    let before = balances(&chain).await;
    let verdict = facilitator.verify(&request).await.expect("verify");
    assert!(verdict.is_valid, "{verdict:?}");
    let settled = facilitator.settle(&request).await.expect("settle");
    assert!(settled.success, "{settled:?}");
    assert_eq!(settled.network, svm::DEVNET_V1);
    assert_paid_once(before, balances(&chain).await);

    // Two settlements of one payment at once: one transaction, one payment.
    let wanted = requirements(PRICE);
    let payment = sign(&chain, &wanted, 2).await;
    let request = self::request(&payment, &wanted);
    let before = balances(&chain).await;
    let (first, second) = tokio::join!(facilitator.settle(&request), facilitator.settle(&request));
    let (first, second) = (first.expect("settle"), second.expect("settle"));
    assert!(first.success || second.success, "{first:?} {second:?}");
    assert_eq!(
        first.transaction, second.transaction,
        "{first:?} {second:?}"
    );
    for answer in [&first, &second] {
        assert!(
            answer.success || answer.error_reason.as_deref() == Some("duplicate_settlement"),
            "{answer:?}"
        );
    }
    assert_paid_once(before, balances(&chain).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_whose_blockhash_expired_is_refused_and_nothing_moves() {
    let Some(chain) =
        start_chain("a_payment_whose_blockhash_expired_is_refused_and_nothing_moves").await
    else {
        return;
    };
    let facilitator = facilitator(&chain, Duration::from_secs(10));
    let wanted = requirements(PRICE);
    let payment = sign(&chain, &wanted, 2).await;
    let request = request(&payment, &wanted);
    assert!(facilitator.verify(&request).await.expect("verify").is_valid);
    chain.expire_blockhash().await.expect("expire");
    let before = balances(&chain).await;
    let verdict = facilitator.verify(&request).await.expect("verify");
    assert_eq!(
        verdict.invalid_reason.as_deref(),
        Some("invalid_exact_svm_transaction_simulation_failed"),
        "{verdict:?}"
    );
    assert_eq!(verdict.payer.as_deref(), Some(PAYER.address));
    let refused = facilitator.settle(&request).await.expect("settle");
    assert!(!refused.success, "{refused:?}");
    assert_eq!(
        refused.error_reason.as_deref(),
        Some("invalid_exact_svm_transaction_simulation_failed")
    );
    assert_eq!(refused.transaction, "", "nothing was sent");
    assert_eq!(balances(&chain).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_node_is_a_fault_and_nothing_is_sent() {
    let Some(chain) = start_chain("an_unreachable_node_is_a_fault_and_nothing_is_sent").await
    else {
        return;
    };
    let wanted = requirements(PRICE);
    let payment = sign(&chain, &wanted, 2).await;
    let request = request(&payment, &wanted);
    // Nothing listens on port 9 of the loopback.
    let cut_off = LocalFacilitator::builder()
        .network(svm::DEVNET)
        .default_svm_rpc_url("http://127.0.0.1:9")
        .svm_signer_key(FACILITATOR.secret_key)
        .build()
        .expect("facilitator");
    let before = balances(&chain).await;
    for error in [
        cut_off
            .verify(&request)
            .await
            .expect_err("no node, no verdict"),
        cut_off
            .settle(&request)
            .await
            .expect_err("no node, no settlement"),
    ] {
        assert!(matches!(error, FacilitatorError::Unreachable(_)), "{error}");
    }
    assert_eq!(balances(&chain).await, before);
    // The same payment still settles through a reachable node.
    let settled = facilitator(&chain, Duration::from_secs(10))
        .settle(&request)
        .await
        .expect("settle");
    assert!(settled.success, "{settled:?}");
    assert_paid_once(before, balances(&chain).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_not_seen_confirmed_is_pending_with_its_signature_then_settles_once() {
    let Some(chain) =
        start_chain("a_send_not_seen_confirmed_is_pending_with_its_signature_then_settles_once")
            .await
    else {
        return;
    };
    let facilitator = facilitator(&chain, Duration::from_secs(1));
    let wanted = requirements(PRICE);
    let payment = sign(&chain, &wanted, 2).await;
    let request = request(&payment, &wanted);
    let before = balances(&chain).await;

    chain.hold_sends(1).await.expect("hold");
    let pending = facilitator.settle(&request).await.expect("settle");
    assert!(!pending.success, "{pending:?}");
    assert_eq!(pending.error_reason.as_deref(), Some("settlement_pending"));
    let signature = pending.transaction.clone();
    assert!(
        !signature.is_empty(),
        "the pending answer names the transaction"
    );
    assert_eq!(balances(&chain).await, before, "nothing landed yet");

    // Still held: asked again, it waits for the same transaction and sends nothing new.
    let still = facilitator.settle(&request).await.expect("settle");
    assert_eq!(still.error_reason.as_deref(), Some("settlement_pending"));
    assert_eq!(still.transaction, signature);

    let released = chain.release_held().await.expect("release");
    assert_eq!(released[0]["signature"], signature.as_str(), "{released}");
    assert_eq!(released[0]["landed"], true, "{released}");
    assert_eq!(
        released.as_array().map(Vec::len),
        Some(1),
        "one send only: {released}"
    );

    let settled = facilitator.settle(&request).await.expect("settle");
    assert!(settled.success, "{settled:?}");
    assert_eq!(settled.transaction, signature);
    assert_paid_once(before, balances(&chain).await);

    // A slow send (the node answers after the receipt timeout, the transaction landed at once):
    // its status is read once more, and it is settled.
    let payment = sign(&chain, &wanted, 2).await;
    let request = self::request(&payment, &wanted);
    let before = balances(&chain).await;
    chain
        .set_send_delay(Duration::from_secs(2))
        .await
        .expect("delay");
    let slow = facilitator.settle(&request).await.expect("settle");
    chain
        .set_send_delay(Duration::ZERO)
        .await
        .expect("no delay");
    assert!(slow.success, "{slow:?}");
    let status = chain
        .signature_status(&slow.transaction)
        .await
        .expect("status")
        .expect("the receipt's transaction landed");
    assert_eq!(status["err"], Value::Null, "{status}");
    assert_paid_once(before, balances(&chain).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_pays_the_official_seller_through_our_facilitator_server() {
    let Some(chain) =
        start_chain("the_official_client_pays_the_official_seller_through_our_facilitator_server")
            .await
    else {
        return;
    };
    let ours = Arc::new(facilitator(&chain, Duration::from_secs(10)));
    let facilitator_url = serve(x402_runtime_facilitator::router(ours)).await;
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
    assert_paid_once(before, balances(&chain).await);
}
