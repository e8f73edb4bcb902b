//! The "Cost as the work grows" tables of `BENCHMARKS.md`, from the results of `route-scale`,
//! `replay-rss`, `soak` and `compile-bench`'s distinct-types crates. Each table is written when
//! its results file exists.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::growth::{
    DistinctTypesResults, ReplayRssResults, RouteRun, RouteScaleResults, SoakResults,
};
use crate::results::{BuildTimes, read_json};
use crate::stats::median;

/// Where the results files are.
#[derive(Clone, Debug)]
pub struct Inputs {
    /// `route-scale`'s.
    pub routes: PathBuf,
    /// `replay-rss`'s.
    pub replay_rss: PathBuf,
    /// `soak`'s.
    pub soak: PathBuf,
    /// `compile-bench`'s distinct-types results.
    pub compile_types: PathBuf,
}

impl Default for Inputs {
    fn default() -> Self {
        Inputs {
            routes: "target/bench/routes.json".into(),
            replay_rss: "target/bench/replay-rss.json".into(),
            soak: "target/bench/soak.json".into(),
            compile_types: "target/bench/compile-types.json".into(),
        }
    }
}

impl Inputs {
    /// Takes `--routes`, `--replay-rss`, `--soak` or `--compile-types` with its `value`;
    /// `false` for any other argument.
    pub fn take(&mut self, arg: &str, value: impl FnOnce() -> Option<String>) -> bool {
        let slot = match arg {
            "--routes" => &mut self.routes,
            "--replay-rss" => &mut self.replay_rss,
            "--soak" => &mut self.soak,
            "--compile-types" => &mut self.compile_types,
            _ => return false,
        };
        if let Some(v) = value() {
            *slot = PathBuf::from(v);
        }
        true
    }
}

/// Appends the section to `md`.
pub fn section(md: &mut String, inputs: &Inputs) {
    let _ = writeln!(md, "### Cost as the work grows\n");
    let mut any = false;
    if let Ok(r) = read_json::<RouteScaleResults>(&inputs.routes) {
        routes_table(md, &r);
        any = true;
    }
    if let Ok(r) = read_json::<ReplayRssResults>(&inputs.replay_rss) {
        replay_table(md, &r);
        any = true;
    }
    if let Ok(r) = read_json::<SoakResults>(&inputs.soak) {
        soak_table(md, &r);
        any = true;
    }
    if let Ok(r) = read_json::<DistinctTypesResults>(&inputs.compile_types) {
        distinct_table(md, &r);
        any = true;
    }
    if !any {
        let _ = writeln!(md, "Not measured in this run.\n");
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn routes_table(md: &mut String, r: &RouteScaleResults) {
    let Some(base) = r.sizes.first() else {
        return;
    };
    let _ = writeln!(
        md,
        "Routes ({} mode; {} rounds of {} s per measurement, {} connections; ratios are the median of each round's ratio to the {}-route crate):\n\n| `#[paid]` routes | 402, last route | 402, rotating over every route | paid, last route | server CPU per 402 / per payment | resident memory: router built / every 402 cached / end | release build of the crate |\n|---:|---:|---:|---:|---:|---:|---:|",
        r.mode,
        base.runs.len(),
        r.seconds,
        r.connections,
        base.routes
    );
    for size in &r.sizes {
        let cell = |pick: fn(&RouteRun) -> f64| {
            let rps = median(&size.runs.iter().map(pick).collect::<Vec<_>>());
            let ratios: Vec<f64> = size
                .runs
                .iter()
                .zip(&base.runs)
                .map(|(s, b)| pick(s) / pick(b))
                .collect();
            format!("{rps:.0} req/s ({:.3}×)", median(&ratios))
        };
        let cpu =
            |pick: fn(&RouteRun) -> f64| median(&size.runs.iter().map(pick).collect::<Vec<_>>());
        let rss = |pick: fn(&RouteRun) -> u64| mib(size.runs.iter().map(pick).max().unwrap_or(0));
        let memory = format!(
            "{} / {} / {}",
            rss(|run| run.rss_router),
            rss(|run| run.rss_warm),
            rss(|run| run.rss_bytes)
        );
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.1} µs / {:.0} µs | {} | {:.1} s |",
            size.routes,
            cell(|run| run.unpaid_last.rps),
            cell(|run| run.unpaid_rotation.rps),
            cell(|run| run.paid_last.rps),
            cpu(|run| run.unpaid_last.server_cpu_us),
            cpu(|run| run.paid_last.server_cpu_us),
            memory,
            size.build_seconds
        );
    }
    md.push('\n');
}

fn replay_table(md: &mut String, r: &ReplayRssResults) {
    let _ = writeln!(
        md,
        "In-memory replay store ({} mode), resident memory of the process before and after each fill:\n\n| entries | each entry | resident memory | per entry |\n|---:|---|---:|---:|",
        r.mode
    );
    for fill in &r.fills {
        let _ = writeln!(
            md,
            "| {} | {} | {} → {} | {:.0} bytes |",
            fill.entries,
            fill.what,
            mib(fill.rss_before),
            mib(fill.rss_after),
            fill.bytes_per_entry()
        );
    }
    md.push('\n');
}

fn soak_table(md: &mut String, r: &SoakResults) {
    let peak = r.samples.iter().map(|s| s.store_keys).max().unwrap_or(0);
    let first = r.samples.first().map_or(0, |s| s.rss);
    let responses = crate::stats::tally(&r.responses);
    let _ = writeln!(
        md,
        "Soak ({} mode): {:.0} s of mixed load in one process, records kept {} s past a payment's `validBefore` (payments valid {} s):\n\n| soak | measured |\n|---|---|\n| responses | {responses}; {} cycles answered otherwise than expected |\n| replay store | at most {peak} keys |\n| resident memory | {} at the first sample; {} → {} over the last two thirds ({} samples) |\n| **slope over the last two thirds** | **{:.0} bytes/min** ({:.2} MiB/h) |\n",
        r.mode,
        r.seconds,
        r.record_retention,
        r.payment_lifetime,
        r.unexpected,
        mib(first),
        mib(r.rss_window.0),
        mib(r.rss_window.1),
        r.samples.iter().filter(|s| s.at >= r.seconds / 3.0).count(),
        r.slope_bytes_per_min,
        r.slope_bytes_per_min * 60.0 / (1024.0 * 1024.0)
    );
}

fn rounds(values: &[f64], digits: usize) -> String {
    values
        .iter()
        .map(|v| format!("{v:.digits$}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn distinct_table(md: &mut String, c: &DistinctTypesResults) {
    let _ = writeln!(
        md,
        "Compile time, {} handlers each taking its own argument type (`Query<ArgsN>`, the same {} types in both crates; `dev` profile, dependencies prebuilt):\n\n| crate | clean build (median) | incremental after one handler changed (median) | rounds (clean / incremental, s) |\n|---|---:|---:|---|",
        c.handlers, c.handlers
    );
    let row = |name: &str, t: &BuildTimes| {
        format!(
            "| {name} | {:.2} s | {:.2} s | {} / {} |",
            median(&t.clean),
            median(&t.incremental),
            rounds(&t.clean, 2),
            rounds(&t.incremental, 2)
        )
    };
    let _ = writeln!(md, "{}", row("plain handlers, distinct types", &c.plain));
    let _ = writeln!(md, "{}", row("`#[paid]` handlers, distinct types", &c.paid));
    let paired = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p / q).collect::<Vec<_>>();
    let clean = paired(&c.paid.clean, &c.plain.clean);
    let incremental = paired(&c.paid.incremental, &c.plain.incremental);
    let _ = writeln!(
        md,
        "| paid / plain, per round (median) | {:.3}× | {:.3}× | {} / {} |\n",
        median(&clean),
        median(&incremental),
        rounds(&clean, 3),
        rounds(&incremental, 3)
    );
}
