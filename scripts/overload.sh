#!/usr/bin/env bash
# Offers the real collector three times the ingest it sustains (OTLP/HTTP protobuf and
# OTLP/gRPC together, many clients) and checks how it copes: refusals with a retry hint, RSS
# against limits.memory_limit_mb, correlation lookup latency while overloaded and after,
# recovery without a restart, and every acknowledged record stored exactly once.
#
#   scripts/overload.sh                               # about 3-4 minutes
#   SECS=20 CALIBRATE=15 AFTER=5 scripts/overload.sh  # quick
#   SUSTAINED=30000 scripts/overload.sh               # skip the closed loop, take this rate
#   LIMIT_MB=400 WRITER_MB=64 BUDGET_MB=128 CACHE_MB=64 scripts/overload.sh  # a tight memory limit
#
# Exits non-zero when an acknowledged record is missing or stored twice. The output goes to
# target/bench-results/overload-<time>/ (summary.txt, overload.txt, results.jsonl, and what
# else ran on the machine before and after, in processes.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS="${SECS:-60}"
CALIBRATE="${CALIBRATE:-30}"
AFTER="${AFTER:-20}"
FACTOR="${FACTOR:-3}"
CLIENTS="${CLIENTS:-32}"
BATCH="${BATCH:-200}"
LOOKUP_RATE="${LOOKUP_RATE:-20}"
BUDGET_MB="${BUDGET_MB:-256}"
LIMIT_MB="${LIMIT_MB:-1536}"
WRITER_MB="${WRITER_MB:-256}"
CACHE_MB="${CACHE_MB:-256}"
OUT="${OUT:-target/bench-results/overload-$(date -u +%Y%m%dT%H%M%SZ)}"

mkdir -p "$OUT"
cargo build --workspace --release
BIN="${CARGO_TARGET_DIR:-target}/release/skein-bench"
SKEIN="${CARGO_TARGET_DIR:-target}/release/skein"

. "$(dirname "$0")/lib/bench-common.sh"
echo "memory: limits.memory_limit_mb = $LIMIT_MB, limits.memory_budget_mb = $BUDGET_MB, index.writer_memory_mb = $WRITER_MB, metrics.cache_mb = $CACHE_MB" | machine_summary

others() {
  echo "== $1 $(date -u +%H:%M:%SZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
  ps -eo pid,pcpu,rss,etime,args --sort=-pcpu | head -12 | cut -c1-160
}
others before >> "$OUT/processes.txt"

extra=()
if [ -n "${SUSTAINED:-}" ]; then extra+=(--sustained "$SUSTAINED"); fi
args=(overload --skein "$SKEIN" --secs "$SECS" --calibrate-secs "$CALIBRATE"
  --after-secs "$AFTER" --factor "$FACTOR" --clients "$CLIENTS" --batch "$BATCH"
  --lookup-rate "$LOOKUP_RATE" --memory-budget-mb "$BUDGET_MB" --memory-limit-mb "$LIMIT_MB"
  --writer-memory-mb "$WRITER_MB" --cache-mb "$CACHE_MB" "${extra[@]}")
# Like bench-common.sh's run, but keeping skein-bench's exit status.
echo "== overload: ${args[*]} (load: $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$OUT/summary.txt"
status=0
"$BIN" "${args[@]}" 2>&1 | tee "$OUT/overload.txt" || status=$?
grep "^{" "$OUT/overload.txt" | tail -n 1 >> "$OUT/results.jsonl" || true
others after >> "$OUT/processes.txt"
cat "$OUT/processes.txt"
echo "results in $OUT"
exit "$status"
