//! Metrics: the weather example with its `/metrics` endpoint (the Prometheus recorder of
//! `metrics-exporter-prometheus`), a scripted run against the facilitator double, then one
//! scrape whose counts must be exactly what the run did. One test in this binary: the
//! recorder is global to the process.

mod support;

use alloy_primitives::U256;
use support::{
    Facilitator, PAYER_KEY, Payer, SettleMode, Terms, VerifyMode, challenge_of, http, paywall,
    serve,
};

/// The value of the sample `name{labels}` in a Prometheus text exposition (labels in any order).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            let wanted = labels
                .iter()
                .all(|(key, value)| rest.contains(&format!("{key}=\"{value}\"")));
            let count = rest
                .trim_end_matches('}')
                .split(',')
                .filter(|l| !l.is_empty());
            (metric == name && wanted && count.count() == labels.len())
                .then(|| value.parse().ok())
                .flatten()
        })
}

async fn pay(base: &str, payer: &Payer, terms: &Terms) -> reqwest::Response {
    let url = format!("{base}/weather?city=Paris");
    let challenge = challenge_of(&http().get(&url).send().await.expect("probe"));
    http()
        .get(&url)
        .header("PAYMENT-SIGNATURE", payer.pay_v2(&challenge, terms))
        .send()
        .await
        .expect("paid request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_run_is_counted_exactly() {
    let handle = example_weather::metrics::install().expect("the only recorder of this process");
    let facilitator = Facilitator::start().await;
    let app =
        example_weather::app(paywall(&facilitator)).merge(example_weather::metrics::router(handle));
    let base = serve(app).await;
    let payer = Payer::new(PAYER_KEY);

    // Paid once (its probe is the first 402), then the same payment again: 409 from the record.
    let terms = Terms::default();
    let paid = pay(&base, &payer, &terms).await;
    assert_eq!(paid.status(), 200);
    let url = format!("{base}/weather?city=Paris");
    let challenge = challenge_of(&http().get(&url).send().await.expect("probe"));
    let again = http()
        .get(&url)
        .header("PAYMENT-SIGNATURE", payer.pay_v2(&challenge, &terms))
        .send()
        .await
        .expect("resend");
    assert_eq!(again.status(), 409);
    // A wrong amount, refused locally.
    let short = Terms {
        value: Some(U256::from(1u64)),
        ..Terms::default()
    };
    assert_eq!(pay(&base, &payer, &short).await.status(), 402);
    // Refused by /verify, then a settlement the facilitator refuses.
    facilitator.set_verify(VerifyMode::Invalid("insufficient_funds"));
    assert_eq!(pay(&base, &payer, &Terms::default()).await.status(), 402);
    facilitator.set_verify(VerifyMode::Valid);
    facilitator.set_settle(SettleMode::Fail("invalid_transaction_state"));
    assert_eq!(pay(&base, &payer, &Terms::default()).await.status(), 402);

    let text = http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    let route = ("route", "weather");
    let expect = |name: &str, labels: &[(&str, &str)], value: f64| {
        assert_eq!(
            sample(&text, name, labels),
            Some(value),
            "{name} {labels:?}\n{text}"
        );
    };
    expect("x402_challenges_total", &[route], 5.0);
    expect("x402_payments_admitted_total", &[route], 2.0);
    let refused = "x402_payments_refused_total";
    expect(refused, &[route, ("code", "payment_already_settled")], 1.0);
    let mismatch = "invalid_exact_evm_payload_authorization_value_mismatch";
    expect(refused, &[route, ("code", mismatch)], 1.0);
    expect(refused, &[route, ("code", "insufficient_funds")], 1.0);
    let settlements = "x402_settlements_total";
    expect(settlements, &[route, ("outcome", "settled")], 1.0);
    expect(settlements, &[route, ("outcome", "refused")], 1.0);
    expect("x402_settlements_in_flight", &[], 0.0);
    let latency = "x402_facilitator_request_duration_seconds_count";
    expect(latency, &[("endpoint", "verify"), ("result", "ok")], 3.0);
    expect(latency, &[("endpoint", "settle"), ("result", "ok")], 2.0);
    expect(latency, &[("endpoint", "supported"), ("result", "ok")], 1.0);
    let store = "x402_store_operation_duration_seconds_count";
    expect(store, &[("operation", "reserve")], 4.0);
    assert!(
        text.contains("x402_facilitator_request_duration_seconds_bucket{"),
        "latencies are histograms with buckets:\n{text}"
    );
    assert_eq!(facilitator.count("settle"), 2);
}
