//! Prices set per deployment (a price the configuration sets replaces the attribute's in the
//! 402, in the published document and in what a payment must carry; every mistake in it is a
//! startup error) and routes with several offers (their own networks, several currencies, their
//! own recipient). Over real HTTP on 127.0.0.1 against the facilitator double, with payments
//! signed for real.

mod support;

use std::time::Duration;

use axum::extract::Query;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use support::*;
use x402_runtime::{
    Currency, PaidRoute, Price, Quote, X402, X402Config, X402ConfigBuilder, paid, quote,
};

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

/// Offered on two networks, in two currencies each, paying its seller (not the
/// configuration's recipient).
#[paid(
    price = "0.01",
    currency = ["USDC", "EURC"],
    networks = ["eip155:8453", "eip155:84532"],
    pay_to = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
    method = "GET",
    path = "/multi"
)]
async fn multi() -> &'static str {
    "multi"
}

/// Reading an item is cheap.
#[paid(price = "0.001", method = "GET", path = "/item")]
async fn read_item() -> &'static str {
    "read"
}

/// Writing one is dear.
#[paid(price = "0.05", method = "POST", path = "/item")]
async fn write_item() -> &'static str {
    "written"
}

/// Query of `/rows`.
#[derive(Deserialize)]
struct Rows {
    rows: u32,
    seller: Option<String>,
}

/// 0.001 USDC a row; a `seller` is paid directly.
#[quote]
async fn quote_rows(Query(q): Query<Rows>) -> Quote {
    let quote = Quote::atomic(1_000 * u128::from(q.rows));
    match q.seller.and_then(|s| s.parse().ok()) {
        Some(seller) => quote.pay_to(seller),
        None => quote,
    }
}

/// Rows of a table, priced by how many.
#[paid(quote = quote_rows, min = "0.001", max = "0.05", method = "GET", path = "/rows")]
async fn rows(Query(q): Query<Rows>) -> String {
    format!("{} rows", q.rows)
}

#[derive(Deserialize)]
struct Pages {
    pages: u32,
}

/// 0.002 USDC a page, read from the JSON body; more than 25 pages cannot be priced.
#[quote]
async fn quote_pages(
    Json(req): Json<Pages>,
) -> Result<Quote, (axum::http::StatusCode, &'static str)> {
    match req.pages {
        0 => Err((
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "at least one page",
        )),
        pages => Ok(Quote::new(format!("0.{:03}", 2 * pages))),
    }
}

/// Converts pages; the handler reads the same body the quote read.
#[paid(quote = quote_pages, min = "0.002", max = "0.05", method = "POST", path = "/convert")]
async fn convert(Json(body): Json<Value>) -> Json<Value> {
    Json(json!({"converted": body}))
}

/// A quote function with a bug.
#[quote]
async fn quote_broken() -> Quote {
    panic!("the quote function has a bug")
}

/// Priced by a quote function that panics.
#[paid(quote = quote_broken, min = "0.001", max = "0.05", method = "GET", path = "/broken")]
async fn broken() -> &'static str {
    "never served"
}

/// Anvil's account #9, a seller other than the configuration's recipient ([`PAY_TO`]).
const SELLER: &str = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720";

fn route(operation_id: &str) -> &'static PaidRoute {
    x402_runtime::routes()
        .into_iter()
        .find(|r| r.operation_id() == operation_id)
        .expect("registered")
}

fn config() -> X402ConfigBuilder {
    X402Config::builder().pay_to(PAY_TO)
}

/// A paywall with `prices` set by its configuration, serving this file's routes, and a payer.
struct Rig {
    facilitator: Facilitator,
    x402: X402,
    base: String,
    client: reqwest::Client,
    payer: Payer,
}

impl Rig {
    async fn start(prices: &[(&str, &str)]) -> Rig {
        let facilitator = Facilitator::start().await;
        let builder = prices.iter().fold(config(), |b, (r, p)| b.price(*r, *p));
        let x402 = paywall_from(&facilitator, builder, Duration::from_secs(5));
        let base = serve_paywall(&x402).await;
        Rig {
            facilitator,
            x402,
            base,
            client: http(),
            payer: Payer::new(PAYER_KEY),
        }
    }
}

async fn serve_paywall(x402: &X402) -> String {
    let app = Router::new()
        .route("/report", get(report))
        .route("/archive", get(archive))
        .route("/multi", get(multi))
        .route("/item", get(read_item).post(write_item))
        .route("/rows", get(rows))
        .route("/convert", post(convert))
        .route("/broken", get(broken))
        .layer(x402.layer());
    serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_set_by_the_configuration_is_offered_charged_and_published() {
    let Rig {
        facilitator,
        x402,
        base,
        client,
        payer,
    } = Rig::start(&[("GET /report", "0.003"), ("archive", "$0.0025")]).await;

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
    let info = x402_runtime::discovery::payment_info(&x402, route("report")).expect("offers");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_with_several_offers_lists_each_and_accepts_any() {
    let Rig {
        facilitator,
        x402,
        base,
        client,
        payer,
    } = Rig::start(&[]).await;

    let unpaid = client
        .get(format!("{base}/multi"))
        .send()
        .await
        .expect("request");
    assert_eq!(unpaid.status(), 402);
    let challenge = challenge_of(&unpaid);
    let offers: Vec<(&str, &str, &str, &str)> = challenge
        .accepts
        .iter()
        .map(|o| {
            (
                o.network.as_str(),
                o.asset.as_str(),
                o.amount.as_str(),
                o.pay_to.as_str(),
            )
        })
        .collect();
    assert_eq!(
        offers,
        [
            (
                "eip155:8453",
                "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
                "10000",
                SELLER
            ),
            (
                "eip155:8453",
                "0x60a3E35Cc302bFA44Cb288Bc5a4F316Fdb1adb42",
                "10000",
                SELLER
            ),
            ("eip155:84532", USDC, "10000", SELLER),
            (
                "eip155:84532",
                "0x808456652fdb597867f38412077A9182bf77359F",
                "10000",
                SELLER
            ),
        ],
        "one offer per (network, token), networks first, in the declared order"
    );

    // Another route's offer is refused here, before the facilitator hears of it.
    let report_402 = challenge_of(
        &client
            .get(format!("{base}/report"))
            .send()
            .await
            .expect("request"),
    );
    let elsewhere = payer.pay_v2(&report_402, &Terms::default());
    let refused = client
        .get(format!("{base}/multi"))
        .header("PAYMENT-SIGNATURE", elsewhere)
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), 402);
    assert_eq!(facilitator.calls().len(), 0, "refused locally");

    // The euro offer on Base is as good as the first one.
    let terms = Terms {
        chain_id: 8453,
        ..Terms::default()
    };
    let payment = payer.pay_v2_offer(&challenge, 1, &terms);
    let paid = client
        .get(format!("{base}/multi"))
        .header("PAYMENT-SIGNATURE", payment)
        .send()
        .await
        .expect("request");
    assert_eq!(paid.status(), 200);
    assert_eq!(paid.text().await.expect("body"), "multi");
    let calls = facilitator.calls();
    let settled = &calls.last().expect("settle").requirements;
    assert_eq!(settled["network"], "eip155:8453");
    assert_eq!(
        settled["asset"],
        "0x60a3E35Cc302bFA44Cb288Bc5a4F316Fdb1adb42"
    );
    assert_eq!(settled["payTo"], SELLER);

    // The document lists every offer; the price note names both currencies.
    let info = x402_runtime::discovery::payment_info(&x402, route("multi")).expect("offers");
    assert_eq!(
        info["protocols"][0]["x402"]["accepts"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handlers_price_two_methods_of_one_path() {
    let Rig {
        facilitator,
        x402: _,
        base,
        client,
        payer,
    } = Rig::start(&[("POST /item", "0.04")]).await;
    let read = client
        .get(format!("{base}/item"))
        .send()
        .await
        .expect("request");
    assert_eq!(challenge_of(&read).accepts[0].amount, "1000");
    let write = client
        .post(format!("{base}/item"))
        .send()
        .await
        .expect("request");
    assert_eq!(challenge_of(&write).accepts[0].amount, "40000");
    let payment = payer.pay_v2(&challenge_of(&write), &Terms::default());
    let written = client
        .post(format!("{base}/item"))
        .header("PAYMENT-SIGNATURE", payment)
        .send()
        .await
        .expect("request");
    assert_eq!(written.status(), 200);
    assert_eq!(written.text().await.expect("body"), "written");
    let calls = facilitator.calls();
    assert_eq!(
        calls.last().expect("settle").requirements["amount"],
        "40000"
    );
}

#[test]
fn a_price_set_for_a_route_with_several_currencies_must_suit_each() {
    // `$` is US dollars: it cannot price the euro offer too.
    let dollar = build_error(&[("multi", "$0.02")]);
    assert!(dollar.contains("currency is EURC"), "{dollar}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_for_the_second_token_settles_on_chain() {
    let Some(chain) = start_chain("a_payment_for_the_second_token_settles_on_chain").await else {
        return;
    };
    let payer = x402_testbed::PAYER;
    chain
        .plant_eurc(&[payer], x402_testbed::DEFAULT_MINT)
        .await
        .expect("EURC planted");
    let config = config()
        .network(x402_testbed::NETWORK)
        .build()
        .expect("config");
    let x402 = X402::builder(config)
        .facilitator(local_facilitator(Some(chain.rpc_url())))
        .reconcile_interval(None)
        .build()
        .expect("paywall");
    let base = serve_paywall(&x402).await;
    let client = http();
    let seller: alloy_primitives::Address = SELLER.parse().expect("address");
    let eurc = x402_testbed::EURC;
    let before = (
        chain.balance_of(eurc, payer).await.expect("balance"),
        chain.balance_of(eurc, seller).await.expect("balance"),
        chain.usdc_balance(payer).await.expect("balance"),
    );

    let challenge = challenge_of(
        &client
            .get(format!("{base}/multi"))
            .send()
            .await
            .expect("402"),
    );
    let index = challenge
        .accepts
        .iter()
        .position(|o| o.network == x402_testbed::NETWORK && o.asset == eurc.to_checksum(None))
        .expect("a EURC offer on the test chain");
    assert_eq!(index, 3, "the last of four offers");
    let payment =
        Payer::new(x402_testbed::PAYER_KEY).pay_v2_offer(&challenge, index, &Terms::default());
    let paid = client
        .get(format!("{base}/multi"))
        .header("PAYMENT-SIGNATURE", payment)
        .send()
        .await
        .expect("request");
    assert_eq!(paid.status(), 200, "{:?}", paid.headers());

    let price = alloy_primitives::U256::from(10_000u64);
    assert_eq!(
        before.0 - chain.balance_of(eurc, payer).await.expect("balance"),
        price
    );
    assert_eq!(
        chain.balance_of(eurc, seller).await.expect("balance") - before.1,
        price
    );
    assert_eq!(
        chain.usdc_balance(payer).await.expect("balance"),
        before.2,
        "no USDC moved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quote_is_the_challenge_and_the_payment_must_match_it() {
    let Rig {
        facilitator,
        x402: _,
        base,
        client,
        payer,
    } = Rig::start(&[]).await;
    let get = |query: &str| client.get(format!("{base}/rows?{query}")).send();

    let three = challenge_of(&get("rows=3").await.expect("402"));
    assert_eq!(three.accepts[0].amount, "3000");
    let seven = challenge_of(&get("rows=7").await.expect("402"));
    assert_eq!(seven.accepts[0].amount, "7000");

    // Paid for three rows, asked for four: a fresh challenge with the current quote.
    let payment = payer.pay_v2(&three, &Terms::default());
    let other = client
        .get(format!("{base}/rows?rows=4"))
        .header("PAYMENT-SIGNATURE", &payment)
        .send()
        .await
        .expect("request");
    assert_eq!(other.status(), 402);
    assert_eq!(challenge_of(&other).accepts[0].amount, "4000");
    assert!(
        facilitator.calls().is_empty(),
        "nothing verified or settled"
    );

    let paid = client
        .get(format!("{base}/rows?rows=3"))
        .header("PAYMENT-SIGNATURE", &payment)
        .send()
        .await
        .expect("request");
    assert_eq!(paid.status(), 200);
    assert_eq!(paid.text().await.expect("body"), "3 rows");
    let calls = facilitator.calls();
    assert_eq!(calls.last().expect("settle").requirements["amount"], "3000");

    // A seller named in the request is paid directly.
    let sold = challenge_of(&get(&format!("rows=2&seller={SELLER}")).await.expect("402"));
    assert_eq!(sold.accepts[0].pay_to, SELLER);
    assert_eq!(sold.accepts[0].amount, "2000");

    // A request the quote function cannot read is its extractor's rejection, not a 402.
    assert_eq!(get("rows=many").await.expect("request").status(), 400);
    // A bare probe (no query, no body) gets the offers at the maximum, saying why.
    let probe = client
        .get(format!("{base}/rows"))
        .send()
        .await
        .expect("request");
    assert_eq!(probe.status(), 402);
    let bare = challenge_of(&probe);
    assert_eq!(bare.accepts[0].amount, "50000");
    assert_eq!(bare.error.as_deref(), Some("price_depends_on_request"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_outside_its_bounds_is_a_500_and_nothing_is_charged() {
    let Rig {
        facilitator,
        x402: _,
        base,
        client,
        payer: _,
    } = Rig::start(&[]).await;
    let within = challenge_of(
        &client
            .get(format!("{base}/rows?rows=50"))
            .send()
            .await
            .expect("402"),
    );
    let payment = Payer::new(PAYER_KEY).pay_v2(&within, &Terms::default());
    for request in [
        client.get(format!("{base}/rows?rows=51")),
        client
            .get(format!("{base}/rows?rows=51"))
            .header("PAYMENT-SIGNATURE", &payment),
    ] {
        let answer = request.send().await.expect("request");
        assert_eq!(answer.status(), 500);
        let body: Value = answer.json().await.expect("json");
        assert_eq!(body["error"], "x402_quote_out_of_bounds");
        assert!(
            body["message"]
                .as_str()
                .expect("message")
                .contains("0.051 USDC"),
            "{body}"
        );
    }
    assert!(
        facilitator.calls().is_empty(),
        "nothing verified or settled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_priced_route_reads_the_body_once_for_both() {
    let Rig {
        facilitator: _facilitator,
        x402: _,
        base,
        client,
        payer: _,
    } = Rig::start(&[]).await;
    let body = json!({"pages": 4, "title": "report"});
    let post = || client.post(format!("{base}/convert")).json(&body);
    let unpaid = post().send().await.expect("402");
    assert_eq!(unpaid.status(), 402);
    let challenge = challenge_of(&unpaid);
    assert_eq!(challenge.accepts[0].amount, "8000");
    let payment = Payer::new(PAYER_KEY).pay_v2(&challenge, &Terms::default());
    let paid = post()
        .header("PAYMENT-SIGNATURE", payment)
        .send()
        .await
        .expect("request");
    assert_eq!(paid.status(), 200);
    let answer: Value = paid.json().await.expect("json");
    assert_eq!(
        answer["converted"], body,
        "the handler saw the body the quote priced"
    );
    // The quote's own refusal, and a body over the limit, answer before any price.
    let zero = client
        .post(format!("{base}/convert"))
        .json(&json!({"pages": 0}))
        .send()
        .await;
    assert_eq!(zero.expect("request").status(), 422);
    let huge = client
        .post(format!("{base}/convert"))
        .header("content-type", "application/json")
        .body(vec![b' '; 3 * 1024 * 1024])
        .send()
        .await
        .expect("request");
    assert_eq!(huge.status(), 413);
    let body: Value = huge.json().await.expect("json");
    assert_eq!(body["error"], "request_body_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quoted_route_publishes_its_range() {
    let Rig {
        facilitator: _facilitator,
        x402,
        ..
    } = Rig::start(&[]).await;
    let info = x402_runtime::discovery::payment_info(&x402, route("rows")).expect("offers");
    assert_eq!(
        info["price"],
        json!({"mode": "dynamic", "currency": "USD", "min": "0.001", "max": "0.05"})
    );
    assert_eq!(info["protocols"][0]["x402"]["price"]["mode"], "dynamic");
    assert_eq!(
        info["protocols"][0]["x402"]["accepts"][0]["amount"],
        "50000"
    );
    assert_eq!(x402.pricing(route("rows")).to_string(), "0.001–0.05 USDC");
    let quoted = build_error(&[("rows", "0.002")]);
    assert!(quoted.contains("priced by its quote function"), "{quoted}");
}
