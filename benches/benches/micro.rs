//! Criterion micro benchmarks of the paywall's hot path.
//!
//! - `decode`: a v2 `PAYMENT-SIGNATURE` header to a typed payment (size cap, base64, JSON,
//!   strict numbers and addresses);
//! - `challenge`: the unpaid request through the router in memory: first request (offers and
//!   the 402 built), cached 402, and a plain handler answering a body of the same size;
//! - `verify`: the EIP-712 digest, a facilitator's signature check, the in-process
//!   facilitator's offline `verify`, against a bare `ecrecover`;
//! - `registry`: listing the registered routes, and a route's cached offers.
//!
//! `cargo bench -p x402-bench --bench micro`; `cargo test --benches` runs each once.

use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::Request;
use tower::ServiceExt as _;
use x402_bench::bound;
use x402_bench::fixture::{self, PAID_PATH, PLAIN_PATH};
use x402_runtime::X402Version;
use x402_runtime::proto::{FacilitatorRequest, PAYMENT_REQUIRED, PaymentRequired, Requirements};
use x402_runtime::schemes;
use x402_runtime::{Facilitator as _, X402};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn get(path: &str) -> Request<Body> {
    Request::builder()
        .uri(path)
        .header(http::header::HOST, "127.0.0.1:4021")
        .body(Body::empty())
        .expect("request")
}

/// Sends `path` through `router` in memory and reads the whole body; returns the status.
async fn call(router: &Router, path: &str) -> u16 {
    let response = router.clone().oneshot(get(path)).await.expect("infallible");
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    black_box(body);
    status
}

fn paid_router() -> (X402, Router) {
    let x402 = fixture::paywall(fixture::StubbedSettlement::new());
    let router = fixture::paid_app(&x402);
    (x402, router)
}

/// The 402 of the paid route, read in memory: `(challenge, body length)`.
fn challenge(rt: &tokio::runtime::Runtime, router: &Router) -> (PaymentRequired, usize) {
    rt.block_on(async {
        let response = router
            .clone()
            .oneshot(get(PAID_PATH))
            .await
            .expect("infallible");
        assert_eq!(response.status().as_u16(), 402);
        let header = response.headers()[PAYMENT_REQUIRED].as_bytes().to_vec();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (
            fixture::decode_challenge(&header).expect("challenge"),
            body.len(),
        )
    })
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let (x402, router) = paid_router();
    let (challenge, body_len) = challenge(&rt, &router);
    let payer = fixture::Payer::new(x402_testbed::PAYER_KEY);
    let nonce = alloy_primitives::keccak256(b"micro");
    let header = payer.pay(
        &challenge,
        nonce,
        x402_runtime::unix_now() + fixture::PAYMENT_LIFETIME,
    );

    let mut group = c.benchmark_group("decode");
    group.bench_function("payment_header_v2", |b| {
        b.iter(|| schemes::decode_header(black_box(header.as_bytes()), X402Version::V2))
    });
    group.finish();

    let mut group = c.benchmark_group("challenge");
    group.bench_function("first_request", |b| {
        b.iter_batched(
            paid_router,
            |(x402, router)| {
                assert_eq!(rt.block_on(call(&router, PAID_PATH)), 402);
                (x402, router)
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("cached_402", |b| {
        b.iter(|| assert_eq!(rt.block_on(call(&router, PAID_PATH)), 402))
    });
    let body = "x".repeat(body_len.saturating_sub(10));
    let plain = fixture::plain_app(format!(r#"{{"pad":"{body}"}}"#).into());
    group.bench_function("plain_same_size", |b| {
        b.iter(|| assert_eq!(rt.block_on(call(&plain, PLAIN_PATH)), 200))
    });
    group.finish();

    let items = bound::signed(64);
    let local = fixture::offline_facilitator();
    let decoded = schemes::decode_header(header.as_bytes(), X402Version::V2).expect("decodes");
    let request = FacilitatorRequest {
        x402_version: 2,
        payment_payload: decoded.wire.raw,
        payment_requirements: Requirements::V2(challenge.accepts[0].clone()),
    };
    let mut group = c.benchmark_group("verify");
    let mut i = 0usize;
    let mut next = || {
        i = (i + 1) % items.len();
        &items[i]
    };
    group.bench_function("ecrecover_bare", |b| {
        b.iter(|| bound::ecrecover(black_box(next())))
    });
    let mut i = 0usize;
    let mut next = || {
        i = (i + 1) % items.len();
        &items[i]
    };
    group.bench_function("eip712_digest", |b| {
        b.iter(|| {
            let s = next();
            x402_runtime::schemes::exact_evm::eip3009::signing_hash(
                black_box(&s.separator),
                black_box(&s.authorization),
            )
        })
    });
    let mut i = 0usize;
    let mut next = || {
        i = (i + 1) % items.len();
        &items[i]
    };
    group.bench_function("signature_check", |b| {
        b.iter(|| assert!(bound::signature_check(black_box(next()))))
    });
    group.bench_function("local_facilitator_verify", |b| {
        b.iter(|| {
            let answer = rt.block_on(local.verify(black_box(&request)));
            assert!(answer.is_ok_and(|a| a.is_valid));
        })
    });
    group.finish();

    let route = x402_runtime::routes()
        .into_iter()
        .find(|r| r.handler() == "report")
        .expect("the benchmark's paid route is registered");
    let mut group = c.benchmark_group("registry");
    group.bench_function("routes", |b| b.iter(x402_runtime::routes));
    group.bench_function("route_offers_cached", |b| {
        b.iter(|| x402.requirements(black_box(route)).expect("offers"))
    });
    group.finish();
}

criterion_group!(micro, benches);
criterion_main!(micro);
