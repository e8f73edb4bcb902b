//! Benchmarks of the x402 paywall.
//!
//! - `benches/micro.rs`: criterion micro benchmarks (payment header decode, 402 challenge
//!   construction, local verification against a bare ecrecover, registry lookup).
//! - `load`: a loopback load harness measuring, in one run, a plain axum handler against the
//!   unpaid 402 path, paid requests with the in-process facilitator, paid requests through an
//!   HTTP facilitator double, and paid requests settled on a local chain.
//! - `ledger`: paid load on the example weather API through an HTTP facilitator double at a
//!   fixed rate with replays mixed in, then the client's and the double's ledgers reconciled
//!   (nothing lost, settled twice or delivered unpaid).
//! - `compile-bench`: build time of a crate with 200 `#[paid]` handlers against the same crate
//!   with 200 plain handlers.
//! - `settle`: settled payments per second on anvil with Circle's USDC for our facilitator (in
//!   process and standalone) and the official TypeScript one, reconciled against the chain.
//! - `report`: turns the results into tables and SVG plots in `BENCHMARKS.md`.
//!
//! `scripts/bench.sh` runs all of them; see `BENCHMARKS.md`.

pub mod bound;
pub mod fixture;
pub mod loadgen;
pub mod machine;
pub mod results;
pub mod settlement;
pub mod stats;
