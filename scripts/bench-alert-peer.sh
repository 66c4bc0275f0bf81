#!/usr/bin/env bash
# Alert latency of Prometheus + Alertmanager at their default timing, as the peer for Skein's
# alert-latency benchmark.
#
#   SAMPLES=5 scripts/bench-alert-peer.sh     # about 6-10 minutes
#
# Prometheus: scrape_interval and evaluation_interval left unset (1m each), rule `for: 0s`.
# Alertmanager: route group_wait 0s, group_interval / repeat_interval at their defaults.
# Latency = from the moment a breaching value is visible at the scraped exporter to the moment
# the webhook receiver gets the POST naming that alert. Everything runs on 127.0.0.1 from a
# temporary directory that is removed at the end.
set -euo pipefail

SAMPLES="${SAMPLES:-5}"
TIMEOUT_S=300

# 1. Install Prometheus and Alertmanager when missing.
if ! command -v prometheus >/dev/null || ! command -v prometheus-alertmanager >/dev/null; then
  apt-get update >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus prometheus-alertmanager >/dev/null
fi

DIR="$(mktemp -d /tmp/bench-alert-peer-XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# Wait until a URL answers with a body matching a pattern, or give up after $3 seconds.
wait_for() {
  local url="$1" pattern="$2" secs="$3" i
  for ((i = 0; i < secs * 10; i++)); do
    if curl -fsS "$url" 2>/dev/null | grep -q "$pattern"; then return 0; fi
    sleep 0.1
  done
  echo "gave up waiting for $url ($pattern)" >&2
  return 1
}
show_logs() {
  for f in prometheus.log alertmanager.log helper.log; do
    echo "--- $f (last 20 lines)" >&2
    tail -n 20 "$DIR/$f" >&2 || true
  done
}

EXPORTER_PORT="$(free_port)"
RECEIVER_PORT="$(free_port)"
PROM_PORT="$(free_port)"
AM_PORT="$(free_port)"
STATE="$DIR/services.txt"     # one service name per line; each gets bench_errors = 1
ALERTS="$DIR/received.log"    # "<unix ms> <service> <status>" per alert the receiver gets
: >"$STATE"
: >"$ALERTS"

# 2. Exporter and webhook receiver: one python file, two threads.
cat >"$DIR/helper.py" <<'PY'
import json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

state, log, exporter_port, receiver_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
lock = threading.Lock()

class Exporter(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404)
            return
        with open(state) as f:
            services = [line.strip() for line in f if line.strip()]
        lines = ["# HELP bench_errors Breaching value per service.", "# TYPE bench_errors gauge"]
        lines += ['bench_errors{service="%s"} 1' % s for s in services]
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        arrived = int(time.time() * 1000)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            alerts = json.loads(body).get("alerts", [])
        except ValueError:
            alerts = []
        with lock, open(log, "a") as f:
            for a in alerts:
                f.write("%d %s %s\n" % (arrived, a.get("labels", {}).get("service", "-"), a.get("status", "-")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass

recv = ThreadingHTTPServer(("127.0.0.1", receiver_port), Receiver)
threading.Thread(target=recv.serve_forever, daemon=True).start()
ThreadingHTTPServer(("127.0.0.1", exporter_port), Exporter).serve_forever()
PY

# 3. Prometheus config: default global timing, one scrape job, one rule, one Alertmanager.
cat >"$DIR/rules.yml" <<EOR
groups:
  - name: bench
    rules:
      - alert: BenchErrors
        expr: bench_errors > 0
        for: 0s
EOR
cat >"$DIR/prometheus.yml" <<EOP
rule_files:
  - $DIR/rules.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$AM_PORT']
scrape_configs:
  - job_name: bench
    static_configs:
      - targets: ['127.0.0.1:$EXPORTER_PORT']
EOP

# 4. Alertmanager config: one webhook receiver, group per service, group_wait 0s.
cat >"$DIR/alertmanager.yml" <<EOA
route:
  receiver: hook
  group_by: ['service']
  group_wait: 0s
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:$RECEIVER_PORT/hook
        send_resolved: false
EOA

python3 "$DIR/helper.py" "$STATE" "$ALERTS" "$EXPORTER_PORT" "$RECEIVER_PORT" >"$DIR/helper.log" 2>&1 &
PIDS+=($!)
prometheus-alertmanager --config.file="$DIR/alertmanager.yml" --storage.path="$DIR/am-data" \
  --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= >"$DIR/alertmanager.log" 2>&1 &
PIDS+=($!)
prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/prom-data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$DIR/prometheus.log" 2>&1 &
PIDS+=($!)

wait_for "http://127.0.0.1:$EXPORTER_PORT/metrics" "bench_errors" 30 || { show_logs; exit 1; }
wait_for "http://127.0.0.1:$AM_PORT/-/ready" "" 60 || { show_logs; exit 1; }
wait_for "http://127.0.0.1:$PROM_PORT/-/ready" "" 60 || { show_logs; exit 1; }

# 5. Wait for the first scrape (the first one can come up to a full interval after start).
echo "waiting for Prometheus to scrape the exporter once..."
wait_for "http://127.0.0.1:$PROM_PORT/api/v1/targets" '"health":"up"' 180 || { show_logs; exit 1; }
echo "target is up"

LATENCIES=()
for ((i = 1; i <= SAMPLES; i++)); do
  svc="svc-$i"
  echo "$svc" >>"$STATE"   # from now on the exporter shows bench_errors{service="svc-i"} 1
  t0="$(now_ms)"
  arrived=""
  while [ $(( $(now_ms) - t0 )) -lt $((TIMEOUT_S * 1000)) ]; do
    arrived="$(awk -v s="$svc" '$2 == s { print $1; exit }' "$ALERTS")"
    [ -n "$arrived" ] && break
    sleep 0.1
  done
  if [ -z "$arrived" ]; then
    echo "sample $i: no alert for $svc within ${TIMEOUT_S}s" >&2
    show_logs
    exit 1
  fi
  lat="$(awk -v a="$arrived" -v t="$t0" 'BEGIN { printf "%.3f", (a - t) / 1000 }')"
  LATENCIES+=("$lat")
  echo "sample $i: $svc latency ${lat}s"
  # A random pause so the breaches fall at different points of the 1-minute cycles.
  if [ "$i" -lt "$SAMPLES" ]; then
    pause=$((RANDOM % 60))
    echo "  pausing ${pause}s"
    sleep "$pause"
  fi
done

# 6. Summary.
PROM_VERSION="$(prometheus --version 2>&1 | head -n 1)"
AM_VERSION="$(prometheus-alertmanager --version 2>&1 | head -n 1)"
read -r MIN MEDIAN MAX <<<"$(printf '%s\n' "${LATENCIES[@]}" | sort -g | awk '
  { v[NR] = $1 }
  END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.3f %.3f %.3f\n", v[1], m, v[NR] }')"

echo
echo "== alert latency, Prometheus + Alertmanager (default timing) =="
echo "machine:       $(nproc) cores, kernel $(uname -r)"
echo "prometheus:    $PROM_VERSION"
echo "alertmanager:  $AM_VERSION"
echo "settings:      scrape_interval and evaluation_interval unset (1m), rule for: 0s,"
echo "               group_by [service], group_wait 0s, group_interval/repeat_interval default"
echo "samples:       $SAMPLES"
echo "latency (s):   min $MIN  median $MEDIAN  max $MAX"
echo "all (s):       ${LATENCIES[*]}"
printf '{"bench":"alert-latency-peer","samples":%d,"latencies_s":[%s],"median_s":%s,"max_s":%s}\n' \
  "$SAMPLES" "$(IFS=,; echo "${LATENCIES[*]}")" "$MEDIAN" "$MAX"
