#!/usr/bin/env bash
# Checks that the publishable crates are ready for crates.io (README: "Publishing"):
#   1. each packages and its packaged sources build on their own (cargo package, verified);
#   2. their documentation builds as docs.rs builds it (all features, doc(cfg) badges) without a warning;
#   3. every documented feature combination of x402-runtime compiles;
#   4. the lean builds stay lean: the paying client alone has no server parts, no libsecp256k1
#      without its feature, and one base64 in the client's and in the default server's tree.
set -euo pipefail
cd "$(dirname "$0")/.."

CRATES=(x402-price x402-macros x402-runtime x402-runtime-facilitator x402-runtime-cli)
fail() { printf 'publish-check: error: %s\n' "$*" >&2; exit 1; }

echo "publish-check: cargo package (verified) for ${CRATES[*]}"
# cargo verifies the packages against a local registry of the ones just packaged, unpacked under
# CARGO_HOME in a folder named after that registry's path. A checkout at the same path as an earlier
# run would reuse that run's unpacked sources (cargo does not unpack a name and version twice) and
# verify against stale code, so the earlier copies of these crates go first.
registry_src="${CARGO_HOME:-$HOME/.cargo}/registry/src"
for c in "${CRATES[@]}"; do rm -rf "$registry_src"/-*/"$c"-[0-9]*; done
args=(); for c in "${CRATES[@]}"; do args+=(-p "$c"); done
log="${CARGO_TARGET_DIR:-target}/publish-check-package.log"
mkdir -p "$(dirname "$log")"
if ! cargo package --locked --allow-dirty "${args[@]}" > "$log" 2>&1; then
  tail -n 40 "$log" >&2
  fail "cargo package failed (full log: $log)"
fi
grep -E '^\s*(Packaged|Verifying)' "$log"


# The combinations the features table of README.md documents (x402-runtime, without its defaults).
COMBINATIONS=(
  ""
  "server"
  "server,macros"
  "client,rustls"
  "client,native-tls,libsecp256k1"
  "client,rustls-no-provider"
  "http-facilitator,rustls"
  "cdp,rustls"
  "chain,rustls"
  "local-facilitator,rustls"
  "server,http-facilitator,rustls,redis"
  "server,http-facilitator,rustls,postgres"
  "server,openapi"
  "macros,schemars"
  "macros,aide"
  "svm"
  "local-facilitator,svm,rustls"
)
if [[ " ${COMBINATIONS[*]} " == *native-tls* ]] && ! pkg-config --exists openssl 2> /dev/null; then
  fail "the native-tls combination needs OpenSSL's headers and pkg-config (Debian: apt-get install libssl-dev pkg-config)"
fi
for features in "${COMBINATIONS[@]}"; do
  echo "publish-check: cargo check -p x402-runtime --no-default-features --features '$features'"
  cargo check --locked --quiet -p x402-runtime --no-default-features ${features:+--features "$features"}
done
echo "publish-check: cargo check -p x402-runtime --all-features"
cargo check --locked --quiet -p x402-runtime --all-features

# The packages of a build's tree (normal and build dependencies), one "name vX.Y.Z" a line.
tree() { cargo tree --locked -q -e normal,build --prefix none "$@" | grep -oE '^[A-Za-z0-9_-]+ v[^ ]+' | sort -u; }
has() { grep -qE "^$2 v" <<< "$1"; } # has TREE NAME
agent=$(tree -p example-agent)
server=$(tree -p example-minimal)
pure=$(tree -p x402-runtime --no-default-features --features client,rustls)
shapes=$(tree -p example-shapes)
[ -n "$agent" ] && [ -n "$server" ] && [ -n "$pure" ] && [ -n "$shapes" ] || fail "cargo tree listed nothing"

echo "publish-check: the client-only agent (examples/agent) compiles no server parts"
for server_part in axum redb inventory; do
  if has "$agent" "$server_part"; then fail "example-agent's tree holds $server_part"; fi
done
has "$agent" reqwest || fail "example-agent's tree lost reqwest (the check above would pass for nothing)"
has "$server" axum || fail "example-minimal's tree lost axum (the check above would pass for nothing)"
echo "publish-check: libsecp256k1 is built only with its feature"
if has "$pure" secp256k1-sys; then fail "secp256k1-sys is built without the libsecp256k1 feature"; fi
has "$agent" secp256k1-sys || fail "libsecp256k1 is missing from a build that asked for it"
echo "publish-check: one base64 in the client's and the default server's trees"
for package in agent server; do
  versions=$(grep -cE '^base64 v' <<< "${!package}" || true)
  [ "$versions" = 1 ] || fail "the $package tree builds $versions versions of base64"
done
echo "publish-check: schemars only with its feature, and no OpenAPI library with it alone"
if has "$server" schemars; then fail "the default server's tree holds schemars"; fi
has "$shapes" schemars || fail "example-shapes' tree lost schemars (the checks around would pass for nothing)"
for library in utoipa aide; do
  if has "$shapes" "$library"; then fail "the schemars feature alone brings $library"; fi
done

echo "publish-check: docs as docs.rs builds them (--all-features, --cfg docsrs, warnings are errors)"
# docs.rs uses a nightly rustdoc for #![feature(doc_cfg)]; RUSTC_BOOTSTRAP lets this stable one do the same.
# Last: RUSTC_BOOTSTRAP changes the fingerprints of the build scripts and proc macros it rebuilds,
# so any build after it in this target dir would compile most of the tree again.
RUSTC_BOOTSTRAP=1 RUSTDOCFLAGS="--cfg docsrs -D warnings" cargo doc --locked --no-deps --all-features "${args[@]}"
echo "publish-check: ok"
