//! Results of the settlement benchmark (`settle`, written to `target/bench/settle.json`) and
//! their table in `BENCHMARKS.md`.
//!
//! The benchmark sends the same kind of pre-signed EIP-3009 payments, each as `verify` then
//! `settle`, to several facilitators settling on one anvil carrying Circle's `FiatTokenV2_2`, and
//! reconciles every run against the chain. A raw sender (pre-signed transactions, no
//! facilitator) measures what anvil itself accepts and mines, the ceiling of every facilitator.

use serde::{Deserialize, Serialize};

use crate::machine::Machine;
use crate::stats::Percentiles;

/// How much faster than the best peer our facilitator should settle.
pub const GOAL_RATIO: f64 = 3.0;

/// The whole settlement benchmark.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SettleResults {
    /// `full` or `smoke`.
    pub mode: String,
    /// Where it ran.
    pub machine: Machine,
    /// Seconds each measured run lasted at most.
    pub seconds: f64,
    /// Funded payers the payments were signed by, in turn.
    pub payers: usize,
    /// Price of one payment, atomic USDC units.
    pub price: u64,
    /// One entry per facilitator and concurrency.
    pub runs: Vec<SettleRun>,
    /// anvil's own rate, by a raw sender, per concurrency.
    pub anvil: Vec<RawRun>,
    /// Problems found (reconciliation, errors); empty when every run held.
    pub failures: Vec<String>,
}

/// One facilitator at one concurrency.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SettleRun {
    /// Stable id: `ours_inprocess`, `ours_standalone`, `ts_official`, `ours_paywall`.
    pub id: String,
    /// What it is.
    pub title: String,
    /// Whether it is ours (the goal compares ours with the best peer).
    pub ours: bool,
    /// Payments in flight at once.
    pub concurrency: usize,
    /// Payments attempted in the measured window.
    pub attempted: u64,
    /// Payments whose settlement answered success in the measured window.
    pub settled: u64,
    /// Measured seconds: from the first request to the last answer.
    pub seconds: f64,
    /// `settled / seconds`.
    pub settled_per_s: f64,
    /// Latency of verify + settle of one payment, µs.
    pub latency: Percentiles,
    /// Answers other than success, `reason → count`.
    pub not_settled: std::collections::BTreeMap<String, u64>,
    /// What the chain says, warm-up included.
    pub reconciliation: Reconciliation,
}

/// A run checked against the chain.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Reconciliation {
    /// Payments sent, warm-up included.
    pub payments: u64,
    /// Of those, answered as settled.
    pub settled: u64,
    /// The merchant's balance gain, atomic units.
    pub merchant_gain: String,
    /// `settled × price`.
    pub expected_gain: String,
    /// Payers whose balance dropped by other than their settled payments × price.
    pub payers_mismatched: u64,
    /// Settled answers naming a transaction another settled answer also named.
    pub duplicate_transactions: u64,
    /// Authorizations used on chain though not answered as settled, or answered as settled
    /// though unused on chain.
    pub authorization_mismatches: u64,
    /// Whether everything above agrees.
    pub holds: bool,
}

/// anvil by a raw sender: pre-signed `transferWithAuthorization` transactions with local
/// nonces and fixed gas, each sender key sending its own in nonce order without waiting, then
/// counted as mined (what arrives faster than anvil's automine mines may wait for a block that
/// never comes, so the count is what anvil mined, up to when it stopped).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RawRun {
    /// Sender keys, each with its own ordered stream.
    pub senders: usize,
    /// Transactions sent and mined.
    pub mined: u64,
    /// From the first send to the last transaction mined.
    pub seconds: f64,
    /// `mined / seconds`.
    pub mined_per_s: f64,
}

impl SettleResults {
    /// The run of `id` at `concurrency`.
    pub fn run(&self, id: &str, concurrency: usize) -> Option<&SettleRun> {
        self.runs
            .iter()
            .find(|r| r.id == id && r.concurrency == concurrency)
    }

    /// Concurrencies measured, ascending.
    pub fn concurrencies(&self) -> Vec<usize> {
        let mut c: Vec<usize> = self.runs.iter().map(|r| r.concurrency).collect();
        c.sort_unstable();
        c.dedup();
        c
    }

    /// `(best of ours, best peer)` settled/s at `concurrency`.
    pub fn best(&self, concurrency: usize) -> (Option<&SettleRun>, Option<&SettleRun>) {
        let best = |ours: bool| {
            self.runs
                .iter()
                .filter(|r| r.concurrency == concurrency && r.ours == ours)
                .max_by(|a, b| a.settled_per_s.total_cmp(&b.settled_per_s))
        };
        (best(true), best(false))
    }

    /// anvil's best raw rate, transactions mined per second (0 when not measured).
    pub fn anvil_best(&self) -> f64 {
        self.anvil.iter().map(|r| r.mined_per_s).fold(0.0, f64::max)
    }
}

/// The "Settlement on chain" section of `BENCHMARKS.md`.
pub fn markdown(s: &SettleResults) -> String {
    let mut md = String::new();
    md.push_str("### Settlement on chain\n\n");
    md.push_str(&format!(
        "Settled payments per second on one anvil with Circle's FiatTokenV2_2 ({} run{}, \
         at most {:.0} s per run, {} payers, price {} atomic units; `settle --{}`).\n\n",
        s.mode,
        if s.mode == "full" {
            ""
        } else {
            " — figures not comparable"
        },
        s.seconds,
        s.payers,
        s.price,
        s.mode,
    ));
    let concurrencies = s.concurrencies();
    md.push_str("| facilitator |");
    for c in &concurrencies {
        md.push_str(&format!(" settled/s at {c} | p50 / p99 ms at {c} |"));
    }
    md.push_str(" reconciled |\n|---|");
    for _ in &concurrencies {
        md.push_str("---:|---:|");
    }
    md.push_str("---|\n");
    let mut ids: Vec<(&str, &str)> = Vec::new();
    for r in &s.runs {
        if !ids.iter().any(|(id, _)| *id == r.id) {
            ids.push((&r.id, &r.title));
        }
    }
    for (id, title) in ids {
        md.push_str(&format!("| {title} |"));
        let mut holds = true;
        for c in &concurrencies {
            match s.run(id, *c) {
                Some(r) => {
                    holds &= r.reconciliation.holds;
                    md.push_str(&format!(
                        " {:.0} | {:.1} / {:.1} |",
                        r.settled_per_s,
                        r.latency.p50 / 1000.0,
                        r.latency.p99 / 1000.0
                    ));
                }
                None => md.push_str(" – | – |"),
            }
        }
        md.push_str(if holds { " yes |\n" } else { " **no** |\n" });
    }
    md.push('\n');
    for r in &s.anvil {
        md.push_str(&format!(
            "anvil itself, by a raw sender (pre-signed transactions, {} key{} each sending in \
             nonce order without waiting): **{:.0} tx/s** ({} mined in {:.1} s).\n",
            r.senders,
            if r.senders == 1 { "" } else { "s" },
            r.mined_per_s,
            r.mined,
            r.seconds
        ));
    }
    md.push('\n');
    md.push_str(&goal_lines(s));
    if !s.failures.is_empty() {
        md.push_str("\nProblems found in this run:\n\n");
        for f in &s.failures {
            md.push_str(&format!("- {f}\n"));
        }
    }
    md
}

/// Ours against the best peer at each concurrency, and whether [`GOAL_RATIO`] was met.
fn goal_lines(s: &SettleResults) -> String {
    let mut md = String::new();
    for c in s.concurrencies() {
        let (Some(ours), Some(peer)) = s.best(c) else {
            continue;
        };
        let ratio = ours.settled_per_s / peer.settled_per_s.max(f64::MIN_POSITIVE);
        let anvil = s.anvil_best();
        let met = ratio >= GOAL_RATIO;
        md.push_str(&format!(
            "- concurrency {c}: {} {:.0}/s against {} {:.0}/s: **{ratio:.2}×** (goal ≥ {GOAL_RATIO}×: \
             **{}**{})\n",
            ours.title,
            ours.settled_per_s,
            peer.title,
            peer.settled_per_s,
            if met { "met" } else { "missed" },
            why_missed(met, ours.settled_per_s, anvil, peer.settled_per_s),
        ));
    }
    md
}

/// Why the goal was missed, when the figures say: anvil's own rate caps every facilitator.
fn why_missed(met: bool, ours: f64, anvil: f64, peer: f64) -> String {
    if met || anvil <= 0.0 {
        return String::new();
    }
    let cap = anvil / peer.max(f64::MIN_POSITIVE);
    if ours >= 0.7 * anvil {
        format!(
            "; ours reaches {:.0} % of anvil's own {anvil:.0} tx/s, and anvil allows at most \
             {cap:.2}× the peer",
            100.0 * ours / anvil
        )
    } else {
        format!(
            "; ours reaches {:.0} % of anvil's own {anvil:.0} tx/s (at most {cap:.2}× the peer)",
            100.0 * ours / anvil
        )
    }
}
