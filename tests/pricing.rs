//! Prices set per deployment: a price the configuration sets replaces the attribute's in the
//! 402, in the published document and in what a payment must carry; every mistake in it is a
//! startup error. Over real HTTP on 127.0.0.1 against the facilitator double, with payments
//! signed for real.

mod support;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use support::*;
use x402_runtime::facilitator::HttpFacilitator;
use x402_runtime::{Currency, PaidRoute, Price, X402, X402Config, X402ConfigBuilder, paid};

/// A report, 0.001 USDC unless the deployment says otherwise.
#[paid(price = "0.001", method = "GET", path = "/report")]
async fn report() -> &'static str {
    "report"
}

/// An archive, 0.002 USDC unless the deployment says otherwise.
#[paid(price = "0.002", method = "GET", path = "/archive")]
async fn archive() -> &'static str {
    "archive"
}

fn route(operation_id: &str) -> &'static PaidRoute {
    x402_runtime::routes()
        .into_iter()
        .find(|r| r.operation_id() == operation_id)
        .expect("registered")
}

fn config() -> X402ConfigBuilder {
    X402Config::builder().pay_to(PAY_TO)
}

fn paywall_with_prices(facilitator: &Facilitator, prices: &[(&str, &str)]) -> X402 {
    let config = prices
        .iter()
        .fold(config(), |b, (r, p)| b.price(*r, *p))
        .facilitator_url(facilitator.url())
        .build()
        .expect("config");
    let client = HttpFacilitator::with_timeouts(
        &facilitator.url(),
        Duration::from_secs(5),
        Duration::from_secs(5),
    )
    .expect("client");
    X402::builder(config)
        .facilitator(client)
        .reconcile_interval(None)
        .build()
        .expect("paywall")
}

async fn serve_paywall(x402: &X402) -> String {
    let app = Router::new()
        .route("/report", get(report))
        .route("/archive", get(archive))
        .layer(x402.layer());
    serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_set_by_the_configuration_is_offered_charged_and_published() {
    let facilitator = Facilitator::start().await;
    let x402 = paywall_with_prices(
        &facilitator,
        &[("GET /report", "0.003"), ("archive", "$0.0025")],
    );
    let base = serve_paywall(&x402).await;
    let client = http();
    let payer = Payer::new(PAYER_KEY);

    let unpaid = client
        .get(format!("{base}/report"))
        .send()
        .await
        .expect("request");
    assert_eq!(unpaid.status(), 402);
    let challenge = challenge_of(&unpaid);
    assert_eq!(challenge.accepts[0].amount, "3000");
    let archive_402 = client
        .get(format!("{base}/archive"))
        .send()
        .await
        .expect("request");
    assert_eq!(challenge_of(&archive_402).accepts[0].amount, "2500");

    // A payment for the compiled price is not a payment for this deployment's price.
    let mut stale = challenge.clone();
    stale.accepts[0].amount = "1000".to_owned();
    let underpaid = payer.pay_v2(&stale, &Terms::default());
    let refused = client
        .get(format!("{base}/report"))
        .header("PAYMENT-SIGNATURE", underpaid)
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), 402);
    assert_eq!(challenge_of(&refused).accepts[0].amount, "3000");
    assert_eq!(facilitator.count("settle"), 0, "nothing was charged");

    let payment = payer.pay_v2(&challenge, &Terms::default());
    let paid = client
        .get(format!("{base}/report"))
        .header("PAYMENT-SIGNATURE", payment)
        .send()
        .await
        .expect("request");
    assert_eq!(paid.status(), 200);
    let settled = facilitator.calls();
    assert_eq!(
        settled.last().expect("settle").requirements["amount"],
        "3000"
    );

    // The effective price is what the paywall and the document say; the record keeps the
    // compiled one.
    let effective = x402.pricing(route("report"));
    let price = effective.fixed().expect("fixed");
    assert_eq!((price.human.as_ref(), price.atomic), ("0.003", 3000));
    assert_eq!(route("report").price().expect("fixed").atomic, 1000);
    let info = x402_runtime::openapi::payment_info(&x402, route("report")).expect("offers");
    assert_eq!(info["price"]["amount"], "0.003");
    assert_eq!(info["protocols"][0]["x402"]["accepts"][0]["amount"], "3000");
}

fn build_error(prices: &[(&str, &str)]) -> String {
    let config = prices
        .iter()
        .fold(config(), |b, (r, p)| b.price(*r, *p))
        .facilitator_url("http://127.0.0.1:9")
        .build();
    let config = match config {
        Ok(config) => config,
        Err(e) => return e.to_string(),
    };
    match X402::new(config) {
        Ok(_) => panic!("{prices:?} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn mistakes_in_configured_prices_are_startup_errors_that_name_the_fix() {
    let unknown = build_error(&[("GET /nowhere", "0.002")]);
    assert!(unknown.contains("names no paid route"), "{unknown}");
    assert!(unknown.contains("report (GET /report)"), "{unknown}");
    let decimals = build_error(&[("report", "0.0000001")]);
    assert!(decimals.contains("USDC has 6 decimals"), "{decimals}");
    let grammar = build_error(&[("report", "1e-3")]);
    assert!(grammar.contains("plain decimal"), "{grammar}");
    let zero = build_error(&[("report", "0")]);
    assert!(zero.contains("greater than zero"), "{zero}");
    let twice = build_error(&[("report", "0.002"), ("GET /report", "0.003")]);
    assert!(twice.contains("set twice"), "{twice}");
    let nameless = build_error(&[("", "0.002")]);
    assert!(nameless.contains("names no route"), "{nameless}");
    // A `$` is US dollars: refused for a route priced in another currency.
    assert_eq!(
        Price::parse("$0.01", Currency::Eurc).expect_err("euro"),
        "`$` means US dollars (USDC) but currency is EURC; remove the `$`"
    );
}

#[test]
fn prices_are_read_from_the_environment() {
    let lookup = |value: &'static str| {
        move |name: &str| match name {
            "X402_PAY_TO" => Some(PAY_TO.to_owned()),
            "X402_PRICES" => Some(value.to_owned()),
            "X402_STORE_PATH" => Some("memory".to_owned()),
            _ => None,
        }
    };
    let config =
        X402Config::from_lookup(lookup(" report=0.004 , GET /archive=$0.005,")).expect("valid");
    assert_eq!(
        config.prices().collect::<Vec<_>>(),
        [("report", "0.004"), ("GET /archive", "$0.005")]
    );
    let x402 = X402::new(config).expect("paywall");
    assert_eq!(
        x402.pricing(route("report")).fixed().expect("fixed").atomic,
        4000
    );
    assert_eq!(
        x402.pricing(route("archive"))
            .fixed()
            .expect("fixed")
            .atomic,
        5000
    );
    let one = X402::new(X402Config::from_lookup(lookup("report=0.004")).expect("valid"))
        .expect("paywall");
    let untouched = one.pricing(route("archive"));
    assert_eq!(
        untouched,
        *route("archive").pricing(),
        "a route not named keeps its price"
    );
    let missing = X402Config::from_lookup(lookup("report:0.004")).expect_err("no =");
    assert!(
        missing.to_string().contains("write `route=price`"),
        "{missing}"
    );
}
