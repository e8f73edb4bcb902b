#!/usr/bin/env bash
# Starts a throwaway redis-server on 127.0.0.1 for the shared replay store tests, installing
# Debian's redis-server package first if it is missing. Prints the URL to use as
# X402_TEST_REDIS_URL. Stop it with: bash scripts/redis.sh stop
#   bash scripts/redis.sh start     start (idempotent) and print the URL
#   bash scripts/redis.sh stop      stop it and remove its folder
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/redis
pidfile="$dir/redis.pid"

case "${1:-start}" in
  start)
    if ! command -v redis-server >/dev/null 2>&1; then
      echo "installing redis-server (Debian package)" >&2
      sudo=""
      if [ "$(id -u)" != 0 ]; then sudo="sudo -n"; fi
      export DEBIAN_FRONTEND=noninteractive
      $sudo apt-get install -y -q redis-server >&2 \
        || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q redis-server >&2; }
    fi
    mkdir -p "$dir"
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "redis://127.0.0.1:$(cat "$dir/port")/"
      exit 0
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
      --daemonize yes --dir "$PWD/$dir" --pidfile "$PWD/$pidfile" --logfile "$PWD/$dir/redis.log" >&2
    echo "$port" >"$dir/port"
    for _ in $(seq 50); do
      if redis-cli -p "$port" ping >/dev/null 2>&1; then
        echo "redis://127.0.0.1:$port/"
        exit 0
      fi
      sleep 0.1
    done
    echo "redis-server did not start; see $dir/redis.log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
