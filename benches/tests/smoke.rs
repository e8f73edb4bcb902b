//! The load harness, once and briefly (`load --smoke`): every scenario builds, runs and gets the
//! answers it should (402s unpaid, 200s paid, the merchant paid on chain), the peers aside
//! (`--smoke` leaves them out: building x402-rs's dependency tree would cost CI minutes; the full
//! run of `scripts/bench.sh` measures them); and the paid load run with ledger reconciliation
//! (`ledger --smoke`, about 2 s with replays) holds every invariant; the replay store's memory is
//! measured (`replay-rss --smoke`, 10,000 entries) and a 5-second mixed soak answers every request
//! as expected (`soak --smoke`); and the settlement benchmark (`settle --smoke`) settles on anvil
//! through ours and the official TypeScript facilitator and reconciles with the chain. Figures are
//! not checked here; `scripts/bench.sh` measures them. Ignored in the ordinary test
//! run, so that the test command runs them once, in its benchmark step.

use std::process::Command;

#[test]
#[ignore = "run by `scripts/bench.sh --smoke`, the test command's benchmark step"]
fn load_harness_runs_every_scenario() {
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("load-smoke.json");
    let status = Command::new(env!("CARGO_BIN_EXE_load"))
        .arg("--smoke")
        .arg("--out")
        .arg(&out)
        .status()
        .expect("the load harness starts");
    assert!(status.success(), "load --smoke failed: {status}");
    let results: x402_bench::results::LoadResults =
        x402_bench::results::read_json(&out).expect("results written");
    assert_eq!(results.mode, "smoke");
    assert!(results.scenarios.iter().all(|s| s.completed > 0));
    assert!(
        results.peers.is_none(),
        "the smoke run leaves the peers out"
    );
}

#[test]
#[ignore = "run by `scripts/bench.sh --smoke`, the test command's benchmark step"]
fn ledger_run_reconciles() {
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ledger-smoke.json");
    let status = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .arg("--smoke")
        .arg("--out")
        .arg(&out)
        .status()
        .expect("the ledger run starts");
    assert!(status.success(), "ledger --smoke failed: {status}");
    let run: serde_json::Value = x402_bench::results::read_json(&out).expect("results written");
    assert_eq!(run["mode"], "smoke");
    assert_eq!(run["passed"], true);
    let ledger = &run["ledger"];
    assert!(ledger["delivered"].as_u64().is_some_and(|n| n > 0));
    assert_eq!(ledger["delivered"], ledger["settled"]);
    assert!(
        ledger["replays"]["attempted"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    for invariant in ["lost", "double_settled", "unpaid"] {
        assert_eq!(ledger["invariants"][invariant], 0, "{invariant}");
    }
}

#[test]
#[ignore = "run by `scripts/bench.sh --smoke`, the test command's benchmark step"]
fn replay_store_memory_is_measured() {
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("replay-rss-smoke.json");
    let status = Command::new(env!("CARGO_BIN_EXE_replay-rss"))
        .arg("--smoke")
        .arg("--out")
        .arg(&out)
        .status()
        .expect("replay-rss starts");
    assert!(status.success(), "replay-rss --smoke failed: {status}");
    let results: x402_bench::growth::ReplayRssResults =
        x402_bench::results::read_json(&out).expect("results written");
    assert_eq!(results.mode, "smoke");
    assert_eq!(results.fills.len(), 2);
    for fill in &results.fills {
        assert_eq!(fill.held, fill.entries, "{}", fill.what);
        assert!(fill.rss_after > 0, "{}: resident memory read", fill.what);
    }
}

#[test]
#[ignore = "run by `scripts/bench.sh --smoke`, the test command's benchmark step"]
fn soak_answers_every_request_as_expected() {
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("soak-smoke.json");
    let status = Command::new(env!("CARGO_BIN_EXE_soak"))
        .arg("--smoke")
        .arg("--out")
        .arg(&out)
        .status()
        .expect("soak starts");
    assert!(status.success(), "soak --smoke failed: {status}");
    let results: x402_bench::growth::SoakResults =
        x402_bench::results::read_json(&out).expect("results written");
    assert_eq!(results.mode, "smoke");
    assert_eq!(results.unexpected, 0);
    for kind in ["unpaid_402", "paid_200", "replay_409"] {
        assert!(
            results.responses.get(kind).is_some_and(|n| *n > 0),
            "{kind}: {:?}",
            results.responses
        );
    }
    assert!(
        results.samples.len() >= 3,
        "{} samples",
        results.samples.len()
    );
}

#[test]
#[ignore = "run by `scripts/bench.sh --smoke`, the test command's benchmark step"]
fn settlement_benchmark_reconciles() {
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("settle-smoke.json");
    let status = Command::new(env!("CARGO_BIN_EXE_settle"))
        .arg("--smoke")
        .arg("--out")
        .arg(&out)
        .status()
        .expect("the settlement benchmark starts");
    assert!(status.success(), "settle --smoke failed: {status}");
    if !out.exists() {
        // The test bed's tools are missing outside CI: `settle` said so and measured nothing.
        return;
    }
    let results: x402_bench::settlement::SettleResults =
        x402_bench::results::read_json(&out).expect("results written");
    assert_eq!(results.mode, "smoke");
    assert!(results.failures.is_empty(), "{:?}", results.failures);
    for id in ["ours_inprocess", "ts_official"] {
        let run = results.run(id, 8).expect("a run at concurrency 8");
        assert!(run.settled > 0, "{id} settled nothing");
        assert!(run.reconciliation.holds, "{id}: {:?}", run.reconciliation);
    }
}
