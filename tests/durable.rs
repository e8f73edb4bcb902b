//! The durable settlement record (`FileStore`): a server process killed while a settlement is
//! in flight, or after it, answers a resend of the same payment from the record after a
//! restart: never a second settlement, never a fresh challenge.

mod support;

use std::time::Duration;

use support::{Facilitator, Payer, SettleMode, Terms, challenge_of, http, paid_server, runs};

/// A fresh record file for one test.
fn record_path(test: &str) -> String {
    let dir = std::env::temp_dir().join(format!("x402-durable-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("payments.redb").to_string_lossy().into_owned()
}

async fn signed_payment(base: &str) -> String {
    let unpaid = http()
        .get(format!("{base}/counted"))
        .send()
        .await
        .expect("request");
    assert_eq!(unpaid.status(), 402);
    Payer::new(support::PAYER_KEY).pay_v2(&challenge_of(&unpaid), &Terms::default())
}

async fn resend(base: &str, payment: &str) -> (u16, serde_json::Value) {
    let answer = http()
        .get(format!("{base}/counted"))
        .header("PAYMENT-SIGNATURE", payment)
        .send()
        .await
        .expect("request");
    let status = answer.status().as_u16();
    (
        status,
        answer.json().await.unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_settling_a_resend_is_answered_pending_from_the_record() {
    let path = record_path("settling");
    let facilitator = Facilitator::start().await;
    facilitator.set_settle(SettleMode::Hang);
    let (mut server, base) = paid_server(&facilitator, &[("STORE_PATH", &path)]).await;
    let payment = signed_payment(&base).await;

    // The paid request reaches /settle, which "moves the money" and does not answer.
    let in_flight = tokio::spawn({
        let (base, payment) = (base.clone(), payment.clone());
        async move {
            http()
                .get(format!("{base}/counted"))
                .header("PAYMENT-SIGNATURE", payment)
                .send()
                .await
        }
    });
    for _ in 0..200 {
        if facilitator.count("settle") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        facilitator.count("settle"),
        1,
        "the settlement is in flight"
    );

    // The process dies before it has an answer to give.
    server.0.kill().await.expect("kill -9");
    assert!(
        in_flight.await.expect("join").is_err(),
        "the client got no answer"
    );

    // The record says `settling`, with the request: after the restart the outcome is unknown,
    // and the resend reconciles with one `/settle` of that same request.
    facilitator.set_settle(SettleMode::Success);
    let (_server, base) = paid_server(
        &facilitator,
        &[("STORE_PATH", &path), ("RECONCILE_MS", "off")],
    )
    .await;
    let tx = support::tx_for(&nonce_of(&payment));
    for attempt in ["reconciling resend", "resend after the outcome"] {
        let (status, body) = resend(&base, &payment).await;
        assert_eq!(status, 409, "{attempt}: {body}");
        assert_eq!(
            body["error"], "payment_already_settled",
            "{attempt}: {body}"
        );
        assert_eq!(body["transaction"], tx.as_str(), "{attempt}");
    }
    assert_eq!(runs(&base).await, 0, "the restarted process served nothing");
    assert_eq!(facilitator.count("settle"), 2, "one reconciling /settle");
    let calls = facilitator.calls();
    assert!(
        calls.iter().all(|c| c.nonce == nonce_of(&payment)),
        "the same payment"
    );
}

/// The EIP-3009 nonce of a signed payment header.
fn nonce_of(payment: &str) -> String {
    let payload: serde_json::Value = support::decode_b64(payment);
    payload["payload"]["authorization"]["nonce"]
        .as_str()
        .expect("nonce")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_an_unknown_outcome_the_server_reconciles_it_by_itself() {
    let path = record_path("unknown");
    let facilitator = Facilitator::start().await;
    facilitator.set_settle(SettleMode::Pending);
    let env = [("STORE_PATH", path.as_str()), ("RECONCILE_MS", "off")];
    let (mut server, base) = paid_server(&facilitator, &env).await;
    let payment = signed_payment(&base).await;
    let (status, body) = resend(&base, &payment).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "settlement_pending", "{body}");
    server.0.kill().await.expect("kill -9");

    // The buyer never comes back: the restarted server reconciles from the durable record.
    facilitator.set_settle(SettleMode::Success);
    let (_server, base) = paid_server(
        &facilitator,
        &[("STORE_PATH", &path), ("RECONCILE_MS", "100")],
    )
    .await;
    for _ in 0..100 {
        if facilitator.count("settle") >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        facilitator.count("settle"),
        2,
        "one background reconciliation"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        facilitator.count("settle"),
        2,
        "reconciled once, then definite"
    );
    let (status, body) = resend(&base, &payment).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "payment_already_settled", "{body}");
    assert_eq!(
        body["transaction"],
        support::tx_for(&nonce_of(&payment)).as_str()
    );
    assert_eq!(facilitator.count("settle"), 2, "answered from the record");
    assert_eq!(runs(&base).await, 0, "the handler did not run again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_settling_a_resend_is_refused_with_the_recorded_transaction() {
    let path = record_path("settled");
    let facilitator = Facilitator::start().await;
    let (mut server, base) = paid_server(&facilitator, &[("STORE_PATH", &path)]).await;
    let payment = signed_payment(&base).await;
    let paid = http()
        .get(format!("{base}/counted"))
        .header("PAYMENT-SIGNATURE", &payment)
        .send()
        .await
        .expect("request");
    assert_eq!(paid.status(), 200);
    let receipt: x402_runtime::proto::SettleResponse =
        support::decode_b64(paid.headers()["payment-response"].to_str().expect("ascii"));
    server.0.kill().await.expect("kill -9");

    let (_server, base) = paid_server(&facilitator, &[("STORE_PATH", &path)]).await;
    let (status, body) = resend(&base, &payment).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "payment_already_settled", "{body}");
    assert_eq!(body["transaction"], receipt.transaction.as_str());
    assert_eq!(runs(&base).await, 0);
    assert_eq!(facilitator.count("settle"), 1, "no second settlement");

    // Without the record (a memory store), the same restart would have served and settled again.
    let (_fresh, fresh) = paid_server(&facilitator, &[]).await;
    let (status, _) = resend(&fresh, &payment).await;
    assert_eq!(
        status, 200,
        "a memory-only process has forgotten the payment"
    );
    assert_eq!(facilitator.count("settle"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_settlement_leaves_the_payment_usable_after_a_restart() {
    let path = record_path("refused");
    let facilitator = Facilitator::start().await;
    facilitator.set_settle(SettleMode::Fail("invalid_exact_evm_insufficient_balance"));
    let (mut server, base) = paid_server(&facilitator, &[("STORE_PATH", &path)]).await;
    let payment = signed_payment(&base).await;
    let (status, body) = resend(&base, &payment).await;
    assert_eq!(status, 402, "{body}");
    // The refused settlement's record is removed in the background; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.0.kill().await.expect("kill -9");

    facilitator.set_settle(SettleMode::Success);
    let (_server, base) = paid_server(&facilitator, &[("STORE_PATH", &path)]).await;
    let answer = http()
        .get(format!("{base}/counted"))
        .header("PAYMENT-SIGNATURE", &payment)
        .send()
        .await
        .expect("request");
    assert_eq!(
        answer.status(),
        200,
        "nothing moved, so the payment is still good"
    );
    assert_eq!(facilitator.count("settle"), 2);
}
