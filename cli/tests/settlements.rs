//! `x402 settlements` against real settlement records: a `FileStore` written through the public
//! API with pending payments signed by the test payer (the `/settle` request recorded as the
//! server records it), listed by the built binary; and, on anvil with Circle's USDC, payments
//! settled for real by the local facilitator or left to expire, resolved from the chain and
//! recorded in the file.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use alloy::providers::Provider;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use x402_runtime::client::{PaymentSigner, SignedPayment};
use x402_runtime::facilitator::{Facilitator, LocalFacilitator};
use x402_runtime::proto::{FacilitatorRequest, PaymentRequired, PaymentRequirements, Requirements};
use x402_runtime::{FileStore, PostgresStore, RedisStore, ReplayKey, ReplayStore, Slot, unix_now};
use x402_testbed::{Chain, FACILITATOR_KEY, MERCHANT, NETWORK, PAYER, PAYER_KEY, USDC};

const RESOURCE: &str = "http://127.0.0.1:4021/weather?city=Paris";

/// A fresh directory for one test's record.
fn temp_dir(test: &str) -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "x402-settlements-{test}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The example's 0.001 USDC offer on Base Sepolia, valid `timeout` seconds.
fn offer(timeout: u64) -> PaymentRequirements {
    serde_json::from_value(json!({
        "scheme": "exact", "network": NETWORK, "amount": "1000",
        "asset": USDC.to_checksum(None), "payTo": MERCHANT.to_checksum(None),
        "maxTimeoutSeconds": timeout, "extra": {"name": "USDC", "version": "2"}
    }))
    .expect("offer")
}

/// A payment signed by the test payer, and the `/settle` request a server sends for it.
fn signed(timeout: u64) -> (SignedPayment, FacilitatorRequest) {
    let challenge: PaymentRequired = serde_json::from_value(json!({
        "x402Version": 2,
        "resource": {"url": RESOURCE, "mimeType": "application/json"},
        "accepts": [offer(timeout)],
    }))
    .expect("challenge");
    let payment = PaymentSigner::from_key(PAYER_KEY)
        .expect("key")
        .sign_v2(&challenge, 0)
        .expect("signed");
    let payload = STANDARD.decode(&payment.value).expect("base64");
    let payload: Value = serde_json::from_slice(&payload).expect("payment JSON");
    let request = FacilitatorRequest {
        x402_version: 2,
        payment_payload: serde_json::value::to_raw_value(&payload).expect("raw"),
        payment_requirements: Requirements::V2(offer(timeout)),
    };
    (payment, request)
}

fn key_of(payment: &SignedPayment) -> ReplayKey {
    let key = payment.replay_key();
    assert_eq!((key.network.as_str(), key.asset), (NETWORK, USDC.into()));
    key
}

fn valid_before(payment: &SignedPayment) -> u64 {
    payment.deadline()
}

/// Records `payment` as the paywall does when a settlement's outcome is unknown.
async fn record_pending(
    store: &dyn ReplayStore,
    payment: &SignedPayment,
    request: &FacilitatorRequest,
    transaction: &str,
    since: u64,
) {
    let key = key_of(payment);
    let keep_until = valid_before(payment) + 60 + 24 * 3600;
    store
        .reserve(&key, valid_before(payment) + 60)
        .await
        .expect("a fresh key");
    let slot = Slot::Pending {
        transaction: transaction.to_owned(),
        request: Some(serde_json::to_string(request).expect("request JSON")),
        since,
    };
    store.record(&key, slot, keep_until).await;
}

/// Runs `x402 args…`, bounded in time, without the environment's store or RPC.
async fn run_x402(args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_x402"));
    command
        .args(args)
        .env_remove("X402_STORE_PATH")
        .env_remove("X402_RPC_URL")
        .env_remove("X402_DATABASE_URL")
        .kill_on_drop(true);
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

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlements_lists_a_pending_payment_of_a_file_store() {
    let dir = temp_dir("list");
    let path = dir.join("x402-payments.redb");
    let (payment, request) = signed(60);
    let tx = format!("0x{}", "ab".repeat(32));
    let since = unix_now() - 192;
    {
        let store = FileStore::open(&path).expect("store");
        record_pending(&store, &payment, &request, &tx, since).await;
    }

    let listed = run_x402(&["settlements", "--store", path_arg(&path), "--json"]).await;
    assert_eq!(
        listed.status.code(),
        Some(1),
        "a payment is left unknown: {}",
        stderr(&listed)
    );
    let mut list: Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let entries = list.as_array_mut().expect("an array");
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = entries[0].as_object_mut().expect("an object");
    let age = entry.remove("ageSeconds").expect("ageSeconds");
    let age = age.as_u64().expect("a number");
    assert!((192..192 + 60).contains(&age), "{age}");
    let nonce = payment.nonce().to_string();
    assert_eq!(
        Value::Object(entry.clone()),
        json!({
            "key": format!("{NETWORK}/{USDC}/{PAYER}/{nonce}"),
            "state": "pending",
            "resource": RESOURCE,
            "payer": PAYER.to_checksum(None),
            "network": NETWORK,
            "asset": USDC.to_checksum(None),
            "nonce": nonce,
            "amount": "0.001",
            "currency": "USDC",
            "atomicAmount": "1000",
            "validBefore": valid_before(&payment),
            "since": since,
            "transaction": tx,
            "hasRequest": true,
            "resolution": null,
        })
    );

    // The table says the same.
    let table = run_x402(&["settlements", "--store", path_arg(&path)]).await;
    assert_eq!(table.status.code(), Some(1), "{}", stderr(&table));
    let text = stdout(&table);
    let lines: Vec<&str> = text.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "STATE",
            "AGE",
            "AMOUNT",
            "NETWORK",
            "PAYER",
            "TRANSACTION",
            "RESOURCE"
        ],
        "{text}"
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[0], "pending", "{text}");
    assert!(row[1].starts_with("3m") && row[1].ends_with('s'), "{text}");
    assert_eq!(
        &row[2..],
        ["0.001", "USDC", NETWORK, &PAYER.to_string(), &tx, RESOURCE]
    );
    assert!(
        text.contains("1 payment with an unknown outcome in")
            && text.contains("resolve them from the chain with --rpc-url"),
        "{text}"
    );

    // A running server holds the file: the error says how to get around it.
    let held = FileStore::open(&path).expect("store");
    let locked = run_x402(&["settlements", "--store", path_arg(&path)]).await;
    assert_eq!(locked.status.code(), Some(1));
    let why = stderr(&locked);
    assert!(
        why.contains("cannot open the settlement record")
            && why.contains("stop it and run this again")
            && why.contains("--redis URL"),
        "{why}"
    );
    drop(held);

    // A path with no record is an error, not a new empty file.
    let missing = dir.join("nope.redb");
    let absent = run_x402(&["settlements", "--store", path_arg(&missing)]).await;
    assert_eq!(absent.status.code(), Some(1));
    assert!(
        stderr(&absent).contains("no settlement record at"),
        "{}",
        stderr(&absent)
    );
    assert!(!missing.exists());

    // An empty record: nothing unknown, exit 0.
    let empty = dir.join("empty.redb");
    drop(FileStore::open(&empty).expect("store"));
    let none = run_x402(&["settlements", "--store", path_arg(&empty), "--json"]).await;
    assert!(none.status.success(), "{}", stderr(&none));
    assert_eq!(
        serde_json::from_slice::<Value>(&none.stdout).expect("JSON"),
        json!([])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Redis URL of the test command (`scripts/test.sh` starts one), or `None` outside CI.
fn redis_url(test: &str) -> Option<String> {
    match std::env::var("X402_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: X402_TEST_REDIS_URL is not set; run the tests with scripts/test.sh")
        }
        _ => {
            eprintln!(
                "SKIPPED {test}: X402_TEST_REDIS_URL is not set (scripts/test.sh starts a redis-server)"
            );
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlements_lists_a_pending_payment_of_the_shared_redis_store() {
    let test = "settlements_lists_a_pending_payment_of_the_shared_redis_store";
    let Some(url) = redis_url(test) else {
        return;
    };
    // A prefix of its own, so that other tests' keys in the same Redis are not listed.
    let prefix = format!(
        "x402-settlements-test-{}-{}",
        std::process::id(),
        unix_now()
    );
    let store = RedisStore::connect_with_prefix(&url, &prefix)
        .await
        .expect("redis");
    let (payment, request) = signed(60);
    let since = unix_now() - 5;
    record_pending(&store, &payment, &request, "", since).await;

    let listed = run_x402(&[
        "settlements",
        "--redis",
        &url,
        "--redis-prefix",
        &prefix,
        "--json",
    ])
    .await;
    assert_eq!(listed.status.code(), Some(1), "{}", stderr(&listed));
    let list: Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let entries = list.as_array().expect("array");
    assert_eq!(entries.len(), 1, "{list}");
    let entry = &entries[0];
    assert_eq!(entry["state"], "pending");
    assert_eq!(entry["nonce"], payment.nonce().to_string());
    assert_eq!(entry["payer"], PAYER.to_checksum(None));
    assert_eq!(entry["amount"], "0.001");
    assert_eq!(entry["currency"], "USDC");
    assert_eq!(entry["resource"], RESOURCE);
    assert_eq!(entry["since"], since);
    assert_eq!(entry["transaction"], Value::Null);

    // `--store` and `--redis` name two different records: refused.
    let both = run_x402(&["settlements", "--redis", &url, "--store", "x.redb"]).await;
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
}

/// Records `payment` settled by `transaction`, as the paywall does: settling with the `/settle`
/// request, then the outcome.
async fn record_settled(
    store: &dyn ReplayStore,
    payment: &SignedPayment,
    request: &FacilitatorRequest,
    transaction: &str,
) {
    let key = key_of(payment);
    store
        .reserve(&key, valid_before(payment) + 60)
        .await
        .expect("a fresh key");
    let settling = Slot::Settling {
        request: Some(serde_json::to_string(request).expect("request JSON")),
        since: unix_now(),
    };
    store
        .record(&key, settling, valid_before(payment) + 60)
        .await;
    assert!(store.credit(transaction, &key).await);
    let settled = Slot::Settled {
        transaction: transaction.to_owned(),
    };
    store
        .record(&key, settled, valid_before(payment) + 60 + 24 * 3600)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlements_exports_the_postgres_ledger_as_csv_and_json() {
    let Some(url) = x402_testbed::postgres_database("cli_ledger").await else {
        return;
    };
    let store = PostgresStore::connect(&url).await.expect("postgres");
    let before = unix_now();
    let payments: Vec<_> = (0..3).map(|_| signed(60)).collect();
    let txs: Vec<String> = (1..=2u8)
        .map(|n| format!("0x{}", format!("{n:02x}").repeat(32)))
        .collect();
    record_settled(&store, &payments[0].0, &payments[0].1, &txs[0]).await;
    record_settled(&store, &payments[1].0, &payments[1].1, &txs[1]).await;
    record_pending(&store, &payments[2].0, &payments[2].1, "", unix_now()).await;

    let exported = run_x402(&["settlements", "--postgres", &url, "--ledger", "--csv"]).await;
    assert_eq!(exported.status.code(), Some(0), "{}", stderr(&exported));
    let mut reader = csv::Reader::from_reader(exported.stdout.as_slice());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        &header[..5],
        ["created_at", "state", "network", "payer", "amount"]
    );
    let column = |name: &str| header.iter().position(|h| h == name).expect(name);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a CSV row")).collect();
    assert_eq!(rows.len(), 3, "{}", stdout(&exported));
    let mut settled: Vec<&str> = rows
        .iter()
        .filter(|r| &r[column("state")] == "settled")
        .map(|r| &r[column("transaction")])
        .collect();
    settled.sort_unstable();
    assert_eq!(settled, [txs[0].as_str(), txs[1].as_str()]);
    for row in &rows {
        assert_eq!(&row[column("payer")], PAYER.to_checksum(None));
        assert_eq!(&row[column("amount")], "0.001");
        assert_eq!(&row[column("currency")], "USDC");
        assert_eq!(&row[column("atomic_amount")], "1000");
        assert_eq!(&row[column("route")], "/weather");
        // The resource URL has a query: quoted only if it needs it, and read back whole.
        assert_eq!(&row[column("resource")], RESOURCE);
        assert_eq!(&row[column("pay_to")], MERCHANT.to_string().to_lowercase());
        assert!(row[column("created_at")].ends_with('Z'), "{row:?}");
    }
    let pending = rows
        .iter()
        .find(|r| &r[column("state")] == "pending")
        .expect("pending");
    assert_eq!(&pending[column("settled_at")], "");

    // Narrowed: one transaction, as JSON.
    let one = run_x402(&[
        "settlements",
        "--postgres",
        &url,
        "--ledger",
        "--transaction",
        &txs[1].to_uppercase().replace("0X", "0x"),
        "--json",
    ])
    .await;
    assert_eq!(one.status.code(), Some(0), "{}", stderr(&one));
    let list: Value = serde_json::from_slice(&one.stdout).expect("JSON");
    let entries = list.as_array().expect("array");
    assert_eq!(entries.len(), 1, "{list}");
    assert_eq!(entries[0]["nonce"], payments[1].0.nonce().to_string());
    assert_eq!(entries[0]["state"], "settled");
    assert_eq!(entries[0]["atomicAmount"], "1000");
    assert!(entries[0]["settledAt"].is_string(), "{list}");

    // By state and time; by another payer (none); by the environment's URL.
    let since = before.to_string();
    let by_state = run_x402(&[
        "settlements",
        "--postgres",
        &url,
        "--ledger",
        "--state",
        "settled",
        "--since",
        &since,
        "--route",
        "/weather",
        "--csv",
    ])
    .await;
    assert_eq!(
        stdout(&by_state).lines().count(),
        3,
        "{}",
        stdout(&by_state)
    );
    let later = run_x402(&[
        "settlements",
        "--postgres",
        &url,
        "--ledger",
        "--until",
        "2000-01-01",
        "--csv",
    ])
    .await;
    assert_eq!(
        stdout(&later).lines().count(),
        1,
        "the header only: {}",
        stdout(&later)
    );
    let other = run_x402(&[
        "settlements",
        "--postgres",
        &url,
        "--ledger",
        "--payer",
        &MERCHANT.to_string(),
        "--json",
    ])
    .await;
    assert_eq!(
        serde_json::from_slice::<Value>(&other.stdout).expect("JSON"),
        json!([])
    );

    // Without --ledger, the unknown outcomes, as for the other stores; from $X402_DATABASE_URL.
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_x402"));
    command
        .args(["settlements", "--json"])
        .env("X402_DATABASE_URL", &url)
        .env_remove("X402_STORE_PATH")
        .env_remove("X402_RPC_URL")
        .kill_on_drop(true);
    let listed = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("in time")
        .expect("ran");
    assert_eq!(listed.status.code(), Some(1), "{}", stderr(&listed));
    let list: Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let entries = list.as_array().expect("array");
    assert_eq!(entries.len(), 1, "{list}");
    assert_eq!(entries[0]["nonce"], payments[2].0.nonce().to_string());

    // --ledger reads Postgres only; a bad time is refused by the parser.
    let no_store = run_x402(&["settlements", "--ledger"]).await;
    assert_eq!(no_store.status.code(), Some(1));
    assert!(
        stderr(&no_store).contains("--postgres URL"),
        "{}",
        stderr(&no_store)
    );
    let bad_time = run_x402(&[
        "settlements",
        "--postgres",
        &url,
        "--ledger",
        "--since",
        "yesterday",
    ])
    .await;
    assert_eq!(bad_time.status.code(), Some(2), "{}", stderr(&bad_time));
}

/// A raw JSON-RPC call to anvil.
async fn anvil(chain: &Chain, method: &'static str, params: Value) {
    chain
        .provider()
        .raw_request::<_, Value>(method.into(), params)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlements_resolves_payments_from_the_chain_and_records_them() {
    let test = "settlements_resolves_payments_from_the_chain_and_records_them";
    if !x402_testbed::skip_unless_available(test) {
        return;
    }
    let chain = Chain::start().await.expect("chain");
    let facilitator = LocalFacilitator::builder()
        .network(NETWORK)
        .rpc_url(NETWORK, chain.rpc_url())
        .signer_key(NETWORK, FACILITATOR_KEY)
        .receipt_timeout(Duration::from_secs(10))
        .build()
        .expect("facilitator");

    // Settled on chain, but the server never learnt it (its answer was lost).
    let (settled, settled_request) = signed(60);
    let answer = facilitator.settle(&settled_request).await.expect("settle");
    assert!(answer.success, "{answer:?}");
    let transaction = answer.transaction;
    // Never sent, valid for 5 s: dead once the chain is past its validBefore.
    let (expired, expired_request) = signed(5);
    // Never sent and still valid: the chain cannot tell yet.
    let (live, live_request) = signed(3600);

    let dir = temp_dir("resolve");
    let path = dir.join("x402-payments.redb");
    let since = unix_now() - 30;
    {
        let store = FileStore::open(&path).expect("store");
        record_pending(&store, &settled, &settled_request, "", since).await;
        record_pending(&store, &expired, &expired_request, "", since).await;
        record_pending(&store, &live, &live_request, "", since).await;
    }
    // The chain's clock moves well past the short authorization's validBefore (and the
    // 30 s margin the reader requires), not past the long one's.
    anvil(&chain, "evm_increaseTime", json!([120])).await;
    anvil(&chain, "evm_mine", json!([])).await;

    let resolved = run_x402(&[
        "settlements",
        "--store",
        path_arg(&path),
        "--rpc-url",
        chain.rpc_url(),
        "--json",
    ])
    .await;
    assert_eq!(
        resolved.status.code(),
        Some(1),
        "one payment is still unknown: {}",
        stderr(&resolved)
    );
    let list: Value = serde_json::from_slice(&resolved.stdout).expect("JSON");
    let resolution = |payment: &SignedPayment| {
        let nonce = payment.nonce().to_string();
        list.as_array()
            .expect("array")
            .iter()
            .find(|e| e["nonce"] == nonce.as_str())
            .unwrap_or_else(|| panic!("{nonce} not listed: {list}"))["resolution"]
            .clone()
    };
    assert_eq!(
        resolution(&settled),
        json!({"outcome": "settled", "transaction": transaction, "error": null})
    );
    assert_eq!(
        resolution(&expired),
        json!({"outcome": "expired_unsettled", "transaction": null, "error": null})
    );
    assert_eq!(
        resolution(&live),
        json!({"outcome": "unknown", "transaction": null, "error": null})
    );

    // The outcomes are in the record: a resend is answered from it.
    {
        let store = FileStore::open(&path).expect("store after the command");
        assert_eq!(
            store.lookup(&key_of(&settled)).await,
            Some(Slot::Settled {
                transaction: transaction.clone()
            })
        );
        assert_eq!(
            store.lookup(&key_of(&expired)).await,
            Some(Slot::ExpiredUnsettled)
        );
        assert!(
            matches!(
                store.lookup(&key_of(&live)).await,
                Some(Slot::Pending { .. })
            ),
            "the live one stays pending"
        );
    }

    // The table shows what is left, resolved again: still unknown.
    let table = run_x402(&[
        "settlements",
        "--store",
        path_arg(&path),
        "--rpc-url",
        chain.rpc_url(),
    ])
    .await;
    assert_eq!(table.status.code(), Some(1), "{}", stderr(&table));
    let text = stdout(&table);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("STATE    RESOLVED  AGE"), "{text}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..2], ["pending", "unknown"], "{text}");
    assert_eq!(lines.len(), 4, "only the live payment is left:\n{text}");
    assert!(
        text.contains("0 settled, 0 expired unsettled (recorded); 1 still unknown"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
