#!/usr/bin/env bash
# The whole stack under the demo's realistic traffic: for each rate, `skein demo --headless`
# runs 60 s without faults; the script reads the summary (are all stories whole?) and the CPU
# and memory of each process (collector, agent, the five services, the demo itself with its
# load generator) between 20 s and 50 s into the run, and how soon after the gateway's answer
# a placed order's whole story could be read (the demo's freshness probes, one a second).
#
#   RATES="10 50 200" DURATION=60 scripts/bench-demo.sh      # about 1.5 minutes per rate
#
# CPU is the process's user+system time over those 30 s (from /proc/<pid>/stat), as a share
# of one core; memory is the resident set at 50 s.
set -euo pipefail

RATES="${RATES:-10 50 200}"
DURATION="${DURATION:-60}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SKEIN="${SKEIN:-$ROOT/target/release/skein}"
[ -x "$SKEIN" ] || (cd "$ROOT" && cargo build --release --bin skein >/dev/null)

DIR="$(mktemp -d /tmp/bench-demo-XXXXXX)"
trap 'rm -rf "$DIR"' EXIT
TICK=$(getconf CLK_TCK)

# "name pid" for every process of the run (the demo's data dir is on their command lines).
procs() {
  for p in /proc/[0-9]*; do
    local cmd
    cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
    case "$cmd" in
      *"$1"*)
        local name=demo
        case "$cmd" in
          *" collector "*) name=collector ;;
          *" agent "*) name=agent ;;
          *"demo service "*) name=$(echo "$cmd" | sed -E 's/.*demo service ([a-z]+).*/\1/') ;;
        esac
        echo "$name ${p#/proc/}"
        ;;
    esac
  done
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(uname -r)"
for rate in $RATES; do
  data="$DIR/run-$rate"
  "$SKEIN" demo --headless --duration "${DURATION}s" --rate "$rate" --faults off --json \
    --data "$data" >"$DIR/summary-$rate.json" 2>"$DIR/events-$rate.log" &
  demo_pid=$!
  sleep 20
  declare -A before=()
  while read -r name pid; do before[$pid]="$name $(cpu_ticks "$pid")"; done < <(procs "$data")
  sleep 30
  echo
  echo "rate $rate/s: process  cpu(% of a core)  rss(MiB)"
  total_cpu=0
  total_rss=0
  for pid in "${!before[@]}"; do
    read -r name t0 <<<"${before[$pid]}"
    t1=$(cpu_ticks "$pid")
    rss=$(rss_kb "$pid")
    cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$TICK" 'BEGIN {printf "%.1f", (b - a) / hz / 30 * 100}')
    printf "  %-10s %6s %8.1f\n" "$name" "$cpu" "$(awk -v r="$rss" 'BEGIN {print r/1024}')"
    total_cpu=$(awk -v a="$total_cpu" -v b="$cpu" 'BEGIN {print a + b}')
    total_rss=$((total_rss + rss))
  done | sort
  unset before
  wait "$demo_pid" || echo "  (the demo exited with $?: see the summary)"
  python3 - "$DIR/summary-$rate.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
r, st = s["requests"], s["stories"]
print(f"  sent {r['sent']} (2xx {r['ok']}, 4xx {r['rejected']}, 5xx/none {r['failed']}); "
      f"stories whole {st['complete']}/{st['checked']}, placed orders with all five "
      f"{st['all_five']}/{st['placed']}; collector took in {s['indexed']['spans']} spans, "
      f"{s['indexed']['logs']} logs")
f = s["freshness"]
print(f"  story whole after the answer: p50 {f['p50_ms']} ms, p90 {f['p90_ms']} ms, "
      f"p99 {f['p99_ms']} ms, max {f['max_ms']} ms ({f['probes']} probes, {f['late']} late)")
EOF
done
