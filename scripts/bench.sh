#!/usr/bin/env bash
# Runs Skein's benchmarks in release mode and keeps every output under one results folder.
#
#   scripts/bench.sh                 # the sizes of BENCHMARKS.md (about 30 minutes; the lookup
#                                    # data set of 10M logs is built once and reused)
#   RUNS=1 INGEST_RECORDS=200000 LOOKUP_LOGS=1000000 LOOKUP_SPANS=100000 scripts/bench.sh   # quick
#
# Each benchmark prints tables and, as its last line, one JSON object; results.jsonl collects
# those lines. The machine is described at the top of summary.txt. Run it on an idle machine:
# the numbers are CPU-bound on 2 cores and anything else running shows in them.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-3}"
INGEST_RECORDS="${INGEST_RECORDS:-1000000}"
SPANS="${SPANS:-500000}"
FRESH_SAMPLES="${FRESH_SAMPLES:-300}"
LOOKUP_LOGS="${LOOKUP_LOGS:-10000000}"
LOOKUP_SPANS="${LOOKUP_SPANS:-1000000}"
LOOKUP_QUERIES="${LOOKUP_QUERIES:-2000}"
LOOKUP_DIR="${LOOKUP_DIR:-/tmp/skein-bench-lookup}"
OUT="${OUT:-target/bench-results/$(date -u +%Y%m%dT%H%M%SZ)}"

mkdir -p "$OUT"
cargo build --release -p skein-bench
BIN="${CARGO_TARGET_DIR:-target}/release/skein-bench"

. "$(dirname "$0")/lib/bench-common.sh"
machine_summary </dev/null

for i in $(seq 1 "$RUNS"); do
  # The single-threaded parts and the tantivy experiment are slow and stable: first run only.
  if [ "$i" = 1 ]; then PARTS=(); else PARTS=(--no-parts); fi
  run "ingest-$i" ingest --records "$INGEST_RECORDS" "${PARTS[@]}"
done
for i in $(seq 1 "$RUNS"); do
  run "spans-$i" spans --spans "$SPANS"
done
for i in $(seq 1 "$RUNS"); do
  run "freshness-$i" freshness --samples "$FRESH_SAMPLES"
done
run lookup lookup --logs "$LOOKUP_LOGS" --spans "$LOOKUP_SPANS" --queries "$LOOKUP_QUERIES" \
  --runs "$RUNS" --data-dir "$LOOKUP_DIR"

if command -v python3 >/dev/null; then
  python3 - "$OUT/results.jsonl" <<'PY' | tee -a "$OUT/summary.txt"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def med(bench, key, f=lambda x: x):
    v = [f(r) for r in rows if r.get("bench") == bench and key(r) is not None]
    return statistics.median(v) if v else float("nan")
print("\nmedians over runs:")
print(f"  ingest raw MB/s per core      {med('ingest', lambda r: r.get('collector_mb_per_s_per_core'), lambda r: r['collector_mb_per_s_per_core']):.1f}  (goal >= 25)")
print(f"  ingest collector / bare        {med('ingest', lambda r: r.get('collector_over_bare'), lambda r: r['collector_over_bare'])*100:.0f}%  (goal >= 70%)")
print(f"  raw NDJSON / logs index        {med('ingest', lambda r: r.get('raw_over_index'), lambda r: r['raw_over_index']):.2f}x  (goal >= 4x)")
print(f"  spans/s                        {med('spans', lambda r: r.get('spans_per_s'), lambda r: r['spans_per_s']):.0f}  (goal >= 50000)")
print(f"  freshness p99 ms               {med('freshness', lambda r: r.get('latency'), lambda r: r['latency']['p99_ms']):.0f}  (goal <= 1000)")
print(f"  lookup p99 ms (median of runs) {med('lookup', lambda r: r.get('median_p99_ms'), lambda r: r['median_p99_ms']):.2f}  (goal <= 10)")
PY
fi
echo "results in $OUT"
