//! A paid load run with ledger reconciliation (the reliability plan's "paid, mock facilitator"
//! run: at least 1,000 paid requests per second for 60 s, 0 lost, 0 double settled, 0 unpaid):
//! the example weather API (`example_weather::app`, `GET /weather?city=Paris` at 0.001 USDC)
//! behind the paywall, wired to a facilitator double over HTTP, fed pre-signed EIP-3009
//! payments at a fixed rate with a small share of deliberate replays; then the client's ledger
//! (every response) is reconciled with the double's (every `/verify` and `/settle` call).
//!
//! ```text
//! cargo run --release -p x402-bench --locked --bin ledger -- --seconds 60
//!     [--rate 1100] [--concurrency 64] [--replays 0.01] [--min-rate 1000]
//!     [--out target/bench/ledger.json] [--smoke]
//! ```
//!
//! - The double (axum on 127.0.0.1, its own runtime) parses every call as a facilitator does,
//!   checks the payment against the requirements (scheme, network, amount, recipient), answers
//!   `/verify` after 5 ms and `/settle` after 20 ms (`tokio::time::sleep`), records each call
//!   with the payment's nonce and payer, and settles a nonce once: the transaction is
//!   `keccak256(chain id ‖ payer ‖ nonce)` ([`fixture::settlement_transaction`]); a nonce it
//!   has already settled gets `invalid_exact_evm_nonce_already_used`, as on chain.
//! - Every payment has a fresh nonce and is signed before the run, valid for the offer's
//!   `maxTimeoutSeconds` as an x402 client signs it. The paywall wants
//!   `validBefore ≥ now + settle timeout + 6 s`, so the configuration offers
//!   `maxTimeoutSeconds = run length + 300 s` and payments signed before the run stay valid
//!   through it.
//! - The paywall is `X402::new` (the HTTP facilitator client for the configured URL, the
//!   in-memory replay store), as the example's `main` builds it.
//! - Fresh payments are due at `--rate` per second. After every `1 / --replays` of them comes a
//!   replay of a payload already used, alternately the payment just sent (1 ms after it, while
//!   it is in flight) and one sent half a second earlier (after its answer). A replay must get
//!   409 and never reach `/verify` or `/settle`; one sent after a delivered original must name
//!   the original's transaction.
//! - `--concurrency` keep-alive connections carry the requests, one in flight each; a request
//!   due while all are busy goes out late (the run's rate then falls).
//! - The rate is delivered payments over the time from the first due request to the last
//!   response. The default offered rate, 1,100 per second, leaves the 1,000 target headroom for
//!   that last response's latency and for the machine's other work.
//!
//! Invariants (all must be 0): **lost** (a settled nonce without a 200 carrying the weather
//! report and a `PAYMENT-RESPONSE` receipt naming the double's transaction for it), **double
//! settled** (a nonce with two `/settle` calls, or one transaction credited to two payments),
//! **unpaid** (a 200 whose nonce was not settled, or a second 200 for one settlement). The run
//! also fails on any fresh payment not delivered, any replay not refused with 409, a replay
//! re-verified, a request without an answer, or a delivered rate under `--min-rate`. The
//! ledger is printed and written as JSON; the exit status is 0 only if everything held.
//!
//! `--smoke`: 2 s at 100 req/s with 5 % replays, 8 connections, and a rate floor of half the
//! offered rate (the ledger checks are the same).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use x402_bench::fixture::{self, SignedPayment};
use x402_bench::loadgen::{self, Answered, Fetched, Schedule, Slot};
use x402_bench::machine::{Machine, threads_cpu};
use x402_bench::results::write_json;
use x402_bench::stats::{self, Percentiles};
use x402_runtime::X402Version;
use x402_runtime::proto::{
    FacilitatorRequest, PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, Requirements,
    SettleResponse,
};
use x402_runtime::schemes::{self, exact_evm::ExactEvmPayload};
use x402_runtime::{X402, X402Config, codes};

/// The paid request: the example's current weather, 0.001 USDC.
const PATH: &str = "/weather?city=Paris";
/// The city asked for, echoed in the report.
const CITY: &str = "Paris";
/// The double's `/verify` answers after this.
const VERIFY_DELAY: Duration = Duration::from_millis(5);
/// The double's `/settle` answers after this.
const SETTLE_DELAY: Duration = Duration::from_millis(20);
/// The rate a full run must deliver by default, paid requests per second.
const TARGET_RATE: f64 = 1000.0;
/// Longest run accepted, seconds (payments are signed and held in memory before the run).
const MAX_SECONDS: f64 = 300.0;
/// An "after the answer" replay repeats the payment due this long before it.
const REPLAY_LAG: Duration = Duration::from_millis(500);
/// A concurrent replay goes out this long after its original (which is then in flight).
const CONCURRENT_OFFSET: Duration = Duration::from_millis(1);
/// The double's code for a nonce it has already settled (as the reference facilitators say).
const NONCE_USED: &str = "invalid_exact_evm_nonce_already_used";

struct Options {
    smoke: bool,
    seconds: f64,
    rate: f64,
    concurrency: usize,
    replays: f64,
    min_rate: f64,
    out: PathBuf,
}

impl Options {
    fn parse() -> Result<Options, String> {
        let mut smoke = false;
        let mut seconds = None;
        let mut rate = None;
        let mut concurrency = None;
        let mut replays = None;
        let mut min_rate = None;
        let mut out = PathBuf::from("target/bench/ledger.json");
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            let number = |text: String, name: &str| {
                text.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or(format!("{name}: `{text}` is not a number"))
            };
            match arg.as_str() {
                "--smoke" => smoke = true,
                "--seconds" => seconds = Some(number(value("--seconds")?, "--seconds")?),
                "--rate" => rate = Some(number(value("--rate")?, "--rate")?),
                "--replays" => replays = Some(number(value("--replays")?, "--replays")?),
                "--min-rate" => min_rate = Some(number(value("--min-rate")?, "--min-rate")?),
                "--concurrency" => {
                    let text = value("--concurrency")?;
                    concurrency = Some(
                        text.parse::<usize>()
                            .map_err(|_| format!("--concurrency: `{text}` is not a count"))?,
                    );
                }
                "--out" => out = PathBuf::from(value("--out")?),
                "--bench" => {} // passed by `cargo bench`
                other => return Err(format!("unknown argument {other}")),
            }
        }
        let (d_seconds, d_rate, d_concurrency, d_replays) = if smoke {
            (2.0, 100.0, 8, 0.05)
        } else {
            (60.0, 1100.0, 64, 0.01)
        };
        let o = Options {
            smoke,
            seconds: seconds.unwrap_or(d_seconds),
            rate: rate.unwrap_or(d_rate),
            concurrency: concurrency.unwrap_or(d_concurrency),
            replays: replays.unwrap_or(d_replays),
            min_rate: 0.0,
            out,
        };
        let o = Options {
            min_rate: min_rate.unwrap_or(if smoke { o.rate / 2.0 } else { TARGET_RATE }),
            ..o
        };
        if !(o.seconds > 0.0 && o.seconds <= MAX_SECONDS) {
            return Err(format!("--seconds must be in (0, {MAX_SECONDS}]"));
        }
        if !(o.rate >= 1.0 && o.rate <= 100_000.0) {
            return Err("--rate must be in [1, 100000]".to_owned());
        }
        if o.concurrency == 0 || o.concurrency > 4096 {
            return Err("--concurrency must be in [1, 4096]".to_owned());
        }
        if !(0.0..=0.5).contains(&o.replays) {
            return Err("--replays must be in [0, 0.5]".to_owned());
        }
        if o.min_rate < 0.0 {
            return Err("--min-rate must not be negative".to_owned());
        }
        Ok(o)
    }
}

// ----- The facilitator double -----

/// Which endpoint a call reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
enum Endpoint {
    Verify,
    Settle,
}

/// One `/verify` or `/settle` call the double answered.
#[derive(Clone, Debug)]
struct Call {
    endpoint: Endpoint,
    nonce: B256,
    payer: Address,
    /// `isValid` / `success` of the answer.
    accepted: bool,
    /// The transaction a successful `/settle` answered.
    transaction: Option<B256>,
}

#[derive(Default)]
struct DoubleLedger {
    calls: Vec<Call>,
    /// Nonce → the transaction that settled it.
    settled: HashMap<B256, B256>,
    /// Calls that were not a well-formed payment for the route's requirements.
    malformed: Vec<String>,
}

/// The facilitator double's state, shared by its handlers.
#[derive(Clone)]
struct Double {
    ledger: Arc<Mutex<DoubleLedger>>,
    in_flight: Arc<AtomicUsize>,
    pay_to: Address,
}

/// Counts a call in flight until dropped.
struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What the double reads from a call: the payment's payer and nonce, once checked.
struct Checked {
    payer: Address,
    nonce: B256,
    network: String,
}

impl Double {
    fn new(pay_to: Address) -> Double {
        Double {
            ledger: Arc::default(),
            in_flight: Arc::default(),
            pay_to,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DoubleLedger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn busy(&self) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(self.in_flight.clone())
    }

    fn router(&self) -> Router {
        Router::new()
            .route("/supported", get(double_supported))
            .route("/verify", post(double_verify))
            .route("/settle", post(double_settle))
            .with_state(self.clone())
    }

    /// Parses a `/verify` or `/settle` body and checks the payment against the requirements it
    /// came with, as a facilitator does before anything else (no cryptography: the paywall has
    /// checked the signature, and the double's time is the sleep).
    fn check(&self, body: &[u8]) -> Result<Checked, String> {
        let request: FacilitatorRequest =
            serde_json::from_slice(body).map_err(|e| format!("not a facilitator request: {e}"))?;
        if request.x402_version != 2 {
            return Err(format!("x402Version {}", request.x402_version));
        }
        let Requirements::V2(requirements) = &request.payment_requirements else {
            return Err("v1 requirements".to_owned());
        };
        let decoded = schemes::decode_json(
            request.payment_payload.get().as_bytes().to_vec(),
            X402Version::V2,
        )
        .map_err(|e| format!("payment payload: {e:?}"))?;
        let auth = &decoded
            .payload_as::<ExactEvmPayload>()
            .ok_or("not an exact-EVM payment")?
            .authorization;
        let amount: U256 = requirements
            .amount
            .parse()
            .map_err(|_| format!("amount `{}`", requirements.amount))?;
        let pay_to: Address = requirements
            .pay_to
            .parse()
            .map_err(|_| format!("payTo `{}`", requirements.pay_to))?;
        if requirements.scheme != "exact"
            || requirements.network != fixture::NETWORK
            || decoded.wire.network != requirements.network
        {
            return Err(format!(
                "scheme {} on {} (payment on {})",
                requirements.scheme, requirements.network, decoded.wire.network
            ));
        }
        if pay_to != self.pay_to || auth.to != pay_to {
            return Err(format!(
                "pays {} / {}, not {}",
                auth.to, pay_to, self.pay_to
            ));
        }
        if auth.value != amount {
            return Err(format!("value {} for amount {amount}", auth.value));
        }
        Ok(Checked {
            payer: auth.from,
            nonce: auth.nonce,
            network: requirements.network.clone(),
        })
    }
}

async fn double_supported() -> axum::Json<Value> {
    axum::Json(json!({
        // Base too: the example API offers `/climate` there.
        "kinds": [
            {"x402Version": 2, "scheme": "exact", "network": fixture::NETWORK},
            {"x402Version": 2, "scheme": "exact", "network": "eip155:8453"}
        ],
        "extensions": [],
        "signers": {}
    }))
}

async fn double_verify(State(double): State<Double>, body: Bytes) -> axum::Json<Value> {
    let _busy = double.busy();
    let checked = double.check(&body);
    tokio::time::sleep(VERIFY_DELAY).await;
    let mut ledger = double.lock();
    let p = match checked {
        Ok(p) => p,
        Err(reason) => {
            ledger.malformed.push(format!("/verify: {reason}"));
            return axum::Json(json!({"isValid": false, "invalidReason": "invalid_payload"}));
        }
    };
    let used = ledger.settled.contains_key(&p.nonce);
    ledger.calls.push(Call {
        endpoint: Endpoint::Verify,
        nonce: p.nonce,
        payer: p.payer,
        accepted: !used,
        transaction: None,
    });
    let payer = p.payer.to_checksum(None);
    axum::Json(if used {
        json!({"isValid": false, "invalidReason": NONCE_USED, "payer": payer})
    } else {
        json!({"isValid": true, "payer": payer})
    })
}

async fn double_settle(State(double): State<Double>, body: Bytes) -> axum::Json<Value> {
    let _busy = double.busy();
    let checked = double.check(&body);
    tokio::time::sleep(SETTLE_DELAY).await;
    let mut ledger = double.lock();
    let p = match checked {
        Ok(p) => p,
        Err(reason) => {
            ledger.malformed.push(format!("/settle: {reason}"));
            return axum::Json(json!({
                "success": false, "errorReason": "invalid_payload", "transaction": "",
                "network": fixture::NETWORK
            }));
        }
    };
    let payer = p.payer.to_checksum(None);
    if ledger.settled.contains_key(&p.nonce) {
        ledger.calls.push(Call {
            endpoint: Endpoint::Settle,
            nonce: p.nonce,
            payer: p.payer,
            accepted: false,
            transaction: None,
        });
        return axum::Json(json!({
            "success": false, "errorReason": NONCE_USED, "transaction": "",
            "network": p.network, "payer": payer
        }));
    }
    let transaction = fixture::settlement_transaction(x402_testbed::CHAIN_ID, p.payer, p.nonce);
    ledger.settled.insert(p.nonce, transaction);
    ledger.calls.push(Call {
        endpoint: Endpoint::Settle,
        nonce: p.nonce,
        payer: p.payer,
        accepted: true,
        transaction: Some(transaction),
    });
    axum::Json(json!({
        "success": true, "transaction": transaction.to_string(),
        "network": p.network, "payer": payer
    }))
}

// ----- The client's ledger -----

/// What the client saw in one response.
#[derive(Clone, Debug, Default)]
struct Seen {
    status: u16,
    /// `error` of a JSON error body.
    code: Option<String>,
    /// `transaction` named by an error body (a 409 for a settled payment names it).
    named_tx: Option<String>,
    /// The decoded `PAYMENT-RESPONSE` receipt.
    receipt: Option<SettleResponse>,
    /// The receipt says success, names a transaction, this payment's payer and our network.
    receipt_ok: bool,
    /// The body is the weather report for [`CITY`], paid by this payment's payer.
    report_ok: bool,
}

impl Seen {
    /// A 200 with the report and a successful receipt for this payment.
    fn delivered(&self) -> bool {
        self.status == 200 && self.report_ok && self.receipt_ok
    }

    /// `"<status> <code>"`, for the answer tables.
    fn refusal(&self) -> String {
        if self.delivered() {
            return "200 delivered".to_owned();
        }
        format!("{} {}", self.status, self.code.as_deref().unwrap_or("-"))
    }
}

/// Reads what the ledger needs from a response to a payment by `payer`.
fn inspect(fetched: &Fetched, payer: &str) -> Seen {
    let body: Value = serde_json::from_slice(&fetched.body).unwrap_or(Value::Null);
    let receipt = fetched
        .header(PAYMENT_RESPONSE)
        .and_then(|h| STANDARD.decode(h).ok())
        .and_then(|json| serde_json::from_slice::<SettleResponse>(&json).ok());
    let receipt_ok = receipt.as_ref().is_some_and(|r| {
        r.success
            && !r.transaction.is_empty()
            && r.payer
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case(payer))
            && r.network == fixture::NETWORK
    });
    let report_ok = fetched.status == 200
        && body["city"] == CITY
        && body["paid_by"] == payer
        && body["celsius"].is_number()
        && body["conditions"].is_string();
    Seen {
        status: fetched.status,
        code: body["error"].as_str().map(str::to_owned),
        named_tx: body["transaction"].as_str().map(str::to_owned),
        receipt,
        receipt_ok,
        report_ok,
    }
}

/// The schedule, by due time: fresh payment `i` due at `i / rate`; after every `1 / replays` of
/// them a replay, alternately of the payment just scheduled ([`CONCURRENT_OFFSET`] after it)
/// and of the one due [`REPLAY_LAG`] earlier.
fn build_schedule(fresh: usize, rate: f64, replays: f64) -> Vec<Slot> {
    let every = if replays > 0.0 {
        (1.0 / replays).round().max(1.0) as usize
    } else {
        usize::MAX
    };
    let lag = (rate * REPLAY_LAG.as_secs_f64()).round().max(1.0) as usize;
    let mut slots = Vec::with_capacity(fresh + fresh / every.max(1) + 1);
    let mut replayed = 0usize;
    for i in 0..fresh {
        let due = Duration::from_secs_f64(i as f64 / rate);
        slots.push(Slot { request: i, due });
        if (i + 1) % every == 0 {
            replayed += 1;
            if replayed % 2 == 1 {
                slots.push(Slot {
                    request: i,
                    due: due + CONCURRENT_OFFSET,
                });
            } else {
                slots.push(Slot {
                    request: i.saturating_sub(lag),
                    due,
                });
            }
        }
    }
    // Stable: a payment's first slot stays its original.
    slots.sort_by_key(|s| s.due);
    slots
}

/// The money invariants; each must be 0.
#[derive(Clone, Debug, Default, Serialize)]
struct Invariants {
    /// Settled payments whose content did not reach their request with a receipt naming the
    /// double's transaction.
    lost: u64,
    /// Nonces with more than one `/settle` call, plus transactions credited to more than one
    /// payment (by the double or in delivered receipts).
    double_settled: u64,
    /// 200s for a nonce the double did not settle, plus further 200s for one settlement.
    unpaid: u64,
}

/// The replays and what they got.
#[derive(Clone, Debug, Default, Serialize)]
struct Replays {
    /// Replays answered.
    attempted: u64,
    /// Sent after the original's answer had arrived.
    after_answer: u64,
    /// Sent while the original was still in flight.
    concurrent: u64,
    /// Answered 409.
    refused_409: u64,
    /// Answers by `"<status> <code>"`.
    answers: BTreeMap<String, u64>,
    /// Concurrent replays that were served first (their original then got the 409).
    won_race: u64,
    /// Replays not refused with 409 (and not a won race), or without an answer.
    not_refused: u64,
    /// 409s after a delivered original that did not name its transaction.
    wrong_transaction: u64,
}

/// The reconciled ledgers of one run.
#[derive(Clone, Debug, Default, Serialize)]
struct Ledger {
    /// Requests sent (fresh payments and replays).
    attempted: u64,
    /// Fresh payments sent.
    attempted_fresh: u64,
    /// Requests scheduled but not sent before the send limit.
    unsent: u64,
    /// 200s with the weather report and a successful `PAYMENT-RESPONSE` naming a transaction.
    delivered: u64,
    /// Distinct nonces the double settled.
    settled: u64,
    /// `/verify` calls the double answered.
    verify_calls: u64,
    /// `/settle` calls the double answered.
    settle_calls: u64,
    /// Every answer other than a delivery, by `"<status> <code>"` (replays included).
    refused: BTreeMap<String, u64>,
    /// Fresh payments not delivered (a won race by their replay excepted), by
    /// `"<status> <code>"`.
    fresh_refused: BTreeMap<String, u64>,
    /// Requests that got no whole answer (connection failure or timeout).
    no_answer: u64,
    /// The replays.
    replays: Replays,
    /// Nonces verified more than once (a replay must be refused before `/verify`).
    reverified: u64,
    /// Calls to the double that were not a well-formed payment for the route.
    malformed_calls: u64,
    /// Calls for a nonce this run did not sign, or naming another payer than the one who did.
    unknown_payment_calls: u64,
    /// The money invariants.
    invariants: Invariants,
}

/// Reconciles the client's answers (`answered`, for `slots` of `payments`) with the double's
/// calls.
fn reconcile(
    payments: &[SignedPayment],
    slots: &[Slot],
    answered: &[Answered<Seen>],
    unsent: usize,
    calls: &[Call],
    malformed: usize,
) -> Ledger {
    let mut l = Ledger {
        unsent: unsent as u64,
        malformed_calls: malformed as u64,
        ..Ledger::default()
    };
    // The double's side: settlements and verifications per nonce, transactions per nonce.
    let mut settles: HashMap<B256, u64> = HashMap::new();
    let mut verifies: HashMap<B256, u64> = HashMap::new();
    let mut settled_tx: HashMap<B256, B256> = HashMap::new();
    let mut tx_nonces: HashMap<B256, Vec<B256>> = HashMap::new();
    let payers: HashMap<B256, Address> = payments.iter().map(|p| (p.nonce, p.payer)).collect();
    for call in calls {
        if payers.get(&call.nonce) != Some(&call.payer) {
            l.unknown_payment_calls += 1;
        }
        match call.endpoint {
            Endpoint::Verify => {
                l.verify_calls += 1;
                *verifies.entry(call.nonce).or_default() += 1;
            }
            Endpoint::Settle => {
                l.settle_calls += 1;
                *settles.entry(call.nonce).or_default() += 1;
                if let (true, Some(tx)) = (call.accepted, call.transaction) {
                    settled_tx.insert(call.nonce, tx);
                    tx_nonces.entry(tx).or_default().push(call.nonce);
                }
            }
        }
    }
    l.settled = settled_tx.len() as u64;
    l.reverified = verifies.values().filter(|n| **n > 1).count() as u64;
    l.invariants.double_settled = settles.values().filter(|n| **n > 1).count() as u64
        + tx_nonces.values().filter(|n| n.len() > 1).count() as u64;

    // The client's side. The first slot sending a payment is its original; later ones replay it.
    let mut original_slot: Vec<Option<usize>> = vec![None; payments.len()];
    let mut by_slot: Vec<Option<&Answered<Seen>>> = vec![None; slots.len()];
    for a in answered {
        if let Some(entry) = by_slot.get_mut(a.slot) {
            *entry = Some(a);
        }
    }
    let mut replay_slots: HashMap<usize, Vec<usize>> = HashMap::new();
    for (index, slot) in slots.iter().enumerate() {
        if original_slot[slot.request].is_some() {
            replay_slots.entry(slot.request).or_default().push(index);
        } else {
            original_slot[slot.request] = Some(index);
        }
    }
    let mut oks: HashMap<B256, Vec<&Seen>> = HashMap::new();
    let mut credited: HashMap<String, u64> = HashMap::new();
    for (index, slot) in slots.iter().enumerate() {
        let Some(a) = by_slot[index] else {
            continue;
        };
        let nonce = payments[slot.request].nonce;
        let original = original_slot[slot.request] == Some(index);
        l.attempted += 1;
        if original {
            l.attempted_fresh += 1;
        }
        let seen = match &a.result {
            Ok(seen) => seen,
            Err(_) => {
                l.no_answer += 1;
                if original {
                    *l.fresh_refused.entry("no answer".to_owned()).or_default() += 1;
                } else {
                    l.replays.attempted += 1;
                    l.replays.not_refused += 1;
                }
                continue;
            }
        };
        if seen.status == 200 {
            oks.entry(nonce).or_default().push(seen);
        }
        if seen.delivered() {
            l.delivered += 1;
            if let Some(r) = &seen.receipt {
                *credited.entry(r.transaction.to_lowercase()).or_default() += 1;
            }
        } else {
            *l.refused.entry(seen.refusal()).or_default() += 1;
        }
        if original {
            if !seen.delivered() {
                // Its concurrent replay may have been served first: then this 409 is right.
                let replay_served = seen.status == 409
                    && replay_slots.get(&slot.request).is_some_and(|replays| {
                        replays.iter().any(|&i| {
                            by_slot[i]
                                .and_then(|r| r.result.as_ref().ok())
                                .is_some_and(Seen::delivered)
                        })
                    });
                if !replay_served {
                    *l.fresh_refused.entry(seen.refusal()).or_default() += 1;
                }
            }
            continue;
        }
        let r = &mut l.replays;
        r.attempted += 1;
        *r.answers.entry(seen.refusal()).or_default() += 1;
        let first = original_slot[slot.request].and_then(|i| by_slot[i]);
        let after = first.is_some_and(|o| o.done_ns <= a.sent_ns);
        if after {
            r.after_answer += 1;
        } else {
            r.concurrent += 1;
        }
        let first_seen = first.and_then(|o| o.result.as_ref().ok());
        if seen.status == 409 {
            r.refused_409 += 1;
            if after && first_seen.is_some_and(Seen::delivered) {
                let expected = settled_tx.get(&nonce).map(|t| t.to_string());
                let named = seen.named_tx.as_deref().map(str::to_lowercase);
                if seen.code.as_deref() != Some(codes::PAYMENT_ALREADY_SETTLED)
                    || expected.is_none()
                    || named != expected
                {
                    r.wrong_transaction += 1;
                }
            }
        } else if !after && seen.delivered() && first_seen.is_some_and(|o| o.status == 409) {
            r.won_race += 1;
        } else {
            r.not_refused += 1;
        }
    }
    l.invariants.double_settled += credited.values().filter(|n| **n > 1).count() as u64;

    // Lost: a settled nonce without a delivery naming the double's transaction for it.
    for (nonce, tx) in &settled_tx {
        let tx = tx.to_string();
        let delivered = oks.get(nonce).is_some_and(|seen| {
            seen.iter().any(|s| {
                s.delivered()
                    && s.receipt
                        .as_ref()
                        .is_some_and(|r| r.transaction.to_lowercase() == tx)
            })
        });
        if !delivered {
            l.invariants.lost += 1;
        }
    }
    // Unpaid: 200s beyond the one a settlement pays for.
    for (nonce, seen) in &oks {
        let paid = u64::from(settled_tx.contains_key(nonce));
        l.invariants.unpaid += (seen.len() as u64).saturating_sub(paid);
    }
    l
}

// ----- The run -----

/// CPU time per delivered payment, by runtime, µs.
#[derive(Clone, Debug, Default, Serialize)]
struct CpuPerPayment {
    server: f64,
    double: f64,
    client: f64,
}

/// What `ledger` writes.
#[derive(Clone, Debug, Default, Serialize)]
struct LedgerRun {
    mode: String,
    machine: Machine,
    seconds: f64,
    rate_offered: f64,
    min_rate: f64,
    concurrency: usize,
    replay_fraction: f64,
    verify_delay_ms: f64,
    settle_delay_ms: f64,
    max_timeout_seconds: u32,
    presign_seconds: f64,
    /// From the first due request to the last response.
    elapsed_seconds: f64,
    /// Delivered paid requests per second over `elapsed_seconds`.
    rate: f64,
    ledger: Ledger,
    /// Latency of delivered requests, from send to the whole response, µs.
    latency: Percentiles,
    /// How late requests went out against the schedule, µs.
    schedule_lag: Percentiles,
    cpu_us_per_payment: CpuPerPayment,
    failures: Vec<String>,
    passed: bool,
}

fn runtime(name: &str, workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn main() -> ExitCode {
    let options = match Options::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ledger: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(run) => {
            print(&run);
            if let Err(e) = write_json(&options.out, &run) {
                eprintln!("ledger: cannot write {}: {e}", options.out.display());
                return ExitCode::FAILURE;
            }
            println!("ledger: results in {}", options.out.display());
            if run.passed {
                ExitCode::SUCCESS
            } else {
                for f in &run.failures {
                    eprintln!("ledger: FAILED {f}");
                }
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("ledger: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(o: &Options) -> Result<LedgerRun, String> {
    let machine = Machine::detect();
    let cores = machine.cores;
    let server_rt = runtime("server", cores);
    let client_rt = runtime("client", 1);
    let double_rt = runtime("double", 1);
    let double = Double::new(x402_testbed::MERCHANT);
    let double_addr = double_rt
        .block_on(fixture::serve(double.router()))
        .map_err(|e| format!("serve the facilitator double: {e}"))?;

    // Payments signed before the run must still leave the settle timeout + 6 s at its end.
    let max_timeout_seconds = o.seconds.ceil() as u32 + 300;
    let config = X402Config::builder()
        .pay_to(x402_testbed::MERCHANT.to_checksum(None))
        .network(fixture::NETWORK)
        .facilitator_url(format!("http://{double_addr}"))
        .max_timeout_seconds(max_timeout_seconds)
        .build()
        .map_err(|e| format!("configuration: {e}"))?;
    let x402 = X402::new(config).map_err(|e| format!("paywall: {e}"))?;
    x402.check_routes().map_err(|e| format!("routes: {e}"))?;
    server_rt
        .block_on(x402.check_facilitator())
        .map_err(|e| format!("facilitator double: {e}"))?;
    let addr = server_rt
        .block_on(fixture::serve(example_weather::app(x402)))
        .map_err(|e| format!("serve the example: {e}"))?;

    let probe = client_rt
        .block_on(loadgen::fetch(addr, &loadgen::get_request(addr, PATH, &[])))
        .map_err(|e| format!("unpaid probe: {e}"))?;
    if probe.status != 402 {
        return Err(format!(
            "GET {PATH} without payment answered {}",
            probe.status
        ));
    }
    let challenge = probe
        .header(PAYMENT_REQUIRED)
        .ok_or("the 402 has no PAYMENT-REQUIRED")
        .and_then(|h| fixture::decode_challenge(h.as_bytes()).map_err(|_| "bad challenge"))?;

    let fresh = (o.rate * o.seconds).round().max(1.0) as usize;
    println!(
        "ledger: {} mode; {fresh} payments at {} req/s for {} s, {:.1} % replays, {} connections, \
         {cores} cores; verify {VERIFY_DELAY:?}, settle {SETTLE_DELAY:?}; maxTimeoutSeconds {max_timeout_seconds}",
        if o.smoke { "smoke" } else { "full" },
        o.rate,
        o.seconds,
        o.replays * 100.0,
        o.concurrency
    );
    let signing = Instant::now();
    let valid_before = x402_runtime::unix_now() + u64::from(max_timeout_seconds);
    let keys = [x402_testbed::PAYER_KEY, x402_testbed::PAYER2_KEY];
    let payments = fixture::presign_payments(&challenge, &keys, fresh, valid_before);
    let presign_seconds = signing.elapsed().as_secs_f64();
    println!("ledger: {fresh} payments signed in {presign_seconds:.1} s");
    let requests: Vec<Vec<u8>> = payments
        .iter()
        .map(|p| loadgen::get_request(addr, PATH, &[(PAYMENT_SIGNATURE, &p.header)]))
        .collect();
    let slots = Arc::new(build_schedule(fresh, o.rate, o.replays));
    let payers: Arc<Vec<String>> =
        Arc::new(payments.iter().map(|p| p.payer.to_checksum(None)).collect());

    let schedule = Schedule {
        addr,
        connections: o.concurrency,
        // Bounded: a run that falls far behind stops sending and fails on its unsent requests.
        send_limit: Duration::from_secs_f64(o.seconds * 1.5 + 5.0),
        // Longer than the paywall's verify (10 s) and settle (30 s) timeouts.
        response_timeout: Duration::from_secs(45),
    };
    let inspector = {
        let slots = slots.clone();
        let payers = payers.clone();
        Arc::new(move |slot: usize, fetched: &Fetched| {
            inspect(fetched, &payers[slots[slot].request])
        })
    };
    let cpu = || {
        [
            threads_cpu("server"),
            threads_cpu("double"),
            threads_cpu("client"),
        ]
    };
    let cpu_before = cpu();
    let outcome = client_rt.block_on(loadgen::run_scheduled(
        schedule,
        Arc::new(requests),
        slots.clone(),
        inspector,
    ));
    let cpu_after = cpu();

    // Settlements answered after their request gave up would still be in flight: wait until
    // the double is idle (bounded by the settle timeout).
    let quiet_by = Instant::now() + Duration::from_secs(35);
    let mut last_count = usize::MAX;
    let mut quiet_polls = 0;
    while Instant::now() < quiet_by && quiet_polls < 3 {
        std::thread::sleep(Duration::from_millis(50));
        let count = double.lock().calls.len();
        if double.in_flight.load(Ordering::SeqCst) == 0 && count == last_count {
            quiet_polls += 1;
        } else {
            quiet_polls = 0;
        }
        last_count = count;
    }
    let (calls, malformed) = {
        let ledger = double.lock();
        (ledger.calls.clone(), ledger.malformed.clone())
    };
    let ledger = reconcile(
        &payments,
        &slots,
        &outcome.answered,
        outcome.unsent,
        &calls,
        malformed.len(),
    );

    let mut latencies: Vec<u64> = outcome
        .answered
        .iter()
        .filter(|a| a.result.as_ref().is_ok_and(Seen::delivered))
        .map(|a| a.done_ns - a.sent_ns)
        .collect();
    latencies.sort_unstable();
    let mut lags: Vec<u64> = outcome
        .answered
        .iter()
        .map(|a| {
            let due = u64::try_from(slots[a.slot].due.as_nanos()).unwrap_or(u64::MAX);
            a.sent_ns.saturating_sub(due)
        })
        .collect();
    lags.sort_unstable();
    let elapsed = outcome.elapsed.as_secs_f64();
    let rate = ledger.delivered as f64 / elapsed.max(1e-9);
    let per = |i: usize| {
        cpu_before[i]
            .zip(cpu_after[i])
            .map_or(0.0, |(b, a)| a.saturating_sub(b).as_secs_f64())
            / ledger.delivered.max(1) as f64
            * 1e6
    };

    let mut failures = Vec::new();
    let inv = &ledger.invariants;
    for (what, n) in [
        ("lost payments", inv.lost),
        ("double settlements", inv.double_settled),
        ("unpaid deliveries", inv.unpaid),
        (
            "requests never sent (the generator fell behind)",
            ledger.unsent,
        ),
        ("requests without an answer", ledger.no_answer),
        ("replays not refused with 409", ledger.replays.not_refused),
        (
            "409s to replays of delivered payments not naming their transaction",
            ledger.replays.wrong_transaction,
        ),
        ("nonces verified more than once", ledger.reverified),
        (
            "malformed calls to the facilitator double",
            ledger.malformed_calls,
        ),
        (
            "calls to the double for an unknown payment or payer",
            ledger.unknown_payment_calls,
        ),
    ] {
        if n > 0 {
            failures.push(format!("{what}: {n}"));
        }
    }
    let fresh_refused: u64 = ledger.fresh_refused.values().sum();
    if fresh_refused > 0 {
        failures.push(format!(
            "fresh payments not delivered: {fresh_refused} ({:?})",
            ledger.fresh_refused
        ));
    }
    if ledger.delivered == 0 || ledger.settled == 0 {
        failures.push("nothing was delivered or settled".to_owned());
    }
    if o.replays > 0.0 && ledger.replays.attempted == 0 {
        failures.push("no replay was sent".to_owned());
    }
    if rate < o.min_rate {
        failures.push(format!(
            "delivered {rate:.1} paid req/s, under the target of {} req/s",
            o.min_rate
        ));
    }
    for m in malformed.iter().take(3) {
        failures.push(format!("malformed call: {m}"));
    }
    for a in outcome
        .answered
        .iter()
        .filter(|a| a.result.is_err())
        .take(3)
    {
        failures.push(format!(
            "no answer to request {}: {:?}",
            a.slot,
            a.result.as_ref().err()
        ));
    }
    Ok(LedgerRun {
        mode: if o.smoke { "smoke" } else { "full" }.to_owned(),
        machine,
        seconds: o.seconds,
        rate_offered: o.rate,
        min_rate: o.min_rate,
        concurrency: o.concurrency,
        replay_fraction: o.replays,
        verify_delay_ms: VERIFY_DELAY.as_secs_f64() * 1e3,
        settle_delay_ms: SETTLE_DELAY.as_secs_f64() * 1e3,
        max_timeout_seconds,
        presign_seconds,
        elapsed_seconds: elapsed,
        rate,
        latency: stats::percentiles(&latencies),
        schedule_lag: stats::percentiles(&lags),
        cpu_us_per_payment: CpuPerPayment {
            server: per(0),
            double: per(1),
            client: per(2),
        },
        passed: failures.is_empty(),
        failures,
        ledger,
    })
}

fn table(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    x402_bench::stats::tally(counts)
}

fn ms(us: f64) -> String {
    format!("{:.2} ms", us / 1000.0)
}

fn print(r: &LedgerRun) {
    let l = &r.ledger;
    let rp = &l.replays;
    println!(
        "ledger reconciliation ({} mode, commit {}):",
        r.mode, r.machine.commit
    );
    println!(
        "  attempted       {:>8}  ({} fresh payments, {} replays; {} unsent)",
        l.attempted, l.attempted_fresh, rp.attempted, l.unsent
    );
    println!(
        "  delivered       {:>8}  (200 + weather report + PAYMENT-RESPONSE success)",
        l.delivered
    );
    println!(
        "  settled         {:>8}  distinct nonces ({} /settle calls, {} /verify calls)",
        l.settled, l.settle_calls, l.verify_calls
    );
    println!(
        "  refused         {:>8}  {}",
        l.refused.values().sum::<u64>(),
        table(&l.refused)
    );
    println!(
        "  replays         {:>8}  {} after their original's answer, {} while it was in flight",
        rp.attempted, rp.after_answer, rp.concurrent
    );
    println!(
        "    answered               {}; {} served before their original (which got the 409), {} not refused, {} not naming the settled transaction",
        table(&rp.answers),
        rp.won_race,
        rp.not_refused,
        rp.wrong_transaction
    );
    println!(
        "  fresh refused   {:>8}  {}",
        l.fresh_refused.values().sum::<u64>(),
        table(&l.fresh_refused)
    );
    println!("  lost            {:>8}", l.invariants.lost);
    println!("  double-settled  {:>8}", l.invariants.double_settled);
    println!("  unpaid          {:>8}", l.invariants.unpaid);
    println!(
        "  rate            {:>8.1}  delivered paid req/s over {:.2} s (offered {}, target ≥ {})",
        r.rate, r.elapsed_seconds, r.rate_offered, r.min_rate
    );
    println!(
        "  latency         p50 {}, p90 {}, p99 {}, max {} (send to whole response)",
        ms(r.latency.p50),
        ms(r.latency.p90),
        ms(r.latency.p99),
        ms(r.latency.max)
    );
    println!(
        "  schedule lag    p99 {}, max {}",
        ms(r.schedule_lag.p99),
        ms(r.schedule_lag.max)
    );
    println!(
        "  CPU / payment   server {:.0} µs, facilitator double {:.0} µs, load generator {:.0} µs ({} cores, {})",
        r.cpu_us_per_payment.server,
        r.cpu_us_per_payment.double,
        r.cpu_us_per_payment.client,
        r.machine.cores,
        r.machine.cpu
    );
    println!(
        "  result          {}",
        if r.passed { "PASS" } else { "FAIL" }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(i: u8) -> SignedPayment {
        SignedPayment {
            nonce: B256::repeat_byte(i),
            payer: x402_testbed::PAYER,
            header: String::new(),
        }
    }

    fn tx(p: &SignedPayment) -> B256 {
        fixture::settlement_transaction(x402_testbed::CHAIN_ID, p.payer, p.nonce)
    }

    fn delivered(p: &SignedPayment) -> Seen {
        Seen {
            status: 200,
            receipt: Some(SettleResponse {
                success: true,
                error_reason: None,
                error_message: None,
                payer: Some(p.payer.to_checksum(None)),
                transaction: tx(p).to_string(),
                network: fixture::NETWORK.to_owned(),
                amount: None,
            }),
            receipt_ok: true,
            report_ok: true,
            ..Seen::default()
        }
    }

    fn refused(code: &str, named: Option<B256>) -> Seen {
        Seen {
            status: 409,
            code: Some(code.to_owned()),
            named_tx: named.map(|t| t.to_string()),
            ..Seen::default()
        }
    }

    fn answer(slot: usize, sent_ns: u64, done_ns: u64, seen: Seen) -> Answered<Seen> {
        Answered {
            slot,
            sent_ns,
            done_ns,
            result: Ok(seen),
        }
    }

    fn call(endpoint: Endpoint, p: &SignedPayment, accepted: bool) -> Call {
        Call {
            endpoint,
            nonce: p.nonce,
            payer: p.payer,
            accepted,
            transaction: (accepted && endpoint == Endpoint::Settle).then(|| tx(p)),
        }
    }

    fn slot(request: usize) -> Slot {
        Slot {
            request,
            due: Duration::ZERO,
        }
    }

    /// Two payments, the first replayed after its answer: a clean run.
    fn clean() -> (
        Vec<SignedPayment>,
        Vec<Slot>,
        Vec<Answered<Seen>>,
        Vec<Call>,
    ) {
        let p = vec![payment(1), payment(2)];
        let slots = vec![slot(0), slot(1), slot(0)];
        let answered = vec![
            answer(0, 0, 10, delivered(&p[0])),
            answer(1, 0, 10, delivered(&p[1])),
            answer(
                2,
                20,
                21,
                refused(codes::PAYMENT_ALREADY_SETTLED, Some(tx(&p[0]))),
            ),
        ];
        let calls = vec![
            call(Endpoint::Verify, &p[0], true),
            call(Endpoint::Settle, &p[0], true),
            call(Endpoint::Verify, &p[1], true),
            call(Endpoint::Settle, &p[1], true),
        ];
        (p, slots, answered, calls)
    }

    #[test]
    fn a_clean_run_reconciles() {
        let (p, slots, answered, calls) = clean();
        let l = reconcile(&p, &slots, &answered, 0, &calls, 0);
        assert_eq!((l.attempted, l.delivered, l.settled), (3, 2, 2));
        assert_eq!(l.replays.after_answer, 1);
        assert_eq!(l.replays.refused_409, 1);
        assert_eq!(l.replays.wrong_transaction, 0);
        assert_eq!(
            (
                l.invariants.lost,
                l.invariants.double_settled,
                l.invariants.unpaid
            ),
            (0, 0, 0)
        );
        assert!(l.fresh_refused.is_empty());
    }

    #[test]
    fn a_settlement_without_delivery_is_lost() {
        let (p, slots, mut answered, calls) = clean();
        answered[1].result = Ok(Seen {
            status: 502,
            code: Some("unexpected_settle_error".to_owned()),
            ..Seen::default()
        });
        let l = reconcile(&p, &slots, &answered, 0, &calls, 0);
        assert_eq!(l.invariants.lost, 1);
        assert_eq!(l.fresh_refused.values().sum::<u64>(), 1);
    }

    #[test]
    fn a_receipt_for_another_transaction_is_lost() {
        let (p, slots, mut answered, calls) = clean();
        answered[1].result = Ok(delivered(&p[0]));
        let l = reconcile(&p, &slots, &answered, 0, &calls, 0);
        assert_eq!(l.invariants.lost, 1);
        // One transaction credited to two requests.
        assert_eq!(l.invariants.double_settled, 1);
    }

    #[test]
    fn a_second_settle_or_a_served_replay_is_caught() {
        let (p, slots, mut answered, mut calls) = clean();
        calls.push(call(Endpoint::Verify, &p[0], false));
        calls.push(call(Endpoint::Settle, &p[0], false));
        answered[2].result = Ok(delivered(&p[0]));
        let l = reconcile(&p, &slots, &answered, 0, &calls, 0);
        assert_eq!(l.invariants.double_settled, 2); // the nonce, and its transaction credited twice
        assert_eq!(l.invariants.unpaid, 1);
        assert_eq!(l.replays.not_refused, 1);
        assert_eq!(l.reverified, 1);
    }

    #[test]
    fn a_delivery_without_settlement_is_unpaid() {
        let (p, slots, answered, mut calls) = clean();
        calls.retain(|c| !(c.endpoint == Endpoint::Settle && c.nonce == p[1].nonce));
        let l = reconcile(&p, &slots, &answered, 0, &calls, 0);
        assert_eq!(l.invariants.unpaid, 1);
        assert_eq!(l.settled, 1);
    }

    #[test]
    fn a_replay_refused_without_the_transaction_is_flagged() {
        let (p, slots, mut answered, calls) = clean();
        answered[2].result = Ok(refused(codes::PAYMENT_IN_PROGRESS, None));
        let l = reconcile(&p, &slots, &answered, 0, &calls, 0);
        assert_eq!(l.replays.wrong_transaction, 1);
    }

    #[test]
    fn a_concurrent_replay_may_be_served_first() {
        let p = vec![payment(1)];
        let slots = vec![slot(0), slot(0)];
        let answered = vec![
            answer(0, 0, 10, refused(codes::PAYMENT_IN_PROGRESS, None)),
            answer(1, 0, 12, delivered(&p[0])),
        ];
        let calls = vec![
            call(Endpoint::Verify, &p[0], true),
            call(Endpoint::Settle, &p[0], true),
        ];
        let l = reconcile(&p, &slots, &answered, 0, &calls, 0);
        assert_eq!(l.replays.concurrent, 1);
        assert_eq!(l.replays.won_race, 1);
        assert_eq!(l.replays.not_refused, 0);
        assert!(l.fresh_refused.is_empty());
        assert_eq!(l.invariants.lost + l.invariants.unpaid, 0);
    }

    #[test]
    fn the_schedule_mixes_both_kinds_of_replay() {
        let slots = build_schedule(1000, 100.0, 0.01);
        assert_eq!(slots.len(), 1010);
        let replays: Vec<(usize, &Slot)> = slots
            .iter()
            .enumerate()
            .filter(|(i, s)| slots[..*i].iter().any(|o| o.request == s.request))
            .collect();
        assert_eq!(replays.len(), 10);
        assert_eq!(replays[0].1.request, 99); // right after its original
        assert_eq!(replays[1].1.request, 199 - 50); // half a second after its original
        assert!(slots.windows(2).all(|w| w[0].due <= w[1].due));
    }
}
