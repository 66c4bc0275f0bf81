#!/usr/bin/env bash
# Runs the PromQL query benchmark in release mode, side by side with Prometheus, and keeps
# every output under one results folder, like scripts/bench-metrics.sh.
#
#   scripts/bench-promql.sh                              # about 15-25 minutes
#   HOURS=2 RUNS=20 COMPACTION_WAIT=0 scripts/bench-promql.sh   # quick
#
# promql-query: 1,000 counter series (labels x: 10 values, i: 100; 10 with a reset) and a
#   classic histogram (10 buckets + _sum + _count, 100 label sets), a sample every 15 s for
#   HOURS (24) h; `sum by (x) (rate(bench_requests_total[5m]))` and
#   `histogram_quantile(0.99, sum by (le) (rate(bench_latency_seconds_bucket[5m])))` over the
#   whole range, step 60 s, RUNS (200) runs each: Skein's engine in process, `skein collector`
#   over HTTP (`/api/v1/query_range`) and Prometheus (Debian's, installed with apt-get when
#   missing) over HTTP on the same samples, the two HTTP systems in turn. p50, p90, p99, max,
#   peak RSS, the answers compared (goal: Skein's p99 <= Prometheus's).
set -euo pipefail
cd "$(dirname "$0")/.."

HOURS="${HOURS:-24}"
RUNS="${RUNS:-200}"
WARMUP="${WARMUP:-5}"
COMPACTION_WAIT="${COMPACTION_WAIT:-180}"
MAX_LOAD="${MAX_LOAD:-0.8}"
OUT="${OUT:-target/bench-results/promql-$(date -u +%Y%m%dT%H%M%SZ)}"

command -v promtool >/dev/null || apt-get install -y prometheus >/dev/null
mkdir -p "$OUT"
cargo build --release -p skein -p skein-bench
BIN="${CARGO_TARGET_DIR:-target}/release/skein-bench"
SKEIN="${CARGO_TARGET_DIR:-target}/release/skein"

. "$(dirname "$0")/lib/bench-common.sh"
echo "prometheus: $(prometheus --version 2>&1 | head -1)" | machine_summary

# Waits (up to 10 minutes) for the 1-minute load to fall below MAX_LOAD before each timed part.
run promql promql-query --skein "$SKEIN" --hours "$HOURS" --runs "$RUNS" --warmup "$WARMUP" \
  --prom-compaction-wait "$COMPACTION_WAIT" --max-load "$MAX_LOAD"

if command -v python3 >/dev/null; then
  python3 - "$OUT/results.jsonl" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("\nresults:")
for r in rows:
    if r.get("bench") != "promql-query":
        continue
    print(f"  {r['series']} series, {r['samples']} samples, {r['hours']} h, step {r['step_secs']} s,"
          f" {r['runs']} runs; loads {' | '.join(r['loads'])}")
    for k, q in r["queries"].items():
        def p(x):
            return "-" if not x else f"{x['p50_ms']:.1f}/{x['p90_ms']:.1f}/{x['p99_ms']:.1f}/{x['max_ms']:.1f}"
        ratio = q["ratios"].get("skein_http_p99_over_prometheus_p99")
        ratio = "-" if ratio is None else "%.2f" % ratio
        agree = q["answer_checks"].get("skein_http_vs_prometheus") or q["answer_checks"].get(
            "skein_in_process_vs_prometheus")
        agree = "-" if agree is None else ("agree" if agree["agrees"] else "DIFFER")
        print(f"    {k:<9} p50/p90/p99/max ms: in process {p(q['skein_in_process'])},"
              f" skein HTTP {p(q['skein_http'])}, prometheus {p(q['prometheus_http'])};"
              f" p99 skein / prometheus = {ratio}; answers {agree}")
    goal = {None: "not run", True: "met", False: "missed"}[r["goal_met"]]
    print(f"    goal p99 skein over HTTP <= prometheus: {goal}")
PY
fi
echo "results in $OUT"
