//! Resident memory of the in-memory replay store per live entry.
//!
//! ```text
//! cargo run --release -p x402-bench --bin replay-rss -- [--entries 100000] [--smoke]
//!     [--out target/bench/replay-rss.json]
//! ```
//!
//! Two stores are filled through [`ReplayStore`]'s public API, one after the other in this
//! process, and the resident memory (`VmRSS` of `/proc/self/status`) is read before and after
//! each fill:
//!
//! 1. reservations: `reserve` only, the state of a payment being verified or served;
//! 2. settled payments, the steps the paywall takes for each: `reserve`, `record` of `settling`
//!    with the `/settle` request (the JSON of a real signed payment and its requirements),
//!    `credit` of the transaction, `record` of `settled` with the transaction hash.
//!
//! Every key has its own payer and nonce; nothing expires during the run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use alloy_primitives::{Address, B256, keccak256};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use x402_bench::fixture::{self, NETWORK};
use x402_bench::growth::{ReplayRssResults, StoreFill, rss_bytes};
use x402_bench::machine::Machine;
use x402_bench::results::write_json;
use x402_runtime::proto::PaymentRequired;
use x402_runtime::{BoxFuture, MemoryStore, ReplayKey, ReplayStore, Slot};

struct Options {
    entries: usize,
    smoke: bool,
    out: PathBuf,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        entries: 100_000,
        smoke: false,
        out: PathBuf::from("target/bench/replay-rss.json"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--entries" => o.entries = value("--entries")?.parse().map_err(|e| format!("{e}"))?,
            "--out" => o.out = PathBuf::from(value("--out")?),
            "--smoke" => {
                o.smoke = true;
                o.entries = 10_000;
            }
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    o.entries = o.entries.max(1);
    Ok(o)
}

/// The key of entry `i` of fill `fill`: its own payer and nonce.
fn key(fill: u8, i: usize) -> ReplayKey {
    let mut seed = [0u8; 9];
    seed[0] = fill;
    seed[1..].copy_from_slice(&(i as u64).to_be_bytes());
    let nonce = keccak256(seed);
    ReplayKey {
        network: NETWORK.to_owned(),
        asset: x402_testbed::USDC.into(),
        from: Address::from_word(keccak256(nonce)).into(),
        nonce,
    }
}

/// The `/settle` request the paywall records with `settling`: a real signed payment for the
/// bench route's offer, with that offer as the requirements.
fn settle_request() -> Result<String, String> {
    let x402 = fixture::paywall(fixture::StubbedSettlement::new());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let challenge: PaymentRequired = runtime.block_on(async {
        let addr = fixture::serve(fixture::paid_app(&x402))
            .await
            .map_err(|e| e.to_string())?;
        let probe = x402_bench::loadgen::fetch(
            addr,
            &x402_bench::loadgen::get_request(addr, fixture::PAID_PATH, &[]),
        )
        .await
        .map_err(|e| e.to_string())?;
        let header = probe
            .header(x402_runtime::proto::PAYMENT_REQUIRED)
            .ok_or("no challenge")?;
        fixture::decode_challenge(header.as_bytes())
    })?;
    let payment = fixture::Payer::new(x402_testbed::PAYER_KEY).pay(
        &challenge,
        B256::repeat_byte(7),
        x402_runtime::unix_now() + 600,
    );
    let payload = STANDARD.decode(payment).map_err(|e| e.to_string())?;
    let payload = String::from_utf8(payload).map_err(|e| e.to_string())?;
    let requirements = serde_json::to_string(&challenge.accepts[0]).map_err(|e| e.to_string())?;
    Ok(format!(
        r#"{{"x402Version":2,"paymentPayload":{payload},"paymentRequirements":{requirements}}}"#
    ))
}

fn fill(
    what: &str,
    entries: usize,
    store: &MemoryStore,
    mut add: impl FnMut(usize) -> Result<(), String>,
) -> Result<StoreFill, String> {
    let rss_before = rss_bytes();
    let started = Instant::now();
    for i in 0..entries {
        add(i)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let result = StoreFill {
        what: what.to_owned(),
        entries,
        held: store.len(),
        rss_before,
        rss_after: rss_bytes(),
        seconds,
    };
    println!(
        "{what}: {entries} entries, {} held, RSS {} → {} KiB: {:.0} bytes per entry ({seconds:.2} s)",
        result.held,
        result.rss_before >> 10,
        result.rss_after >> 10,
        result.bytes_per_entry(),
    );
    Ok(result)
}

/// A payment's whole life in the store, as the paywall records it when it settles.
fn settle(store: &MemoryStore, key: &ReplayKey, request: &str, until: u64) -> Result<(), String> {
    block_on(store.reserve(key, until)).map_err(|slot| format!("{key} already taken: {slot:?}"))?;
    let settling = Slot::Settling {
        request: Some(request.to_owned()),
        since: x402_runtime::unix_now(),
    };
    block_on(store.record(key, settling, until));
    let transaction = keccak256(key.nonce).to_string();
    if !block_on(store.credit(&transaction, key)) {
        return Err(format!("the transaction of {key} was credited twice"));
    }
    block_on(store.record(key, Slot::Settled { transaction }, until + 86_400));
    Ok(())
}

/// Runs a future of the in-memory store, which is always ready.
fn block_on<T>(future: BoxFuture<'_, T>) -> T {
    let mut future = future;
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(value) => value,
        std::task::Poll::Pending => panic!("the in-memory store answers at once"),
    }
}

fn run(o: &Options) -> Result<ReplayRssResults, String> {
    let request = settle_request()?;
    println!("the recorded /settle request: {} bytes", request.len());
    let until = x402_runtime::unix_now() + 86_400;
    let reserved = MemoryStore::new();
    let reservations = fill("reservations", o.entries, &reserved, |i| {
        block_on(reserved.reserve(&key(1, i), until))
            .map_err(|slot| format!("key {i} already taken: {slot:?}"))
    })?;
    let settled = MemoryStore::new();
    let outcomes = fill("settled payments", o.entries, &settled, |i| {
        settle(&settled, &key(2, i), &request, until)
    })?;
    for (store, what) in [(&reserved, "reservations"), (&settled, "settled payments")] {
        if store.len() != o.entries {
            return Err(format!(
                "{what}: {} keys held, expected {}",
                store.len(),
                o.entries
            ));
        }
    }
    Ok(ReplayRssResults {
        mode: if o.smoke { "smoke" } else { "full" }.to_owned(),
        machine: Machine::detect(),
        fills: vec![reservations, outcomes],
    })
}

fn main() -> ExitCode {
    let options = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("replay-rss: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(results) => {
            if let Err(e) = write_json(&options.out, &results) {
                eprintln!("replay-rss: cannot write {}: {e}", options.out.display());
                return ExitCode::FAILURE;
            }
            println!("replay-rss: results in {}", options.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("replay-rss: {e}");
            ExitCode::FAILURE
        }
    }
}
