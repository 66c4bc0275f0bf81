#!/usr/bin/env bash
# Runs the Loki query benchmark in release mode and keeps every output under one results
# folder, like scripts/bench-promql.sh.
#
#   scripts/bench-loki.sh                                  # ~5-10 minutes with the data set built
#   LOGS=1000000 SPANS=100000 DATA=/tmp/lk1m QUERIES=500 scripts/bench-loki.sh   # quick
#   BUILD=0 scripts/bench-loki.sh                          # with the skein-bench already built
#
# loki-lookup: the `lookup` data set (LOGS 10 M logs, SPANS 1 M spans in ~100,000 traces,
#   written straight into the stores in DATA, reused when it holds the same size and seed;
#   building it takes 4-5 minutes), then the collector on it and one keep-alive client:
#   `GET /loki/api/v1/query_range` with `{service="<a service that logged the trace's lines>"}
#   | trace_id="<id>"` (half `| request_id="<id>"`), start/end over the data set's hour,
#   limit 1000, and `GET /api/v1/traces/{key}` for the same key, in turn; QUERIES per run,
#   RUNS runs after a warm-up of QUERIES/10. p50/p90/p99/max per run, every answer checked
#   (lines > 0, each stream's trace_id/request_id label the key asked). Goal: query_range
#   trace_id p99 <= 20 ms. No Loki peer: none installs on this machine (see BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."

LOGS="${LOGS:-10000000}"
SPANS="${SPANS:-1000000}"
QUERIES="${QUERIES:-2000}"
RUNS="${RUNS:-3}"
DATA="${DATA:-/tmp/skein-bench-lookup}"
OUT="${OUT:-target/bench-results/loki-$(date -u +%Y%m%dT%H%M%SZ)}"

BUILD="${BUILD:-1}"

mkdir -p "$OUT"
[ "$BUILD" = 0 ] || cargo build --release -p skein-bench
BIN="${CARGO_TARGET_DIR:-target}/release/skein-bench"

. "$(dirname "$0")/lib/bench-common.sh"
echo "peer: none (no Grafana Loki in Debian's or PyPI's packages)" | machine_summary

run loki loki-lookup --logs "$LOGS" --spans "$SPANS" --queries "$QUERIES" --runs "$RUNS" \
  --data-dir "$DATA" "$@"

if command -v python3 >/dev/null; then
  python3 - "$OUT/results.jsonl" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("\nresults:")
for r in rows:
    if r.get("bench") != "loki-lookup":
        continue
    print(f"  {r['logs']} logs, {r['spans']} spans, {r['traces']} traces; limit {r['limit']};"
          f" {r['answers_checked']} answers checked, {r['avg_lines_per_answer']:.1f} lines each,"
          f" {r['line_count_mismatches']} with another line count than the data set")
    for i, run in enumerate(r["runs"]):
        print(f"  run {i + 1} (load {run['load_before']} -> {run['load_after']})")
        for route, name in (("loki", "query_range"), ("native", "/api/v1/traces")):
            for k in ("by_trace_id", "by_request_id"):
                q = run[route][k]
                if not q["count"]:
                    continue
                print(f"    {name:<15} {k:<14} p50/p90/p99/max ms: {q['p50_ms']:.2f}/"
                      f"{q['p90_ms']:.2f}/{q['p99_ms']:.2f}/{q['max_ms']:.2f}")
    goal = {None: "not run", True: "met", False: "missed"}[r["goal_met"]]
    m = r["median_p99_ms"]["loki_trace_id"]
    print(f"  goal query_range trace_id p99 <= {r['goal_p99_ms']} ms: {goal} (median p99 {m} ms)")
PY
fi
echo "results in $OUT"
