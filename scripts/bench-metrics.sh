#!/usr/bin/env bash
# Runs the metrics store benchmarks in release mode and keeps every output under one results
# folder, like scripts/bench-agent.sh.
#
#   scripts/bench-metrics.sh                      # about 15-20 minutes
#   SERIES=2000 ROUNDS=10 RUNS=1 QSERIES=200 QRUNS=20 scripts/bench-metrics.sh   # quick
#
# metrics-ingest: SERIES host-metric gauge series, ROUNDS rounds 10 s apart, over OTLP/HTTP
#   protobuf into `skein collector` (a child process), RUNS runs on fresh collectors, median
#   samples/s (goal >= 200,000), collector CPU and peak RSS.
# metrics-query: QSERIES gauge series over 24 h (every 10 s), four 24 h range queries, QRUNS
#   runs each: Skein in process, Skein through the collector over HTTP, and Prometheus
#   (Debian's, installed with apt-get when missing) over HTTP on the same samples; p50, p90,
#   p99, max (goal p99 <= 50 ms).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-3}"
SERIES="${SERIES:-10000}"
ROUNDS="${ROUNDS:-60}"
CONCURRENCY="${CONCURRENCY:-4}"
QSERIES="${QSERIES:-1000}"
QRUNS="${QRUNS:-200}"
MAX_LOAD="${MAX_LOAD:-0.8}"
OUT="${OUT:-target/bench-results/metrics-$(date -u +%Y%m%dT%H%M%SZ)}"

command -v promtool >/dev/null || apt-get install -y prometheus >/dev/null
mkdir -p "$OUT"
cargo build --release -p skein -p skein-bench
BIN="${CARGO_TARGET_DIR:-target}/release/skein-bench"
SKEIN="${CARGO_TARGET_DIR:-target}/release/skein"

. "$(dirname "$0")/lib/bench-common.sh"
echo "prometheus: $(prometheus --version 2>&1 | head -1)" | machine_summary

# Each waits (up to 10 minutes) for the 1-minute load to fall below MAX_LOAD before it times.
run ingest metrics-ingest --skein "$SKEIN" --series "$SERIES" --rounds "$ROUNDS" \
  --concurrency "$CONCURRENCY" --runs "$RUNS" --max-load "$MAX_LOAD"
run query metrics-query --skein "$SKEIN" --series "$QSERIES" --runs "$QRUNS" --max-load "$MAX_LOAD"

if command -v python3 >/dev/null; then
  python3 - "$OUT/results.jsonl" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("\nresults:")
for r in rows:
    if r.get("bench") == "metrics-ingest":
        each = ", ".join("%.0f" % x["samples_per_s"] for x in r["runs"])
        print(f"  ingest: {r['median_samples_per_s']:.0f} samples/s median of {len(r['runs'])}"
              f" ({each});"
              f" {r['series']} series x {r['rounds']} rounds; collector {r['median_collector_cpu_secs']:.2f} CPU s,"
              f" peak RSS {r['max_collector_peak_rss_mib']:.1f} MiB;"
              f" goal >= 200,000/s: {'met' if r['goal_met'] else 'missed'}")
    elif r.get("bench") == "metrics-query":
        print(f"  query: {r['series']} series, {r['hours']} h, step {r['step_secs']} s, {r['runs']} runs;"
              f" block {r['skein_block_bytes_per_sample']:.2f} B/sample")
        for k, q in r["queries"].items():
            def p(x):
                return "-" if not x else f"{x['p50_ms']:.1f}/{x['p90_ms']:.1f}/{x['p99_ms']:.1f}"
            ratio = q["ratios"].get("prometheus_p99_over_skein_http_p99")
            ratio = "-" if ratio is None else "%.2f" % ratio
            print(f"    {k:<12} p50/p90/p99 ms: in process {p(q['skein_in_process'])}, HTTP {p(q['skein_http'])},"
                  f" prometheus {p(q['prometheus_http'])}, prometheus same samples {p(q['prometheus_same_samples_http'])};"
                  f" prometheus p99 / skein HTTP p99 = {ratio}")
        http = {None: "not run", True: "met", False: "missed"}[r["goal_http_met"]]
        print(f"    goal p99 <= 50 ms: in process {'met' if r['goal_in_process_met'] else 'missed'},"
              f" HTTP {http}")
PY
fi
echo "results in $OUT"
