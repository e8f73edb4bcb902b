//! The load run of one generated route crate (`route-scale` writes crates whose `main` calls
//! [`main`] with their router): the 402 of the last route, the 402 rotating over every route, and
//! paid requests to the last route with the in-process facilitator (settlement stubbed at the
//! chain boundary, as `load`'s `paid_inprocess`).
//!
//! ```text
//! target/release/routes-<N> [--seconds 3] [--connections 16] [--out FILE]
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::runtime::Runtime;
use x402_runtime::proto::{PAYMENT_REQUIRED, PAYMENT_SIGNATURE};

use crate::fixture;
use crate::growth::{RouteRun, Throughput, rss_bytes};
use crate::loadgen::{self, Load, Outcome, Requests};
use crate::machine::threads_cpu;
use crate::results::write_json;
use crate::stats;

/// The path of generated route `index`.
pub fn route_path(index: usize) -> String {
    format!("/r/{index}")
}

struct Options {
    seconds: f64,
    connections: usize,
    out: PathBuf,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        seconds: 3.0,
        connections: 16,
        out: PathBuf::from("routes.json"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--seconds" => o.seconds = value("--seconds")?.parse().map_err(|e| format!("{e}"))?,
            "--connections" => {
                o.connections = value("--connections")?
                    .parse()
                    .map_err(|e| format!("{e}"))?;
            }
            "--out" => o.out = PathBuf::from(value("--out")?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

fn runtime(name: &str) -> Runtime {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

struct Bench {
    server: Runtime,
    client: Runtime,
    addr: SocketAddr,
    connections: usize,
    failures: Vec<String>,
}

impl Bench {
    fn load(&self, duration: Duration, requests: Requests) -> Outcome {
        let load = Load {
            addr: self.addr,
            connections: self.connections,
            duration,
        };
        let before = threads_cpu("server");
        let mut outcome = self.client.block_on(loadgen::run(load, Arc::new(requests)));
        outcome.server_cpu = before
            .zip(threads_cpu("server"))
            .map(|(b, a)| a.saturating_sub(b));
        outcome
    }

    fn expect(&mut self, what: &str, outcome: &Outcome, status: u16) {
        if !outcome.all(status) || outcome.completed == 0 {
            self.failures.push(format!(
                "{what}: expected only {status}, got {:?}, errors: {:?}",
                outcome.statuses,
                outcome.errors.iter().take(3).collect::<Vec<_>>()
            ));
        }
    }

    fn get(&self, path: &str) -> Vec<u8> {
        loadgen::get_request(self.addr, path, &[])
    }
}

fn throughput(outcome: &Outcome) -> Throughput {
    Throughput {
        rps: outcome.rps(),
        completed: outcome.completed,
        latency: stats::percentiles(&outcome.sorted_latencies()),
        server_cpu_us: outcome.server_cpu.map_or(0.0, |c| {
            c.as_secs_f64() / outcome.completed.max(1) as f64 * 1e6
        }),
    }
}

/// `count` unpaid requests cycling over the first `routes` generated paths.
fn rotation(bench: &Bench, routes: usize, count: usize) -> Requests {
    let prepared: Vec<Vec<u8>> = (0..routes).map(|i| bench.get(&route_path(i))).collect();
    Requests::Each((0..count).map(|i| prepared[i % routes].clone()).collect())
}

/// Pre-signed paid requests to `path`.
fn paid(bench: &Bench, path: &str, count: usize) -> Result<Requests, String> {
    let probe = bench
        .client
        .block_on(loadgen::fetch(bench.addr, &bench.get(path)))
        .map_err(|e| format!("probe {path}: {e}"))?;
    let header = probe.header(PAYMENT_REQUIRED).ok_or(format!(
        "{path} answered {} without a challenge",
        probe.status
    ))?;
    let challenge = fixture::decode_challenge(header.as_bytes())?;
    let keys = [x402_testbed::PAYER_KEY, x402_testbed::PAYER2_KEY];
    let requests = fixture::presign(&challenge, &keys, count)
        .into_iter()
        .map(|(_, signed)| loadgen::get_request(bench.addr, path, &[(PAYMENT_SIGNATURE, &signed)]))
        .collect();
    Ok(Requests::Each(requests))
}

fn measure(
    bench: &mut Bench,
    routes: usize,
    seconds: f64,
    rss_router: u64,
) -> Result<RouteRun, String> {
    let d = Duration::from_secs_f64(seconds);
    let warmup = Duration::from_secs_f64((seconds / 5.0).clamp(0.2, 1.0));
    let last = route_path(routes - 1);
    // Every route's first 402 (its offers built and cached) before anything is measured.
    let first = bench.load(Duration::from_secs(120), rotation(bench, routes, routes));
    bench.expect("first request of every route", &first, 402);
    drop(first);
    let rss_warm = rss_bytes();
    bench.load(warmup, Requests::Repeat(bench.get(&last)));
    let unpaid_last = bench.load(d, Requests::Repeat(bench.get(&last)));
    bench.expect("402 of the last route", &unpaid_last, 402);
    let count = ((unpaid_last.rps() * seconds * 1.5) as usize).clamp(routes, 4_000_000);
    let unpaid_rotation = bench.load(d, rotation(bench, routes, count));
    bench.expect("402 rotating over every route", &unpaid_rotation, 402);
    let started = Instant::now();
    let warm = bench.load(Duration::from_secs(60), paid(bench, &last, 500)?);
    bench.expect("paid warm-up", &warm, 200);
    let estimate = warm.completed as f64 / started.elapsed().as_secs_f64();
    let count = ((estimate * seconds * 1.5) as usize + 200).min(400_000);
    let paid_last = bench.load(d, paid(bench, &last, count)?);
    bench.expect("paid, last route", &paid_last, 200);
    Ok(RouteRun {
        routes,
        registered: x402_runtime::routes().len(),
        unpaid_last: throughput(&unpaid_last),
        unpaid_rotation: throughput(&unpaid_rotation),
        paid_last: throughput(&paid_last),
        rss_router,
        rss_warm,
        rss_bytes: rss_bytes(),
    })
}

/// Serves `app` (the generated crate's `routes` `#[paid]` routes at [`route_path`]`(0..routes)`)
/// behind a paywall with the in-process facilitator, measures it and writes a [`RouteRun`] to
/// `--out`.
pub fn main(app: Router, routes: usize) -> ExitCode {
    let rss_router = rss_bytes();
    let options = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("routes-{routes}: {e}");
            return ExitCode::from(2);
        }
    };
    let server = runtime("server");
    let x402 = fixture::paywall(fixture::StubbedSettlement::new());
    let addr = match server.block_on(fixture::serve(app.layer(x402.layer()))) {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("routes-{routes}: cannot serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut bench = Bench {
        server,
        client: runtime("client"),
        addr,
        connections: options.connections,
        failures: Vec::new(),
    };
    let run = match measure(&mut bench, routes.max(1), options.seconds, rss_router) {
        Ok(run) => run,
        Err(e) => {
            eprintln!("routes-{routes}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "routes-{routes}: 402 last {:.0} req/s, 402 rotation {:.0} req/s, paid {:.0} req/s; RSS {} MiB with the router, {} MiB with every 402 cached, {} MiB at the end",
        run.unpaid_last.rps,
        run.unpaid_rotation.rps,
        run.paid_last.rps,
        run.rss_router >> 20,
        run.rss_warm >> 20,
        run.rss_bytes >> 20
    );
    if let Err(e) = write_json(&options.out, &run) {
        eprintln!(
            "routes-{routes}: cannot write {}: {e}",
            options.out.display()
        );
        return ExitCode::FAILURE;
    }
    drop(bench.server);
    if bench.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        for f in &bench.failures {
            eprintln!("routes-{routes}: FAILED {f}");
        }
        ExitCode::FAILURE
    }
}
