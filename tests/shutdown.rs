//! Graceful shutdown with a slow facilitator: `X402::shutdown` refuses new payments (503
//! `server_shutting_down`, nothing verified), waits for the settlement under way, and records
//! one that does not finish within the grace period as an unknown outcome.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use x402_runtime::facilitator::HttpFacilitator;
use x402_runtime::{MemoryStore, ReplayStore, Slot, X402, X402Config, paid};

use support::{
    Facilitator, PAY_TO, PAYER_KEY, PAYER2_KEY, Payer, SettleMode, Terms, challenge_of, http, serve,
};

/// A paid route.
#[paid(price = "0.001", currency = "USDC")]
async fn paper() -> &'static str {
    "the report"
}

/// The paywall through `facilitator` with `/settle` bounded by `settle_timeout`, over `store`.
fn paywall(facilitator: &Facilitator, store: Arc<MemoryStore>, settle_timeout: Duration) -> X402 {
    let config = X402Config::builder()
        .pay_to(PAY_TO)
        .network("eip155:84532")
        .facilitator_url(facilitator.url())
        .settle_timeout(settle_timeout)
        .build()
        .expect("config");
    let client =
        HttpFacilitator::with_timeouts(&facilitator.url(), Duration::from_secs(5), settle_timeout)
            .expect("client");
    X402::builder(config)
        .facilitator(client)
        .store(store)
        .reconcile_interval(None)
        .build()
        .expect("paywall")
}

async fn start(
    facilitator: &Facilitator,
    store: Arc<MemoryStore>,
    settle: Duration,
) -> (X402, String) {
    let x402 = paywall(facilitator, store, settle);
    let app = Router::new()
        .route("/paper", get(paper))
        .layer(x402.layer());
    let base = serve(app).await;
    (x402, format!("{base}/paper"))
}

/// A signed payment for `url`, from its live 402.
async fn payment(url: &str, payer: &Payer, terms: &Terms) -> String {
    let challenge = challenge_of(&http().get(url).send().await.expect("probe"));
    payer.pay_v2(&challenge, terms)
}

/// Waits (bounded) until the double has received `count` calls to `/settle`.
async fn settle_called(facilitator: &Facilitator, count: usize) {
    for _ in 0..200 {
        if facilitator.count("settle") >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("/settle was not called");
}

/// Sends `header` to `url` in a task.
fn send(url: &str, header: String) -> tokio::task::JoinHandle<reqwest::Response> {
    let url = url.to_owned();
    tokio::spawn(async move {
        let request = http().get(&url).header("PAYMENT-SIGNATURE", header);
        request.send().await.expect("paid request")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_the_settlement_under_way_and_admits_no_new_payment() {
    let facilitator = Facilitator::start().await;
    facilitator.set_settle(SettleMode::Slow(Duration::from_millis(1500)));
    let store = Arc::new(MemoryStore::new());
    let (x402, url) = start(&facilitator, store, Duration::from_secs(10)).await;
    let first = send(
        &url,
        payment(&url, &Payer::new(PAYER_KEY), &Terms::default()).await,
    );
    settle_called(&facilitator, 1).await;
    let later = payment(&url, &Payer::new(PAYER2_KEY), &Terms::default()).await;

    let draining = tokio::spawn({
        let x402 = x402.clone();
        async move { x402.shutdown(Duration::from_secs(10)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = http()
        .get(&url)
        .header("PAYMENT-SIGNATURE", later)
        .send()
        .await
        .expect("request while draining");
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(body["error"], "server_shutting_down", "{body}");
    assert_eq!(
        facilitator.count("verify"),
        1,
        "nothing of the refused payment was verified"
    );
    let probe = http().get(&url).send().await.expect("probe while draining");
    assert_eq!(
        probe.status(),
        402,
        "requests without a payment still learn the price"
    );

    let report = draining.await.expect("shutdown task");
    assert!(report.drained, "{report:?}");
    assert_eq!(report.unfinished, 0);
    assert!(report.recorded_unknown.is_empty());
    let served = first.await.expect("first request");
    assert_eq!(
        served.status(),
        200,
        "the payment under way was served and settled"
    );
    assert!(served.headers().contains_key("payment-response"));
    assert_eq!(facilitator.count("settle"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_unfinished_at_the_deadline_is_recorded_as_unknown() {
    let facilitator = Facilitator::start().await;
    facilitator.set_settle(SettleMode::Hang);
    let store = Arc::new(MemoryStore::new());
    let (x402, url) = start(&facilitator, store.clone(), Duration::from_secs(4)).await;
    let payer = Payer::new(PAYER_KEY);
    let terms = Terms::default();
    let header = payment(&url, &payer, &terms).await;
    let under_way = send(&url, header.clone());
    settle_called(&facilitator, 1).await;

    let report = x402.shutdown(Duration::from_millis(500)).await;
    assert!(!report.drained);
    assert_eq!(report.unfinished, 1);
    let [key] = report.recorded_unknown.as_slice() else {
        panic!("one settlement recorded unknown: {report:?}");
    };
    assert_eq!(key.from, payer.address());
    assert_eq!(key.nonce, terms.nonce);
    match store.lookup(key).await {
        Some(Slot::Pending { request, .. }) => {
            let request = request.expect("the /settle request is kept for reconciliation");
            assert!(
                request.contains(&format!("{:#x}", terms.nonce)),
                "{request}"
            );
        }
        other => panic!("expected an unknown outcome, found {other:?}"),
    }
    // The request itself ends with its own settle timeout: an unknown outcome, never a 402.
    let answer = under_way.await.expect("request");
    assert_eq!(answer.status(), 503);
    let body: serde_json::Value = answer.json().await.expect("json");
    assert_eq!(body["error"], "settlement_pending", "{body}");
    assert_eq!(
        facilitator.count("settle"),
        1,
        "one /settle, never a second"
    );
}
