#!/usr/bin/env bash
# The project's test command (README: "Run the tests"). Installs what the tests need, then runs
# every test: unit, integration, compile-fail (trybuild), doc tests, and clippy with warnings as
# errors.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
# Each step's header says how long the run has taken so far, so a slow step shows in CI's log.
step() { printf '\n==> [%dm%02ds] %s\n' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)) "$*"; }

step "toolchain: $(rustc --version)"
step "test bed (pinned npm and python packages)"
bash scripts/testbed-install.sh
step "redis-server on 127.0.0.1 for the shared replay store tests (stopped on exit)"
X402_TEST_REDIS_URL=$(bash scripts/redis.sh start)
export X402_TEST_REDIS_URL
trap 'bash scripts/redis.sh stop' EXIT
echo "$X402_TEST_REDIS_URL"
step "PostgreSQL on 127.0.0.1 for the Postgres store and ledger tests (stopped on exit)"
X402_TEST_POSTGRES_URL=$(bash scripts/postgres.sh start)
export X402_TEST_POSTGRES_URL
trap 'bash scripts/redis.sh stop; bash scripts/postgres.sh stop' EXIT
echo "$X402_TEST_POSTGRES_URL"
step "module layers (x402-runtime imports run downward only)"
python3 scripts/layers.py
step "formatting"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
step "clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "tests (unit, integration, compile-fail)"
cargo test --workspace --all-targets --locked
step "x402-runtime on its default features, without svm (the workspace runs above turn svm on): unit tests"
cargo test -p x402-runtime --lib --locked
step "doc tests"
cargo test --workspace --doc --locked
step "benchmarks (smoke: each built and run once, briefly; the full run is scripts/bench.sh)"
bash scripts/bench.sh --smoke
step "publishing: the crates package and build alone, docs build as on docs.rs, every feature combination compiles"
bash scripts/publish-check.sh
step "fuzzing the payment header decoder (30 s, bounded; README: Fuzzing)"
bash scripts/fuzz.sh 30
step "done"
