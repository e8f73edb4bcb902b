//! Exactly once across processes: two server processes sharing a replay store take 64
//! concurrent copies of one payment, split between them, and run the handler once and settle
//! once. Every test runs over both shared stores: Redis (`RedisStore`, a redis-server on
//! 127.0.0.1 named by `X402_TEST_REDIS_URL`) and PostgreSQL (`PostgresStore`, named by
//! `X402_TEST_POSTGRES_URL`); the test command starts both, and with `CI=true` a missing one
//! fails.

mod support;

use std::time::Duration;

use support::{Child, Facilitator, Payer, TcpRelay, Terms, challenge_of, http, paid_server, runs};
use x402_runtime::{LedgerQuery, LedgerState, PostgresStore};

/// A store shared by the processes of a test.
#[derive(Clone, Copy, Debug)]
enum Shared {
    Redis,
    Postgres,
}

impl Shared {
    /// The `paid-server` variable naming the store for `test`, or `None` (outside CI) when
    /// there is none.
    async fn env(self, test: &str) -> Option<(&'static str, String)> {
        match self {
            Shared::Redis => redis_url(test).map(|url| ("REDIS_URL", url)),
            Shared::Postgres => x402_testbed::postgres_database(test)
                .await
                .map(|url| ("DATABASE_URL", url)),
        }
    }
}

/// The Redis URL for these tests, or `None` (outside CI) when there is none.
fn redis_url(test: &str) -> Option<String> {
    match std::env::var("X402_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: X402_TEST_REDIS_URL is not set; run the tests with scripts/test.sh")
        }
        _ => {
            eprintln!(
                "skipping {test}: X402_TEST_REDIS_URL is not set (scripts/test.sh starts a redis-server)"
            );
            None
        }
    }
}

/// Resends `payment` to each process: every one answers `409 payment_already_settled` from the
/// shared record; returns the bodies.
async fn settled_everywhere(bases: &[&String], payment: &str) -> Vec<serde_json::Value> {
    let mut bodies = Vec::new();
    for base in bases {
        let late = http()
            .get(format!("{base}/counted"))
            .header("PAYMENT-SIGNATURE", payment)
            .send()
            .await
            .expect("request");
        assert_eq!(late.status(), 409);
        let body: serde_json::Value = late.json().await.expect("json");
        assert_eq!(body["error"], "payment_already_settled", "{body}");
        bodies.push(body);
    }
    bodies
}

/// Sends `count` copies of `payment` at once, alternately to `a` and `b`; returns each status
/// with its JSON body (`{}` for a 200).
async fn copies_split(
    a: &str,
    b: &str,
    payment: &str,
    count: usize,
) -> Vec<(u16, serde_json::Value)> {
    let client = http();
    let copies = (0..count).map(|i| {
        let base = if i % 2 == 0 { a } else { b };
        let request = client
            .get(format!("{base}/counted"))
            .header("PAYMENT-SIGNATURE", payment);
        async move {
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            let body: serde_json::Value = if status == 200 {
                serde_json::json!({})
            } else {
                response.json().await.expect("json error body")
            };
            (status, body)
        }
    });
    futures_util::future::join_all(copies).await
}

/// Two `paid-server` processes sharing the Redis store, the facilitator double they use, and one
/// signed payment for `GET /counted`.
struct Pair {
    facilitator: Facilitator,
    a: String,
    b: String,
    payment: String,
    _processes: (Child, Child),
}

impl Pair {
    async fn start((name, url): &(&'static str, String)) -> Pair {
        let facilitator = Facilitator::start().await;
        // Without the background reconciliation, every `/settle` counted is one a request caused.
        let env = [(*name, url.as_str()), ("RECONCILE_MS", "off")];
        let (first, a) = paid_server(&facilitator, &env).await;
        let (second, b) = paid_server(&facilitator, &env).await;
        let unpaid = http()
            .get(format!("{a}/counted"))
            .send()
            .await
            .expect("request");
        assert_eq!(unpaid.status(), 402);
        let payment =
            Payer::new(support::PAYER_KEY).pay_v2(&challenge_of(&unpaid), &Terms::default());
        Pair {
            facilitator,
            a,
            b,
            payment,
            _processes: (first, second),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_copies_across_two_processes_run_and_settle_once_redis() {
    sixty_four_copies_run_and_settle_once(Shared::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_copies_across_two_processes_run_and_settle_once_postgres() {
    let Some(url) = sixty_four_copies_run_and_settle_once(Shared::Postgres).await else {
        return;
    };
    // The ledger has the one settlement, with its terms.
    let store = PostgresStore::connect(&url).await.expect("postgres");
    let ledger = store.ledger(&LedgerQuery::default()).await.expect("ledger");
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0].state, LedgerState::Settled);
    assert_eq!(ledger[0].route.as_deref(), Some("/counted"));
    assert_eq!(ledger[0].amount.as_deref(), Some("1000"));
    assert_eq!(ledger[0].transaction.as_ref().map(String::len), Some(66));
}

/// Returns the store's URL, or `None` when the test was skipped.
async fn sixty_four_copies_run_and_settle_once(shared: Shared) -> Option<String> {
    let store = shared.env(&format!("sixty_four_copies_{shared:?}")).await?;
    let Pair {
        facilitator,
        a,
        b,
        payment,
        _processes,
    } = Pair::start(&store).await;

    let answers = copies_split(&a, &b, &payment, 64).await;
    let served = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(served, 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 200) {
        assert_eq!(*status, 409, "{body}");
        assert!(
            ["payment_in_progress", "payment_already_settled"]
                .contains(&body["error"].as_str().unwrap_or_default()),
            "{body}"
        );
    }
    assert_eq!(runs(&a).await + runs(&b).await, 1, "one handler run in all");
    assert_eq!(facilitator.count("verify"), 1);
    assert_eq!(facilitator.count("settle"), 1);

    // A late copy to either process is refused with the transaction, from the shared record.
    for body in settled_everywhere(&[&a, &b], &payment).await {
        assert_eq!(
            body["transaction"].as_str().map(str::len),
            Some(66),
            "{body}"
        );
    }
    assert_eq!(facilitator.count("settle"), 1);
    Some(store.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_payment_is_released_for_every_process_redis() {
    a_refused_payment_is_released_for_every_process(Shared::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_payment_is_released_for_every_process_postgres() {
    a_refused_payment_is_released_for_every_process(Shared::Postgres).await;
}

async fn a_refused_payment_is_released_for_every_process(shared: Shared) {
    let Some(store) = shared.env(&format!("refused_released_{shared:?}")).await else {
        return;
    };
    let Pair {
        facilitator,
        a,
        b,
        payment,
        _processes,
    } = Pair::start(&store).await;
    let client = http();

    // Verification refused on A: the key is released in Redis, so B can take the same payment.
    facilitator.set_verify(support::VerifyMode::Invalid(
        "invalid_exact_evm_insufficient_balance",
    ));
    let refused = client
        .get(format!("{a}/counted"))
        .header("PAYMENT-SIGNATURE", payment.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), 402);
    facilitator.set_verify(support::VerifyMode::Valid);
    let mut served = None;
    for _ in 0..50 {
        let answer = client
            .get(format!("{b}/counted"))
            .header("PAYMENT-SIGNATURE", payment.clone())
            .send()
            .await
            .expect("request");
        if answer.status() == 200 {
            served = Some(answer);
            break;
        }
        // The release runs in the background: a moment of `payment_in_progress` is expected.
        assert_eq!(answer.status(), 409);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        served.is_some(),
        "the released payment was accepted by the other process"
    );
    assert_eq!(runs(&a).await + runs(&b).await, 1);
    assert_eq!(facilitator.count("settle"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_resends_of_an_unknown_payment_reconcile_once_across_processes_redis() {
    concurrent_resends_reconcile_once(Shared::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_resends_of_an_unknown_payment_reconcile_once_across_processes_postgres() {
    concurrent_resends_reconcile_once(Shared::Postgres).await;
}

async fn concurrent_resends_reconcile_once(shared: Shared) {
    let Some(store) = shared.env(&format!("resends_reconcile_{shared:?}")).await else {
        return;
    };
    let Pair {
        facilitator,
        a,
        b,
        payment,
        _processes,
    } = Pair::start(&store).await;
    let client = http();
    let payload: serde_json::Value = support::decode_b64(&payment);
    let tx = support::tx_for(
        payload["payload"]["authorization"]["nonce"]
            .as_str()
            .expect("nonce"),
    );

    // The first settlement's outcome is unknown.
    facilitator.set_settle(support::SettleMode::Pending);
    let first = client
        .get(format!("{a}/counted"))
        .header("PAYMENT-SIGNATURE", payment.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(first.status(), 503);
    assert_eq!(facilitator.count("settle"), 1);

    // 16 resends at once, split between the processes, while the facilitator takes its time.
    facilitator.set_settle(support::SettleMode::Slow(Duration::from_millis(400)));
    let answers = copies_split(&a, &b, &payment, 16).await;
    assert_eq!(
        facilitator.count("settle"),
        2,
        "one reconciling /settle in all: {answers:?}"
    );
    for (status, body) in &answers {
        match status {
            503 => assert_eq!(body["error"], "settlement_pending", "{body}"),
            409 => {
                assert_eq!(body["error"], "payment_already_settled", "{body}");
                assert_eq!(body["transaction"], tx.as_str(), "{body}");
            }
            other => panic!("{other}: {body} (never a 402 or a 200 while reconciling)"),
        }
    }
    assert!(
        answers.iter().any(|(status, _)| *status == 409),
        "the reconciling resend learns the outcome: {answers:?}"
    );
    // Afterwards either process answers from the shared record.
    for body in settled_everywhere(&[&a, &b], &payment).await {
        assert_eq!(body["transaction"], tx.as_str());
    }
    assert_eq!(facilitator.count("settle"), 2);
    assert_eq!(runs(&a).await + runs(&b).await, 1, "the handler ran once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_refuses_payments_before_verifying_them() {
    let Some(url) = x402_testbed::postgres_database("stopped_database").await else {
        return;
    };
    // The server reaches PostgreSQL through a relay the test can cut, as if it stopped.
    let address = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("host:port in the URL")
        .to_owned();
    let relay = TcpRelay::start(&address).await;
    let relayed = url.replacen(&address, &format!("127.0.0.1:{}", relay.port), 1);
    let facilitator = Facilitator::start().await;
    let (_server, base) = paid_server(
        &facilitator,
        &[("DATABASE_URL", relayed.as_str()), ("RECONCILE_MS", "off")],
    )
    .await;
    let unpaid = http()
        .get(format!("{base}/counted"))
        .send()
        .await
        .expect("request");
    assert_eq!(unpaid.status(), 402);
    let payment = Payer::new(support::PAYER_KEY).pay_v2(&challenge_of(&unpaid), &Terms::default());

    relay.cut();
    for attempt in ["first", "again"] {
        let answer = http()
            .get(format!("{base}/counted"))
            .header("PAYMENT-SIGNATURE", &payment)
            .send()
            .await
            .expect("request");
        assert_eq!(answer.status(), 503, "{attempt}");
        let body: serde_json::Value = answer.json().await.expect("json");
        assert_eq!(
            body["error"], "replay_store_unavailable",
            "{attempt}: {body}"
        );
    }
    assert_eq!(facilitator.count("verify"), 0, "nothing verified");
    assert_eq!(facilitator.count("settle"), 0);
    assert_eq!(runs(&base).await, 0, "nothing served");
}
