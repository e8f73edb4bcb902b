#!/usr/bin/env bash
# Reruns every benchmark and rewrites the results in BENCHMARKS.md (between its result markers)
# and the plots in benches/figures/. Everything runs on 127.0.0.1 and is bounded in time.
#   bash scripts/bench.sh            full run (36 minutes on 2 cores on 2026-12-06)
#   bash scripts/bench.sh --smoke    each benchmark built and run once, briefly (what CI runs; the peers
#                                    of the load harness are left out: building x402-rs's tree costs minutes)
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
step "peers of the load harness: x402-rs's axum middleware (its own package and lock file; @x402/express comes with the test bed)"
# Its own dependency tree, built into its own target folder next to the workspace's; `load` finds
# it there and fails, naming this command, when it is missing.
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked --manifest-path benches/peers/x402-rs/Cargo.toml --target-dir "$TARGET_DIR/peers"
[ -f interop/node_modules/@x402/express/package.json ] || { echo "bench: @x402/express is not installed in interop/node_modules" >&2; exit 1; }
step "load harness (the peers included)"
cargo build --release -p x402-bench --locked --bins
cargo run --release -p x402-bench --locked --bin load -- --out target/bench/load.json
step "heap allocations per request (plain handler, unpaid 402, in-process paid)"
cargo run --release -p x402-bench --locked --bin allocs -- --out target/bench/allocs.json
step "paid load run with ledger reconciliation (60 s; its figures are copied into BENCHMARKS.md by hand)"
cargo run --release -p x402-bench --locked --bin ledger -- --seconds 60 --out target/bench/ledger.json
step "settlement on chain: ours (in process, standalone) and the official TypeScript facilitator, 10 s per run"
cargo build --release -p x402-bench --locked --bin settle
cargo build --release -p x402-runtime-facilitator --locked
target/release/settle --seconds 10 --facilitator-bin target/release/x402-facilitator --out target/bench/settle.json
step "compile-time benchmark (one argument type, then a distinct type per handler)"
cargo run --release -p x402-bench --locked --bin compile-bench -- --out target/bench/compile.json \
  --types-out target/bench/compile-types.json
step "throughput with 10, 1,000 and 10,000 paid routes (generated crates, built in release)"
cargo run --release -p x402-bench --locked --bin route-scale -- --out target/bench/routes.json
step "resident memory of 100,000 replay-store entries"
cargo run --release -p x402-bench --locked --bin replay-rss -- --out target/bench/replay-rss.json
step "10-minute mixed soak, resident memory sampled"
cargo run --release -p x402-bench --locked --bin soak -- --seconds 600 --out target/bench/soak.json
step "report"
cargo run --release -p x402-bench --locked --bin report -- \
  --load target/bench/load.json --compile target/bench/compile.json --criterion target/criterion \
  --routes target/bench/routes.json --replay-rss target/bench/replay-rss.json \
  --soak target/bench/soak.json --compile-types target/bench/compile-types.json \
  --settle target/bench/settle.json \
  --markdown BENCHMARKS.md --figures benches/figures
