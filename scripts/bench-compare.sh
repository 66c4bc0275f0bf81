#!/usr/bin/env bash
# Peak memory of the collector as its own process during the ingest benchmark.
#
# Starts the release `skein collector` under /usr/bin/time -v on free ports and a temporary data
# dir, drives it with `skein-bench ingest --external-otlp/--external-api` (the same pre-encoded
# OTLP/HTTP protobuf batches), stops it with SIGTERM (a clean shutdown), and prints the
# collector's maximum resident set size and CPU times.
#
#   scripts/bench-compare.sh            # 1M records
#   RECORDS=200000 scripts/bench-compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS="${RECORDS:-1000000}"
HTTP_PORT="${HTTP_PORT:-14318}"
GRPC_PORT="${GRPC_PORT:-14317}"
API_PORT="${API_PORT:-17700}"

cargo build --release -p skein -p skein-bench
BIN="${CARGO_TARGET_DIR:-target}/release"
DATA="$(mktemp -d /tmp/skein-bench-rss-XXXXXX)"
LOG="$DATA.collector.log"
TIMEV="$DATA.time.txt"

/usr/bin/time -v -o "$TIMEV" "$BIN/skein" collector --data-dir "$DATA" \
  --otlp-http "127.0.0.1:$HTTP_PORT" --otlp-grpc "127.0.0.1:$GRPC_PORT" --api "127.0.0.1:$API_PORT" \
  >"$LOG" 2>&1 &
TIME_PID=$!
for _ in $(seq 1 100); do
  grep -q "skein collector ready" "$LOG" 2>/dev/null && break
  sleep 0.1
done
grep -q "skein collector ready" "$LOG" || { cat "$LOG"; kill "$TIME_PID"; exit 1; }
COLLECTOR_PID="$(pgrep -P "$TIME_PID" | head -n 1)"

echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN/skein-bench" ingest --records "$RECORDS" --no-bare --no-parts \
  --external-otlp "http://127.0.0.1:$HTTP_PORT" --external-api "http://127.0.0.1:$API_PORT" \
  | tee "$DATA.bench.txt"

kill -TERM "$COLLECTOR_PID"
wait "$TIME_PID" || true
echo
echo "== collector process (separate from the load generator) =="
grep -E "Maximum resident set size|User time|System time|Elapsed|Percent of CPU" "$TIMEV" | sed 's/^\t*/  /'
echo "  data dir after stop: $(du -sh "$DATA" | cut -f1)"
rm -rf "$DATA"
