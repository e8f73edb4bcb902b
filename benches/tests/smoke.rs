//! The load harness, once and briefly (`load --smoke`): every scenario builds, runs and gets the
//! answers it should (402s unpaid, 200s paid, the merchant paid on chain). Figures are not
//! checked here; `scripts/bench.sh` measures them. Ignored in the ordinary test run, so that the
//! test command runs it once, in its benchmark step.

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
}
