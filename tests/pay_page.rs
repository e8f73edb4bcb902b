//! The pay page a browser gets instead of the 402's JSON: what is served to whom (with the
//! facilitator double), then the whole flow in a real browser (Debian's Chromium driven by
//! playwright-core) with a test wallet whose signatures come from anvil's dev accounts, on
//! anvil with Circle's FiatTokenV2_2 and the in-process facilitator.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use alloy_primitives::{U256, address};
use axum::Router;
use axum::http::header::{ACCEPT, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use support::{
    Facilitator, anvil_rpc, http, installed_testbed, local_facilitator, paywall, paywall_from,
    serve,
};
use x402_runtime::{PayPage, X402, X402Config, paid};
use x402_testbed::{Chain, MERCHANT, PAYER};

/// What Chromium sends when a person opens a URL.
const NAVIGATION: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,\
                          image/webp,image/apng,*/*;q=0.8";
/// Anvil's dev account #7: unlocked, but holds no USDC.
const UNFUNDED: alloy_primitives::Address = address!("0x14dC79964da2C08b23698B3D3cc7Ca32193d9955");
/// The largest page the issue allows (without a logo).
const MOST_PAGE_BYTES: usize = 30 * 1024;

/// Prices <script>alert("gotcha")</script> & friends, "quoted".
#[paid(price = "0.002")]
async fn tricky() -> &'static str {
    "tricky"
}

/// A small picture.
#[paid(price = "0.003")]
async fn picture() -> Response {
    let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20" fill="#0a7"/></svg>"##;
    ([(CONTENT_TYPE, "image/svg+xml")], svg).into_response()
}

/// Only for programs.
#[paid(price = "0.001", pay_page = false)]
async fn programs_only() -> &'static str {
    "programs"
}

fn local_routes(x402: &X402) -> Router {
    Router::new()
        .route("/tricky", get(tricky))
        .route("/picture", get(picture))
        .route("/programs", get(programs_only))
        .layer(x402.layer())
}

async fn get_with(url: &str, accept: &str) -> reqwest::Response {
    http()
        .get(url)
        .header(ACCEPT, accept)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn browsers_get_the_page_and_programs_the_json() {
    let facilitator = Facilitator::start().await;
    let x402 = paywall(&facilitator);
    let base = serve(local_routes(&x402)).await;

    let page = get_with(&format!("{base}/tricky"), NAVIGATION).await;
    assert_eq!(page.status(), 402);
    assert_eq!(page.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
    let csp = page.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("csp");
    assert!(
        csp.starts_with("default-src 'none'; script-src 'sha256-"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let header = page.headers()["payment-required"].clone();
    let html = page.text().await.expect("body");
    assert!(
        html.len() < MOST_PAGE_BYTES,
        "the page is {} bytes",
        html.len()
    );
    assert!(html.contains("0.002 USDC") && html.contains("Base Sepolia"));
    // The description is text, never markup.
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(&quot;gotcha&quot;)&lt;/script&gt; &amp; friends"));
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "only the page's own script"
    );

    // Programs keep the JSON, with the same offer in the header.
    for accept in ["*/*", "application/json", "application/json, text/html"] {
        let json = get_with(&format!("{base}/tricky"), accept).await;
        assert_eq!(json.status(), 402);
        assert_eq!(json.headers()[CONTENT_TYPE], "application/json", "{accept}");
        assert_eq!(json.headers()["payment-required"], header);
        let body: Value = json.json().await.expect("json body");
        assert_eq!(body["x402Version"], 1);
    }
    let no_accept = http()
        .get(format!("{base}/tricky"))
        .send()
        .await
        .expect("request");
    assert_eq!(no_accept.headers()[CONTENT_TYPE], "application/json");

    // A route that turned the page off answers browsers with the JSON too.
    let programs = get_with(&format!("{base}/programs"), NAVIGATION).await;
    assert_eq!(programs.status(), 402);
    assert_eq!(programs.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(facilitator.count("verify"), 0);
}

#[tokio::test]
async fn the_page_can_be_branded_or_turned_off() {
    let facilitator = Facilitator::start().await;
    let branded = X402Config::builder().pay_to(support::PAY_TO).pay_page(
        PayPage::new()
            .title("Acme <Weather>")
            .accent("#0a7d3b")
            .logo(
                "image/svg+xml",
                "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            ),
    );
    let x402 = paywall_from(&facilitator, branded, Duration::from_secs(5));
    let base = serve(local_routes(&x402)).await;
    let html = get_with(&format!("{base}/picture"), NAVIGATION)
        .await
        .text()
        .await
        .expect("page");
    assert!(
        html.contains("<title>Acme &lt;Weather&gt;</title>"),
        "{html}"
    );
    assert!(html.contains("--accent:#0a7d3b;"));
    assert!(html.contains("<img src=\"data:image/svg+xml;base64,"));

    let off = X402Config::builder()
        .pay_to(support::PAY_TO)
        .without_pay_page();
    let x402 = paywall_from(&facilitator, off, Duration::from_secs(5));
    let base = serve(local_routes(&x402)).await;
    let json = get_with(&format!("{base}/picture"), NAVIGATION).await;
    assert_eq!(json.headers()[CONTENT_TYPE], "application/json");

    let env = |name: &str| match name {
        "X402_PAY_TO" => Some(support::PAY_TO.to_owned()),
        "X402_PAY_PAGE" => Some("maybe".to_owned()),
        _ => None,
    };
    let error = X402Config::from_lookup(env).expect_err("not on or off");
    assert!(
        error.to_string().contains("X402_PAY_PAGE `maybe`"),
        "{error}"
    );
    let bad = X402Config::builder()
        .pay_to(support::PAY_TO)
        .pay_page(PayPage::new().background("blue"))
        .build()
        .expect_err("not a hex colour");
    assert!(
        bad.to_string().contains("background colour `blue`"),
        "{bad}"
    );
}

/// The weather example and the routes above on 127.0.0.1, settling on `chain`.
async fn chain_server(chain: &Chain) -> String {
    let config = X402Config::builder()
        .pay_to(MERCHANT.to_checksum(None))
        .network(x402_testbed::NETWORK)
        .build()
        .expect("config");
    let x402 = X402::builder(config)
        .facilitator(local_facilitator(Some(chain.rpc_url())))
        .build()
        .expect("paywall");
    let local = local_routes(&x402);
    serve(example_weather::app(x402).merge(local)).await
}

fn scenario(name: &str, url: String, account: alloy_primitives::Address, chain_id: u64) -> Value {
    json!({
        "name": name,
        "url": url,
        "account": account.to_checksum(None),
        "chainId": chain_id,
        "knownChains": [chain_id],
    })
}

/// Runs the browser over `plan`; returns each scenario's result by name.
async fn browse(
    node: &std::path::Path,
    interop: &std::path::Path,
    chromium: &std::path::Path,
    plan: &Value,
) -> Value {
    let output = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new(node)
            .arg(interop.join("scripts/pay_page.mjs"))
            .arg(plan.to_string())
            .env("CHROMIUM", chromium)
            .current_dir(interop)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser run finished in time")
    .expect("node ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|_| panic!("no result\nstdout: {stdout}\nstderr: {stderr}"))
}

/// What every page must be: the 402 with its header, a strict policy, small, quiet.
fn assert_clean_page(name: &str, result: &Value) {
    assert!(result.get("failed").is_none(), "{name}: {result:#}");
    assert_eq!(result["status"], 402, "{name}");
    assert_eq!(result["paymentRequired"], true, "{name}");
    assert!(
        result["contentType"]
            .as_str()
            .unwrap_or_default()
            .starts_with("text/html"),
        "{name}"
    );
    let csp = result["csp"].as_str().unwrap_or_default();
    assert!(
        csp.starts_with("default-src 'none'") && !csp.contains("unsafe"),
        "{name}: {csp}"
    );
    assert!(
        (result["pageBytes"].as_u64().expect("bytes") as usize) < MOST_PAGE_BYTES,
        "{name}"
    );
    assert_eq!(result["consoleErrors"], json!([]), "{name}: {result:#}");
    for status in result["statusLogs"].as_array().expect("status logs") {
        assert!(
            [402, 409, 503].contains(&status.as_u64().expect("status")),
            "{name}: {status}"
        );
    }
    assert_eq!(
        result["state"]["violations"],
        json!([]),
        "{name}: CSP violations"
    );
    assert_eq!(
        result["external"],
        json!([]),
        "{name}: requests off 127.0.0.1"
    );
    assert_eq!(result["dialogs"], json!([]), "{name}");
}

fn signatures(result: &Value) -> usize {
    result["walletCalls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter(|c| *c == "eth_signTypedData_v4")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_pays_with_a_wallet_in_a_real_browser() {
    let test = "a_person_pays_with_a_wallet_in_a_real_browser";
    let Some(paths) = installed_testbed(test).await else {
        return;
    };
    let Some(chromium) = x402_testbed::chromium(test) else {
        return;
    };
    let chain = Chain::start().await.expect("chain");
    let base = chain_server(&chain).await;
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pay-page");
    let weather = format!("{base}/weather?city=Lima");
    let base_sepolia = x402_testbed::CHAIN_ID;
    let mut pay = scenario("pay", weather.clone(), PAYER, 1);
    // The wallet starts on Ethereum and does not know Base Sepolia: the page adds it.
    pay["knownChains"] = json!([1]);
    pay["clicks"] = json!(2);
    pay["card"] = json!(true);
    let mut reject = scenario("reject", weather.clone(), PAYER, base_sepolia);
    reject["reject"] = json!(true);
    let mut wrong_chain = scenario("wrong_chain", weather.clone(), PAYER, 1);
    wrong_chain["refuseSwitch"] = json!(true);
    let mut pending = scenario(
        "pending",
        format!("{base}/weather?city=Quito"),
        PAYER,
        base_sepolia,
    );
    pending["pending"] = json!(true);
    let mut escaped = scenario("tricky", format!("{base}/tricky"), PAYER, base_sepolia);
    escaped["clicks"] = json!(0);
    let plan = json!({
        "rpc": chain.rpc_url(),
        "shots": shots,
        "scenarios": [
            pay,
            scenario("picture", format!("{base}/picture"), PAYER, base_sepolia),
            scenario("climate", format!("{base}/climate?city=Oslo"), PAYER, base_sepolia),
            scenario("history", format!("{base}/history?city=Lima&days=3"), PAYER, base_sepolia),
            pending,
            reject,
            scenario("insufficient", weather.clone(), UNFUNDED, base_sepolia),
            wrong_chain,
            escaped,
        ],
    });
    let payer_before = chain.usdc_balance(PAYER).await.expect("balance");
    let merchant_before = chain.usdc_balance(MERCHANT).await.expect("balance");
    let started = std::time::Instant::now();
    let results = browse(&paths.node, &paths.interop, &chromium, &plan).await;
    eprintln!("browser run: {:?}; {results}", started.elapsed());
    for (name, result) in results.as_object().expect("results") {
        assert_clean_page(name, result);
    }

    // Paid once, content shown with its receipt; the second click paid nothing.
    let paid = &results["pay"];
    assert_eq!(paid["state"]["paid"], true, "{paid:#}");
    assert!(
        paid["state"]["content"]
            .as_str()
            .expect("content")
            .contains("Lima")
    );
    assert_eq!(signatures(paid), 1, "{paid:#}");
    assert_eq!(paid["paidRequests"], 1, "one request carried the payment");
    assert_eq!(paid["state"]["button"]["disabled"], true);
    assert_eq!(paid["added"]["chainId"], format!("0x{base_sepolia:x}"));
    assert_eq!(paid["chainId"], base_sepolia);
    let transaction = paid["state"]["transaction"].as_str().expect("transaction");
    assert_eq!(
        paid["state"]["explorer"],
        format!("https://sepolia.basescan.org/tx/{transaction}")
    );
    let receipt = anvil_rpc(&chain, "eth_getTransactionReceipt", json!([transaction])).await;
    assert_eq!(
        receipt["status"], "0x1",
        "the receipt's transaction is mined: {receipt}"
    );

    let bought = &results["picture"];
    assert_eq!(bought["state"]["paid"], true, "{bought:#}");
    assert_eq!(bought["state"]["image"]["src"], "blob:");
    assert_eq!(bought["state"]["image"]["width"], 40);

    // Two offers (Base Sepolia, Base): the person pays the first, on the chain the wallet is on.
    let climate = &results["climate"];
    assert_eq!(climate["offers"], 2, "{climate:#}");
    assert_eq!(climate["state"]["paid"], true, "{climate:#}");
    // A quoted route: the page shows, and the wallet signs, this request's quote.
    let history = &results["history"];
    assert!(
        history["state"]["status"]
            .as_str()
            .expect("status")
            .contains("0.003 USDC"),
        "{history:#}"
    );

    // The settlement could not be mined at first: the page resent the same payment (one
    // signature) until the record knew it settled, and says so with the transaction.
    let pending = &results["pending"];
    assert_eq!(pending["resentWhilePending"], true, "{pending:#}");
    assert_eq!(signatures(pending), 1, "{pending:#}");
    assert!(
        pending["paidRequests"].as_u64().expect("count") >= 2,
        "{pending:#}"
    );
    assert_eq!(pending["state"]["kind"], "warn", "{pending:#}");
    let settled = pending["state"]["transaction"]
        .as_str()
        .expect("transaction");
    let receipt = anvil_rpc(&chain, "eth_getTransactionReceipt", json!([settled])).await;
    assert_eq!(receipt["status"], "0x1", "{receipt}");

    let rejected = &results["reject"];
    assert_eq!(rejected["state"]["kind"], "error");
    assert!(
        rejected["state"]["status"]
            .as_str()
            .expect("status")
            .contains("rejected the signature")
    );
    assert_eq!(rejected["paidRequests"], 0);

    let poor = &results["insufficient"];
    assert!(
        poor["state"]["status"]
            .as_str()
            .expect("status")
            .contains("Not enough USDC"),
        "{poor:#}"
    );
    assert_eq!(
        signatures(poor),
        0,
        "no signature is asked for what cannot be paid"
    );

    let wrong = &results["wrong_chain"];
    assert!(
        wrong["state"]["status"]
            .as_str()
            .expect("status")
            .contains("Switch it to Base Sepolia"),
        "{wrong:#}"
    );
    assert_eq!(signatures(wrong), 0);

    let escaped = &results["tricky"];
    assert_eq!(
        escaped["description"],
        "Prices <script>alert(\"gotcha\")</script> & friends, \"quoted\"."
    );
    assert!(
        escaped["descriptionHtml"]
            .as_str()
            .expect("html")
            .contains("&lt;script&gt;")
    );
    assert_eq!(escaped["scripts"], 1);

    // Exactly the purchases moved money: weather 0.001, picture 0.003, climate 0.002,
    // history 0.003 (three days), and the pending weather 0.001, each once.
    let price = U256::from(1000 + 3000 + 2000 + 3000 + 1000);
    let payer_after = chain.usdc_balance(PAYER).await.expect("balance");
    let merchant_after = chain.usdc_balance(MERCHANT).await.expect("balance");
    assert_eq!(
        payer_before - payer_after,
        price,
        "the payer paid exactly the prices"
    );
    assert_eq!(
        merchant_after - merchant_before,
        price,
        "the merchant got exactly the prices"
    );
    assert_eq!(
        chain.usdc_balance(UNFUNDED).await.expect("balance"),
        U256::ZERO
    );
}
