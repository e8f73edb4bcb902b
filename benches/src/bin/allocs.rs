//! Heap allocations per request: the unpaid 402 of the paid route against a plain axum handler
//! answering a body of the 402's size, and a paid request through the in-process facilitator,
//! each sent through the router in memory (no sockets: the HTTP server's own allocations are the
//! same for every response and are left out).
//!
//! ```text
//! cargo run --release -p x402-bench --bin allocs -- [--requests 2000] [--out target/bench/allocs.json]
//! ```
//!
//! A counting global allocator (`stats_alloc`) counts every allocation and reallocation of the
//! process while the requests run one after another on a current-thread runtime (nothing else
//! runs); the count is divided by the number of requests, after a warm-up that fills every
//! cache.

use std::path::PathBuf;
use std::process::ExitCode;

use axum::Router;
use axum::body::{Body, Bytes};
use http::Request;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::ServiceExt as _;
use x402_bench::fixture::{self, PAID_PATH, PLAIN_PATH};
use x402_bench::results::{Allocations, write_json};
use x402_runtime::proto::{PAYMENT_REQUIRED, PAYMENT_SIGNATURE};

/// The system allocator, counting every allocation of the process.
#[global_allocator]
static ALLOCATOR: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

fn request(path: &str, payment: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder()
        .uri(path)
        .header(http::header::HOST, "127.0.0.1:4021");
    if let Some(payment) = payment {
        builder = builder.header(PAYMENT_SIGNATURE, payment);
    }
    builder.body(Body::empty()).expect("a valid request")
}

/// Sends `requests` through `router` and reads each body; returns the allocations per request
/// (requests built beforehand, so only the router's work and the response are counted).
async fn per_request(router: &Router, mut requests: Vec<Request<Body>>, status: u16) -> f64 {
    let n = requests.len();
    let region = Region::new(ALLOCATOR);
    for request in requests.drain(..) {
        let response = router.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status().as_u16(), status, "unexpected status");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        std::hint::black_box(body);
    }
    let change = region.change();
    (change.allocations + change.reallocations) as f64 / n as f64
}

fn parse() -> Result<(usize, PathBuf), String> {
    let mut requests = 2000;
    let mut out = PathBuf::from("target/bench/allocs.json");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--requests" => requests = value.parse().map_err(|e| format!("--requests: {e}"))?,
            "--out" => out = PathBuf::from(value),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok((requests.max(1), out))
}

async fn measure(requests: usize) -> Allocations {
    let x402 = fixture::paywall(fixture::StubbedSettlement::new());
    let paid = fixture::paid_app(&x402);
    // The 402's size, for a plain body that makes a response of as many bytes.
    let first = paid
        .clone()
        .oneshot(request(PAID_PATH, None))
        .await
        .expect("infallible");
    let header = first.headers()[PAYMENT_REQUIRED].as_bytes().to_vec();
    let body = axum::body::to_bytes(first.into_body(), usize::MAX)
        .await
        .expect("a body");
    let challenge = fixture::decode_challenge(&header).expect("a challenge");
    let plain = fixture::plain_app(Bytes::from(vec![b' '; body.len() + header.len()]));
    let many = |path: &str, n: usize| -> Vec<Request<Body>> {
        (0..n).map(|_| request(path, None)).collect()
    };
    let warm = requests.min(200);
    per_request(&plain, many(PLAIN_PATH, warm), 200).await;
    per_request(&paid, many(PAID_PATH, warm), 402).await;
    let plain_allocs = per_request(&plain, many(PLAIN_PATH, requests), 200).await;

    let unpaid_allocs = per_request(&paid, many(PAID_PATH, requests), 402).await;

    let payments = fixture::presign(&challenge, &[x402_testbed::PAYER_KEY], requests + warm);
    let mut paid_requests: Vec<Request<Body>> = payments
        .iter()
        .map(|(_, header)| request(PAID_PATH, Some(header)))
        .collect();
    let measured = paid_requests.split_off(warm);
    per_request(&paid, paid_requests, 200).await;
    let paid_allocs = per_request(&paid, measured, 200).await;
    Allocations {
        requests,
        plain: plain_allocs,
        unpaid_402: unpaid_allocs,
        paid_inprocess: paid_allocs,
    }
}

fn main() -> ExitCode {
    let (requests, out) = match parse() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("allocs: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let allocations = runtime.block_on(measure(requests));
    println!(
        "allocations per request: plain {:.1}, unpaid 402 {:.1}, paid (in process) {:.1}",
        allocations.plain, allocations.unpaid_402, allocations.paid_inprocess
    );
    if let Err(e) = write_json(&out, &allocations) {
        eprintln!("allocs: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
