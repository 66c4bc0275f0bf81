#!/usr/bin/env bash
# The agent against a slow collector: a real agent ships to a real collector through a slow
# proxy (every request waits DELAY seconds; P503 of them are answered 503 and P429 429, both
# with Retry-After: 1) while it is offered more than it can ship: CLIENTS threads post
# OTLP/HTTP logs to its receiver as fast as it answers, and a file it tails grows by FILE_RATE
# lines a second. Records: the agent's peak RSS against a bound (64 MiB + twice the receiver's
# requests in flight times their size), its disk buffer against buffer.max_mb, the receiver's
# answers (429/503 with Retry-After once the buffer is full; the file tail blocks), and after
# the load stops and the proxy turns healthy, that every record the receiver acknowledged and
# every line written reaches the collector exactly once (counted by a unique id per record).
#
#   scripts/overload-agent.sh                 # about 2-3 minutes after the build
#   SECS=20 scripts/overload-agent.sh         # quick
#
# Exits non-zero on a loss, a duplicate or a limit passed. The output goes to
# target/bench-results/overload-agent-<time>/ (summary.txt, overload-agent.txt with the JSON
# result last, results.jsonl, samples.jsonl: RSS and buffer every half second, the agent's
# and the collector's logs, and what else ran on the machine, in processes.txt).
# The harness is scripts/overload-agent/run.py (Python, standard library only).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS="${SECS:-60}"
CLIENTS="${CLIENTS:-8}"
BATCH="${BATCH:-100}"
FILE_RATE="${FILE_RATE:-2000}"
DELAY="${DELAY:-0.25}"
P503="${P503:-0.3}"
P429="${P429:-0.1}"
BUFFER_MB="${BUFFER_MB:-16}"
OUT="${OUT:-target/bench-results/overload-agent-$(date -u +%Y%m%dT%H%M%SZ)}"

mkdir -p "$OUT"
cargo build --workspace --release
SKEIN="${CARGO_TARGET_DIR:-target}/release/skein"

. "$(dirname "$0")/lib/bench-common.sh"
echo "python: $(python3 --version 2>&1)" | machine_summary

others() {
  echo "== $1 $(date -u +%H:%M:%SZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
  ps -eo pid,pcpu,rss,etime,args --sort=-pcpu | head -12 | cut -c1-160
}
others before >> "$OUT/processes.txt"

BIN=python3
run overload-agent "$(dirname "$0")/overload-agent/run.py" --skein "$SKEIN" --out "$OUT" \
  --secs "$SECS" --clients "$CLIENTS" --batch "$BATCH" --file-rate "$FILE_RATE" \
  --delay "$DELAY" --p503 "$P503" --p429 "$P429" --buffer-mb "$BUFFER_MB" || true

others after >> "$OUT/processes.txt"
python3 - "$OUT/results.jsonl" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")][-1]
print(f"\nagent against a slow collector ({r['secs']:.0f} s of load):")
print(f"  receiver answers {r['receiver_answers']}, refusals {r['receiver_refusals_with_retry_after']}")
print(f"  receiver latency p50 {r['receiver_latency_s']['p50']} s, p99 {r['receiver_latency_s']['p99']} s")
print(f"  proxy {r['proxy']}")
print(f"  acknowledged by the receiver {r['acked_receiver_records']}, file lines {r['file_lines_written']};"
      f" delivered once {r['delivered_unique'] - r['delivered_twice']}, missing {r['missing']},"
      f" twice {r['delivered_twice']}, not acknowledged but delivered {r['delivered_not_acked']};"
      f" collector counted {r['collector_received_records']}")
print(f"  drained {r['drain_secs_after_load']} s after the load stopped")
print(f"  agent peak RSS {r['agent_rss_peak_mib']} MiB (bound {r['rss_limit_mib']} MiB);"
      f" disk buffer peak {r['buffer_peak_mib']} MiB (buffer.max_mb {r['buffer_limit_mib']})")
print("  ok" if r["ok"] else "  FAILED")
sys.exit(0 if r["ok"] else 1)
PY
echo "results in $OUT"
