//! `x402 doctor` run as a binary on real configurations: anvil with Circle's FiatTokenV2_2 as
//! Base Sepolia (the test bed), facilitator doubles on 127.0.0.1 answering `/supported` (for
//! every network, for another network only, or 401), a port with nothing listening, and real
//! redb records (missing, present, held open by this process as a running server would).
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use x402_runtime::FileStore;
use x402_testbed::{Chain, EURC, MERCHANT, NETWORK, PAYER};

// The dev-dependency is for the other tests of this crate.
use example_weather as _;

/// A facilitator double: `/supported` answers `status` listing `exact` v2 on `networks`.
async fn facilitator(status: StatusCode, networks: &[&str]) -> String {
    let kinds: Vec<Value> = networks
        .iter()
        .map(|n| json!({"x402Version": 2, "scheme": "exact", "network": n}))
        .collect();
    let body = json!({"kinds": kinds, "extensions": [], "signers": {}});
    let app = Router::new().route(
        "/supported",
        get(move || {
            let body = body.clone();
            async move { (status, axum::Json(body)) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

/// A loopback URL nothing listens on.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{address}")
}

/// A fresh folder for one test.
fn temp_dir(test: &str) -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "x402-doctor-{test}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs `x402 doctor args…` with exactly `env` as its environment, in `dir`, bounded in time.
async fn doctor(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_x402"));
    command
        .arg("doctor")
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir)
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .expect("x402 doctor finished in time")
        .expect("x402 doctor ran")
}

/// `doctor --json`: the exit code and the document.
async fn report(dir: &Path, env: &[(&str, &str)]) -> (Option<i32>, Value) {
    let output = doctor(dir, &["--json"], env).await;
    let text = String::from_utf8_lossy(&output.stdout);
    let document: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {text}\n{}", stderr(&output)));
    (output.status.code(), document)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The check named `name` of a report.
fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

fn names(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_owned())
        .collect()
}

/// Asserts the check failed, its detail says `says`, and it has a fix saying `fix_says`.
fn failed(report: &Value, name: &str, says: &str, fix_says: &str) {
    let check = check(report, name);
    assert_eq!(check["status"], "fail", "{check:#}");
    let detail = check["detail"].as_str().expect("detail");
    assert!(detail.contains(says), "{name}: {detail}");
    let fix = check["fix"].as_str().expect("a fix");
    assert!(fix.contains(fix_says), "{name}: {fix}");
}

fn status<'a>(report: &'a Value, name: &str) -> &'a str {
    check(report, name)["status"].as_str().expect("status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_without_an_rpc_url_skips_the_chain_and_names_the_variable() {
    let dir = temp_dir("no-rpc");
    let facilitator = facilitator(StatusCode::OK, &[NETWORK]).await;
    let pay_to = MERCHANT.to_checksum(None);
    let env = [
        ("X402_PAY_TO", pay_to.as_str()),
        ("X402_NETWORK", NETWORK),
        ("X402_FACILITATOR_URL", facilitator.as_str()),
        ("X402_STORE_PATH", "memory"),
    ];
    let (code, report) = report(&dir, &env).await;
    assert_eq!(code, Some(0), "warnings and skips do not fail: {report:#}");
    assert_eq!(report["ok"], true);
    assert_eq!(
        names(&report),
        [
            "payTo",
            "config",
            "facilitator",
            "facilitator/networks",
            "rpc/eip155:84532",
            "store"
        ]
    );
    let rpc = check(&report, "rpc/eip155:84532");
    assert_eq!(rpc["status"], "skipped");
    assert!(
        rpc["detail"]
            .as_str()
            .expect("detail")
            .contains("set X402_RPC_URL_84532 (or X402_RPC_URL"),
        "{rpc}"
    );
    assert_eq!(status(&report, "store"), "warn");
    assert!(
        check(&report, "store")["detail"]
            .as_str()
            .expect("detail")
            .contains("memory only")
    );

    // A configuration that does not parse: the runtime's message, and nothing else is run.
    let env = [
        ("X402_PAY_TO", pay_to.as_str()),
        ("X402_NETWORK", "base-sepolia"),
    ];
    let (code, report) = self::report(&dir, &env).await;
    assert_eq!(code, Some(1));
    failed(&report, "config", "eip155:<chain id>", "X402::from_env");
    for name in ["facilitator", "facilitator/networks", "store"] {
        assert_eq!(status(&report, name), "skipped", "{name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes `name` (under 32 bytes) into the storage slot that holds the token's `name` (found as
/// the first slot holding `current`, which precedes the symbol in FiatToken's layout).
async fn rename_token(chain: &Chain, current: &str, name: &str) {
    let short = |text: &str| {
        let mut word = [0u8; 32];
        word[..text.len()].copy_from_slice(text.as_bytes());
        word[31] = u8::try_from(text.len() * 2).expect("short string");
        U256::from_be_bytes(word)
    };
    let provider = chain.provider();
    let mut slot = None;
    for index in 0..32u64 {
        let value = provider
            .get_storage_at(EURC, U256::from(index))
            .await
            .expect("storage");
        if value == short(current) {
            slot = Some(index);
            break;
        }
    }
    let slot = slot.expect("the name slot");
    provider
        .raw_request::<_, Value>(
            "anvil_setStorageAt".into(),
            (EURC, B256::from(U256::from(slot)), B256::from(short(name))),
        )
        .await
        .expect("anvil_setStorageAt");
    let renamed = chain.token_at(EURC).name().call().await.expect("name()");
    assert_eq!(renamed, name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_on_the_test_bed_passes_a_right_deployment_and_explains_a_broken_one() {
    let test = "doctor_on_the_test_bed_passes_a_right_deployment_and_explains_a_broken_one";
    if !x402_testbed::skip_unless_available(test) {
        return;
    }
    let chain = Chain::start().await.expect("chain");
    chain
        .plant_eurc(&[PAYER], U256::from(1_000_000u64))
        .await
        .expect("EURC");
    let dir = temp_dir("testbed");
    let record = dir.join("records/x402-payments.redb");
    let record_arg = record.to_str().expect("UTF-8 path");
    let good = facilitator(StatusCode::OK, &[NETWORK]).await;
    let pay_to = MERCHANT.to_checksum(None);
    let rpc = chain.rpc_url().to_owned();
    let env = [
        ("X402_PAY_TO", pay_to.as_str()),
        ("X402_NETWORK", NETWORK),
        ("X402_FACILITATOR_URL", good.as_str()),
        ("X402_RPC_URL", rpc.as_str()),
        ("X402_STORE_PATH", record_arg),
    ];

    // Right: every check passes. The record did not exist: probed, then removed again.
    chain.mine().await.expect("mine");
    let (code, report) = report(&dir, &env).await;
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["ok"], true);
    assert_eq!(
        names(&report),
        [
            "payTo",
            "config",
            "facilitator",
            "facilitator/networks",
            "rpc/eip155:84532",
            "clock/eip155:84532",
            "token/eip155:84532/USDC",
            "token/eip155:84532/EURC",
            "store"
        ]
    );
    for check in report["checks"].as_array().expect("checks") {
        assert_eq!(check["status"], "pass", "{check:#}");
        assert_eq!(check["fix"], Value::Null, "{check:#}");
    }
    let usdc = check(&report, "token/eip155:84532/USDC")["detail"]
        .as_str()
        .expect("detail");
    assert!(
        usdc.contains("name \"USDC\" version \"2\"") && usdc.contains("DOMAIN_SEPARATOR matches"),
        "{usdc}"
    );
    assert!(!record.exists() && !dir.join("records").exists());

    // The same as text; the record exists now, and is probed in place.
    drop(FileStore::open(&record).expect("record"));
    chain.mine().await.expect("mine");
    let text = doctor(&dir, &[], &env).await;
    assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
    let shown = String::from_utf8_lossy(&text.stdout);
    assert!(
        shown.starts_with("PASS  payTo ") && shown.contains("\nPASS  store "),
        "{shown}"
    );
    assert!(
        shown.ends_with("9 passed, 0 warnings, 0 failed, 0 skipped: ready\n"),
        "{shown}"
    );
    assert!(record.exists());

    // A running server holds the record: a warning, not a failure.
    let held = FileStore::open(&record).expect("record");
    let (code, report) = self::report(&dir, &env).await;
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(status(&report, "store"), "warn");
    assert!(
        check(&report, "store")["detail"]
            .as_str()
            .expect("detail")
            .contains("in use by a running server")
    );
    drop(held);

    broken_deployments(&chain, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Everything wrong at once, then each facilitator failure on its own.
async fn broken_deployments(chain: &Chain, dir: &Path) {
    // The recipient's case is wrong; Base mainnet is served by the Base Sepolia node; EURC's
    // EIP-712 name is not the offer's; nothing listens at the facilitator's port; the record's
    // folder is a file. The RPC URL carries a password that must not be shown.
    rename_token(chain, "EURC", "Euro Coin").await;
    let lower = MERCHANT.to_checksum(None).to_lowercase();
    let closed = closed_port().await;
    let port = chain.port();
    let rpc = format!("http://doctor:s3cret-pw@127.0.0.1:{port}");
    std::fs::write(dir.join("blocker"), b"a file").expect("blocker");
    let record = dir.join("blocker/x402-payments.redb");
    let record = record.to_str().expect("UTF-8 path");
    let env = [
        ("X402_PAY_TO", lower.as_str()),
        ("X402_NETWORK", "eip155:84532,eip155:8453"),
        ("X402_FACILITATOR_URL", closed.as_str()),
        ("X402_RPC_URL", rpc.as_str()),
        ("X402_STORE_PATH", record),
    ];
    chain.mine().await.expect("mine");
    let output = doctor(dir, &["--json"], &env).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let shown = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(!shown.contains("s3cret-pw"), "a password is shown: {shown}");
    let report: Value = serde_json::from_str(&shown).expect("JSON");
    assert_eq!(report["ok"], false);
    let checksummed = MERCHANT.to_checksum(None);
    failed(&report, "payTo", "not EIP-55 checksummed", &checksummed);
    assert_eq!(status(&report, "config"), "pass");
    failed(
        &report,
        "facilitator",
        "unreachable",
        "X402_FACILITATOR_URL",
    );
    assert_eq!(status(&report, "facilitator/networks"), "skipped");
    assert_eq!(status(&report, "rpc/eip155:84532"), "pass");
    failed(
        &report,
        "rpc/eip155:8453",
        "serves chain 84532, not 8453",
        "set X402_RPC_URL to a node of chain 8453",
    );
    assert_eq!(status(&report, "token/eip155:84532/USDC"), "pass");
    failed(
        &report,
        "token/eip155:84532/EURC",
        "is name \"Euro Coin\" version \"2\"",
        "eip712_name \"Euro Coin\"",
    );
    failed(&report, "store", "blocker", "X402_STORE_PATH");
    let text = doctor(dir, &[], &env).await;
    assert_eq!(text.status.code(), Some(1));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("FAIL  payTo") && text.contains("fix: copy the address"),
        "{text}"
    );
    assert!(
        text.contains("NOT ready") && !text.contains("s3cret-pw"),
        "{text}"
    );

    // The facilitator refuses the credentials (401); EURC's address has no code.
    chain
        .set_code(EURC, Vec::<u8>::new())
        .await
        .expect("set_code");
    let refusing = facilitator(StatusCode::UNAUTHORIZED, &[NETWORK]).await;
    let pay_to = MERCHANT.to_checksum(None);
    let rpc = chain.rpc_url();
    let env = [
        ("X402_PAY_TO", pay_to.as_str()),
        ("X402_FACILITATOR_URL", refusing.as_str()),
        ("X402_RPC_URL", rpc),
        ("X402_STORE_PATH", "memory"),
    ];
    chain.mine().await.expect("mine");
    let (code, report) = self::report(dir, &env).await;
    assert_eq!(code, Some(1), "{report:#}");
    failed(
        &report,
        "facilitator",
        "refused the credentials",
        "credentials",
    );
    failed(
        &report,
        "token/eip155:84532/EURC",
        "no contract at this address",
        "not deployed",
    );

    // The facilitator answers, for another network only.
    let elsewhere = facilitator(StatusCode::OK, &["eip155:8453"]).await;
    let env = [
        ("X402_PAY_TO", pay_to.as_str()),
        ("X402_FACILITATOR_URL", elsewhere.as_str()),
        ("X402_STORE_PATH", "memory"),
    ];
    let (code, report) = self::report(dir, &env).await;
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(status(&report, "facilitator"), "pass");
    failed(
        &report,
        "facilitator/networks",
        "does not support `exact` (x402 v2) on eip155:84532",
        "X402_NETWORK",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_probes_a_postgres_ledger_and_hides_its_password() {
    let Some(url) = x402_testbed::postgres_database("doctor_postgres").await else {
        return;
    };
    let dir = temp_dir("postgres");
    let facilitator = facilitator(StatusCode::OK, &[NETWORK]).await;
    let pay_to = MERCHANT.to_checksum(None);
    let base = [
        ("X402_PAY_TO", pay_to.as_str()),
        ("X402_NETWORK", NETWORK),
        ("X402_FACILITATOR_URL", facilitator.as_str()),
    ];
    let env = [&base[..], &[("X402_DATABASE_URL", url.as_str())]].concat();
    let (code, report) = report(&dir, &env).await;
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(status(&report, "store"), "pass", "{report:#}");
    let detail = check(&report, "store")["detail"].as_str().expect("detail");
    assert!(
        detail.contains("probe row written and rolled back"),
        "{detail}"
    );

    // Nothing listens there: a failure with its fix, and the password is not shown.
    let port = closed_port().await;
    let port = port.rsplit(':').next().expect("port");
    let down = format!("postgres://x402:hunter2@127.0.0.1:{port}/shop");
    let env = [&base[..], &[("X402_DATABASE_URL", down.as_str())]].concat();
    let (code, report) = self::report(&dir, &env).await;
    assert_eq!(code, Some(1));
    failed(&report, "store", "127.0.0.1", "X402_DATABASE_URL");
    assert!(!report.to_string().contains("hunter2"), "{report:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_a_permit2_token_and_the_permit2_contracts() {
    let test = "doctor_checks_a_permit2_token_and_the_permit2_contracts";
    if !x402_testbed::skip_unless_available(test) {
        return;
    }
    // Without Permit2 on the chain, then with it planted.
    let chain = Chain::start().await.expect("chain");
    chain
        .plant_eurc(&[PAYER], U256::from(1_000_000u64))
        .await
        .expect("EURC");
    let token = chain
        .deploy_plain_token("Tether USD", "USDT", 6)
        .await
        .expect("token");
    let dir = temp_dir("permit2");
    let good = facilitator(StatusCode::OK, &[NETWORK]).await;
    let pay_to = MERCHANT.to_checksum(None);
    let rpc = chain.rpc_url().to_owned();
    let tokens = format!("USDT@{NETWORK}={}", token.to_checksum(None));
    let env = [
        ("X402_PAY_TO", pay_to.as_str()),
        ("X402_NETWORK", NETWORK),
        ("X402_FACILITATOR_URL", good.as_str()),
        ("X402_RPC_URL", rpc.as_str()),
        ("X402_STORE_PATH", "memory"),
        ("X402_TOKENS", tokens.as_str()),
    ];
    chain.mine().await.expect("mine");
    let (code, report) = report(&dir, &env).await;
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        status(&report, "token/eip155:84532/USDT"),
        "pass",
        "{report:#}"
    );
    let missing = check(&report, "permit2/eip155:84532");
    assert_eq!(missing["status"], "fail", "{missing:#}");
    let detail = missing["detail"].as_str().expect("detail");
    assert!(
        detail.contains("Permit2 (0x000000000022D473030F116dDEE9F6B43aC78BA3)")
            && detail.contains("exact Permit2 proxy")
            && detail.contains("upto Permit2 proxy"),
        "{detail}"
    );

    chain.plant_permit2().await.expect("Permit2");
    chain.mine().await.expect("mine");
    let (code, report) = self::report(&dir, &env).await;
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(
        status(&report, "permit2/eip155:84532"),
        "pass",
        "{report:#}"
    );
    let names = names(&report);
    let at = |name: &str| names.iter().position(|n| n == name).expect(name);
    assert!(
        at("token/eip155:84532/USDT") < at("permit2/eip155:84532"),
        "{names:?}"
    );
}
