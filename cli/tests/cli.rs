//! The `x402` binary against the example API: `discover` lists every paid route with its price
//! (from the OpenAPI document, and from a 402 when there is none); `pay` pays within `--max` and
//! settles on a real chain, and shows a pending settlement while it resends the same payment;
//! `wallet` reads balances with a key from an encrypted keystore.
#![allow(missing_docs)]

use std::process::Output;
use std::time::Duration;

use alloy_primitives::U256;
use axum::Router;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use x402_runtime::facilitator::{HttpFacilitator, LocalFacilitator};
use x402_runtime::{X402, X402Config};
use x402_testbed::{Chain, FACILITATOR_KEY, MERCHANT, NETWORK, PAYER, PAYER_KEY, Paths};

// The example's `#[paid]` handlers register themselves in the registry when linked.
use example_weather as _;

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn config() -> X402Config {
    X402Config::builder()
        .pay_to(MERCHANT.to_checksum(None))
        .network(NETWORK)
        .build()
        .expect("config")
}

/// The example API with a facilitator that is never reached (discovery pays nothing).
async fn unpaid_api() -> String {
    let facilitator = HttpFacilitator::new("http://127.0.0.1:9").expect("facilitator");
    let x402 = X402::builder(config())
        .facilitator(facilitator)
        .build()
        .expect("paywall");
    serve(example_weather::app(x402)).await
}

/// Runs `x402 args…` with `env`, bounded in time.
async fn run_x402(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_x402"));
    command
        .args(args)
        .env_remove("X402_PAYER_KEY")
        .env_remove("X402_KEYSTORE")
        .env_remove("X402_KEYSTORE_PASSWORD")
        .env_remove("X402_RPC_URL")
        .env_remove("X402_SVM_PAYER_KEY")
        .env_remove("X402_SVM_PAYER_KEYPAIR")
        .env_remove("X402_SVM_RPC_URL")
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("x402 finished in time")
        .expect("x402 ran")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every paid route of the registry as `(method, path, "price currency")`.
fn registered_prices() -> Vec<(String, String, String)> {
    let mut routes: Vec<_> = x402_runtime::routes()
        .into_iter()
        .map(|route| {
            (
                route.method().expect("method").to_owned(),
                route.path().expect("path").to_owned(),
                // `0.001 USDC`, or `0.001–0.03 USDC` for a route priced per request.
                route.pricing().to_string(),
            )
        })
        .collect();
    routes.sort();
    routes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_lists_every_paid_route_with_its_price() {
    let base = unpaid_api().await;
    let expected = registered_prices();
    assert_eq!(expected.len(), 6, "{expected:?}");

    let table = run_x402(&["discover", &base], &[]).await;
    assert!(table.status.success(), "{}", stderr(&table));
    let text = stdout(&table);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("METHOD  PATH"), "{text}");
    for (method, path, price) in &expected {
        let row = lines
            .iter()
            .find(|l| l.split_whitespace().nth(1) == Some(path.as_str()))
            .unwrap_or_else(|| panic!("{path} missing:\n{text}"));
        // An `upto` price reads `up to 0.01 USDC`: the cells after it shift by two.
        let cells: Vec<&str> = row.split_whitespace().collect();
        let words = price.split_whitespace().count();
        assert_eq!(cells[0], method, "{row}");
        assert_eq!(cells[2..2 + words].join(" "), *price, "{row}");
        let networks = x402_runtime::routes()
            .into_iter()
            .find(|r| r.path() == Some(path.as_str()))
            .map(|r| r.networks().join(","))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| NETWORK.to_owned());
        assert_eq!(cells[2 + words], networks, "{row}");
    }
    assert!(text.contains("6 paid endpoints"), "{text}");
    assert!(text.contains("free: GET /health"), "{text}");

    let json = run_x402(&["discover", &base, "--json"], &[]).await;
    assert!(json.status.success(), "{}", stderr(&json));
    let found: Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(found["via"], "openapi");
    let mut listed: Vec<(String, String, String)> = found["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .map(|e| {
            (
                e["method"].as_str().expect("method").to_owned(),
                e["path"].as_str().expect("path").to_owned(),
                format!(
                    "{} {}",
                    e["price"].as_str().expect("price"),
                    e["currency"].as_str().expect("currency")
                ),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(listed, expected);
    // How to call each: the bazaar extension derived from the document, the same as the 402's.
    let weather = found["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["path"] == "/weather")
        .expect("/weather");
    let input = &weather["bazaar"]["schema"]["properties"]["input"];
    assert_eq!(
        input["properties"]["queryParams"]["required"],
        serde_json::json!(["city"]),
        "{weather}"
    );
    assert!(
        weather["bazaar"]["schema"]["properties"]["output"]["properties"]["example"].is_object(),
        "{weather}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_reads_a_402_when_there_is_no_document() {
    let facilitator = HttpFacilitator::new("http://127.0.0.1:9").expect("facilitator");
    let x402 = X402::builder(config())
        .facilitator(facilitator)
        .build()
        .expect("paywall");
    let hide_document = axum::middleware::from_fn(
        |request: axum::extract::Request, next: axum::middleware::Next| async move {
            if request.uri().path() == "/openapi.json" {
                return axum::http::StatusCode::NOT_FOUND.into_response();
            }
            next.run(request).await
        },
    );
    let base = serve(example_weather::app(x402).layer(hide_document)).await;
    let probed = run_x402(
        &["discover", &format!("{base}/alerts?city=Rome"), "--json"],
        &[],
    )
    .await;
    assert!(probed.status.success(), "{}", stderr(&probed));
    let found: Value = serde_json::from_slice(&probed.stdout).expect("JSON");
    assert_eq!(found["via"], "probe");
    let endpoint = &found["endpoints"][0];
    assert_eq!(endpoint["path"], "/alerts");
    assert_eq!(endpoint["price"], "0.005");
    assert_eq!(endpoint["currency"], "USDC");
    assert_eq!(endpoint["networks"], serde_json::json!([NETWORK]));
    assert!(
        endpoint["bazaar"]["info"]["input"]["queryParams"]["city"].is_string(),
        "the 402's bazaar extension: {endpoint}"
    );

    let free = run_x402(&["discover", &format!("{base}/health")], &[]).await;
    assert!(!free.status.success());
    assert!(stderr(&free).contains("not 402"), "{}", stderr(&free));
}

struct Bed {
    chain: Chain,
    paths: Paths,
}

async fn bed(test: &str) -> Option<Bed> {
    if !x402_testbed::skip_unless_available(test) {
        return None;
    }
    let paths = tokio::task::spawn_blocking(x402_testbed::install)
        .await
        .expect("join")
        .expect("install");
    let chain = Chain::start().await.expect("chain");
    Some(Bed { chain, paths })
}

/// The example API with the in-process facilitator settling on `chain`.
async fn chain_api(chain: &Chain) -> String {
    let facilitator = LocalFacilitator::builder()
        .network(NETWORK)
        .rpc_url(NETWORK, chain.rpc_url())
        .signer_key(NETWORK, FACILITATOR_KEY)
        .build()
        .expect("facilitator");
    let x402 = X402::builder(config())
        .facilitator(facilitator)
        .build()
        .expect("paywall");
    serve(example_weather::app(x402)).await
}

async fn payer_balance(chain: &Chain) -> U256 {
    chain.usdc_balance(PAYER).await.expect("balance")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_settles_on_chain_within_the_limit() {
    let Some(bed) = bed("pay_settles_on_chain_within_the_limit").await else {
        return;
    };
    let api = chain_api(&bed.chain).await;
    let key = [("X402_PAYER_KEY", PAYER_KEY)];
    let url = format!("{api}/weather?city=Paris");

    let before = payer_balance(&bed.chain).await;
    let refused = run_x402(&["pay", &url, "--max", "0.0005"], &key).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("over the per-request maximum of 0.0005 USDC"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(payer_balance(&bed.chain).await, before, "nothing moved");

    // A quoted route: the limit applies to this request's quote.
    let history = format!("{api}/history?city=Paris&days=5");
    let refused = run_x402(&["pay", &history, "--max", "0.004"], &key).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("0.005 USDC")
            && stderr(&refused).contains("over the per-request maximum of 0.004 USDC"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(payer_balance(&bed.chain).await, before, "nothing moved");

    let paid = run_x402(&["pay", &url, "--max", "0.001"], &key).await;
    assert!(paid.status.success(), "{}", stderr(&paid));
    let text = stdout(&paid);
    assert!(text.starts_with("HTTP 200 OK"), "{text}");
    assert!(text.contains("\"city\": \"Paris\""), "{text}");
    assert!(text.contains("receipt     success"), "{text}");
    let transaction = text
        .lines()
        .find_map(|l| l.strip_prefix("transaction "))
        .expect("transaction line")
        .trim();
    assert_eq!(transaction.len(), 66, "{text}");
    assert!(
        stderr(&paid).contains("paying 0.001 USDC to"),
        "{}",
        stderr(&paid)
    );
    assert!(stderr(&paid).contains("waiting for verification and settlement"));
    assert_eq!(before - payer_balance(&bed.chain).await, U256::from(1000));

    let before = payer_balance(&bed.chain).await;
    let log = std::env::temp_dir().join(format!("x402-spend-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let forecast = run_x402(
        &[
            "pay",
            &format!("{api}/forecast"),
            "-X",
            "POST",
            "-d",
            r#"{"city":"Oslo","days":2}"#,
            "--json",
            "--log",
            log.to_str().expect("path"),
        ],
        &key,
    )
    .await;
    assert!(forecast.status.success(), "{}", stderr(&forecast));
    let answer: Value = serde_json::from_slice(&forecast.stdout).expect("JSON");
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["receipt"]["success"], true);
    assert_eq!(answer["payment"]["amount"], "0.01");
    assert_eq!(answer["payment"]["status"], "settled");
    assert_eq!(before - payer_balance(&bed.chain).await, U256::from(10_000));
    let logged: Value =
        serde_json::from_str(std::fs::read_to_string(&log).expect("spend log").trim())
            .expect("one JSON line");
    assert_eq!(logged["transaction"], answer["receipt"]["transaction"]);
    let _ = std::fs::remove_file(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_shows_balances_for_a_keystore_key() {
    let Some(bed) = bed("wallet_shows_balances_for_a_keystore_key").await else {
        return;
    };
    // The keystore is written by eth_account (the official Python client's signer library).
    let keystore = std::env::temp_dir().join(format!("x402-keystore-{}.json", std::process::id()));
    let written = tokio::process::Command::new(&bed.paths.python)
        .arg("-c")
        .arg(
            "import json, sys; from eth_account import Account; \
             open(sys.argv[3], 'w').write(json.dumps(Account.encrypt(sys.argv[1], sys.argv[2])))",
        )
        .args([PAYER_KEY, "correct horse", keystore.to_str().expect("path")])
        .output()
        .await
        .expect("python");
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    let path = keystore.to_str().expect("path");

    let shown = run_x402(
        &[
            "wallet",
            "--keystore",
            path,
            "--rpc-url",
            bed.chain.rpc_url(),
        ],
        &[("X402_KEYSTORE_PASSWORD", "correct horse")],
    )
    .await;
    assert!(shown.status.success(), "{}", stderr(&shown));
    let text = stdout(&shown);
    assert!(text.contains(&format!("address  {PAYER}")), "{text}");
    assert!(text.contains(&format!("network  {NETWORK}")), "{text}");
    assert!(
        text.contains("USDC     1000 (0x036CbD53842c5426634e7929541eC2318f3dCF7e)"),
        "{text}"
    );

    let wrong = run_x402(
        &["wallet", "--keystore", path],
        &[("X402_KEYSTORE_PASSWORD", "wrong")],
    )
    .await;
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stderr(&wrong).contains("wrong password"),
        "{}",
        stderr(&wrong)
    );
    assert!(!stderr(&wrong).contains("correct horse"));
    let _ = std::fs::remove_file(&keystore);
}

/// A paid endpoint whose settlement is pending once: the first paid request gets `503
/// settlement_pending` with `Retry-After: 1`, the next a 200 with a receipt. Records every
/// payment header it receives.
async fn pending_once_api() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let recorded = seen.clone();
    let encode = |value: Value| STANDARD.encode(value.to_string());
    let transaction = format!("0x{}", "cd".repeat(32));
    let app = Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let seen = recorded.clone();
        let transaction = transaction.clone();
        async move {
            let Some(payment) = headers.get("payment-signature") else {
                let challenge = json!({
                    "x402Version": 2, "error": "PAYMENT-SIGNATURE header is required",
                    "resource": {"url": "http://127.0.0.1/weather"},
                    "accepts": [{
                        "scheme": "exact", "network": NETWORK, "amount": "1000",
                        "asset": x402_testbed::USDC.to_checksum(None),
                        "payTo": MERCHANT.to_checksum(None), "maxTimeoutSeconds": 60,
                        "extra": {"name": "USDC", "version": "2"}
                    }]
                });
                return (
                    axum::http::StatusCode::PAYMENT_REQUIRED,
                    [("payment-required", encode(challenge))],
                    "{}".to_owned(),
                )
                    .into_response();
            };
            let first = {
                let mut seen = seen.lock().expect("seen");
                seen.push(payment.to_str().expect("ascii").to_owned());
                seen.len() == 1
            };
            let receipt = |success: bool| {
                encode(json!({
                    "success": success, "transaction": transaction, "network": NETWORK,
                    "errorReason": if success { Value::Null } else { json!("settlement_pending") },
                }))
            };
            if first {
                (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    [
                        ("payment-response", receipt(false)),
                        ("retry-after", "1".to_owned()),
                    ],
                    json!({"error": "settlement_pending", "message": "resend the same payment",
                           "transaction": transaction})
                    .to_string(),
                )
                    .into_response()
            } else {
                (
                    axum::http::StatusCode::OK,
                    [
                        ("payment-response", receipt(true)),
                        ("retry-after", "0".to_owned()),
                    ],
                    json!({"city": "Paris"}).to_string(),
                )
                    .into_response()
            }
        }
    });
    (serve(app).await, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_shows_a_pending_settlement_and_resends_the_same_payment() {
    let (api, seen) = pending_once_api().await;
    let paid = run_x402(
        &["pay", &format!("{api}/weather"), "--max", "0.001"],
        &[("X402_PAYER_KEY", PAYER_KEY)],
    )
    .await;
    assert!(paid.status.success(), "{}", stderr(&paid));
    let progress = stderr(&paid);
    assert!(
        progress.contains(&format!(
            "settlement pending, resending the same payment in 1s (transaction 0x{})",
            "cd".repeat(32)
        )),
        "{progress}"
    );
    assert!(
        stdout(&paid).contains("receipt     success"),
        "{}",
        stdout(&paid)
    );
    let seen = seen.lock().expect("seen").clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0], seen[1], "the same signed payment was resent");
}

/// Verifies offline with the local facilitator; answers `/settle` with `settlement_pending`
/// (naming a transaction) the first time, then with that transaction settled.
struct PendingOnce {
    verifier: LocalFacilitator,
    settles: std::sync::atomic::AtomicU32,
}

const PENDING_TX: &str = "0x1111111111111111111111111111111111111111111111111111111111111111";

impl x402_runtime::Facilitator for PendingOnce {
    fn verify<'a>(
        &'a self,
        request: &'a x402_runtime::proto::FacilitatorRequest,
    ) -> x402_runtime::BoxFuture<
        'a,
        Result<x402_runtime::proto::VerifyResponse, x402_runtime::FacilitatorError>,
    > {
        self.verifier.verify(request)
    }

    fn settle<'a>(
        &'a self,
        request: &'a x402_runtime::proto::FacilitatorRequest,
    ) -> x402_runtime::BoxFuture<
        'a,
        Result<x402_runtime::proto::SettleResponse, x402_runtime::FacilitatorError>,
    > {
        let first = self
            .settles
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            == 0;
        let network = match &request.payment_requirements {
            x402_runtime::proto::Requirements::V2(r) => r.network.clone(),
            x402_runtime::proto::Requirements::V1(r) => r.network.clone(),
        };
        let answer = json!({
            "success": !first, "transaction": PENDING_TX, "network": network,
            "errorReason": if first { json!("settlement_pending") } else { Value::Null },
        });
        Box::pin(async move { Ok(serde_json::from_value(answer).expect("settle response")) })
    }

    fn supported(
        &self,
    ) -> x402_runtime::BoxFuture<
        '_,
        Result<x402_runtime::proto::SupportedResponse, x402_runtime::FacilitatorError>,
    > {
        self.verifier.supported()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_waits_out_a_pending_settlement_of_our_server() {
    let verifier = LocalFacilitator::builder()
        .network(NETWORK)
        .build()
        .expect("facilitator");
    let facilitator = PendingOnce {
        verifier,
        settles: std::sync::atomic::AtomicU32::new(0),
    };
    let x402 = X402::builder(config())
        .facilitator(facilitator)
        .reconcile_interval(None)
        .build()
        .expect("paywall");
    let api = serve(example_weather::app(x402)).await;
    let started = std::time::Instant::now();
    let paid = run_x402(
        &[
            "pay",
            &format!("{api}/weather?city=Paris"),
            "--max",
            "0.001",
        ],
        &[("X402_PAYER_KEY", PAYER_KEY)],
    )
    .await;
    // Our server answers 503 settlement_pending with Retry-After: 5; the resend of the same
    // payment reconciles it, and the response withheld the first time is not served again.
    let progress = stderr(&paid);
    assert_eq!(paid.status.code(), Some(1), "{progress}");
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert!(
        progress.contains(&format!(
            "settlement pending, resending the same payment in 5s (transaction {PENDING_TX})"
        )),
        "{progress}"
    );
    assert!(
        progress.contains(&format!(
            "the payment was settled in transaction {PENDING_TX}, but its answer was lost"
        )),
        "{progress}"
    );
    assert_eq!(
        progress.matches("paying 0.001 USDC").count(),
        1,
        "signed once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_approves_permit2_once() {
    let test = "wallet_approves_permit2_once";
    if !x402_testbed::skip_unless_available(test) {
        return;
    }
    let chain = Chain::start().await.expect("chain");
    let usdc = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
    let approve = || async {
        run_x402(
            &[
                "wallet",
                "--rpc-url",
                chain.rpc_url(),
                "--approve-permit2",
                usdc,
                "--json",
            ],
            &[("X402_PAYER_KEY", PAYER_KEY)],
        )
        .await
    };
    let first = approve().await;
    assert!(first.status.success(), "{}", stderr(&first));
    let shown: Value = serde_json::from_str(&stdout(&first)).expect("json");
    assert_eq!(shown["address"], PAYER.to_checksum(None));
    assert_eq!(
        shown["spender"],
        "0x000000000022D473030F116dDEE9F6B43aC78BA3"
    );
    let transaction = shown["transaction"].as_str().expect("a transaction");
    assert_eq!(transaction.len(), 66, "{transaction}");
    let again = approve().await;
    assert!(again.status.success(), "{}", stderr(&again));
    let shown: Value = serde_json::from_str(&stdout(&again)).expect("json");
    assert_eq!(
        shown["transaction"],
        Value::Null,
        "already approved: nothing sent"
    );

    // Without an RPC URL it is refused by the argument parser, before any key is read.
    let refused = run_x402(
        &["wallet", "--approve-permit2", usdc],
        &[("X402_PAYER_KEY", PAYER_KEY)],
    )
    .await;
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("--rpc-url"),
        "{}",
        stderr(&refused)
    );
}

/// `x402 wallet` with a Solana key (the test bed's S6, base58 keypair in X402_SVM_PAYER_KEY) and
/// a Solana node: the cluster told by the node's genesis hash, SOL and devnet USDC; as text and
/// JSON. Without a Solana node, the Solana address and how to see balances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_shows_the_solana_payers_balances() {
    use x402_testbed::svm::{self, PAYER2, SvmChain};
    if !x402_testbed::skip_unless_available("wallet_shows_the_solana_payers_balances") {
        return;
    }
    let chain = SvmChain::start().await.expect("Solana chain");
    let lamports = chain.sol_balance(PAYER2.address).await.expect("SOL");
    let usdc = chain.usdc_balance(PAYER2.address).await.expect("USDC");
    assert_eq!(usdc, svm::DEFAULT_MINT);
    let env = [
        ("X402_PAYER_KEY", PAYER_KEY),
        ("X402_SVM_PAYER_KEY", PAYER2.secret_key),
    ];

    let shown = run_x402(&["wallet", "--svm-rpc-url", chain.rpc_url()], &env).await;
    assert!(shown.status.success(), "{}", stderr(&shown));
    let text = stdout(&shown);
    let fraction = format!("{:09}", lamports % 1_000_000_000);
    let fraction = fraction.trim_end_matches('0');
    let sol = match fraction {
        "" => (lamports / 1_000_000_000).to_string(),
        _ => format!("{}.{fraction}", lamports / 1_000_000_000),
    };
    for line in [
        format!("address  {PAYER}"),
        format!("address  {}", PAYER2.address),
        format!("network  {}", svm::DEVNET),
        format!("native   {sol} SOL"),
        format!("USDC     1000 ({})", svm::USDC_DEVNET),
    ] {
        assert!(text.contains(&line), "`{line}` missing from:\n{text}");
    }
    assert!(!text.contains(PAYER2.secret_key), "{text}");

    let shown = run_x402(
        &["wallet", "--json"],
        &[env[0], env[1], ("X402_SVM_RPC_URL", chain.rpc_url())],
    )
    .await;
    assert!(shown.status.success(), "{}", stderr(&shown));
    let json: Value = serde_json::from_str(&stdout(&shown)).expect("JSON");
    let solana = &json["solana"];
    assert_eq!(solana["address"], PAYER2.address, "{json}");
    assert_eq!(solana["network"], svm::DEVNET, "{json}");
    assert_eq!(solana["tokens"][0]["currency"], "USDC", "{json}");
    assert_eq!(solana["tokens"][0]["atomic"], usdc.to_string(), "{json}");

    let shown = run_x402(&["wallet"], &env).await;
    assert!(shown.status.success(), "{}", stderr(&shown));
    let text = stdout(&shown);
    assert!(
        text.contains(&format!("address  {}", PAYER2.address)),
        "{text}"
    );
    assert!(text.contains("X402_SVM_RPC_URL"), "{text}");
}

/// `x402 pay` with the Solana key in X402_SVM_PAYER_KEY (a keypair file's JSON array) and the
/// node in X402_SVM_RPC_URL pays the official Solana seller (`server_svm.mjs`, settled by the
/// official facilitator on LiteSVM): 200, the receipt and the payment name the Solana signature,
/// and the USDC moves by exactly the price.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_settles_on_solana_with_the_solana_key() {
    use x402_testbed::Script;
    use x402_testbed::svm::{self, MERCHANT, PAYER2, SvmChain, TS_FACILITATOR};
    if !x402_testbed::skip_unless_available("pay_settles_on_solana_with_the_solana_key") {
        return;
    }
    let chain = SvmChain::start().await.expect("Solana chain");
    let facilitator = Script::start(
        chain.paths(),
        "facilitator_svm.mjs",
        &[
            ("FACILITATOR_KEY", TS_FACILITATOR.secret_key),
            ("RPC_URL", chain.rpc_url()),
        ],
        "/supported",
    )
    .await
    .expect("official facilitator");
    let seller = Script::start(
        chain.paths(),
        "server_svm.mjs",
        &[
            ("FACILITATOR_URL", facilitator.url()),
            ("PAY_TO", MERCHANT.address),
        ],
        "/health",
    )
    .await
    .expect("official seller");
    // The 64 bytes of the keypair as a Solana CLI keypair file holds them.
    let bytes = bs58::decode(PAYER2.secret_key).into_vec().expect("base58");
    let keypair = serde_json::to_string(&bytes).expect("json");
    let env = [
        ("X402_PAYER_KEY", PAYER_KEY),
        ("X402_SVM_PAYER_KEY", keypair.as_str()),
        ("X402_SVM_RPC_URL", chain.rpc_url()),
    ];
    let before = chain.usdc_balance(PAYER2.address).await.expect("USDC");
    let url = format!("{}/paid", seller.url());

    let refused = run_x402(&["pay", &url, "--max", "0.009"], &env).await;
    assert_eq!(refused.status.code(), Some(1), "{}", stdout(&refused));
    assert_eq!(
        chain.usdc_balance(PAYER2.address).await.expect("USDC"),
        before
    );

    let paid = run_x402(&["pay", &url, "--max", "0.01", "--json"], &env).await;
    assert!(
        paid.status.success(),
        "{}\n{}",
        stdout(&paid),
        stderr(&paid)
    );
    let json: Value = serde_json::from_str(&stdout(&paid)).expect("JSON");
    assert_eq!(json["status"], 200, "{json}");
    assert_eq!(json["receipt"]["network"], svm::DEVNET, "{json}");
    assert_eq!(json["receipt"]["payer"], PAYER2.address, "{json}");
    let signature = json["receipt"]["transaction"].as_str().expect("signature");
    assert_eq!(json["payment"]["transaction"], signature, "{json}");
    assert_eq!(json["payment"]["payer"], PAYER2.address, "{json}");
    let status = chain
        .signature_status(signature)
        .await
        .expect("status")
        .unwrap_or_else(|| panic!("{signature} never landed"));
    assert_eq!(status["err"], Value::Null, "{status}");
    let after = chain.usdc_balance(PAYER2.address).await.expect("USDC");
    assert_eq!(before - after, 10_000, "exactly the price");
}
