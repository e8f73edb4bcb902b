//! Cost as the work grows: what `route-scale`, `replay-rss`, `soak` and `compile-bench`'s
//! distinct-types crates write (JSON under `target/bench/`), and the measurements they share
//! (resident memory from `/proc/self/status`, a least-squares slope).

use serde::{Deserialize, Serialize};

use crate::machine::Machine;
use crate::results::BuildTimes;
use crate::stats::Percentiles;

/// One closed-loop measurement against a route table of some size.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Throughput {
    /// Responses per second.
    pub rps: f64,
    /// Responses counted.
    pub completed: u64,
    /// Latency percentiles, µs.
    pub latency: Percentiles,
    /// CPU time of the server's threads per response, µs (0 when not measured).
    pub server_cpu_us: f64,
}

/// What one run of a generated route crate measured (one round).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RouteRun {
    /// Generated `#[paid]` routes mounted on the router.
    pub routes: usize,
    /// `#[paid]` records in the binary's registry (the generated ones and the fixture's).
    pub registered: usize,
    /// Unpaid requests to the last generated route: its 402.
    pub unpaid_last: Throughput,
    /// Unpaid requests rotating over every generated route.
    pub unpaid_rotation: Throughput,
    /// Paid requests to the last generated route (in-process facilitator, settlement stubbed).
    pub paid_last: Throughput,
    /// Resident memory of the process once the router was built (every handler registered and
    /// mounted), before the paywall or any request, bytes.
    #[serde(default)]
    pub rss_router: u64,
    /// Resident memory once every route had answered its first 402 (its offers and challenge
    /// built and cached), before the measurements, bytes.
    #[serde(default)]
    pub rss_warm: u64,
    /// Resident memory of the process after the runs (with what the load generator kept), bytes.
    pub rss_bytes: u64,
}

/// One route-table size, over every round.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RouteSize {
    /// Generated `#[paid]` routes.
    pub routes: usize,
    /// Seconds of `cargo build --release` of the generated crate (dependencies prebuilt).
    pub build_seconds: f64,
    /// Each round's run.
    pub runs: Vec<RouteRun>,
}

/// What `route-scale` measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RouteScaleResults {
    /// `full` or `smoke`.
    pub mode: String,
    /// The machine.
    pub machine: Machine,
    /// Seconds per measurement.
    pub seconds: f64,
    /// Load generator connections.
    pub connections: usize,
    /// Route-table sizes, smallest (the baseline of the ratios) first.
    pub sizes: Vec<RouteSize>,
}

/// One fill of a replay store.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StoreFill {
    /// What each entry is.
    pub what: String,
    /// Entries added.
    pub entries: usize,
    /// Keys the store held afterwards.
    pub held: usize,
    /// Resident memory before, bytes.
    pub rss_before: u64,
    /// Resident memory after, bytes.
    pub rss_after: u64,
    /// Seconds the fill took.
    pub seconds: f64,
}

impl StoreFill {
    /// Resident bytes added per entry.
    pub fn bytes_per_entry(&self) -> f64 {
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.entries.max(1) as f64
    }
}

/// What `replay-rss` measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReplayRssResults {
    /// `full` or `smoke`.
    pub mode: String,
    /// The machine.
    pub machine: Machine,
    /// Each fill, in order (each on top of the previous ones).
    pub fills: Vec<StoreFill>,
}

/// One resident-memory sample of the soak.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RssSample {
    /// Seconds since the start of the soak.
    pub at: f64,
    /// Resident memory, bytes.
    pub rss: u64,
    /// Keys the replay store held.
    pub store_keys: usize,
}

/// What `soak` measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SoakResults {
    /// `full` or `smoke`.
    pub mode: String,
    /// The machine.
    pub machine: Machine,
    /// Seconds the soak ran.
    pub seconds: f64,
    /// How long a payment's record was kept past its `validBefore`, seconds.
    pub record_retention: u64,
    /// How long each payment was valid when signed, seconds.
    pub payment_lifetime: u64,
    /// Responses by kind: `unpaid_402`, `paid_200`, `replay_409`.
    pub responses: std::collections::BTreeMap<String, u64>,
    /// Responses that were not what their request called for.
    pub unexpected: u64,
    /// The samples.
    pub samples: Vec<RssSample>,
    /// Least-squares slope of the resident memory over the last two thirds, bytes per minute.
    pub slope_bytes_per_min: f64,
    /// Resident memory at the start of the last two thirds and at the end, bytes.
    pub rss_window: (u64, u64),
}

/// What `compile-bench` measured for the crates whose handlers each take their own type.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DistinctTypesResults {
    /// The machine.
    pub machine: Machine,
    /// Handlers (and argument types) per crate.
    pub handlers: usize,
    /// `#[paid]` handlers, each taking `Query<ArgsN>` of its own `ArgsN`.
    pub paid: BuildTimes,
    /// The same crate with plain handlers.
    pub plain: BuildTimes,
}

/// Resident memory of this process (`VmRSS` in `/proc/self/status`), bytes; 0 where unknown.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(0, |kib| kib * 1024)
}

/// Least-squares slope of `points` (`(x, y)`), in y per x; 0 with fewer than two distinct x.
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    if sxx == 0.0 { 0.0 } else { sxy / sxx }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_and_of_a_flat_series() {
        let line: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 * i as f64 + 7.0)).collect();
        assert!((slope(&line) - 3.0).abs() < 1e-9);
        assert_eq!(slope(&[(1.0, 5.0), (2.0, 5.0), (3.0, 5.0)]), 0.0);
        assert_eq!(slope(&[(1.0, 5.0)]), 0.0);
    }

    #[test]
    fn this_process_has_resident_memory() {
        assert!(rss_bytes() > 0);
    }
}
