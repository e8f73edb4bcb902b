//! The durable settlement record: a server process killed while a settlement is in flight, or
//! after it, answers a resend of the same payment from the record after a restart: never a
//! second settlement, never a fresh challenge. Every test runs over both durable records: the
//! file (`FileStore`) and the PostgreSQL ledger (`PostgresStore`, at `X402_TEST_POSTGRES_URL`;
//! with `CI=true` a missing one fails).

mod support;

use std::time::Duration;

use support::{Facilitator, Payer, SettleMode, Terms, challenge_of, http, paid_server, runs};

/// Where a test's `paid-server` processes keep their record.
#[derive(Clone, Copy, Debug)]
enum Record {
    File,
    Postgres,
}

impl Record {
    /// The `paid-server` variable naming a fresh record for `test`, or `None` (outside CI) when
    /// there is no PostgreSQL.
    async fn env(self, test: &str) -> Option<(&'static str, String)> {
        match self {
            Record::File => {
                let dir = std::env::temp_dir()
                    .join(format!("x402-durable-{}-{test}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                let path = dir.join("payments.redb").to_string_lossy().into_owned();
                Some(("STORE_PATH", path))
            }
            Record::Postgres => x402_testbed::postgres_database(&format!("durable_{test}"))
                .await
                .map(|url| ("DATABASE_URL", url)),
        }
    }
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
    killed_while_settling(Record::File).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_settling_a_resend_is_answered_pending_from_the_ledger() {
    killed_while_settling(Record::Postgres).await;
}

async fn killed_while_settling(record: Record) {
    let Some((store, path)) = record.env("settling").await else {
        return;
    };
    let facilitator = Facilitator::start().await;
    facilitator.set_settle(SettleMode::Hang);
    let (mut server, base) = paid_server(&facilitator, &[(store, &path)]).await;
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
    // and the resend reconciles with one `/settle` of that same request. A shared store cannot
    // tell a stopped process from one still settling until the settle timeout (1 s here) and
    // its grace have passed: until then a resend is told the payment is in progress.
    facilitator.set_settle(SettleMode::Success);
    let (_server, base) = paid_server(
        &facilitator,
        &[
            (store, &path),
            ("RECONCILE_MS", "off"),
            ("SETTLE_TIMEOUT_MS", "1000"),
        ],
    )
    .await;
    let tx = support::tx_for(&nonce_of(&payment));
    for _ in 0..40 {
        let (status, body) = resend(&base, &payment).await;
        assert_eq!(status, 409, "{body} (never a fresh challenge)");
        if body["error"] == "payment_already_settled" {
            break;
        }
        assert_eq!(body["error"], "payment_in_progress", "{body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for attempt in ["reconciled resend", "resend after the outcome"] {
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
    if let Record::Postgres = record {
        // The ledger row written before /settle now has the reconciled outcome.
        let ledger = x402_runtime::PostgresStore::connect(&path)
            .await
            .expect("postgres")
            .ledger(&x402_runtime::LedgerQuery::default())
            .await
            .expect("ledger");
        assert_eq!(ledger.len(), 1, "{ledger:?}");
        assert_eq!(ledger[0].state, x402_runtime::LedgerState::Settled);
        assert_eq!(ledger[0].transaction.as_deref(), Some(tx.as_str()));
        assert_eq!(ledger[0].route.as_deref(), Some("/counted"));
    }
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
    killed_after_an_unknown_outcome(Record::File).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_an_unknown_outcome_the_server_reconciles_it_from_the_ledger() {
    killed_after_an_unknown_outcome(Record::Postgres).await;
}

async fn killed_after_an_unknown_outcome(record: Record) {
    let Some((store, path)) = record.env("unknown").await else {
        return;
    };
    let facilitator = Facilitator::start().await;
    facilitator.set_settle(SettleMode::Pending);
    let env = [(store, path.as_str()), ("RECONCILE_MS", "off")];
    let (mut server, base) = paid_server(&facilitator, &env).await;
    let payment = signed_payment(&base).await;
    let (status, body) = resend(&base, &payment).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "settlement_pending", "{body}");
    server.0.kill().await.expect("kill -9");

    // The buyer never comes back: the restarted server reconciles from the durable record.
    facilitator.set_settle(SettleMode::Success);
    let (_server, base) =
        paid_server(&facilitator, &[(store, &path), ("RECONCILE_MS", "100")]).await;
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
    killed_after_settling(Record::File).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_settling_a_resend_is_refused_with_the_ledger_s_transaction() {
    killed_after_settling(Record::Postgres).await;
}

async fn killed_after_settling(record: Record) {
    let Some((store, path)) = record.env("settled").await else {
        return;
    };
    let facilitator = Facilitator::start().await;
    let (mut server, base) = paid_server(&facilitator, &[(store, &path)]).await;
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

    let (_server, base) = paid_server(&facilitator, &[(store, &path)]).await;
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
    a_refused_settlement_leaves_the_payment_usable(Record::File).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_settlement_leaves_the_payment_usable_after_a_restart_postgres() {
    a_refused_settlement_leaves_the_payment_usable(Record::Postgres).await;
}

async fn a_refused_settlement_leaves_the_payment_usable(record: Record) {
    let Some((store, path)) = record.env("refused").await else {
        return;
    };
    let facilitator = Facilitator::start().await;
    facilitator.set_settle(SettleMode::Fail("invalid_exact_evm_insufficient_balance"));
    let (mut server, base) = paid_server(&facilitator, &[(store, &path)]).await;
    let payment = signed_payment(&base).await;
    let (status, body) = resend(&base, &payment).await;
    assert_eq!(status, 402, "{body}");
    // The refused settlement's record is removed in the background; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.0.kill().await.expect("kill -9");

    facilitator.set_settle(SettleMode::Success);
    let (_server, base) = paid_server(&facilitator, &[(store, &path)]).await;
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
