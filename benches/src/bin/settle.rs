//! Settled payments per second on anvil with Circle's `FiatTokenV2_2`, for several facilitators
//! on the same chain.
//!
//! ```text
//! cargo build --release -p x402-bench --bin settle -p x402-runtime-facilitator
//! target/release/settle [--smoke] [--seconds 10] [--out target/bench/settle.json]
//!     [--facilitator-bin target/release/x402-facilitator]
//! ```
//!
//! Every facilitator gets the same kind of pre-signed EIP-3009 payments (unique nonces, several
//! funded payers in turn), each sent as `verify` then `settle` (`settle` only after a valid
//! `verify`), with a fixed number in flight (8 and 64), for a bounded time:
//!
//! 1. `ours_inprocess`: [`LocalFacilitator`] called directly;
//! 2. `ours_standalone`: the `x402-facilitator` binary over HTTP on 127.0.0.1;
//! 3. `ts_official`: the official TypeScript facilitator (`@x402/core` + `@x402/evm`, viem
//!    wallet), `benches/peers/ts-facilitator/server.mjs`, over HTTP on 127.0.0.1.
//!
//! The two HTTP facilitators get identical bodies from the same client. After each run the chain
//! is read back: the merchant gained settled × price, each payer lost its settled payments ×
//! price, no two successes name one transaction, and every authorization is used on chain
//! exactly when its settlement answered success. A raw sender (pre-signed transactions with
//! local nonces, no facilitator) measures anvil's own rate, the ceiling of all of them.
//!
//! `--smoke`: about a second per run, concurrency 8, ours in process and the TypeScript peer.
//! `--only ours_inprocess,ours_standalone,ts_official,anvil` picks runs; `anvil` (a raw sender of
//! pre-signed transactions) runs only when named.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy::eips::eip2718::Encodable2718 as _;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder as _, TransactionBuilder as _};
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::Provider as _;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt as _;
use serde_json::json;
use x402_bench::fixture::{self, SignedPayment};
use x402_bench::machine::Machine;
use x402_bench::results::write_json;
use x402_bench::settlement::{RawRun, Reconciliation, SettleResults, SettleRun};
use x402_bench::stats;
use x402_runtime::Facilitator;
use x402_runtime::facilitator::HttpFacilitator;
use x402_runtime::proto::{FacilitatorRequest, PaymentRequired};
use x402_testbed::{Chain, ChainOptions, FiatToken};

/// Atomic USDC units per payment (0.001 USDC).
const PRICE: u64 = 1_000;
/// Funded payers signing in turn.
const PAYERS: usize = 8;
/// One gwei, in wei.
const GWEI: u128 = 1_000_000_000;
/// Payments settled before each measured run (not timed, but reconciled).
const WARM_UP: usize = 16;

struct Options {
    smoke: bool,
    seconds: f64,
    out: PathBuf,
    facilitator_bin: Option<PathBuf>,
    only: Option<Vec<String>>,
}

impl Options {
    fn parse() -> Result<Options, String> {
        let mut o = Options {
            smoke: false,
            seconds: 10.0,
            out: PathBuf::from("target/bench/settle.json"),
            facilitator_bin: std::env::var_os("X402_FACILITATOR_BIN").map(PathBuf::from),
            only: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            match arg.as_str() {
                "--smoke" => o.smoke = true,
                "--seconds" => {
                    o.seconds = value("--seconds")?
                        .parse()
                        .map_err(|e| format!("--seconds: {e}"))?;
                }
                "--out" => o.out = PathBuf::from(value("--out")?),
                "--facilitator-bin" => o.facilitator_bin = Some(value("--facilitator-bin")?.into()),
                "--only" => {
                    o.only = Some(value("--only")?.split(',').map(str::to_owned).collect());
                }
                other => return Err(format!("unknown argument {other}")),
            }
        }
        if o.smoke {
            o.seconds = o.seconds.min(1.0);
        }
        Ok(o)
    }

    fn concurrencies(&self) -> Vec<usize> {
        if self.smoke { vec![8] } else { vec![8, 64] }
    }

    fn wants(&self, id: &str) -> bool {
        let default = !self.smoke || matches!(id, "ours_inprocess" | "ts_official");
        match &self.only {
            Some(only) => only.iter().any(|o| o == id),
            None => default,
        }
    }
}

/// The payers: deterministic throwaway keys, funded with USDC at chain start.
fn payer_keys() -> Vec<String> {
    (0..PAYERS)
        .map(|i| keccak256(format!("x402 settlement benchmark payer {i}")).to_string())
        .collect()
}

/// The offer every payment pays: 0.001 USDC on the test bed's Base Sepolia to the merchant.
fn challenge() -> PaymentRequired {
    let value = json!({
        "x402Version": 2,
        "resource": {"url": "http://127.0.0.1/report", "description": "report", "mimeType": "application/json"},
        "accepts": [{
            "scheme": "exact",
            "network": x402_testbed::NETWORK,
            "amount": PRICE.to_string(),
            "asset": x402_testbed::USDC.to_checksum(None),
            "payTo": x402_testbed::MERCHANT.to_checksum(None),
            "maxTimeoutSeconds": 900,
            "extra": {"name": "USDC", "version": "2"}
        }]
    });
    serde_json::from_value(value).expect("a valid challenge")
}

/// A payment ready to send: who pays, its nonce, and the facilitator request body.
struct Prepared {
    payer: Address,
    nonce: B256,
    request: FacilitatorRequest,
}

fn prepare(challenge: &PaymentRequired, keys: &[&str], count: usize) -> Vec<Prepared> {
    let valid_before = x402_runtime::unix_now() + fixture::PAYMENT_LIFETIME;
    let offer = serde_json::to_value(&challenge.accepts[0]).expect("offer JSON");
    fixture::presign_payments(challenge, keys, count, valid_before)
        .into_iter()
        .map(
            |SignedPayment {
                 nonce,
                 payer,
                 header,
             }| {
                let payload: serde_json::Value =
                    serde_json::from_slice(&STANDARD.decode(header).expect("the header is base64"))
                        .expect("the header is JSON");
                let body = json!({
                    "x402Version": 2,
                    "paymentPayload": payload,
                    "paymentRequirements": offer,
                });
                let request =
                    serde_json::from_str(&body.to_string()).expect("a valid facilitator request");
                Prepared {
                    payer,
                    nonce,
                    request,
                }
            },
        )
        .collect()
}

/// What a facilitator answered for one payment.
#[derive(Clone, Debug)]
enum Answer {
    Settled(String),
    Not(String),
}

/// Verify, then settle when valid.
async fn pay_one<F: Facilitator>(facilitator: &F, request: &FacilitatorRequest) -> Answer {
    match facilitator.verify(request).await {
        Ok(v) if v.is_valid => {}
        Ok(v) => {
            return Answer::Not(format!(
                "verify: {}",
                v.invalid_reason.unwrap_or_else(|| "invalid".to_owned())
            ));
        }
        Err(e) => return Answer::Not(format!("verify error: {}", short(&e.to_string()))),
    }
    match facilitator.settle(request).await {
        Ok(s) if s.success => Answer::Settled(s.transaction),
        Ok(s) => Answer::Not(format!(
            "settle: {}",
            s.error_reason.unwrap_or_else(|| "failed".to_owned())
        )),
        Err(e) => Answer::Not(format!("settle error: {}", short(&e.to_string()))),
    }
}

fn short(text: &str) -> String {
    text.chars().take(120).collect()
}

/// Answers of one batch, by index, with each payment's latency (ns), and the batch's time.
struct Batch {
    answers: Vec<Option<(Answer, u64)>>,
    elapsed: Duration,
}

/// Sends `payments` through `facilitator`, `concurrency` at a time, starting no new payment
/// after `window`; the payments in flight then finish.
async fn drive<F: Facilitator>(
    facilitator: Arc<F>,
    payments: Arc<Vec<Prepared>>,
    concurrency: usize,
    window: Duration,
) -> Batch {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + window;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (facilitator, payments, next) = (facilitator.clone(), payments.clone(), next.clone());
        workers.spawn(async move {
            let mut done = Vec::new();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(payment) = payments.get(i) else {
                    break;
                };
                let start = Instant::now();
                let answer = pay_one(facilitator.as_ref(), &payment.request).await;
                let spent = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                done.push((i, answer, spent));
            }
            done
        });
    }
    let mut answers = vec![None; payments.len()];
    while let Some(done) = workers.join_next().await {
        for (i, answer, spent) in done.expect("a payment worker panicked") {
            answers[i] = Some((answer, spent));
        }
    }
    Batch {
        answers,
        elapsed: started.elapsed(),
    }
}

/// USDC balances of the merchant and the payers.
async fn balances(chain: &Chain, payers: &[Address]) -> Result<Vec<U256>, String> {
    let mut out = Vec::with_capacity(payers.len() + 1);
    for who in std::iter::once(&x402_testbed::MERCHANT).chain(payers) {
        out.push(
            chain
                .usdc_balance(*who)
                .await
                .map_err(|e| format!("balance of {who}: {e}"))?,
        );
    }
    Ok(out)
}

/// Checks a run's answers against the chain.
async fn reconcile(
    chain: &Chain,
    payers: &[Address],
    before: &[U256],
    sent: &[(&Prepared, Option<&Answer>)],
) -> Result<Reconciliation, String> {
    let after = balances(chain, payers).await?;
    let price = U256::from(PRICE);
    let mut per_payer: HashMap<Address, u64> = HashMap::new();
    let mut transactions = HashSet::new();
    let mut duplicates = 0;
    for (payment, answer) in sent {
        if let Some(Answer::Settled(tx)) = answer {
            *per_payer.entry(payment.payer).or_default() += 1;
            if !transactions.insert(tx.clone()) {
                duplicates += 1;
            }
        }
    }
    let settled: u64 = per_payer.values().sum();
    let gain = after[0] - before[0];
    let expected = price * U256::from(settled);
    let payers_mismatched = payers
        .iter()
        .enumerate()
        .filter(|(i, p)| {
            let drop = before[i + 1] - after[i + 1];
            drop != price * U256::from(per_payer.get(*p).copied().unwrap_or(0))
        })
        .count() as u64;
    let token = chain.token();
    let used: Vec<Result<bool, String>> = futures_util::stream::iter(sent.iter())
        .map(|(payment, _)| {
            let token = token.clone();
            async move {
                token
                    .authorizationState(payment.payer, payment.nonce)
                    .call()
                    .await
                    .map_err(|e| format!("authorizationState: {e}"))
            }
        })
        .buffered(16)
        .collect()
        .await;
    let mut authorization_mismatches = 0;
    for ((_, answer), used) in sent.iter().zip(used) {
        let settled = matches!(answer, Some(Answer::Settled(_)));
        if used? != settled {
            authorization_mismatches += 1;
        }
    }
    Ok(Reconciliation {
        payments: sent.len() as u64,
        settled,
        merchant_gain: gain.to_string(),
        expected_gain: expected.to_string(),
        payers_mismatched,
        duplicate_transactions: duplicates,
        authorization_mismatches,
        holds: gain == expected
            && payers_mismatched == 0
            && duplicates == 0
            && authorization_mismatches == 0,
    })
}

/// One facilitator at one concurrency: a warm-up, the measured window, the reconciliation.
async fn measure<F: Facilitator>(
    chain: &Chain,
    facilitator: Arc<F>,
    (id, title, ours): (&str, &str, bool),
    concurrency: usize,
    seconds: f64,
) -> Result<SettleRun, String> {
    let keys = payer_keys();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let payers: Vec<Address> = keys
        .iter()
        .map(|k| fixture::Payer::new(k).address())
        .collect();
    let challenge = challenge();
    // Enough for 3000 settlements a second; the window ends a run that goes faster.
    let count = ((seconds * 3000.0) as usize).max(200);
    let warm = Arc::new(prepare(&challenge, &keys, WARM_UP));
    let payments = Arc::new(prepare(&challenge, &keys, count));
    let before = balances(chain, &payers).await?;
    let warm_batch = drive(
        facilitator.clone(),
        warm.clone(),
        concurrency.min(WARM_UP),
        Duration::from_secs(60),
    )
    .await;
    let batch = drive(
        facilitator,
        payments.clone(),
        concurrency,
        Duration::from_secs_f64(seconds),
    )
    .await;
    let sent: Vec<(&Prepared, Option<&Answer>)> = warm
        .iter()
        .zip(&warm_batch.answers)
        .chain(payments.iter().zip(&batch.answers))
        .filter_map(|(p, a)| a.as_ref().map(|(a, _)| (p, Some(a))))
        .collect();
    let reconciliation = reconcile(chain, &payers, &before, &sent).await?;
    let mut latencies = Vec::new();
    let mut not_settled = BTreeMap::new();
    let mut settled = 0;
    for (answer, spent) in batch.answers.iter().flatten() {
        latencies.push(*spent);
        match answer {
            Answer::Settled(_) => settled += 1,
            Answer::Not(why) => *not_settled.entry(why.clone()).or_default() += 1,
        }
    }
    latencies.sort_unstable();
    let seconds = batch.elapsed.as_secs_f64();
    Ok(SettleRun {
        id: id.to_owned(),
        title: title.to_owned(),
        ours,
        concurrency,
        attempted: latencies.len() as u64,
        settled,
        seconds,
        settled_per_s: settled as f64 / seconds,
        latency: stats::percentiles(&latencies),
        not_settled,
        reconciliation,
    })
}

/// A child process killed (by its own id) when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// The repository this benchmark runs in: the working directory when it is one (as in
/// `scripts/bench.sh`), else the one this crate was built from.
fn repo_root() -> PathBuf {
    let here = std::env::current_dir().unwrap_or_default();
    if here.join(TS_SERVER).exists() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The TypeScript facilitator's script, from the repository root.
const TS_SERVER: &str = "benches/peers/ts-facilitator/server.mjs";

fn log_file(name: &str) -> Result<std::fs::File, String> {
    let dir = repo_root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::File::create(dir.join(name)).map_err(|e| format!("{name}: {e}"))
}

/// Waits until the facilitator at `server.url` answers `/supported`.
async fn ready(server: Server, name: &str) -> Result<(Server, HttpFacilitator), String> {
    let client = HttpFacilitator::with_timeouts(
        &server.url,
        Duration::from_secs(30),
        Duration::from_secs(60),
    )
    .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut server = server;
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!(
                "{name} exited ({status}); see target/bench/{name}.log"
            ));
        }
        if client.supported().await.is_ok() {
            return Ok((server, client));
        }
        if Instant::now() >= deadline {
            return Err(format!("{name} did not answer /supported within 30 s"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts the `x402-facilitator` binary on a free port, settling with the Rust gas key.
async fn start_standalone(bin: &Path, chain: &Chain) -> Result<(Server, HttpFacilitator), String> {
    let port = free_port()?;
    let log = log_file("x402-facilitator.log")?;
    let child = Command::new(bin)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--network",
            x402_testbed::NETWORK,
            "--receipt-timeout",
            "20",
        ])
        .env("X402_RPC_URL", chain.rpc_url())
        .env("X402_FACILITATOR_KEY", x402_testbed::FACILITATOR_KEY)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let url = format!("http://127.0.0.1:{port}");
    ready(Server { child, url }, "x402-facilitator").await
}

/// Starts the official TypeScript facilitator on a free port with its own gas key.
async fn start_ts(chain: &Chain) -> Result<(Server, HttpFacilitator), String> {
    let paths = chain.paths();
    let root = repo_root();
    let script = root.join(TS_SERVER);
    let interop = if root.join("interop/node_modules").exists() {
        root.join("interop")
    } else {
        paths.interop.clone()
    };
    let port = free_port()?;
    let log = log_file("ts-facilitator.log")?;
    let child = Command::new(&paths.node)
        .arg(&script)
        .env("PORT", port.to_string())
        .env("RPC", chain.rpc_url())
        .env("FACILITATOR_PK", x402_testbed::TS_FACILITATOR_KEY)
        .env("X402_INTEROP", &interop)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start node {}: {e}", script.display()))?;
    let url = format!("http://127.0.0.1:{port}");
    ready(Server { child, url }, "ts-facilitator").await
}

/// Where the `x402-facilitator` binary is: `--facilitator-bin`, `X402_FACILITATOR_BIN`, or next
/// to this binary.
fn facilitator_bin(options: &Options) -> Option<PathBuf> {
    if let Some(bin) = &options.facilitator_bin {
        return Some(bin.clone());
    }
    let here = std::env::current_exe().ok()?;
    let bin = here.parent()?.join("x402-facilitator");
    bin.exists().then_some(bin)
}

fn print(run: &SettleRun) {
    println!(
        "{:<16} c={:<3} settled {:>6} of {:>6} in {:>5.2} s: {:>7.1}/s  p50 {:>7.1} ms  p99 {:>7.1} ms  reconciled: {}  {:?}",
        run.id,
        run.concurrency,
        run.settled,
        run.attempted,
        run.seconds,
        run.settled_per_s,
        run.latency.p50 / 1e3,
        run.latency.p99 / 1e3,
        run.reconciliation.holds,
        run.not_settled,
    );
}

/// Runs `facilitator` at every concurrency, recording runs and problems.
async fn each_concurrency<F: Facilitator>(
    chain: &Chain,
    facilitator: Arc<F>,
    what: (&str, &str, bool),
    options: &Options,
    results: &mut SettleResults,
) {
    for c in options.concurrencies() {
        match measure(chain, facilitator.clone(), what, c, options.seconds).await {
            Ok(run) => {
                print(&run);
                if !run.reconciliation.holds {
                    results.failures.push(format!(
                        "{} at concurrency {c} does not reconcile: {:?}",
                        run.id, run.reconciliation
                    ));
                }
                if run.settled == 0 {
                    results.failures.push(format!(
                        "{} at concurrency {c} settled nothing: {:?}",
                        run.id, run.not_settled
                    ));
                }
                results.runs.push(run);
            }
            Err(e) => results
                .failures
                .push(format!("{} at concurrency {c}: {e}", what.0)),
        }
    }
}

/// Raw sender: `transferWithAuthorization` transactions signed locally with consecutive nonces
/// and fixed gas, each of `senders` keys sending its own in order, for at most `seconds`, then
/// counted as mined. Measures what anvil itself accepts and mines: a facilitator with that many
/// keys and no work of its own.
async fn anvil_rate(chain: &Chain, senders: usize, seconds: f64) -> Result<RawRun, String> {
    let provider = chain.provider();
    // Far above any base fee a run reaches: blocks fuller than half raise it 12.5 % each, and a
    // transaction priced under it would wait forever.
    let gas_price = provider.get_gas_price().await.map_err(|e| e.to_string())? + 1_000 * GWEI;
    let keys = payer_keys();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let count = ((seconds * 3000.0) as usize).max(200) / senders + 1;
    let valid_before = x402_runtime::unix_now() + fixture::PAYMENT_LIFETIME;
    let mut streams = Vec::with_capacity(senders);
    for k in 0..senders {
        let sender = raw_sender(senders * 1_000 + k);
        let _: serde_json::Value = provider
            .raw_request(
                "anvil_setBalance".into(),
                (sender.address(), U256::from(10u128.pow(24))),
            )
            .await
            .map_err(|e| format!("anvil_setBalance: {e}"))?;
        let nonce = provider
            .get_transaction_count(sender.address())
            .pending()
            .await
            .map_err(|e| e.to_string())?;
        let payments = fixture::presign_payments(&challenge(), &keys, count, valid_before);
        let wallet = EthereumWallet::from(sender);
        let mut raw = Vec::with_capacity(count);
        for (i, payment) in payments.iter().enumerate() {
            let tx = TransactionRequest::default()
                .with_to(x402_testbed::USDC)
                .with_input(transfer_input(payment, valid_before)?)
                .with_nonce(nonce + i as u64)
                .with_chain_id(x402_testbed::CHAIN_ID)
                .with_gas_limit(200_000)
                .with_gas_price(gas_price);
            let envelope = tx.build(&wallet).await.map_err(|e| e.to_string())?;
            raw.push(Bytes::from(envelope.encoded_2718()));
        }
        streams.push((wallet.default_signer().address(), nonce, raw));
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut workers = tokio::task::JoinSet::new();
    for (address, nonce, raw) in streams {
        let provider = provider.clone();
        workers.spawn(async move {
            let mut sent = 0u64;
            for tx in &raw {
                if Instant::now() >= deadline {
                    break;
                }
                let _pending = provider
                    .send_raw_transaction(tx)
                    .await
                    .map_err(|e| format!("eth_sendRawTransaction: {e}"))?;
                sent += 1;
            }
            Ok::<_, String>((address, nonce + sent, sent))
        });
    }
    let mut starts = Vec::new();
    while let Some(done) = workers.join_next().await {
        let (address, end, sent) = done.map_err(|e| e.to_string())??;
        starts.push((address, end - sent, end));
    }
    let (mined, at) = count_mined(chain, &starts).await?;
    let elapsed = at.duration_since(started).as_secs_f64();
    Ok(RawRun {
        senders,
        mined,
        seconds: elapsed,
        mined_per_s: mined as f64 / elapsed,
    })
}

/// Calldata of `transferWithAuthorization(from, to, value, validAfter, validBefore, nonce, v, r,
/// s)` for a pre-signed payment.
fn transfer_input(payment: &SignedPayment, valid_before: u64) -> Result<Bytes, String> {
    let json = STANDARD
        .decode(&payment.header)
        .map_err(|e| e.to_string())?;
    let payload: serde_json::Value = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
    let signature: Bytes = payload["payload"]["signature"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or("no signature")?;
    let call = FiatToken::transferWithAuthorization_1Call {
        from: payment.payer,
        to: x402_testbed::MERCHANT,
        value: U256::from(PRICE),
        validAfter: U256::ZERO,
        validBefore: U256::from(valid_before),
        nonce: payment.nonce,
        v: signature[64],
        r: B256::from_slice(&signature[..32]),
        s: B256::from_slice(&signature[32..64]),
    };
    Ok(call.abi_encode().into())
}

/// The raw sender's throwaway key number `k` (funded with `anvil_setBalance`).
fn raw_sender(k: usize) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&keccak256(format!(
        "x402 settlement benchmark raw sender {k}"
    )))
    .expect("a hash is a valid key")
}

/// Transactions of `(sender, first nonce, end nonce)` mined, and when the last was seen mined:
/// waits until all are, or until the count stops moving for 2 s (anvil mines on arrival, and
/// what arrived faster than it mined may wait for a block that never comes).
async fn count_mined(
    chain: &Chain,
    senders: &[(Address, u64, u64)],
) -> Result<(u64, Instant), String> {
    let mut last = (u64::MAX, Instant::now());
    loop {
        let mut mined = 0;
        let mut all = true;
        for (sender, first, end) in senders {
            let count = chain
                .provider()
                .get_transaction_count(*sender)
                .await
                .map_err(|e| e.to_string())?;
            mined += count.min(*end).saturating_sub(*first);
            all &= count >= *end;
        }
        if mined != last.0 {
            last = (mined, Instant::now());
        }
        if all || last.1.elapsed() > Duration::from_secs(2) {
            return Ok(last);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run(options: &Options) -> Result<SettleResults, String> {
    let keys = payer_keys();
    let payers: Vec<Address> = keys
        .iter()
        .map(|k| fixture::Payer::new(k).address())
        .collect();
    let chain = Chain::start_with(ChainOptions {
        payers: payers.clone(),
        ..ChainOptions::default()
    })
    .await
    .map_err(|e| format!("cannot start the chain: {e}"))?;
    let mut results = SettleResults {
        mode: if options.smoke { "smoke" } else { "full" }.to_owned(),
        machine: Machine::detect(),
        seconds: options.seconds,
        payers: payers.len(),
        price: PRICE,
        ..SettleResults::default()
    };
    if options.wants("ours_inprocess") {
        let local = Arc::new(fixture::chain_facilitator(chain.rpc_url()));
        let what = (
            "ours_inprocess",
            "ours, in process (LocalFacilitator)",
            true,
        );
        each_concurrency(&chain, local, what, options, &mut results).await;
    }
    if options.wants("ours_standalone") {
        match facilitator_bin(options) {
            Some(bin) => match start_standalone(&bin, &chain).await {
                Ok((_server, client)) => {
                    let what = (
                        "ours_standalone",
                        "ours, standalone x402-facilitator over HTTP",
                        true,
                    );
                    each_concurrency(&chain, Arc::new(client), what, options, &mut results).await;
                }
                Err(e) => results.failures.push(e),
            },
            None => results.failures.push(
                "x402-facilitator not found: build it (cargo build --release -p \
                 x402-runtime-facilitator) or pass --facilitator-bin"
                    .to_owned(),
            ),
        }
    }
    if options.wants("ts_official") {
        match start_ts(&chain).await {
            Ok((_server, client)) => {
                let what = (
                    "ts_official",
                    "official TypeScript (@x402/core + @x402/evm 2.27.0, viem) over HTTP",
                    false,
                );
                each_concurrency(&chain, Arc::new(client), what, options, &mut results).await;
            }
            Err(e) => results.failures.push(e),
        }
    }
    // anvil's own rate only on request: its raw sender stalls when transactions arrive faster
    // than anvil mines them (see `count_mined`), so its figure is a floor, not a ceiling.
    if options
        .only
        .as_ref()
        .is_some_and(|o| o.iter().any(|x| x == "anvil"))
    {
        for senders in [8, 64] {
            match anvil_rate(&chain, senders, options.seconds).await {
                Ok(raw) => {
                    println!(
                        "anvil raw      keys={senders:<3} mined {} in {:.2} s: {:.1}/s",
                        raw.mined, raw.seconds, raw.mined_per_s
                    );
                    results.anvil.push(raw);
                }
                Err(e) => results.failures.push(format!("anvil raw sender: {e}")),
            }
        }
    }
    Ok(results)
}

fn main() -> ExitCode {
    let options = match Options::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("settle: {e}");
            return ExitCode::from(2);
        }
    };
    if !x402_testbed::skip_unless_available("settle") {
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let results = match runtime.block_on(run(&options)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("settle: {e}");
            return ExitCode::FAILURE;
        }
    };
    for c in results.concurrencies() {
        if let (Some(ours), Some(peer)) = results.best(c) {
            println!(
                "concurrency {c}: ours {:.1}/s, best peer {:.1}/s: {:.2}×",
                ours.settled_per_s,
                peer.settled_per_s,
                ours.settled_per_s / peer.settled_per_s.max(f64::MIN_POSITIVE)
            );
        }
    }
    if let Err(e) = write_json(&options.out, &results) {
        eprintln!("settle: cannot write {}: {e}", options.out.display());
        return ExitCode::FAILURE;
    }
    println!("{}", x402_bench::settlement::markdown(&results));
    println!("settle: results in {}", options.out.display());
    if results.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        for f in &results.failures {
            eprintln!("settle: FAILED {f}");
        }
        ExitCode::FAILURE
    }
}
