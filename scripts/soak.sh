#!/usr/bin/env bash
# The soak run (issue 16): the demo's five food-delivery services at a steady request rate,
# with a real agent (tailing their log files, receiving their OTLP spans) and a real collector,
# while the collector is killed with SIGKILL every 5 minutes, the agent is restarted (once
# cleanly, once with SIGKILL), the services' log files are rotated (rename + new file) and the
# collector's disk is filled once and freed. Then the load stops, the agent drains, and
# scripts/soak/check.py checks that every acknowledged request's story is whole and every
# record is stored exactly once. Exit status: the checker's (0 pass, 1 a check failed), 2 when
# the run could not be set up.
#
#   cargo build --workspace --release
#   scripts/soak.sh                  # 60 minutes
#   scripts/soak.sh --minutes 10     # the short version
#
# Options: --minutes N (60), --rate R requests/s (10), --work DIR (a new /tmp/skein-soak.*),
# --bin PATH (target/release/skein), --disk-mb N (the collector's disk, 1024 MiB; an hour at
# 10 requests/s stores about 150 MiB), --keep (keep the collector's disk image after the run).
#
# The collector's data directory is a loop-mounted ext4 image (a tmpfs when loop devices are
# not available), so the disk can be filled without filling the machine's own disk (the image
# file takes --disk-mb of it while full, until the run ends); that needs root. Everything
# runs on 127.0.0.1 on free ports. Work files (the services' logs, every process's output, the
# events, the requests, the report) stay in the work directory.
set -uo pipefail

MINUTES=60
RATE=10
WORK=""
KEEP=0
DISK_MB=""
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/target/release/skein"
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) MINUTES="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --bin) BIN="$2"; shift 2 ;;
    --disk-mb) DISK_MB="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$MINUTES" in ''|*[!0-9]*) echo "soak.sh: --minutes must be a whole number" >&2; exit 2 ;; esac
[ "$MINUTES" -ge 2 ] || { echo "soak.sh: --minutes must be at least 2" >&2; exit 2; }
[ -x "$BIN" ] || { echo "soak.sh: no binary at $BIN; run cargo build --workspace --release" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "soak.sh: needs root (it mounts the collector's small disk)" >&2; exit 2; }
[ -n "$DISK_MB" ] || DISK_MB=1024
[ -n "$WORK" ] || WORK="/tmp/skein-soak.$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$WORK"/{bin,logs,out,agent}
WORK="$(cd "$WORK" && pwd)"
LOGS="$WORK/logs"
OUT="$WORK/out"
DISK="$WORK/disk"
EVENTS="$WORK/events.jsonl"
: >"$EVENTS"
# A copy of the binary: a rebuild during the run must not change what is restarted.
cp "$BIN" "$WORK/bin/skein"
SKEIN="$WORK/bin/skein"
PY="${PYTHON:-python3}"

say() { echo "[soak $(date -u +%H:%M:%S)] $*"; }
now_ms() { date +%s%3N; }
event() { echo "{\"t_ms\":$(now_ms),\"what\":\"$1\"${2:+,$2}}" >>"$EVENTS"; }

# --- processes ------------------------------------------------------------------------------
CPID=""; APID=""; LPID=""; MOUNTED=""
declare -A SPID
cleanup() {
  [ -n "$LPID" ] && kill -TERM "$LPID" 2>/dev/null
  for s in "${!SPID[@]}"; do kill -TERM "${SPID[$s]}" 2>/dev/null; done
  [ -n "$APID" ] && kill -TERM "$APID" 2>/dev/null
  [ -n "$CPID" ] && kill -TERM "$CPID" 2>/dev/null
  sleep 2
  [ -n "$LPID" ] && kill -KILL "$LPID" 2>/dev/null
  for s in "${!SPID[@]}"; do kill -KILL "${SPID[$s]}" 2>/dev/null; done
  [ -n "$APID" ] && kill -KILL "$APID" 2>/dev/null
  [ -n "$CPID" ] && kill -KILL "$CPID" 2>/dev/null
  wait 2>/dev/null
  if [ -n "$MOUNTED" ]; then
    umount "$DISK" 2>/dev/null || umount -l "$DISK" 2>/dev/null
    [ "$KEEP" = 1 ] || rm -f "$WORK/disk.img"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Free ports, all at once so none repeats.
read -r P_HTTP P_GRPC P_API A_HTTP A_GRPC A_MET S_GW S_ORD S_CPN S_PAY S_DLV < <("$PY" - <<'EOF'
import socket
ss = [socket.socket() for _ in range(11)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
EOF
)
API="http://127.0.0.1:$P_API"
AGENT_MET="http://127.0.0.1:$A_MET"

# The collector's disk.
mkdir -p "$DISK"
if truncate -s "${DISK_MB}M" "$WORK/disk.img" && mkfs.ext4 -q -m 0 "$WORK/disk.img" &&
  mount -o loop "$WORK/disk.img" "$DISK"; then
  MOUNTED=loop
elif mount -t tmpfs -o "size=${DISK_MB}m" tmpfs "$DISK"; then
  MOUNTED=tmpfs
  rm -f "$WORK/disk.img"
else
  echo "soak.sh: cannot mount a disk for the collector at $DISK" >&2
  exit 2
fi
say "work $WORK; collector disk $DISK_MB MiB ($MOUNTED); api $API"

cat >"$WORK/collector.toml" <<EOF
data_dir = "$DISK/data"
[listen]
otlp_http = "127.0.0.1:$P_HTTP"
otlp_grpc = "127.0.0.1:$P_GRPC"
api = "127.0.0.1:$P_API"
[alerts]
rules = []
EOF

{
  cat <<EOF
[agent]
id = "soak-agent"
data_dir = "$WORK/agent"
[collector]
endpoint = "http://127.0.0.1:$P_HTTP"
[batch]
max_wait = "250ms"
[receiver]
enabled = true
http = "127.0.0.1:$A_HTTP"
grpc = "127.0.0.1:$A_GRPC"
[telemetry]
listen = "127.0.0.1:$A_MET"
[host_metrics]
enabled = true
interval = "10s"
EOF
  for s in gateway order coupon payment delivery; do
    cat <<EOF
[[source]]
name = "$s"
paths = ["$LOGS/$s.log*"]
service = "$s"
format = "json"
read_from = "beginning"
EOF
  done
} >"$WORK/agent.toml"

COLLECTOR_RUNS=0; AGENT_RUNS=0
PEAK_KB=0
hwm() { # VmHWM of a pid in KiB, 0 when gone
  awk '/^VmHWM:/ {print $2; f=1} END {if (!f) print 0}' "/proc/$1/status" 2>/dev/null || echo 0
}
note_peak() {
  [ -n "$CPID" ] || return 0
  local k
  k=$(hwm "$CPID")
  [ "${k:-0}" -gt "$PEAK_KB" ] && PEAK_KB=$k
  return 0
}
wait_http() { # url seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    curl -sf -o /dev/null --max-time 2 "$1" && return 0
    sleep 0.1
  done
  return 1
}
# Counter samples "name{labels} value" of one family, appended to a file with a run tag.
scrape() { # url family file tag
  curl -sf --max-time 5 "$1" 2>/dev/null | grep "^$2{" | sed "s/^/$4 /" >>"$3" || true
}
start_collector() {
  COLLECTOR_RUNS=$((COLLECTOR_RUNS + 1))
  local t0
  t0=$(now_ms)
  "$SKEIN" collector --config "$WORK/collector.toml" >"$OUT/collector.$COLLECTOR_RUNS.log" 2>&1 &
  CPID=$!
  if ! wait_http "$API/readyz" 120; then
    say "collector run $COLLECTOR_RUNS not ready after 120 s (see $OUT/collector.$COLLECTOR_RUNS.log)"
    event collector_not_ready
    return 1
  fi
  event collector_ready "\"run\":$COLLECTOR_RUNS,\"ms\":$(( $(now_ms) - t0 ))"
}
scrape_collector() {
  scrape "$API/metrics" skein_ingest_errors_total "$WORK/collector_errors.txt" "run$COLLECTOR_RUNS"
}
kill_collector() {
  scrape_collector
  note_peak
  event collector_kill
  kill -KILL "$CPID"
  wait "$CPID" 2>/dev/null
}
start_agent() {
  AGENT_RUNS=$((AGENT_RUNS + 1))
  "$SKEIN" agent --config "$WORK/agent.toml" >"$OUT/agent.$AGENT_RUNS.log" 2>&1 &
  APID=$!
  wait_http "$AGENT_MET/healthz" 60 || { say "agent not healthy after 60 s"; return 1; }
  event agent_ready "\"run\":$AGENT_RUNS"
}
scrape_agent() {
  scrape "$AGENT_MET/metrics" skein_agent_requests_failed_total "$WORK/agent_failed.txt" "run$AGENT_RUNS"
}
start_services() {
  local s port
  for s in delivery payment coupon order gateway; do
    "$SKEIN" demo service "$s" --gateway "127.0.0.1:$S_GW" --order "127.0.0.1:$S_ORD" \
      --coupon "127.0.0.1:$S_CPN" --payment "127.0.0.1:$S_PAY" --delivery "127.0.0.1:$S_DLV" \
      --otlp "http://127.0.0.1:$A_GRPC" --host soak-host --log "$LOGS/$s.log" \
      >"$OUT/service.$s.log" 2>&1 &
    SPID[$s]=$!
  done
  for s in delivery payment coupon order gateway; do
    for ((port = 0; port < 300; port++)); do
      grep -q " ready " "$OUT/service.$s.log" 2>/dev/null && break
      sleep 0.1
    done
    grep -q " ready " "$OUT/service.$s.log" || { say "service $s did not start"; return 1; }
  done
}
ROTATIONS=0
rotate_files() {
  local s n
  n=$(( ROTATIONS / 5 + 1 ))
  for s in gateway order coupon payment delivery; do
    mv "$LOGS/$s.log" "$LOGS/$s.log.soak-$n" && touch "$LOGS/$s.log"
    ROTATIONS=$((ROTATIONS + 1))
  done
  event rotate "\"n\":$n"
}
DISK_EPISODES=0; DISK_FULL_MS=0
fill_disk() {
  local avail
  avail=$(df -B1 --output=avail "$DISK" | tail -1)
  fallocate -l $(( avail > 4194304 ? avail - 1048576 : 1048576 )) "$DISK/fill" 2>/dev/null || true
  dd if=/dev/zero of="$DISK/fill2" bs=64k status=none 2>/dev/null || true
  event disk_full "\"free\":$(df -B1 --output=avail "$DISK" | tail -1)"
  DISK_EPISODES=$((DISK_EPISODES + 1))
  DISK_T0=$(now_ms)
}
free_disk() {
  rm -f "$DISK/fill" "$DISK/fill2"
  DISK_FULL_MS=$(( DISK_FULL_MS + $(now_ms) - DISK_T0 ))
  event disk_freed "\"free\":$(df -B1 --output=avail "$DISK" | tail -1)"
}

# --- the run --------------------------------------------------------------------------------
start_collector || exit 2
start_agent || exit 2
start_services || exit 2
"$PY" "$ROOT/scripts/soak/load.py" --gateway "127.0.0.1:$S_GW" --rate "$RATE" \
  --out "$WORK/requests.jsonl" >"$OUT/load.log" 2>&1 &
LPID=$!
event load_started
say "load at $RATE requests/s for $MINUTES min"

T=$((MINUTES * 60))
# The schedule, in seconds from the start: the collector every 5 minutes from 2.5 minutes
# on; the agent stopped cleanly at 30 % and killed at 70 %; the files rotated at 1/6, 2/6,
# ... of the run (20 s later, so rotations never coincide with the rest); the disk full from
# 50 % for 60 s.
NEXT_KILL=150
AGENT_STOP_AT=$((T * 3 / 10)); AGENT_KILL_AT=$((T * 7 / 10))
ROT_K=1
DISK_AT=$((T / 2)); DISK_HOLD=60; DISK_STATE=0
COLLECTOR_KILLS=0; AGENT_CLEAN=0; AGENT_KILLS=0
START=$(date +%s)
while :; do
  el=$(( $(date +%s) - START ))
  [ "$el" -ge "$T" ] && break
  note_peak
  if ! kill -0 "$CPID" 2>/dev/null; then
    say "the collector exited by itself (see $OUT/collector.$COLLECTOR_RUNS.log); restarting"
    event collector_exited
    start_collector || true
  fi
  if ! kill -0 "$APID" 2>/dev/null; then
    say "the agent exited by itself (see $OUT/agent.$AGENT_RUNS.log); restarting"
    event agent_exited
    start_agent || true
  fi
  if [ "$el" -ge "$NEXT_KILL" ] && [ "$NEXT_KILL" -le $((T - 30)) ]; then
    kill_collector
    COLLECTOR_KILLS=$((COLLECTOR_KILLS + 1))
    start_collector || true
    say "collector kill -9 #$COLLECTOR_KILLS, back up (run $COLLECTOR_RUNS)"
    NEXT_KILL=$((NEXT_KILL + 300))
  fi
  if [ "$AGENT_STOP_AT" -gt 0 ] && [ "$el" -ge "$AGENT_STOP_AT" ]; then
    scrape_agent
    event agent_stop
    kill -TERM "$APID"; wait "$APID" 2>/dev/null
    start_agent || true
    AGENT_CLEAN=$((AGENT_CLEAN + 1)); AGENT_STOP_AT=0
    say "agent stopped cleanly and started again"
  fi
  if [ "$AGENT_KILL_AT" -gt 0 ] && [ "$el" -ge "$AGENT_KILL_AT" ]; then
    scrape_agent
    event agent_kill
    kill -KILL "$APID"; wait "$APID" 2>/dev/null
    start_agent || true
    AGENT_KILLS=$((AGENT_KILLS + 1)); AGENT_KILL_AT=0
    say "agent kill -9 and started again"
  fi
  if [ "$ROT_K" -le 5 ] && [ "$el" -ge $((T * ROT_K / 6 + 20)) ]; then
    rotate_files
    say "log files rotated ($ROT_K)"
    ROT_K=$((ROT_K + 1))
  fi
  if [ "$DISK_STATE" = 0 ] && [ "$el" -ge "$DISK_AT" ]; then
    fill_disk; DISK_STATE=1
    say "collector disk full ($(df -h --output=avail "$DISK" | tail -1 | tr -d ' ') free)"
  elif [ "$DISK_STATE" = 1 ] && [ "$el" -ge $((DISK_AT + DISK_HOLD)) ]; then
    free_disk; DISK_STATE=2
    say "collector disk freed"
  fi
  sleep 1
done
[ "$DISK_STATE" = 1 ] && free_disk

# --- drain and check ------------------------------------------------------------------------
say "stopping the load"
kill -TERM "$LPID"; wait "$LPID" 2>/dev/null; LPID=""
event load_stopped
sleep 10 # outbox deliveries and the delivery queue finish
for s in gateway order coupon payment delivery; do kill -TERM "${SPID[$s]}" 2>/dev/null; done
for s in gateway order coupon payment delivery; do wait "${SPID[$s]}" 2>/dev/null; done
SPID=()
event services_stopped
say "services stopped; waiting for the agent to drain"
metric() { # url name [label filter] -> sum of the samples
  curl -sf --max-time 5 "$1" 2>/dev/null |
    awk -v n="$2" -v f="${3:-}" '($1 == n || index($1, n "{") == 1) && (f == "" || index($1, f)) {s += $2} END {printf "%d", s}'
}
# Drained: the collector took no new log or span for 10 s in a row, has indexed all it took,
# and the agent has sent as many logs and spans as it buffered (the buffer's byte gauge counts
# whole segments, sent or not, so it cannot tell).
calm=0; last=-1
for ((i = 0; i < 300; i++)); do
  got=$(( $(metric "$API/metrics" skein_received_records_total 'signal="logs"') +
    $(metric "$API/metrics" skein_received_records_total 'signal="spans"') ))
  lag=$(metric "$API/metrics" skein_index_lag_records)
  unsent=0
  for sig in logs spans; do
    b=$(metric "$AGENT_MET/metrics" skein_agent_records_buffered_total "signal=\"$sig\"")
    s=$(metric "$AGENT_MET/metrics" skein_agent_records_sent_total "signal=\"$sig\"")
    [ "${s:-0}" -lt "${b:-0}" ] && unsent=$((unsent + b - s))
  done
  if [ "$got" = "$last" ] && [ "${lag:-1}" = 0 ] && [ "$unsent" = 0 ]; then calm=$((calm + 1)); else calm=0; fi
  last=$got
  [ "$calm" -ge 10 ] && break
  sleep 1
done
event drained "\"seconds\":$i"
say "drained after $i s (index lag ${lag:-?}, agent records not yet sent ${unsent:-?})"
scrape_agent
scrape_collector
note_peak

sum_by_reason() { # file -> JSON object reason: total
  [ -s "$1" ] || { echo "{}"; return; }
  sed -E 's/.*reason="([^"]*)".* ([0-9.e+]+)$/\1 \2/' "$1" |
    awk '{s[$1] += $2} END {printf "{"; f = 1; for (k in s) {printf "%s\"%s\":%d", (f ? "" : ","), k, s[k]; f = 0}; printf "}"}'
}
cat >"$WORK/stats.json" <<EOF
{"minutes": $MINUTES, "rate": $RATE, "work": "$WORK",
 "binary": "$BIN", "disk": "$MOUNTED $DISK_MB MiB",
 "collector_kills": $COLLECTOR_KILLS, "collector_runs": $COLLECTOR_RUNS,
 "agent_restarts": $((AGENT_CLEAN + AGENT_KILLS)), "agent_clean_restarts": $AGENT_CLEAN,
 "agent_kills": $AGENT_KILLS, "agent_runs": $AGENT_RUNS,
 "rotations": $ROTATIONS, "disk_full_episodes": $DISK_EPISODES, "disk_full_ms": $DISK_FULL_MS,
 "agent_failed_requests": $(sum_by_reason "$WORK/agent_failed.txt"),
 "collector_ingest_errors": $(sum_by_reason "$WORK/collector_errors.txt"),
 "peak_collector_rss_mib": $((PEAK_KB / 1024)),
 "drain_seconds": $i}
EOF
"$PY" "$ROOT/scripts/soak/check.py" --api "$API" --logs "$LOGS" --requests "$WORK/requests.jsonl" \
  --events "$EVENTS" --stats "$WORK/stats.json" --out "$WORK/report.json"
rc=$?
say "report: $WORK/report.json"
exit "$rc"
