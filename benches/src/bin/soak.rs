//! A bounded mixed soak in one process: unpaid requests (402), paid requests and replays of
//! paid requests (409), at fixed rates, with the resident memory sampled throughout.
//!
//! ```text
//! cargo run --release -p x402-bench --bin soak -- [--seconds 600] [--interval 5]
//!     [--rate-402 5000] [--rate-paid 500] [--replays 0.05] [--smoke]
//!     [--out target/bench/soak.json]
//! ```
//!
//! The paywall (in-process facilitator, settlement stubbed at the chain boundary, the default
//! in-memory replay store) serves `load`'s paid route. Each second is one cycle: that second's
//! payments are signed (each valid for 20 s), then the cycle's requests (402s, payments, and
//! replays of the previous cycle's payments) go out, interleaved, on 8 keep-alive connections;
//! the next cycle starts on the next second. Every response is checked against what its request
//! called for. Records are kept `seconds / 6 - 20` s past `validBefore` (at least 5 s), so the
//! replay store stops growing within the first third of the run: the resident memory over the
//! last two thirds should be flat. The slope is a least-squares fit over those samples.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use x402_bench::fixture::{self, PAID_PATH};
use x402_bench::growth::{RssSample, SoakResults, rss_bytes, slope};
use x402_bench::loadgen::{self, Load, Requests};
use x402_bench::machine::Machine;
use x402_bench::results::write_json;
use x402_runtime::proto::{PAYMENT_REQUIRED, PAYMENT_SIGNATURE, PaymentRequired};
use x402_runtime::{MemoryStore, X402, X402Config};

/// How long each payment is valid when signed, seconds: the settle timeout (5 s) plus the
/// margin the paywall requires (6 s), with room for the cycle.
const PAYMENT_LIFETIME: u64 = 20;
const CONNECTIONS: usize = 8;

struct Options {
    seconds: f64,
    interval: f64,
    rate_402: usize,
    rate_paid: usize,
    replays: f64,
    smoke: bool,
    out: PathBuf,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        seconds: 600.0,
        interval: 5.0,
        rate_402: 5_000,
        rate_paid: 500,
        replays: 0.05,
        smoke: false,
        out: PathBuf::from("target/bench/soak.json"),
    };
    let mut seconds = None;
    let mut args = std::env::args().skip(1);
    let float = |v: String| v.parse::<f64>().map_err(|e| format!("{v}: {e}"));
    let number = |v: String| v.parse::<usize>().map_err(|e| format!("{v}: {e}"));
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--seconds" => seconds = Some(float(value("--seconds")?)?),
            "--interval" => o.interval = float(value("--interval")?)?,
            "--rate-402" => o.rate_402 = number(value("--rate-402")?)?,
            "--rate-paid" => o.rate_paid = number(value("--rate-paid")?)?,
            "--replays" => o.replays = float(value("--replays")?)?,
            "--out" => o.out = PathBuf::from(value("--out")?),
            "--smoke" => {
                o.smoke = true;
                o.seconds = 5.0;
                o.interval = 0.5;
            }
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    o.seconds = seconds.unwrap_or(o.seconds).max(1.0);
    o.interval = o.interval.clamp(0.1, o.seconds);
    o.replays = o.replays.clamp(0.0, 1.0);
    Ok(o)
}

fn runtime(name: &str) -> Result<tokio::runtime::Runtime, String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

/// Samples the resident memory every `interval` until `stop`.
fn sampler(
    store: Arc<MemoryStore>,
    interval: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<RssSample>> {
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut samples = Vec::new();
        let mut next = start;
        while !stop.load(Ordering::Relaxed) {
            samples.push(RssSample {
                at: start.elapsed().as_secs_f64(),
                rss: rss_bytes(),
                store_keys: store.len(),
            });
            next += interval;
            while Instant::now() < next && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20).min(interval));
            }
        }
        samples
    })
}

/// One cycle's requests, interleaved, and the statuses they call for.
struct Cycle {
    requests: Vec<Vec<u8>>,
    expected: BTreeMap<u16, u64>,
}

fn cycle(addr: std::net::SocketAddr, o: &Options, paid: &[String], replays: &[String]) -> Cycle {
    let unpaid = loadgen::get_request(addr, PAID_PATH, &[]);
    let with =
        |header: &String| loadgen::get_request(addr, PAID_PATH, &[(PAYMENT_SIGNATURE, header)]);
    let mut special: Vec<Vec<u8>> = paid.iter().map(with).collect();
    special.extend(replays.iter().map(with));
    // Spread the paid requests and replays evenly among the 402s.
    let total = o.rate_402 + special.len();
    let count = special.len().max(1);
    let mut requests = vec![unpaid; total];
    for (k, request) in special.into_iter().enumerate() {
        requests[k * total / count + total / count / 2] = request;
    }
    let mut expected = BTreeMap::new();
    expected.insert(402, o.rate_402 as u64);
    expected.insert(200, paid.len() as u64);
    expected.insert(409, replays.len() as u64);
    expected.retain(|_, n| *n > 0);
    Cycle { requests, expected }
}

fn challenge(
    client: &tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
) -> Result<PaymentRequired, String> {
    let probe = client
        .block_on(loadgen::fetch(
            addr,
            &loadgen::get_request(addr, PAID_PATH, &[]),
        ))
        .map_err(|e| format!("probe: {e}"))?;
    let header = probe.header(PAYMENT_REQUIRED).ok_or("no challenge")?;
    fixture::decode_challenge(header.as_bytes())
}

/// The paywall of the soak over `store`, keeping records `retention` seconds.
fn paywall(store: Arc<MemoryStore>, retention: u64) -> Result<X402, String> {
    let config = X402Config::builder()
        .pay_to(x402_testbed::MERCHANT.to_checksum(None))
        .network(fixture::NETWORK)
        .settle_timeout(Duration::from_secs(5))
        .clock_skew(Duration::from_secs(5))
        .record_retention(Duration::from_secs(retention))
        .build()
        .map_err(|e| format!("configuration: {e}"))?;
    X402::builder(config)
        .facilitator(fixture::StubbedSettlement::new())
        .store(store)
        .build()
        .map_err(|e| format!("paywall: {e}"))
}

/// Adds a cycle's statuses to the responses by kind.
fn tally(responses: &mut BTreeMap<String, u64>, statuses: &BTreeMap<u16, u64>) {
    for (status, n) in statuses {
        let kind = match status {
            402 => "unpaid_402",
            200 => "paid_200",
            409 => "replay_409",
            _ => "other",
        };
        *responses.entry(kind.to_owned()).or_default() += n;
    }
}

fn run(o: &Options) -> Result<SoakResults, String> {
    let retention = ((o.seconds / 6.0) as u64)
        .saturating_sub(PAYMENT_LIFETIME)
        .max(5);
    let store = Arc::new(MemoryStore::new());
    let x402 = paywall(store.clone(), retention)?;
    let server = runtime("server")?;
    let client = runtime("client")?;
    let addr = server
        .block_on(fixture::serve(fixture::paid_app(&x402)))
        .map_err(|e| format!("serve: {e}"))?;
    let challenge = challenge(&client, addr)?;
    let keys = [x402_testbed::PAYER_KEY, x402_testbed::PAYER2_KEY];
    let replay_count = (o.rate_paid as f64 * o.replays).round() as usize;
    let mut responses: BTreeMap<String, u64> = BTreeMap::new();
    let mut unexpected = 0;
    let mut previous: Vec<String> = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));
    let samples = sampler(
        store.clone(),
        Duration::from_secs_f64(o.interval),
        stop.clone(),
    );
    let start = Instant::now();
    let total = Duration::from_secs_f64(o.seconds);
    let mut second = 0u32;
    while start.elapsed() < total {
        let valid_before = x402_runtime::unix_now() + PAYMENT_LIFETIME;
        let paid: Vec<String> =
            fixture::presign_payments(&challenge, &keys, o.rate_paid, valid_before)
                .into_iter()
                .map(|p| p.header)
                .collect();
        let replays = &previous[..replay_count.min(previous.len())];
        let cycle = cycle(addr, o, &paid, replays);
        let load = Load {
            addr,
            connections: CONNECTIONS,
            duration: Duration::from_secs(30),
        };
        let outcome = client.block_on(loadgen::run(load, Arc::new(Requests::Each(cycle.requests))));
        if outcome.statuses != cycle.expected || !outcome.errors.is_empty() {
            unexpected += 1;
            eprintln!(
                "soak: second {second}: expected {:?}, got {:?}, errors {:?}",
                cycle.expected,
                outcome.statuses,
                outcome.errors.iter().take(3).collect::<Vec<_>>()
            );
        }
        tally(&mut responses, &outcome.statuses);
        previous = paid;
        second += 1;
        let next = start + Duration::from_secs(u64::from(second));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let samples = samples.join().map_err(|_| "the sampler failed")?;
    let window: Vec<&RssSample> = samples.iter().filter(|s| s.at >= elapsed / 3.0).collect();
    let points: Vec<(f64, f64)> = window.iter().map(|s| (s.at / 60.0, s.rss as f64)).collect();
    drop(x402);
    Ok(SoakResults {
        mode: if o.smoke { "smoke" } else { "full" }.to_owned(),
        machine: Machine::detect(),
        seconds: elapsed,
        record_retention: retention,
        payment_lifetime: PAYMENT_LIFETIME,
        responses,
        unexpected,
        slope_bytes_per_min: slope(&points),
        rss_window: (
            window.first().map_or(0, |s| s.rss),
            window.last().map_or(0, |s| s.rss),
        ),
        samples,
    })
}

fn main() -> ExitCode {
    let options = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(results) => {
            println!(
                "soak: {:.0} s, responses {:?}, {} cycles not as expected; RSS over the last two thirds {} → {} KiB, slope {:.0} bytes/min",
                results.seconds,
                results.responses,
                results.unexpected,
                results.rss_window.0 >> 10,
                results.rss_window.1 >> 10,
                results.slope_bytes_per_min
            );
            if let Err(e) = write_json(&options.out, &results) {
                eprintln!("soak: cannot write {}: {e}", options.out.display());
                return ExitCode::FAILURE;
            }
            println!("soak: results in {}", options.out.display());
            if results.unexpected == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::FAILURE
        }
    }
}
