#!/usr/bin/env bash
# Reruns every benchmark and rewrites the results in BENCHMARKS.md (between its result markers)
# and the plots in benches/figures/. Everything runs on 127.0.0.1 and is bounded in time.
#   bash scripts/bench.sh            full run (about 15 minutes on 2 cores)
#   bash scripts/bench.sh --smoke    each benchmark built and run once, briefly (what CI runs)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if [ "${1:-}" = "--smoke" ]; then
  # Test builds with the workspace's features: after the test suite nothing is compiled again.
  # The criterion benches run each benchmark once in test mode; `tests/smoke.rs` runs
  # `load --smoke` (about a second per scenario, the on-chain one included) and `settle --smoke`
  # (ours in process and the official TypeScript facilitator, about a second each).
  step "criterion micro benchmarks, once each"
  cargo test --workspace --benches --locked
  step "load harness, about a second per scenario"
  cargo test --workspace --test smoke --locked -- --ignored
  exit 0
fi

step "toolchain: $(rustc --version)"
step "test bed (anvil and Circle's USDC, pinned npm packages)"
bash scripts/testbed-install.sh
step "criterion micro benchmarks"
cargo bench -p x402-bench --bench micro --locked
step "load harness"
cargo run --release -p x402-bench --locked --bin load -- --out target/bench/load.json
step "paid load run with ledger reconciliation (60 s; its figures are copied into BENCHMARKS.md by hand)"
cargo run --release -p x402-bench --locked --bin ledger -- --seconds 60 --out target/bench/ledger.json
step "settlement on chain: ours (in process, standalone) and the official TypeScript facilitator, 10 s per run"
cargo build --release -p x402-bench --locked --bin settle
cargo build --release -p x402-runtime-facilitator --locked
target/release/settle --seconds 10 --facilitator-bin target/release/x402-facilitator --out target/bench/settle.json
step "compile-time benchmark"
cargo run --release -p x402-bench --locked --bin compile-bench -- --out target/bench/compile.json
step "report"
cargo run --release -p x402-bench --locked --bin report -- \
  --load target/bench/load.json --compile target/bench/compile.json --criterion target/criterion \
  --settle target/bench/settle.json \
  --markdown BENCHMARKS.md --figures benches/figures
