#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster on 127.0.0.1 for the Postgres store and ledger tests,
# installing Debian's postgresql package first if it is missing. Prints the URL to use as
# X402_TEST_POSTGRES_URL. Stop it with: bash scripts/postgres.sh stop
#   bash scripts/postgres.sh start     start (idempotent) and print the URL
#   bash scripts/postgres.sh stop      stop it and remove its folder
# The cluster lives in target/postgres, listens on 127.0.0.1 only (a free port) and trusts its
# one local user, x402. initdb refuses to run as root, so as root the cluster is run by the
# `postgres` user the package creates.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$PWD/target/postgres"
data="$dir/data"
user=x402
database=x402_test

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

# Runs a PostgreSQL program as the cluster's owner.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

url() { echo "postgres://$user@127.0.0.1:$(cat "$dir/port")/$database"; }

case "${1:-start}" in
  start)
    if [ -z "$(pg_bin)" ]; then
      echo "installing postgresql (Debian package)" >&2
      sudo=""
      if [ "$(id -u)" != 0 ]; then sudo="sudo -n"; fi
      export DEBIAN_FRONTEND=noninteractive
      $sudo apt-get install -y -q postgresql >&2 \
        || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q postgresql >&2; }
    fi
    bin=$(pg_bin)
    if [ -z "$bin" ]; then
      echo "PostgreSQL is not installed and could not be installed" >&2
      exit 1
    fi
    if [ -f "$dir/port" ] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
      url
      exit 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    as_owner "$bin/initdb" -D "$data" -U "$user" --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "$port" >"$dir/port"
    as_owner "$bin/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='$dir' -c max_connections=200" \
      start >&2 || { cat "$dir/postgres.log" >&2; exit 1; }
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$user" "$database" >&2
    url
    ;;
  stop)
    bin=$(pg_bin)
    if [ -n "$bin" ] && [ -d "$data" ]; then
      as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >&2 2>/dev/null || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
