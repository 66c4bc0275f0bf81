#!/usr/bin/env bash
# Runs the agent benchmarks (issue 3) in release mode and keeps every output under one results
# folder, like scripts/bench.sh.
#
#   scripts/bench-agent.sh                        # about 6-10 minutes, most of it waiting for a
#                                                 # quiet machine (1-minute load < 0.8)
#   MIB=512 RUNS=1 SECS=30 SWEEP=0 scripts/bench-agent.sh   # quick
#
# agent-overhead: the agent (1,000 lines/s, host metrics every 10 s, null sink) next to
#   Debian's prometheus-node-exporter (installed with apt-get when missing), same window.
# agent-throughput: a MIB MiB file of JSON lines read from the beginning, RUNS runs, median.
# The sweep (SWEEP=1) repeats the throughput run with other batch / in-flight settings on a
# smaller file. COLLECTOR=1 adds one throughput run against the real collector.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-3}"
MIB="${MIB:-1024}"
SECS="${SECS:-60}"
SWEEP="${SWEEP:-1}"
SWEEP_MIB="${SWEEP_MIB:-512}"
SWEEP_RUNS="${SWEEP_RUNS:-2}"
COLLECTOR="${COLLECTOR:-0}"
MAX_LOAD="${MAX_LOAD:-0.8}"
OUT="${OUT:-target/bench-results/agent-$(date -u +%Y%m%dT%H%M%SZ)}"

if [ ! -x /usr/bin/prometheus-node-exporter ]; then
  apt-get install -y prometheus-node-exporter >/dev/null
fi
mkdir -p "$OUT"
cargo build --release -p skein -p skein-bench
BIN="${CARGO_TARGET_DIR:-target}/release/skein-bench"
SKEIN="${CARGO_TARGET_DIR:-target}/release/skein"

. "$(dirname "$0")/lib/bench-common.sh"
echo "node_exporter: $(/usr/bin/prometheus-node-exporter --version 2>&1 | head -1)" | machine_summary

# Each benchmark waits (up to 10 minutes) for the 1-minute load to fall below MAX_LOAD.
run overhead agent-overhead --skein "$SKEIN" --secs "$SECS" --max-load "$MAX_LOAD"
run throughput agent-throughput --skein "$SKEIN" --mib "$MIB" --runs "$RUNS" --max-load "$MAX_LOAD"
if [ "$SWEEP" = 1 ]; then
  # Batch and in-flight settings, on a smaller file, without waiting for a quiet machine
  # between them (compare them with each other, not with the headline run).
  run sweep-default agent-throughput --skein "$SKEIN" --mib "$SWEEP_MIB" --runs "$SWEEP_RUNS" --max-load 0
  run sweep-records1000 agent-throughput --skein "$SKEIN" --mib "$SWEEP_MIB" --runs "$SWEEP_RUNS" --max-load 0 \
    --batch-records 1000
  run sweep-records10000-4mib agent-throughput --skein "$SKEIN" --mib "$SWEEP_MIB" --runs "$SWEEP_RUNS" --max-load 0 \
    --batch-records 10000 --batch-bytes 4194304
  run sweep-inflight4 agent-throughput --skein "$SKEIN" --mib "$SWEEP_MIB" --runs "$SWEEP_RUNS" --max-load 0 \
    --max-in-flight 4
fi
if [ "$COLLECTOR" = 1 ]; then
  run collector agent-throughput --skein "$SKEIN" --mib 256 --runs 1 --max-load 0 --sink collector
fi

if command -v python3 >/dev/null; then
  python3 - "$OUT/results.jsonl" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("\nresults:")
for r in rows:
    if r.get("bench") == "agent-overhead":
        a, n = r["agent"], r["node_exporter"]
        print(f"  overhead: agent {a['cpu_pct']:.2f} % of a core, RSS {a['rss_mib']:.1f} MiB (peak {a['hwm_mib']:.1f});"
              f" node_exporter {n['cpu_pct']:.2f} %, RSS {n['rss_mib']:.1f} MiB (peak {n['hwm_mib']:.1f});"
              f" goal cpu <= 2 %: {'met' if r['goal_cpu_met'] else 'missed'}, rss <= node_exporter: {'met' if r['goal_rss_met'] else 'missed'}")
    elif r.get("bench") == "agent-throughput":
        s = r["settings"]
        print(f"  throughput ({r['sink']}, {r['file_mib']:.0f} MiB, records={s['batch_max_records']} bytes={s['batch_max_bytes']} in_flight={s['max_in_flight']}):"
              f" {r['median_mib_per_s']:.1f} MiB/s, peak RSS {r['max_peak_rss_mib']:.1f} MiB, {r['median_cpu_cores']:.2f} cores"
              f" (goal >= 80 MiB/s within 64 MiB: {'met' if r['goal_met'] else 'missed'}; Vector published 76.7)")
PY
fi
echo "results in $OUT"
