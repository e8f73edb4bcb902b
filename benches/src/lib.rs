//! Benchmarks of the x402 paywall.
//!
//! - `benches/micro.rs`: criterion micro benchmarks (payment header decode, 402 challenge
//!   construction, a facilitator's signature check against a bare ecrecover, registry lookup).
//! - `load`: a loopback load harness measuring, in one run, a plain axum handler against the
//!   unpaid 402 path, paid requests with the in-process facilitator, paid requests through an
//!   HTTP facilitator double, and paid requests settled on a local chain; then the same paid
//!   route served by this project, x402-rs and `@x402/express`, each as a child process
//!   ([`peers`]).
//! - `ledger`: paid load on the example weather API through an HTTP facilitator double at a
//!   fixed rate with replays mixed in, then the client's and the double's ledgers reconciled
//!   (nothing lost, settled twice or delivered unpaid).
//! - `compile-bench`: build time of a crate with 200 `#[paid]` handlers against the same crate
//!   with 200 plain handlers.
//! - `route-scale`: 402 and paid throughput with 10, 1,000 and 10,000 `#[paid]` routes
//!   (generated crates; [`route_load`] is their load run).
//! - `replay-rss`: resident memory per entry of the in-memory replay store.
//! - `soak`: a bounded mixed load (402s, payments, replays), resident memory sampled throughout.
//! - `settle`: settled payments per second on anvil with Circle's USDC for our facilitator (in
//!   process and standalone) and the official TypeScript one, reconciled against the chain.
//! - `report`: turns the results into tables and SVG plots in `BENCHMARKS.md`.
//!
//! `scripts/bench.sh` runs all of them; see `BENCHMARKS.md`.

pub mod bound;
pub mod fixture;
pub mod growth;
pub mod growth_report;
pub mod loadgen;
pub mod machine;
pub mod peers;
pub mod results;
pub mod route_load;
pub mod settlement;
pub mod stats;
