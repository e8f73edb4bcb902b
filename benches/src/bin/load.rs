//! The loopback load harness: every load scenario in one run, results to JSON.
//!
//! ```text
//! cargo run --release -p x402-bench --bin load -- [--smoke] [--out target/bench/load.json]
//!     [--seconds 5] [--rounds 3] [--connections 16] [--no-chain]
//!     [--no-peers | --peers-only] [--peer-connections 32]
//! ```
//!
//! Scenarios, in order (servers and the generator share the machine; each has its own tokio
//! runtime with one worker per core):
//!
//! 1. `ceiling`: the generator against a server that answers canned bytes (the 402's own);
//! 2. `plain` and `unpaid_402`, alternating for `--rounds` rounds: a plain axum handler
//!    answering a body of the 402's size, against the paid route without a payment; then
//!    `unpaid_402` against `quoted_402`, the same price found by a trivial quote function;
//! 3. `paid_inprocess`: pre-signed payments through the paywall with the in-process facilitator
//!    (offline verification, settlement stubbed at the chain boundary), against the bare
//!    `ecrecover` bound measured on all cores before and after;
//! 4. `paid_http_facilitator`: one request at a time through an HTTP facilitator double; our
//!    overhead is each request's latency minus the time the server spent waiting on the
//!    facilitator for it;
//! 5. `paid_onchain`: 8 connections, settled on anvil with Circle's USDC (the test bed); the
//!    merchant's balance gain is checked against the number of paid responses;
//! 6. `peer_*`: the same paid route served by this project (the example weather API), x402-rs
//!    (`x402-axum` 2.0.2) and `@x402/express` 2.27.0, each as a child process over a recording
//!    facilitator double (see [`x402_bench::peers`] and section "Peers" of BENCHMARKS.md): the
//!    unpaid 402 at `--peer-connections` alternating with a plain handler answering as many
//!    bytes, paid requests one at a time against the double's own time, one payment sent 16
//!    times at once, and the process's memory. `--no-peers` leaves it out, `--peers-only` runs
//!    only it. A peer not built or installed fails the run.
//!
//! `--smoke` runs each scenario about a second, once, and fails on any unexpected status; it
//! leaves the peers out (building x402-rs's dependency tree is not worth CI minutes).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use alloy_primitives::U256;
use axum::body::Bytes;
use tokio::runtime::Runtime;
use x402_bench::bound;
use x402_bench::fixture::{self, PAID_PATH, PLAIN_PATH, QUOTED_PATH};
use x402_bench::loadgen::{self, Load, Outcome, Requests};
use x402_bench::machine::{Machine, threads_cpu};
use x402_bench::results::{Bound, LoadResults, OnChain, Overhead, Scenario, write_json};
use x402_bench::stats::{self, median};
use x402_runtime::proto::{PAYMENT_REQUIRED, PAYMENT_SIGNATURE, PaymentRequired};

#[path = "load/peer_runs.rs"]
mod peers;

struct Options {
    smoke: bool,
    out: PathBuf,
    seconds: f64,
    rounds: usize,
    connections: usize,
    chain: bool,
    peers: bool,
    peers_only: bool,
    peer_connections: usize,
}

impl Options {
    fn parse() -> Result<Options, String> {
        let mut o = Options {
            smoke: false,
            out: PathBuf::from("target/bench/load.json"),
            seconds: 5.0,
            rounds: 3,
            connections: 16,
            chain: true,
            peers: true,
            peers_only: false,
            peer_connections: 32,
        };
        let mut seconds = None;
        let mut rounds = None;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            match arg.as_str() {
                "--smoke" => o.smoke = true,
                "--no-chain" => o.chain = false,
                "--no-peers" => o.peers = false,
                "--peers-only" => o.peers_only = true,
                "--peer-connections" => {
                    o.peer_connections = value("--peer-connections")?
                        .parse()
                        .map_err(|e| format!("{e}"))?;
                }
                "--out" => o.out = PathBuf::from(value("--out")?),
                "--seconds" => {
                    seconds = Some(value("--seconds")?.parse().map_err(|e| format!("{e}"))?);
                }
                "--rounds" => {
                    rounds = Some(value("--rounds")?.parse().map_err(|e| format!("{e}"))?)
                }
                "--connections" => {
                    o.connections = value("--connections")?
                        .parse()
                        .map_err(|e| format!("{e}"))?;
                }
                "--bench" => {} // passed by `cargo bench`
                other => return Err(format!("unknown argument {other}")),
            }
        }
        if o.smoke {
            o.seconds = 1.0;
            o.rounds = 1;
            o.peers = false;
        }
        if o.peers_only && !o.peers {
            return Err("--peers-only runs the peers: not with --no-peers or --smoke".to_owned());
        }
        o.seconds = seconds.unwrap_or(o.seconds);
        o.rounds = rounds.unwrap_or(o.rounds).max(1);
        Ok(o)
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }
}

fn runtime(name: &str, workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The harness: the runtimes and what went wrong so far.
struct Harness {
    options: Options,
    server: Runtime,
    client: Runtime,
    failures: Vec<String>,
}

impl Harness {
    fn load(
        &self,
        addr: SocketAddr,
        connections: usize,
        duration: Duration,
        requests: Requests,
    ) -> Outcome {
        let load = Load {
            addr,
            connections,
            duration,
        };
        let cpu_before = threads_cpu("server");
        let mut outcome = self.client.block_on(loadgen::run(load, Arc::new(requests)));
        outcome.server_cpu = cpu_before
            .zip(threads_cpu("server"))
            .map(|(before, after)| after.saturating_sub(before));
        outcome
    }

    /// Checks that every response of `outcome` had `status`.
    fn expect(&mut self, what: &str, outcome: &Outcome, status: u16) {
        if !outcome.all(status) || outcome.completed == 0 {
            self.failures.push(format!(
                "{what}: expected only {status}, got {:?} ({} responses), errors: {:?}",
                outcome.statuses,
                outcome.completed,
                outcome.errors.iter().take(3).collect::<Vec<_>>()
            ));
        }
    }

    fn fetch(&self, addr: SocketAddr, request: &[u8]) -> loadgen::Fetched {
        self.client
            .block_on(loadgen::fetch(addr, request))
            .expect("a single request succeeds")
    }

    /// A plain handler answering as many bytes as `probe` (status line, headers and body), so
    /// both move the same bytes: its body is the probe's size plus the probe's extra headers.
    /// Returns its address, its request and its answer.
    fn plain_like(&self, probe: &loadgen::Fetched) -> (SocketAddr, Vec<u8>, loadgen::Fetched) {
        let mut body_len = probe.body.len();
        loop {
            let addr = self
                .server
                .block_on(fixture::serve(fixture::plain_app(padded_body(body_len))))
                .expect("serve the plain app");
            let request = loadgen::get_request(addr, PLAIN_PATH, &[]);
            let fetched = self.fetch(addr, &request);
            if fetched.raw.len() == probe.raw.len() || body_len > 1 << 20 {
                return (addr, request, fetched);
            }
            body_len = (body_len + probe.raw.len()).saturating_sub(fetched.raw.len());
        }
    }

    fn challenge(&self, addr: SocketAddr) -> PaymentRequired {
        let probe = self.fetch(addr, &loadgen::get_request(addr, PAID_PATH, &[]));
        assert_eq!(
            probe.status, 402,
            "the paid route answers 402 without payment"
        );
        let header = probe
            .header(PAYMENT_REQUIRED)
            .expect("the 402 carries PAYMENT-REQUIRED");
        fixture::decode_challenge(header.as_bytes()).expect("a valid challenge")
    }

    /// Pre-signed paid requests for `addr`, `count` of them.
    fn paid_requests(
        &self,
        addr: SocketAddr,
        challenge: &PaymentRequired,
        keys: &[&str],
        count: usize,
    ) -> (Vec<alloy_primitives::B256>, Requests) {
        let signed = fixture::presign(challenge, keys, count);
        let nonces = signed.iter().map(|(n, _)| *n).collect();
        let requests = signed
            .iter()
            .map(|(_, header)| {
                loadgen::get_request(addr, PAID_PATH, &[(PAYMENT_SIGNATURE, header)])
            })
            .collect();
        (nonces, Requests::Each(requests))
    }
}

/// The quoted route's unpaid 402 against the fixed route's, alternating; the ratios go to
/// `results`, the quoted side is returned.
fn quoted_against_fixed(
    h: &mut Harness,
    paid: SocketAddr,
    fixed_request: &[u8],
    results: &mut LoadResults,
) -> Scenario {
    let c = h.options.connections;
    let quoted_request = loadgen::get_request(paid, &format!("{QUOTED_PATH}?rows=1"), &[]);
    let probe = h.fetch(paid, &quoted_request);
    assert_eq!(probe.status, 402, "the quoted route answers 402");
    let warmup = Duration::from_secs_f64((h.options.seconds / 5.0).clamp(0.2, 1.0));
    h.load(paid, c, warmup, Requests::Repeat(quoted_request.clone()));
    let (rounds, time) = if h.options.smoke {
        (1, h.options.duration())
    } else {
        (h.options.rounds * 3, h.options.duration() / 3)
    };
    let mut quoted_runs = Vec::new();
    for _ in 0..rounds {
        let f = h.load(paid, c, time, Requests::Repeat(fixed_request.to_vec()));
        let q = h.load(paid, c, time, Requests::Repeat(quoted_request.clone()));
        h.expect("unpaid 402", &f, 402);
        h.expect("quoted 402", &q, 402);
        results.ratio_quoted_402_rounds.push(q.rps() / f.rps());
        quoted_runs.push(q);
    }
    let quoted = scenario(
        "quoted_402",
        "quoted route without payment: the 402 with a trivial quote",
        c,
        &quoted_runs.iter().collect::<Vec<_>>(),
    );
    print(&quoted);
    println!(
        "quoted 402 / fixed 402: {:.3} (per round {:?})",
        median(&results.ratio_quoted_402_rounds),
        results.ratio_quoted_402_rounds
    );
    quoted
}

fn scenario(id: &str, title: &str, connections: usize, outcomes: &[&Outcome]) -> Scenario {
    let mut all: Vec<u64> = outcomes
        .iter()
        .flat_map(|o| o.samples.iter().map(|s| s.1))
        .collect();
    all.sort_unstable();
    let completed: u64 = outcomes.iter().map(|o| o.completed).sum();
    let seconds: f64 = outcomes.iter().map(|o| o.elapsed.as_secs_f64()).sum();
    let mut statuses = BTreeMap::new();
    for o in outcomes {
        for (s, n) in &o.statuses {
            *statuses.entry(*s).or_default() += n;
        }
    }
    Scenario {
        id: id.to_owned(),
        title: title.to_owned(),
        connections,
        completed,
        seconds,
        rps: completed as f64 / seconds.max(1e-9),
        rounds: outcomes.iter().map(|o| o.rps()).collect(),
        latency: stats::percentiles(&all),
        curve: stats::curve(&all),
        response_bytes: outcomes.iter().map(|o| o.response_bytes).max().unwrap_or(0),
        server_cpu_us: outcomes
            .iter()
            .map(|o| o.server_cpu.map_or(0.0, |c| c.as_secs_f64()))
            .sum::<f64>()
            / completed.max(1) as f64
            * 1e6,
        statuses,
    }
}

fn print(s: &Scenario) {
    println!(
        "{:<24} c={:<3} {:>9.0} req/s  p50 {:>8.1} µs  p99 {:>8.1} µs  server CPU {:>6.1} µs/req  ({} responses, {:?})",
        s.id,
        s.connections,
        s.rps,
        s.latency.p50,
        s.latency.p99,
        s.server_cpu_us,
        s.completed,
        s.statuses
    );
}

/// A JSON body of exactly `len` bytes.
fn padded_body(len: usize) -> Bytes {
    let frame = r#"{"pad":""}"#.len();
    let pad = "x".repeat(len.saturating_sub(frame));
    let body = format!(r#"{{"pad":"{pad}"}}"#);
    assert_eq!(body.len(), len.max(frame));
    Bytes::from(body)
}

fn main() -> ExitCode {
    let options = match Options::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::from(2);
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut h = Harness {
        server: runtime("server", cores),
        client: runtime("client", cores),
        options,
        failures: Vec::new(),
    };
    let mut results = LoadResults {
        mode: if h.options.smoke { "smoke" } else { "full" }.to_owned(),
        machine: Machine::detect(),
        ..LoadResults::default()
    };
    let d = h.options.duration();
    let warmup = Duration::from_secs_f64((h.options.seconds / 5.0).clamp(0.2, 1.0));
    let c = h.options.connections;
    println!(
        "load: {} mode, {} s per measurement, {} rounds, {} connections, {} cores",
        results.mode, h.options.seconds, h.options.rounds, c, cores
    );
    if h.options.peers_only {
        peers::run(&mut h, &mut results);
        return finish(&h, &results);
    }

    // The paywall with the in-process facilitator (settlement stubbed at the chain boundary).
    let x402 = fixture::paywall(fixture::StubbedSettlement::new());
    let paid = h
        .server
        .block_on(fixture::serve(fixture::paid_app(&x402)))
        .expect("serve the paid app");
    let unpaid_request = loadgen::get_request(paid, PAID_PATH, &[]);
    let probe = h.fetch(paid, &unpaid_request);
    assert_eq!(probe.status, 402);
    let challenge = h.challenge(paid);
    let (plain, plain_request, plain_probe) = h.plain_like(&probe);
    println!(
        "402 response: {} bytes ({} body); plain response: {} bytes ({} body)",
        probe.raw.len(),
        probe.body.len(),
        plain_probe.raw.len(),
        plain_probe.body.len()
    );

    // 1. The generator's ceiling.
    let canned = h
        .server
        .block_on(loadgen::canned_server(probe.raw.clone()))
        .expect("serve canned bytes");
    let canned_request = loadgen::get_request(canned, PAID_PATH, &[]);
    h.load(canned, c, warmup, Requests::Repeat(canned_request.clone()));
    let ceiling = h.load(canned, c, d, Requests::Repeat(canned_request));
    h.expect("ceiling", &ceiling, 402);
    let ceiling = scenario(
        "ceiling",
        "load generator against canned 402 bytes (no HTTP server)",
        c,
        &[&ceiling],
    );
    print(&ceiling);
    results.scenarios.push(ceiling);

    // 2. Plain axum against the unpaid 402 path, alternating.
    h.load(plain, c, warmup, Requests::Repeat(plain_request.clone()));
    h.load(paid, c, warmup, Requests::Repeat(unpaid_request.clone()));
    // Short rounds, many of them: a burst of other work on the machine then spoils one ratio
    // out of several instead of a whole side of the comparison.
    let mut plain_runs = Vec::new();
    let mut unpaid_runs = Vec::new();
    let ab_rounds = if h.options.smoke {
        1
    } else {
        h.options.rounds * 3
    };
    let ab_time = if h.options.smoke { d } else { d / 3 };
    for _ in 0..ab_rounds {
        let p = h.load(plain, c, ab_time, Requests::Repeat(plain_request.clone()));
        let u = h.load(paid, c, ab_time, Requests::Repeat(unpaid_request.clone()));
        h.expect("plain", &p, 200);
        h.expect("unpaid 402", &u, 402);
        results.ratio_402_rounds.push(u.rps() / p.rps());
        if let (Some(pc), Some(uc)) = (p.server_cpu, u.server_cpu) {
            let per = |cpu: Duration, o: &Outcome| cpu.as_secs_f64() / o.completed.max(1) as f64;
            results.cpu_ratio_402_rounds.push(per(pc, &p) / per(uc, &u));
        }
        plain_runs.push(p);
        unpaid_runs.push(u);
    }
    let plain_s = scenario(
        "plain",
        "plain axum handler, body of the 402's size",
        c,
        &plain_runs.iter().collect::<Vec<_>>(),
    );
    let unpaid_s = scenario(
        "unpaid_402",
        "paid route without payment: the 402 challenge",
        c,
        &unpaid_runs.iter().collect::<Vec<_>>(),
    );
    print(&plain_s);
    print(&unpaid_s);
    println!(
        "unpaid 402 / plain: {:.3} (per round {:?})",
        median(&results.ratio_402_rounds),
        results.ratio_402_rounds
    );
    results.scenarios.push(plain_s);
    results.scenarios.push(unpaid_s);
    let quoted_s = quoted_against_fixed(&mut h, paid, &unpaid_request, &mut results);
    results.scenarios.push(quoted_s);

    // 3. Paid in process, against the ecrecover bound.
    let items = bound::signed(256);
    let bound_time = Duration::from_secs_f64((h.options.seconds / 5.0).clamp(0.2, 1.0));
    let (recover_before, verify_before) = bound::measure(&items, cores, bound_time);
    let payer_keys = [x402_testbed::PAYER_KEY, x402_testbed::PAYER2_KEY];
    let warm_count = if h.options.smoke { 100 } else { 2000 };
    let (_, warm) = h.paid_requests(paid, &challenge, &payer_keys, warm_count);
    let started = Instant::now();
    let warm = h.load(paid, c, Duration::from_secs(30), warm);
    h.expect("paid warm-up", &warm, 200);
    let estimate = warm.completed as f64 / started.elapsed().as_secs_f64();
    let mut paid_runs = Vec::new();
    for _ in 0..h.options.rounds {
        let count = ((estimate * h.options.seconds * 1.5) as usize + 200).min(400_000);
        let (_, requests) = h.paid_requests(paid, &challenge, &payer_keys, count);
        let run = h.load(paid, c, d, requests);
        h.expect("paid in process", &run, 200);
        paid_runs.push(run);
    }
    let (recover_after, verify_after) = bound::measure(&items, cores, bound_time);
    // The bound is the best the machine did: a burst of other work lowers a measurement, nothing
    // raises one.
    results.bound = Bound {
        ecrecover_per_s: recover_before.max(recover_after),
        local_verify_per_s: verify_before.max(verify_after),
        rounds: vec![recover_before, recover_after],
    };
    results.ratio_paid_rounds = paid_runs
        .iter()
        .map(|r| r.rps() / results.bound.ecrecover_per_s)
        .collect();
    let paid_s = scenario(
        "paid_inprocess",
        "paid, in-process facilitator, settlement stubbed at the chain boundary",
        c,
        &paid_runs.iter().collect::<Vec<_>>(),
    );
    print(&paid_s);
    println!(
        "ecrecover bound: {:.0}/s on {cores} cores (signature check {:.0}/s); paid / bound: {:.3}",
        results.bound.ecrecover_per_s,
        results.bound.local_verify_per_s,
        median(&results.ratio_paid_rounds)
    );
    results.scenarios.push(paid_s);
    drop(paid_runs);

    // 4. Through an HTTP facilitator double, one request at a time.
    let facilitator_rt = runtime("facilitator", 1);
    let double = facilitator_rt
        .block_on(fixture::serve(fixture::facilitator_double()))
        .expect("serve the facilitator double");
    let (timed, times) = fixture::Timed::new(fixture::http_facilitator(double));
    let x402_http = fixture::paywall(timed);
    let paid_http = h
        .server
        .block_on(fixture::serve(fixture::paid_app(&x402_http)))
        .expect("serve the paid app over the double");
    let challenge_http = h.challenge(paid_http);
    let (_, warm) = h.paid_requests(
        paid_http,
        &challenge_http,
        &payer_keys,
        if h.options.smoke { 20 } else { 300 },
    );
    let started = Instant::now();
    let warm = h.load(paid_http, 1, Duration::from_secs(30), warm);
    h.expect("HTTP facilitator warm-up", &warm, 200);
    let estimate = warm.completed as f64 / started.elapsed().as_secs_f64();
    let seconds = h.options.seconds * 2.0;
    let count = ((estimate * seconds * 1.5) as usize + 50).min(200_000);
    let (nonces, requests) = h.paid_requests(paid_http, &challenge_http, &payer_keys, count);
    let run = h.load(paid_http, 1, Duration::from_secs_f64(seconds), requests);
    h.expect("paid through the HTTP facilitator", &run, 200);
    let plain_one = h.load(plain, 1, d, Requests::Repeat(plain_request.clone()));
    h.expect("plain, one connection", &plain_one, 200);
    {
        let times = times.lock().unwrap_or_else(PoisonError::into_inner);
        let mut facilitator = Vec::new();
        let mut overhead = Vec::new();
        for (index, latency) in &run.samples {
            if let Some(spent) = times.get(&nonces[*index]) {
                let spent = u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX);
                facilitator.push(spent);
                overhead.push(latency.saturating_sub(spent));
            }
        }
        facilitator.sort_unstable();
        overhead.sort_unstable();
        if overhead.len() != run.samples.len() {
            h.failures.push(format!(
                "facilitator times found for {} of {} requests",
                overhead.len(),
                run.samples.len()
            ));
        }
        results.overhead = Overhead {
            samples: overhead.len(),
            total: stats::percentiles(&run.sorted_latencies()),
            facilitator: stats::percentiles(&facilitator),
            overhead: stats::percentiles(&overhead),
            plain: stats::percentiles(&plain_one.sorted_latencies()),
        };
    }
    let http_s = scenario(
        "paid_http_facilitator",
        "paid, HTTP facilitator double, one request at a time",
        1,
        &[&run],
    );
    print(&http_s);
    let plain_one_s = scenario(
        "plain_c1",
        "plain axum handler, one request at a time",
        1,
        &[&plain_one],
    );
    print(&plain_one_s);
    println!(
        "overhead over the facilitator: p50 {:.1} µs, p99 {:.1} µs (facilitator p50 {:.1} µs)",
        results.overhead.overhead.p50,
        results.overhead.overhead.p99,
        results.overhead.facilitator.p50
    );
    results.scenarios.push(http_s);
    results.scenarios.push(plain_one_s);
    drop(facilitator_rt);

    // 5. Settled on the local chain.
    if !h.options.chain {
        results.onchain_skipped = Some("--no-chain".to_owned());
    } else if !x402_testbed::skip_unless_available("load: paid_onchain") {
        results.onchain_skipped =
            Some("the test bed's tools (node, npm, python3) are missing".to_owned());
    } else {
        match onchain(&mut h, &payer_keys) {
            Ok((s, onchain)) => {
                print(&s);
                println!(
                    "on chain: {} settled, merchant gained {} (expected {})",
                    onchain.settled, onchain.merchant_gain, onchain.expected_gain
                );
                results.scenarios.push(s);
                results.onchain = Some(onchain);
            }
            Err(e) => h.failures.push(format!("on chain: {e}")),
        }
    }

    if h.options.peers {
        peers::run(&mut h, &mut results);
    } else {
        results.peers_skipped = Some(
            if h.options.smoke {
                "--smoke"
            } else {
                "--no-peers"
            }
            .to_owned(),
        );
    }
    finish(&h, &results)
}

/// Writes the results and reports the failures.
fn finish(h: &Harness, results: &LoadResults) -> ExitCode {
    if let Err(e) = write_json(&h.options.out, results) {
        eprintln!("load: cannot write {}: {e}", h.options.out.display());
        return ExitCode::FAILURE;
    }
    println!("load: results in {}", h.options.out.display());
    if h.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        for f in &h.failures {
            eprintln!("load: FAILED {f}");
        }
        ExitCode::FAILURE
    }
}

/// Paid requests at concurrency 8, settled on anvil with Circle's USDC.
fn onchain(h: &mut Harness, keys: &[&str]) -> Result<(Scenario, OnChain), String> {
    let chain = h
        .server
        .block_on(x402_testbed::Chain::start())
        .map_err(|e| format!("cannot start the chain: {e}"))?;
    let balance = |h: &Harness| {
        h.server
            .block_on(chain.usdc_balance(x402_testbed::MERCHANT))
            .map_err(|e| format!("cannot read the merchant's balance: {e}"))
    };
    let before = balance(h)?;
    let x402 = fixture::paywall(fixture::chain_facilitator(chain.rpc_url()));
    let addr = h
        .server
        .block_on(fixture::serve(fixture::paid_app(&x402)))
        .map_err(|e| format!("serve: {e}"))?;
    let challenge = h.challenge(addr);
    let connections = 8;
    let warm_count = 16;
    let (_, warm) = h.paid_requests(addr, &challenge, keys, warm_count);
    let warm = h.load(addr, connections, Duration::from_secs(60), warm);
    h.expect("on chain warm-up", &warm, 200);
    let seconds = if h.options.smoke {
        1.5
    } else {
        h.options.seconds * 2.0
    };
    let count = if h.options.smoke { 400 } else { 6_000 };
    let (_, requests) = h.paid_requests(addr, &challenge, keys, count);
    let run = h.load(
        addr,
        connections,
        Duration::from_secs_f64(seconds),
        requests,
    );
    h.expect("paid on chain", &run, 200);
    let after = balance(h)?;
    let settled = warm.statuses.get(&200).copied().unwrap_or(0)
        + run.statuses.get(&200).copied().unwrap_or(0);
    let price = U256::from(
        challenge.accepts[0]
            .amount
            .parse::<u64>()
            .map_err(|e| e.to_string())?,
    );
    let gain = after - before;
    let expected = price * U256::from(settled);
    if gain != expected {
        h.failures.push(format!(
            "on chain: the merchant gained {gain}, expected {expected}"
        ));
    }
    drop(chain);
    Ok((
        scenario(
            "paid_onchain",
            "paid, settled on anvil with Circle's USDC (FiatTokenV2_2)",
            connections,
            &[&run],
        ),
        OnChain {
            settled,
            merchant_gain: gain.to_string(),
            expected_gain: expected.to_string(),
        },
    ))
}
