#!/usr/bin/env bash
# Installs the local chain test bed's third-party pieces, pinned (docs: shared/testbed.md §1):
#   interop/node_modules  npm ci from interop/package-lock.json (anvil, cast, Circle's FiatToken artifacts, x402 TS SDK,
#                         LiteSVM for the Solana test bed)
#   interop/contracts     Permit2, the x402 Permit2 proxies and test tokens, compiled by testbed/contracts/build.mjs
#                         with the pinned solc-js releases (offline; cached by a hash of the sources and compilers)
#   interop/.venv         python venv with interop/requirements.txt (x402 Python SDK and friends)
# With --chain-only, only the npm packages and the contracts (what a local chain and the demo need; the venv takes ~60 s more).
# Idempotent: a step is skipped when its output is newer than its pin file. Safe to run again at any time.
# Tool output goes to $TARGET/testbed/install-*.log; its tail is printed when a step fails.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
INTEROP="$ROOT/interop"
LOGDIR="${CARGO_TARGET_DIR:-$ROOT/target}/testbed"
PYTHON="${PYTHON:-python3}"
mkdir -p "$LOGDIR"

fail() { printf 'testbed: error: %s\n' "$*" >&2; exit 1; }
run_logged() { # run_logged LOG CMD...: run CMD with its output in LOG; on failure show the tail and fail
  local log="$1"; shift
  if ! "$@" > "$log" 2>&1; then
    tail -n 40 "$log" >&2 || true
    fail "'$*' failed (full log: $log)"
  fi
}

CHAIN_ONLY=0
case "${1:-}" in
  --chain-only) CHAIN_ONLY=1 ;;
  "") ;;
  *) fail "unknown option $1 (usage: testbed-install.sh [--chain-only])" ;;
esac

command -v node > /dev/null || fail "node not found: install Node.js 20 (e.g. apt-get install nodejs npm)"
command -v npm > /dev/null || fail "npm not found: install npm (e.g. apt-get install npm)"
[ "$CHAIN_ONLY" = 1 ] || command -v "$PYTHON" > /dev/null || fail "$PYTHON not found: install Python 3.11 with venv (e.g. apt-get install python3 python3-venv)"

# One install at a time per target dir: parallel test processes call this through x402_testbed::install(), which
# holds the same lock itself and says so with X402_TESTBED_LOCK_HELD=1. Two npm ci runs in one folder corrupt it.
if [ "${X402_TESTBED_LOCK_HELD:-}" != 1 ]; then
  if command -v flock > /dev/null; then
    exec 9>> "$LOGDIR/install.lock"
    flock -w 600 9 || fail "another test bed install held $LOGDIR/install.lock for over 600 s"
  else
    echo "testbed: warning: flock not found (util-linux); not serializing with concurrent installs" >&2
  fi
fi

# 1) npm packages. npm ci writes node_modules/.package-lock.json last, so it is newer than the lock only after a complete install.
#    LiteSVM (the Solana chain) is an N-API binary in an optional dependency: npm ci skips it without an error on a
#    platform it does not fit (not Linux x86-64 with glibc), so its presence is checked like anvil's. The lock lists
#    the other platforms' builds too (optional, os/cpu/libc-tagged, skipped here): npm ci refuses a lock without them.
LITESVM_NATIVE="node_modules/litesvm-linux-x64-gnu/litesvm.linux-x64-gnu.node"
if [ -f "$INTEROP/node_modules/.package-lock.json" ] && [ "$INTEROP/node_modules/.package-lock.json" -nt "$INTEROP/package-lock.json" ] \
   && [ -x "$INTEROP/node_modules/.bin/anvil" ] && [ -f "$INTEROP/$LITESVM_NATIVE" ]; then
  echo "testbed: npm packages up to date"
else
  echo "testbed: installing npm packages (pinned, ~25 s)…"
  (cd "$INTEROP" && run_logged "$LOGDIR/install-npm.log" npm ci --no-audit --no-fund)
  [ -x "$INTEROP/node_modules/.bin/anvil" ] || fail "npm ci finished but interop/node_modules/.bin/anvil is missing"
  [ -f "$INTEROP/$LITESVM_NATIVE" ] || fail "npm ci finished but interop/$LITESVM_NATIVE (LiteSVM's native binary, \
optional package litesvm-linux-x64-gnu@1.5.0) is missing: the Solana test bed needs Linux x86-64 with glibc"
fi

# 2) Contracts. build.mjs compares a hash of its inputs with interop/contracts/manifest.json (written last) itself.
if node "$ROOT/testbed/contracts/build.mjs" --check > /dev/null 2>&1; then
  echo "testbed: contracts up to date"
else
  echo "testbed: compiling contracts (Permit2, x402 Permit2 proxies, test tokens; pinned solc-js, ~20 s)…"
  run_logged "$LOGDIR/install-contracts.log" node "$ROOT/testbed/contracts/build.mjs"
  tail -n 1 "$LOGDIR/install-contracts.log"
fi

# 3) Python venv. The stamp is written only after pip succeeded, so an interrupted install is redone next time.
STAMP="$INTEROP/.venv/.requirements-installed"
if [ "$CHAIN_ONLY" = 1 ]; then
  echo "testbed: python packages not needed (--chain-only)"
elif [ -f "$STAMP" ] && [ "$STAMP" -nt "$INTEROP/requirements.txt" ] && [ -x "$INTEROP/.venv/bin/python" ]; then
  echo "testbed: python packages up to date"
else
  echo "testbed: installing python packages into interop/.venv (pinned, ~60 s)…"
  rm -f "$STAMP"
  if [ ! -x "$INTEROP/.venv/bin/python" ]; then
    run_logged "$LOGDIR/install-venv.log" "$PYTHON" -m venv "$INTEROP/.venv"
  fi
  run_logged "$LOGDIR/install-pip.log" "$INTEROP/.venv/bin/python" -m pip install --disable-pip-version-check \
    -r "$INTEROP/requirements.txt"
  touch "$STAMP"
fi

# 4) Debian's Chromium, for the pay page's browser test (driven by the pinned playwright-core; no browser download).
#    Installed as root through apt when missing; CHROMIUM names another binary. Without it the browser test skips,
#    except under CI=true, where it fails.
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ "$CHAIN_ONLY" = 1 ]; then
  echo "testbed: browser not needed (--chain-only)"
elif [ -x "$CHROMIUM" ]; then
  echo "testbed: browser $("$CHROMIUM" --version 2>/dev/null | head -n 1)"
elif command -v apt-get > /dev/null && { [ "$(id -u)" = 0 ] || sudo -n true 2> /dev/null; }; then
  echo "testbed: installing Debian's chromium (~150 MB)…"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  run_logged "$LOGDIR/install-chromium.log" sh -c "$sudo apt-get install -y -q chromium || { $sudo apt-get update -q && $sudo apt-get install -y -q chromium; }"
  [ -x "$CHROMIUM" ] || fail "apt-get installed chromium but $CHROMIUM is missing"
elif [ "${CI:-}" = true ]; then
  fail "$CHROMIUM not found and apt-get cannot install it here (not root): install Debian's chromium"
else
  echo "testbed: warning: $CHROMIUM not found and cannot be installed here; the browser test will skip" >&2
fi
