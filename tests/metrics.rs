//! Metrics and tracing: the weather example with its `/metrics` endpoint (the Prometheus
//! recorder of `metrics-exporter-prometheus`), a scripted run against the facilitator double,
//! then one scrape whose counts must be exactly what the run did, and the `x402_payment` spans
//! the run left. One test in this binary: the recorder and the subscriber are global to the
//! process.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

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

/// The fields of every closed `x402_payment` span, as text.
#[derive(Clone, Default)]
struct Spans {
    open: Arc<Mutex<HashMap<u64, HashMap<String, String>>>>,
    closed: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Layer<Registry> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, Registry>) {
        if attrs.metadata().name() == "x402_payment" {
            let mut fields = HashMap::new();
            attrs.record(&mut Fields(&mut fields));
            self.open
                .lock()
                .expect("lock")
                .insert(id.into_u64(), fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, Registry>) {
        if let Some(fields) = self.open.lock().expect("lock").get_mut(&id.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }

    fn on_close(&self, id: Id, _: Context<'_, Registry>) {
        if let Some(fields) = self.open.lock().expect("lock").remove(&id.into_u64()) {
            self.closed.lock().expect("lock").push(fields);
        }
    }
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
async fn a_scripted_run_is_counted_exactly_and_traced() {
    let handle = example_weather::metrics::install().expect("the only recorder of this process");
    let spans = Spans::default();
    tracing::subscriber::set_global_default(Registry::default().with(spans.clone()))
        .expect("the only subscriber of this process");
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
    traced(&spans, &payer, &terms).await;
}

/// One span per request that carried a payment; the settled one names route, payer, amount,
/// network and transaction, and no span carries the signature.
async fn traced(spans: &Spans, payer: &Payer, terms: &Terms) {
    // Spans close when the request's future is dropped, just after the response is sent.
    for _ in 0..100 {
        if spans.closed.lock().expect("lock").len() >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let closed = spans.closed.lock().expect("lock").clone();
    assert_eq!(closed.len(), 5, "{closed:?}");
    let transaction = support::tx_for(&terms.nonce.to_string());
    let settled = closed
        .iter()
        .find(|f| f.get("transaction") == Some(&transaction))
        .unwrap_or_else(|| panic!("the settled payment's span: {closed:?}"));
    assert_eq!(settled["route"], "weather");
    assert_eq!(settled["payer"], payer.address().to_string());
    assert_eq!(settled["amount"], "1000");
    assert_eq!(settled["network"], "eip155:84532");
    for fields in &closed {
        assert_eq!(fields["route"], "weather");
        let text = format!("{fields:?}");
        assert!(!text.contains("signature"), "{text}");
        assert!(
            fields
                .keys()
                .all(|k| ["route", "payer", "amount", "network", "transaction"]
                    .contains(&k.as_str())),
            "{text}"
        );
    }
}
