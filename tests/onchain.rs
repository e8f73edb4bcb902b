//! The in-process facilitator on a real chain: anvil (chain 84532) with Circle's FiatTokenV2_2 at
//! Base Sepolia's USDC address. Payments are signed with the public test keys and settled for
//! real; balances are read from the chain.

mod support;

use std::time::Duration;

use alloy_primitives::{Address, U256};
use serde_json::{Value, json};
use support::{
    Payer, Terms, chain_api as api, challenge_of, decode_b64, edit_payment, http,
    local_facilitator, start_chain, unix_now,
};
use x402_runtime::facilitator::{Facilitator, LocalFacilitator};
use x402_runtime::proto::{FacilitatorRequest, Requirements, SettleResponse};
use x402_testbed::{Chain, FACILITATOR_KEY, MERCHANT, NETWORK, PAYER, PAYER_KEY};

async fn balances(chain: &Chain, payer: Address) -> (U256, U256) {
    (
        chain.usdc_balance(payer).await.expect("balance"),
        chain.usdc_balance(MERCHANT).await.expect("balance"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_request_settles_on_chain_for_exactly_the_price() {
    let Some(chain) = start_chain("a_paid_request_settles_on_chain_for_exactly_the_price").await
    else {
        return;
    };
    let base = api(chain.rpc_url()).await;
    let client = http();
    let payer = Payer::new(PAYER_KEY);
    let before = balances(&chain, PAYER).await;
    let unpaid = client
        .get(format!("{base}/weather?city=Oslo"))
        .send()
        .await
        .expect("request");
    let payment = payer.pay_v2(&challenge_of(&unpaid), &Terms::default());
    let paid = client
        .get(format!("{base}/weather?city=Oslo"))
        .header("PAYMENT-SIGNATURE", &payment)
        .send()
        .await
        .expect("request");
    assert_eq!(paid.status(), 200);
    let receipt: SettleResponse =
        decode_b64(paid.headers()["payment-response"].to_str().expect("ascii"));
    assert!(receipt.success);
    let after = balances(&chain, PAYER).await;
    assert_eq!(
        before.0 - after.0,
        U256::from(1000),
        "payer paid exactly 0.001 USDC"
    );
    assert_eq!(
        after.1 - before.1,
        U256::from(1000),
        "payee got exactly 0.001 USDC"
    );
    let hash = receipt.transaction.parse().expect("tx hash");
    let mined = alloy::providers::Provider::get_transaction_receipt(chain.provider(), hash)
        .await
        .expect("rpc");
    assert!(
        mined.expect("mined").status(),
        "the receipt's transaction succeeded on chain"
    );
    // The same payment again is refused, and nothing moves.
    let again = client
        .get(format!("{base}/weather?city=Oslo"))
        .header("PAYMENT-SIGNATURE", &payment)
        .send()
        .await
        .expect("request");
    assert_eq!(again.status(), 409);
    assert_eq!(balances(&chain, PAYER).await, after);
}

/// A facilitator request for `payment` (a v2 header value) against the challenge's offer.
fn request_for(payment: &str, offer: &Value) -> FacilitatorRequest {
    let payload: Value = decode_b64(payment);
    FacilitatorRequest {
        x402_version: 2,
        payment_payload: serde_json::value::to_raw_value(&payload).expect("raw"),
        payment_requirements: Requirements::V2(
            serde_json::from_value(offer.clone()).expect("offer"),
        ),
    }
}

fn offer() -> Value {
    json!({"scheme": "exact", "network": NETWORK, "amount": "1000", "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
           "payTo": MERCHANT.to_checksum(None), "maxTimeoutSeconds": 60, "extra": {"name": "USDC", "version": "2"}})
}

fn challenge() -> x402_runtime::proto::PaymentRequired {
    serde_json::from_value(json!({"x402Version": 2, "resource": {"url": "http://127.0.0.1/weather"}, "accepts": [offer()]}))
        .expect("challenge")
}

async fn verify_reason(facilitator: &LocalFacilitator, payment: &str) -> Option<String> {
    let answer = facilitator
        .verify(&request_for(payment, &offer()))
        .await
        .expect("answer");
    if answer.is_valid {
        None
    } else {
        answer.invalid_reason
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_verification_needs_no_rpc() {
    let facilitator = local_facilitator(None);
    let payer = Payer::new(PAYER_KEY);
    let now = unix_now();
    let valid = payer.pay_v2(&challenge(), &Terms::default());
    assert_eq!(verify_reason(&facilitator, &valid).await, None);
    let cases = [
        (
            payer.pay_v2(
                &challenge(),
                &Terms {
                    valid_before: now - 1,
                    ..Terms::default()
                },
            ),
            "invalid_exact_evm_payload_authorization_valid_before",
        ),
        (
            payer.pay_v2(
                &challenge(),
                &Terms {
                    valid_after: now + 100,
                    ..Terms::default()
                },
            ),
            "invalid_exact_evm_payload_authorization_valid_after",
        ),
        (
            payer.pay_v2(
                &challenge(),
                &Terms {
                    chain_id: 8453,
                    ..Terms::default()
                },
            ),
            "invalid_exact_evm_signature",
        ),
        (
            payer.pay_v2(
                &challenge(),
                &Terms {
                    token: Some(MERCHANT),
                    ..Terms::default()
                },
            ),
            "invalid_exact_evm_signature",
        ),
        (
            payer.pay_v2(
                &challenge(),
                &Terms {
                    value: Some(U256::from(2000)),
                    ..Terms::default()
                },
            ),
            "invalid_exact_evm_payload_authorization_value_mismatch",
        ),
        (
            payer.pay_v2(
                &challenge(),
                &Terms {
                    to: Some(PAYER),
                    ..Terms::default()
                },
            ),
            "invalid_exact_evm_recipient_mismatch",
        ),
        (support::high_s(&valid), "invalid_exact_evm_signature"),
        (
            edit_payment(&valid, |v| v["accepted"]["network"] = json!("eip155:8453")),
            "invalid_exact_evm_network_mismatch",
        ),
    ];
    for (payment, reason) in &cases {
        assert_eq!(
            verify_reason(&facilitator, payment).await.as_deref(),
            Some(*reason)
        );
    }
    // Settling needs the chain: without an RPC it is a fault, not a refusal or a success.
    assert!(
        facilitator
            .settle(&request_for(&valid, &offer()))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_level_refusals() {
    let Some(chain) = start_chain("chain_level_refusals").await else {
        return;
    };
    let facilitator = local_facilitator(Some(chain.rpc_url()));
    let payer = Payer::new(PAYER_KEY);

    // An authorization already used on chain.
    let used = payer.pay_v2(&challenge(), &Terms::default());
    let first = facilitator
        .settle(&request_for(&used, &offer()))
        .await
        .expect("settle");
    assert!(first.success, "{first:?}");
    assert_eq!(
        verify_reason(&facilitator, &used).await.as_deref(),
        Some("invalid_exact_evm_nonce_already_used")
    );
    let second = facilitator
        .settle(&request_for(&used, &offer()))
        .await
        .expect("settle");
    assert_eq!(
        second.error_reason.as_deref(),
        Some("invalid_exact_evm_nonce_already_used")
    );

    // A payer without funds.
    let broke = Payer::new("0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356");
    let payment = broke.pay_v2(&challenge(), &Terms::default());
    assert_eq!(
        verify_reason(&facilitator, &payment).await.as_deref(),
        Some("invalid_exact_evm_insufficient_balance")
    );
    let refused = facilitator
        .settle(&request_for(&payment, &offer()))
        .await
        .expect("settle");
    assert!(!refused.success);
    assert_eq!(
        refused.error_reason.as_deref(),
        Some("invalid_exact_evm_insufficient_balance")
    );

    // An asset without code.
    let mut no_code = offer();
    no_code["asset"] = json!(MERCHANT.to_checksum(None));
    let payment = payer.pay_v2(
        &challenge(),
        &Terms {
            token: Some(MERCHANT),
            ..Terms::default()
        },
    );
    let answer = facilitator
        .verify(&request_for(&payment, &no_code))
        .await
        .expect("answer");
    assert_eq!(
        answer.invalid_reason.as_deref(),
        Some("asset_not_deployed_contract")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_rpc_is_a_502_and_moves_nothing() {
    let Some(chain) = start_chain("an_unreachable_rpc_is_a_502_and_moves_nothing").await else {
        return;
    };
    // The facilitator points at a port nothing listens on.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("addr"))
    };
    let base = api(&dead).await;
    let client = http();
    let before = balances(&chain, PAYER).await;
    let unpaid = client
        .get(format!("{base}/weather?city=Rome"))
        .send()
        .await
        .expect("request");
    let payment = Payer::new(PAYER_KEY).pay_v2(&challenge_of(&unpaid), &Terms::default());
    let paid = client
        .get(format!("{base}/weather?city=Rome"))
        .header("PAYMENT-SIGNATURE", &payment)
        .send()
        .await
        .expect("request");
    assert_eq!(paid.status(), 502);
    assert!(paid.headers().get("payment-response").is_none());
    assert_eq!(balances(&chain, PAYER).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_settlements_are_in_flight_at_once() {
    let Some(chain) = start_chain("many_settlements_are_in_flight_at_once").await else {
        return;
    };
    let facilitator = std::sync::Arc::new(local_facilitator(Some(chain.rpc_url())));
    let payer = Payer::new(PAYER_KEY);
    let before = balances(&chain, PAYER).await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let request = request_for(&payer.pay_v2(&challenge(), &Terms::default()), &offer());
            let facilitator = facilitator.clone();
            tokio::spawn(async move { facilitator.settle(&request).await })
        })
        .collect();
    let mut transactions = std::collections::HashSet::new();
    for task in tasks {
        let answer = task.await.expect("join").expect("settle");
        assert!(answer.success, "{answer:?}");
        transactions.insert(answer.transaction);
    }
    assert_eq!(transactions.len(), 10, "one transaction per payment");
    let after = balances(&chain, PAYER).await;
    assert_eq!(before.0 - after.0, U256::from(10_000));
    assert_eq!(after.1 - before.1, U256::from(10_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_receipt_is_pending_and_a_retry_resumes_it() {
    let Some(chain) = start_chain("a_late_receipt_is_pending_and_a_retry_resumes_it").await else {
        return;
    };
    let facilitator = LocalFacilitator::builder()
        .network(NETWORK)
        .rpc_url(NETWORK, chain.rpc_url())
        .signer_key(NETWORK, FACILITATOR_KEY)
        .receipt_timeout(Duration::from_secs(1))
        .build()
        .expect("facilitator");
    let provider = chain.provider();
    let set_automine = |on: bool| async move {
        alloy::providers::Provider::raw_request::<_, ()>(provider, "evm_setAutomine".into(), (on,))
            .await
            .expect("automine");
    };
    let before = balances(&chain, PAYER).await;
    let request = request_for(
        &Payer::new(PAYER_KEY).pay_v2(&challenge(), &Terms::default()),
        &offer(),
    );
    set_automine(false).await;
    let pending = facilitator.settle(&request).await.expect("settle");
    assert!(!pending.success);
    assert_eq!(pending.error_reason.as_deref(), Some("settlement_pending"));
    assert_eq!(
        pending.transaction.len(),
        66,
        "pending names its transaction: {pending:?}"
    );
    // The retry does not send a second transaction: it waits for the first one.
    set_automine(true).await;
    alloy::providers::Provider::raw_request::<_, Value>(provider, "evm_mine".into(), ())
        .await
        .expect("mine");
    let settled = facilitator.settle(&request).await.expect("settle");
    assert!(settled.success, "{settled:?}");
    assert_eq!(settled.transaction, pending.transaction);
    let after = balances(&chain, PAYER).await;
    assert_eq!(before.0 - after.0, U256::from(1000), "charged once");
}
