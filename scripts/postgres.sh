#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster on 127.0.0.1 for the Postgres store and ledger tests,
# installing Debian's postgresql package first if it is missing. Prints the URL to use as
# X402_TEST_POSTGRES_URL. Stop it with: bash scripts/postgres.sh stop
#   bash scripts/postgres.sh start     start (idempotent) and print the URL
#   bash scripts/postgres.sh stop      stop it and remove its folder
# The cluster listens on 127.0.0.1 only (a free port) and trusts its one local user, x402.
# target/postgres holds its port and where the cluster lives: target/postgres/cluster.d, except
# as root. initdb refuses to run as root, so then the cluster is run by the `postgres` user the
# package creates, in a folder of its own under /tmp (the checkout may sit in a folder that user
# cannot enter).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$PWD/target/postgres"
user=x402
database=x402_test

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

# Runs a PostgreSQL program as the cluster's owner (from /, which that user can always enter).
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# The folder of the cluster recorded by `start` (empty when none).
cluster() { cat "$dir/cluster" 2>/dev/null || true; }

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
    old=$(cluster)
    if [ -n "$old" ] && [ -f "$dir/port" ] && as_owner "$bin/pg_ctl" -D "$old/data" status >/dev/null 2>&1; then
      url
      exit 0
    fi
    [ -n "$old" ] && rm -rf "$old"
    rm -rf "$dir"
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      home=$(mktemp -d /tmp/x402-postgres.XXXXXX)
      chown postgres: "$home"
    else
      home="$dir/cluster.d"
      mkdir -p "$home"
    fi
    echo "$home" >"$dir/cluster"
    as_owner "$bin/initdb" -D "$home/data" -U "$user" --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "$port" >"$dir/port"
    as_owner "$bin/pg_ctl" -D "$home/data" -l "$home/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='$home' -c max_connections=200" \
      start >&2 || { cat "$home/postgres.log" >&2; exit 1; }
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$user" "$database" >&2
    url
    ;;
  stop)
    bin=$(pg_bin)
    home=$(cluster)
    if [ -n "$bin" ] && [ -n "$home" ] && [ -d "$home/data" ]; then
      as_owner "$bin/pg_ctl" -D "$home/data" -m fast -w stop >&2 2>/dev/null || true
    fi
    [ -n "$home" ] && rm -rf "$home"
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
