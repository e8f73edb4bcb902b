//! Scenario 6 of `load`: the peers, each a child process over one recording facilitator double.

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use alloy_primitives::B256;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use x402_bench::fixture::{self, DoubleLog};
use x402_bench::loadgen::{self, Load, Outcome, Requests};
use x402_bench::machine::process_cpu;
use x402_bench::peers::{PEER_PATH, Peer, Running};
use x402_bench::results::{LoadResults, PeerResult, Peers, Replay};
use x402_bench::stats::{self, median};
use x402_runtime::proto::{PAYMENT_REQUIRED, PAYMENT_SIGNATURE, PaymentRequired};

use super::{Harness, print, runtime, scenario};

/// How long a peer gets to answer its first request.
const STARTUP: Duration = Duration::from_secs(30);
/// Copies of one payment sent at once.
const REPLAY_COPIES: usize = 16;
/// Past its measured time, how long a run may take to end before it counts as hung.
const GRACE: Duration = Duration::from_secs(30);

/// Measures every peer; what fails goes to the harness's failures.
pub(super) fn run(h: &mut Harness, results: &mut LoadResults) {
    let facilitator_rt = runtime("facilitator", 1);
    let log = DoubleLog::default();
    let double = facilitator_rt
        .block_on(fixture::serve(fixture::recording_facilitator_double(
            log.clone(),
        )))
        .expect("serve the recording facilitator double");
    let mut out = Peers {
        connections: h.options.peer_connections,
        peers: Vec::new(),
    };
    for peer in Peer::ALL {
        println!("peer {}: {}", peer.id(), peer.name());
        match measure(h, peer, double, &log) {
            Ok(r) => {
                results.scenarios.push(r.unpaid.clone());
                results.scenarios.push(r.paid.clone());
                out.peers.push(r);
            }
            Err(e) => h.failures.push(format!("peer {}: {e}", peer.id())),
        }
    }
    results.peers = Some(out);
}

fn measure(
    h: &mut Harness,
    peer: Peer,
    double: SocketAddr,
    log: &DoubleLog,
) -> Result<PeerResult, String> {
    let supported_before = calls(log, |c| c.supported);
    let running = Running::start(peer, &format!("http://{double}"), STARTUP)?;
    let addr = running.addr;
    let unpaid_request = loadgen::get_request(addr, PEER_PATH, &[]);
    let probe = h.fetch(addr, &unpaid_request);
    if probe.status != 402 {
        return Err(format!("unpaid GET {PEER_PATH} answered {}", probe.status));
    }
    let challenge = probe
        .header(PAYMENT_REQUIRED)
        .ok_or("the 402 has no PAYMENT-REQUIRED header")
        .and_then(|v| fixture::decode_challenge(v.as_bytes()).map_err(|_| "bad challenge"))?;
    println!(
        "peer {}: 402 of {} bytes ({} body)",
        peer.id(),
        probe.raw.len(),
        probe.body.len()
    );
    let mut result = unpaid(h, peer, &running, &unpaid_request, &probe);
    result.memory_unpaid = running.memory()?;
    let target = PaidTarget {
        peer,
        running: &running,
        double,
        challenge: &challenge,
        log,
    };
    paid(h, &target, &mut result)?;
    result.replay = replay(h, &running, &challenge, log);
    println!(
        "peer {}: one payment sent {REPLAY_COPIES} times at once: {} delivered, {} /verify, {} /settle ({:?})",
        peer.id(),
        result.replay.delivered,
        result.replay.verify_calls,
        result.replay.settle_calls,
        result.replay.statuses
    );
    result.memory = running.memory()?;
    result.supported_calls = calls(log, |c| c.supported) - supported_before;
    println!(
        "peer {}: VmRSS {} KiB, VmHWM {} KiB",
        peer.id(),
        result.memory.rss_kib,
        result.memory.hwm_kib
    );
    drop(running);
    Ok(result)
}

fn calls<T>(log: &DoubleLog, read: impl FnOnce(&fixture::DoubleCalls) -> T) -> T {
    read(&log.lock().unwrap_or_else(PoisonError::into_inner))
}

/// A run against a child process: bounded in time, its CPU read from `/proc/<pid>/stat`.
fn load_child(h: &Harness, pid: u32, load: Load, requests: Requests) -> Outcome {
    let before = process_cpu(pid);
    let limit = load.duration + GRACE;
    let run = loadgen::run(load, Arc::new(requests));
    let mut outcome = h
        .client
        .block_on(async move { tokio::time::timeout(limit, run).await })
        .unwrap_or_else(|_| Outcome {
            errors: vec![format!("no end within {limit:?}")],
            ..Outcome::default()
        });
    outcome.server_cpu = before
        .zip(process_cpu(pid))
        .map(|(b, a)| a.saturating_sub(b));
    outcome
}

/// The unpaid 402 against a plain handler of the same size, alternating rounds.
fn unpaid(
    h: &mut Harness,
    peer: Peer,
    running: &Running,
    request: &[u8],
    probe: &loadgen::Fetched,
) -> PeerResult {
    let c = h.options.peer_connections;
    let (plain, plain_request, _) = h.plain_like(probe);
    let (addr, pid) = (running.addr, running.pid());
    let at = |addr, duration| Load {
        addr,
        connections: c,
        duration,
    };
    let warmup = Duration::from_secs_f64((h.options.seconds / 5.0).clamp(0.2, 1.0));
    h.load(plain, c, warmup, Requests::Repeat(plain_request.clone()));
    load_child(h, pid, at(addr, warmup), Requests::Repeat(request.to_vec()));
    let time = h.options.duration() / 3;
    let mut ratios = Vec::new();
    let (mut plain_runs, mut peer_runs) = (Vec::new(), Vec::new());
    for _ in 0..h.options.rounds * 3 {
        let p = h.load(plain, c, time, Requests::Repeat(plain_request.clone()));
        let u = load_child(h, pid, at(addr, time), Requests::Repeat(request.to_vec()));
        h.expect("plain (peer's size)", &p, 200);
        h.expect(&format!("peer {} unpaid 402", peer.id()), &u, 402);
        ratios.push(u.rps() / p.rps());
        plain_runs.push(p);
        peer_runs.push(u);
    }
    let id = peer.id();
    let plain_s = scenario(
        &format!("plain_like_{id}"),
        &format!("plain axum handler, as many bytes as {}'s 402", peer.name()),
        c,
        &plain_runs.iter().collect::<Vec<_>>(),
    );
    let unpaid_s = scenario(
        &format!("peer_{id}_402"),
        &format!("{}: unpaid 402 (child process)", peer.name()),
        c,
        &peer_runs.iter().collect::<Vec<_>>(),
    );
    print(&plain_s);
    print(&unpaid_s);
    println!(
        "peer {id}: unpaid 402 / plain: {:.3} (per round {ratios:?})",
        median(&ratios)
    );
    PeerResult {
        id: id.to_owned(),
        name: peer.name().to_owned(),
        response_bytes_402: probe.raw.len(),
        body_bytes_402: probe.body.len(),
        plain: plain_s,
        unpaid: unpaid_s,
        ratio_402_rounds: ratios,
        ..PeerResult::default()
    }
}

/// Payments for `challenge`, signed now and valid for its `maxTimeoutSeconds`, as a client
/// signs them.
fn sign(challenge: &PaymentRequired, count: usize) -> Vec<fixture::SignedPayment> {
    let keys = [x402_testbed::PAYER_KEY, x402_testbed::PAYER2_KEY];
    let lifetime = challenge.accepts[0].max_timeout_seconds;
    let valid_before = x402_runtime::unix_now() + lifetime;
    fixture::presign_payments(challenge, &keys, count, valid_before)
}

fn paid_requests(addr: SocketAddr, signed: &[fixture::SignedPayment]) -> Requests {
    Requests::Each(
        signed
            .iter()
            .map(|p| loadgen::get_request(addr, PEER_PATH, &[(PAYMENT_SIGNATURE, &p.header)]))
            .collect(),
    )
}

/// The double's time for one payment: `/verify` then `/settle`, each a client-side round trip
/// on one keep-alive connection, summed per payment, for `count` payments one at a time.
fn facilitator_time(
    h: &Harness,
    double: SocketAddr,
    challenge: &PaymentRequired,
    count: usize,
) -> Vec<u64> {
    let offer = serde_json::to_value(&challenge.accepts[0]).expect("an offer is JSON");
    let requests = sign(challenge, count)
        .iter()
        .flat_map(|p| {
            let payload: Value = STANDARD
                .decode(&p.header)
                .ok()
                .and_then(|json| serde_json::from_slice(&json).ok())
                .unwrap_or(Value::Null);
            let body =
                json!({"x402Version": 2, "paymentPayload": payload, "paymentRequirements": offer});
            let body = serde_json::to_vec(&body).expect("JSON");
            ["/verify", "/settle"].map(|path| loadgen::post_json_request(double, path, &body))
        })
        .collect();
    let load = Load {
        addr: double,
        connections: 1,
        duration: Duration::from_secs(60),
    };
    let run = h
        .client
        .block_on(loadgen::run(load, Arc::new(Requests::Each(requests))));
    let mut pairs = vec![0u64; count];
    for (index, latency) in &run.samples {
        pairs[index / 2] += latency;
    }
    pairs.sort_unstable();
    pairs
}

/// How many of `nonces` reached the double's `/settle`.
fn settled(log: &DoubleLog, nonces: &[B256]) -> u64 {
    calls(log, |c| {
        nonces
            .iter()
            .filter(|n| c.settle.get(*n).is_some_and(|k| *k > 0))
            .count() as u64
    })
}

/// What the paid runs of one peer go through.
struct PaidTarget<'a> {
    peer: Peer,
    running: &'a Running,
    double: SocketAddr,
    challenge: &'a PaymentRequired,
    log: &'a DoubleLog,
}

/// Paid requests one at a time, in rounds, each against the double's own time measured just
/// before it: what the server adds is each round's latencies minus that round's double p50.
fn paid(h: &mut Harness, target: &PaidTarget<'_>, result: &mut PeerResult) -> Result<(), String> {
    let PaidTarget {
        peer,
        running,
        challenge,
        ..
    } = *target;
    let warm = sign(challenge, 50);
    let started = std::time::Instant::now();
    let warm = load_child(
        h,
        running.pid(),
        one_at_a_time(running.addr, Duration::from_secs(20)),
        paid_requests(running.addr, &warm),
    );
    h.expect(&format!("peer {} paid warm-up", peer.id()), &warm, 200);
    if warm.completed == 0 {
        return Err("no paid response".to_owned());
    }
    let rate = warm.completed as f64 / started.elapsed().as_secs_f64();
    let rounds = h.options.rounds.max(1);
    let seconds = h.options.seconds * 2.0 / rounds as f64;
    let (mut runs, mut facilitator, mut overhead) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let round = paid_round(h, target, rate * seconds);
        let double_p50 = stats::quantile(&round.facilitator, 0.5);
        let mut above: Vec<u64> = round
            .run
            .sorted_latencies()
            .iter()
            .map(|l| l.saturating_sub(double_p50))
            .collect();
        result
            .overhead_rounds
            .push(stats::quantile(&above, 0.5) as f64 / 1000.0);
        result.paid_settled += round.settled;
        overhead.append(&mut above);
        facilitator.extend(round.facilitator);
        runs.push(round.run);
    }
    facilitator.sort_unstable();
    overhead.sort_unstable();
    result.facilitator = stats::percentiles(&facilitator);
    result.overhead = stats::percentiles(&overhead);
    let runs: Vec<&Outcome> = runs.iter().collect();
    result.paid = scenario(
        &format!("peer_{}_paid", peer.id()),
        &format!("{}: paid, one at a time, facilitator double", peer.name()),
        1,
        &runs,
    );
    print(&result.paid);
    println!(
        "peer {}: paid p50 {:.1} µs over the double's {:.1} µs: {:.1} µs (p90 {:.1}, p99 {:.1}; per round {:?})",
        peer.id(),
        result.paid.latency.p50,
        result.facilitator.p50,
        result.overhead.p50,
        result.overhead.p90,
        result.overhead.p99,
        result.overhead_rounds
    );
    Ok(())
}

fn one_at_a_time(addr: SocketAddr, duration: Duration) -> Load {
    Load {
        addr,
        connections: 1,
        duration,
    }
}

/// One round of [`paid`]: the double measured directly, then about `expected` payments.
struct PaidRound {
    /// The double's time per payment, sorted, µs.
    facilitator: Vec<u64>,
    run: Outcome,
    /// How many of the round's paid responses reached the double's `/settle`.
    settled: u64,
}

fn paid_round(h: &mut Harness, target: &PaidTarget<'_>, expected: f64) -> PaidRound {
    let PaidTarget {
        peer,
        running,
        double,
        challenge,
        log,
    } = *target;
    let seconds = h.options.seconds * 2.0 / h.options.rounds.max(1) as f64;
    let count = ((200.0 * seconds) as usize).clamp(100, 2000);
    let facilitator = facilitator_time(h, double, challenge, count);
    let signed = sign(challenge, ((expected * 1.5) as usize + 50).min(100_000));
    let run = load_child(
        h,
        running.pid(),
        one_at_a_time(running.addr, Duration::from_secs_f64(seconds)),
        paid_requests(running.addr, &signed),
    );
    h.expect(&format!("peer {} paid", peer.id()), &run, 200);
    let delivered: Vec<B256> = run.samples.iter().map(|(i, _)| signed[*i].nonce).collect();
    let settled = settled(log, &delivered);
    if settled != run.completed {
        h.failures.push(format!(
            "peer {}: {settled} of {} paid responses were settled",
            peer.id(),
            run.completed
        ));
    }
    PaidRound {
        facilitator,
        run,
        settled,
    }
}

/// One payment sent [`REPLAY_COPIES`] times at once, each copy on its own connection.
fn replay(
    h: &mut Harness,
    running: &Running,
    challenge: &PaymentRequired,
    log: &DoubleLog,
) -> Replay {
    let signed = sign(challenge, 1);
    let nonce = signed[0].nonce;
    let request = loadgen::get_request(
        running.addr,
        PEER_PATH,
        &[(PAYMENT_SIGNATURE, &signed[0].header)],
    );
    let load = Load {
        addr: running.addr,
        connections: REPLAY_COPIES,
        duration: Duration::from_secs(10),
    };
    let run = load_child(
        h,
        running.pid(),
        load,
        Requests::Each(vec![request; REPLAY_COPIES]),
    );
    if !run.errors.is_empty() || run.completed != REPLAY_COPIES as u64 {
        h.failures.push(format!(
            "replay: {} of {REPLAY_COPIES} answered, errors: {:?}",
            run.completed, run.errors
        ));
    }
    // A settlement a server finishes after answering still reaches the double.
    std::thread::sleep(Duration::from_millis(500));
    let (verify_calls, settle_calls) = calls(log, |c| {
        (
            c.verify.get(&nonce).copied().unwrap_or(0),
            c.settle.get(&nonce).copied().unwrap_or(0),
        )
    });
    Replay {
        sent: REPLAY_COPIES as u64,
        delivered: run.statuses.get(&200).copied().unwrap_or(0),
        statuses: run.statuses,
        verify_calls,
        settle_calls,
    }
}
