#!/usr/bin/env bash
# Bounded fuzzing of the payment header decoder (README: "Fuzzing").
#
#   bash scripts/fuzz.sh            # 30 seconds (the step in scripts/test.sh)
#   bash scripts/fuzz.sh 3600       # an hour
#
# Installs a pinned cargo-fuzz into .tools/ (ignored), builds fuzz/ (its own workspace, target
# dir fuzz/target) on the stable toolchain with RUSTC_BOOTSTRAP=1 (cargo-fuzz passes -Z flags),
# then runs the `payment_header` target for SECONDS. New interesting inputs go to
# fuzz/corpus-local/payment_header (ignored, kept between runs); the committed seeds in
# fuzz/corpus/payment_header are read, never written. A crash is written to
# fuzz/artifacts/payment_header/ and makes this script exit non-zero.
#
# Environment: FUZZ_SANITIZER (default none; `address` builds and runs about 4x slower),
# FUZZ_JOBS (parallel fuzzing processes, default 1), FUZZ_RSS_MB (default 2048).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: bash scripts/fuzz.sh [SECONDS]" >&2
    exit 2
fi
cargo_fuzz_version=0.13.2
target=payment_header
sanitizer="${FUZZ_SANITIZER:-none}"
jobs="${FUZZ_JOBS:-1}"
rss_mb="${FUZZ_RSS_MB:-2048}"
tools="$PWD/.tools"

step() { printf '\n==> %s\n' "$*"; }
started=$(date +%s)

if [[ "$("$tools/bin/cargo-fuzz" --version 2>/dev/null || true)" != "cargo-fuzz $cargo_fuzz_version" ]]; then
    step "installing cargo-fuzz $cargo_fuzz_version into .tools"
    cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked --root "$tools" --quiet
fi
export PATH="$tools/bin:$PATH"
# cargo-fuzz passes nightly-only flags; the project has only the stable toolchain.
export RUSTC_BOOTSTRAP=1

# Release with debug assertions and overflow checks; 16 codegen units halve the cold build.
flags=(--fuzz-dir fuzz -O --debug-assertions --sanitizer "$sanitizer" --codegen-units 16)

step "building fuzz target $target (sanitizer: $sanitizer)"
cargo fuzz build "${flags[@]}" "$target"
built=$(date +%s)

work="fuzz/corpus-local/$target"
artifacts="fuzz/artifacts/$target"
mkdir -p "$work" "$artifacts"
before=$(find "$artifacts" -type f | wc -l)
log="fuzz/target/$target.log"

# Inputs may exceed the 16 KiB header cap by a little, so the size check is fuzzed too.
libfuzzer=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb="$rss_mb" -max_len=16400
    -dict=fuzz/payment_header.dict -print_final_stats=1)
if [[ "$jobs" -gt 1 ]]; then
    libfuzzer+=(-jobs="$jobs" -workers="$jobs")
fi

step "fuzzing $target for ${seconds}s"
status=0
cargo fuzz run "${flags[@]}" "$target" "$work" "fuzz/corpus/$target" -- "${libfuzzer[@]}" \
    >"$log" 2>&1 || status=$?
# With -jobs each process logs to fuzz-<n>.log in the current folder.
if [[ "$jobs" -gt 1 ]]; then
    cat fuzz-[0-9]*.log >>"$log" 2>/dev/null || true
    rm -f fuzz-[0-9]*.log
fi
finished=$(date +%s)

grep -E 'INITED|Done [0-9]+ runs|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" || true
found=$(($(find "$artifacts" -type f | wc -l) - before))
corpus=$(find "$work" -type f | wc -l)
step "build $((built - started))s, fuzzing $((finished - built))s; working corpus $corpus inputs; new findings: $found"
if [[ "$status" -ne 0 || "$found" -gt 0 ]]; then
    grep -E -A12 "panicked|ERROR: libFuzzer|SUMMARY" "$log" | head -60 || true
    echo "fuzzing failed (exit $status); findings in $artifacts, full log in $log" >&2
    echo "replay one: X402_FUZZ_INPUT=<file> cargo test --manifest-path fuzz/Cargo.toml" >&2
    exit 1
fi
echo "no crashes"
