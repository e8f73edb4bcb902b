//! The results files the harnesses write and `report` reads (JSON under `target/bench/`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::machine::Machine;
use crate::peers::Memory;
use crate::stats::Percentiles;

/// One load scenario.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Scenario {
    /// Stable id (`plain`, `unpaid_402`, …).
    pub id: String,
    /// What it measures.
    pub title: String,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// Responses counted.
    pub completed: u64,
    /// Measured seconds (summed over rounds).
    pub seconds: f64,
    /// Responses per second over all rounds.
    pub rps: f64,
    /// Responses per second of each round.
    pub rounds: Vec<f64>,
    /// Latency percentiles, µs.
    pub latency: Percentiles,
    /// `(quantile, µs)` points of the latency distribution.
    pub curve: Vec<(f64, f64)>,
    /// Size of one response, bytes (status line, headers, body).
    pub response_bytes: usize,
    /// CPU time of the server's threads per response, µs (0 when not measured).
    pub server_cpu_us: f64,
    /// Responses by status code.
    pub statuses: BTreeMap<u16, u64>,
}

/// The CPU bound of signature recovery, measured with one thread per core in parallel.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Bound {
    /// Bare `ecrecover` (secp256k1 public key recovery from a prehash, then the address), per
    /// second, all cores: the better of the measurements in `rounds`.
    pub ecrecover_per_s: f64,
    /// A facilitator's signature check (EIP-712 digest + FiatToken's checks + ecrecover) per second, all
    /// cores: the better of two measurements.
    pub local_verify_per_s: f64,
    /// `ecrecover_per_s` of each measurement.
    pub rounds: Vec<f64>,
}

/// Paid requests through the HTTP facilitator double, one at a time.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Overhead {
    /// Requests measured.
    pub samples: usize,
    /// Latency seen by the client, µs.
    pub total: Percentiles,
    /// Time the server spent in `verify` + `settle` of the facilitator client, µs.
    pub facilitator: Percentiles,
    /// Per request, the client's latency minus that request's facilitator time, µs: our overhead.
    pub overhead: Percentiles,
    /// The plain handler's latency at the same concurrency (the cost of any loopback request), µs.
    pub plain: Percentiles,
}

/// Paid requests settled on the local chain.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OnChain {
    /// Payments settled (responses 200 with a receipt).
    pub settled: u64,
    /// The merchant's USDC balance gain, in atomic units, read from the chain after the run.
    pub merchant_gain: String,
    /// What `settled` payments should have paid, in atomic units.
    pub expected_gain: String,
}

/// One payment sent several times at once to a peer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Replay {
    /// Copies sent at once, each on its own connection.
    pub sent: u64,
    /// Responses by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Responses 200: the handler ran (and answered) for each.
    pub delivered: u64,
    /// `/verify` calls the facilitator double received for the payment.
    pub verify_calls: u64,
    /// `/settle` calls the facilitator double received for the payment.
    pub settle_calls: u64,
}

/// One peer of the comparison (see `x402_bench::peers`), measured as a child process.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PeerResult {
    /// Stable id (`ours`, `x402_rs`, `express`).
    pub id: String,
    /// What it is.
    pub name: String,
    /// Size of its unpaid 402 (status line, headers and body), bytes.
    pub response_bytes_402: usize,
    /// Its 402's body size, bytes.
    pub body_bytes_402: usize,
    /// The plain axum handler answering as many bytes as this peer's 402, alternating rounds
    /// with `unpaid` (same connections and round length).
    pub plain: Scenario,
    /// Its unpaid 402 path.
    pub unpaid: Scenario,
    /// Unpaid 402 req/s over the plain handler's, per round.
    pub ratio_402_rounds: Vec<f64>,
    /// Paid requests one at a time through the facilitator double.
    pub paid: Scenario,
    /// Those paid requests that were settled (one `/settle` call or more for their nonce).
    pub paid_settled: u64,
    /// The double measured directly just before `paid`: one `/verify` then one `/settle`,
    /// client-side round trips summed per payment, one at a time, µs.
    pub facilitator: Percentiles,
    /// `paid`'s latency percentiles minus `facilitator.p50`, µs: what the server adds to the
    /// facilitator's own time (its HTTP client included).
    pub overhead: Percentiles,
    /// `overhead.p50` of each round (its latencies minus its own double p50), µs.
    #[serde(default)]
    pub overhead_rounds: Vec<f64>,
    /// One payment sent 16 times at once.
    pub replay: Replay,
    /// The process's memory after its unpaid 402 runs, before any payment.
    #[serde(default)]
    pub memory_unpaid: Memory,
    /// The process's memory after its runs.
    pub memory: Memory,
    /// `/supported` calls the double received while this peer ran.
    pub supported_calls: u64,
}

/// The peers comparison.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Peers {
    /// Connections of the unpaid 402 runs.
    pub connections: usize,
    /// Each peer, in run order.
    pub peers: Vec<PeerResult>,
}

/// Everything `load` measured in one run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LoadResults {
    /// `full` or `smoke`.
    pub mode: String,
    /// The machine.
    pub machine: Machine,
    /// Every scenario, in run order.
    pub scenarios: Vec<Scenario>,
    /// Unpaid 402 req/s over plain req/s, per round.
    pub ratio_402_rounds: Vec<f64>,
    /// Plain server CPU per response over the unpaid 402's, per round.
    #[serde(default)]
    pub cpu_ratio_402_rounds: Vec<f64>,
    /// The quoted route's unpaid 402 req/s over the fixed-price route's, per round.
    #[serde(default)]
    pub ratio_quoted_402_rounds: Vec<f64>,
    /// The signature recovery bound.
    pub bound: Bound,
    /// In-process paid req/s over the ecrecover bound, per round.
    pub ratio_paid_rounds: Vec<f64>,
    /// The HTTP facilitator overhead.
    pub overhead: Overhead,
    /// The on-chain run, unless it was skipped.
    pub onchain: Option<OnChain>,
    /// Why the on-chain run was skipped.
    pub onchain_skipped: Option<String>,
    /// The peers comparison, unless it was skipped.
    #[serde(default)]
    pub peers: Option<Peers>,
    /// Why the peers comparison was skipped.
    #[serde(default)]
    pub peers_skipped: Option<String>,
}

/// One build, timed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BuildTimes {
    /// Seconds of each clean build of the crate itself (dependencies already built).
    pub clean: Vec<f64>,
    /// Seconds of each rebuild after one handler changed.
    pub incremental: Vec<f64>,
}

/// What `compile-bench` measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CompileResults {
    /// The machine.
    pub machine: Machine,
    /// Handlers per crate.
    pub handlers: usize,
    /// Cargo profile.
    pub profile: String,
    /// The crate with `#[paid]` handlers.
    pub paid: BuildTimes,
    /// The same crate with plain handlers.
    pub plain: BuildTimes,
}

/// Writes `value` as pretty JSON to `path`, creating its folder.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}

/// Reads a JSON results file.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not valid: {e}", path.display()))
}

/// Heap allocations per request, through the router in memory (`allocs`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Allocations {
    /// Requests measured per case.
    pub requests: usize,
    /// The plain handler answering a body of the 402's size.
    pub plain: f64,
    /// The paid route without a payment: the cached 402.
    pub unpaid_402: f64,
    /// A paid request through the in-process facilitator (settlement stubbed).
    pub paid_inprocess: f64,
}
