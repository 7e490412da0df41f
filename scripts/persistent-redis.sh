#!/usr/bin/env bash
# Twinsite's own Redis for `make run`, with persistence: an append-only file (fsync every second)
# under var/redis, so that tasks queued when Redis (or the machine) restarts are still there.
# The machine's Redis on 6379 may keep nothing on disk (tests and other projects use it); this
# one listens on TWIN_REDIS_PORT (6390) on loopback. Idempotent: a running one is left alone.
set -euo pipefail

PORT=${TWIN_REDIS_PORT:-6390}
DIR=${TWIN_REDIS_DIR:-$(cd "$(dirname "$0")/.." && pwd)/var/redis}

if redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1; then
  exit 0
fi
mkdir -p "$DIR"
printf '\033[1m[setup]\033[0m starting Redis with an append-only file on port %s (%s)\n' "$PORT" "$DIR"
redis-server --daemonize yes --bind 127.0.0.1 --port "$PORT" --dir "$DIR" \
  --appendonly yes --appendfsync everysec --save "" \
  --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log"
for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1 && exit 0; sleep 0.1; done
echo "Redis did not start on port $PORT; see $DIR/redis.log" >&2
exit 1
