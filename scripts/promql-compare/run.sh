#!/usr/bin/env bash
# Side-by-side comparison of Skein's PromQL with the real Prometheus (see README.md here).
#
#   scripts/promql-compare/run.sh [SKEIN_BINARY] [--keep] [--out DIR] [--only REGEX]
#
# SKEIN_BINARY defaults to target/debug/skein. Steps: generate two hours of deterministic data
# ending a few minutes ago (gen_data.py); load it into Prometheus with `promtool tsdb
# create-blocks-from openmetrics` and start `prometheus` on it; start `skein collector` on a
# temporary data dir and free ports and send it the same samples by remote write
# (load_skein.py); check both hold the same number of samples; run every query of queries.txt
# against both (compare.py); then promtool and prometheus-api-client against both (clients.py).
#
# Prometheus and promtool: $SKEIN_PROMETHEUS / $SKEIN_PROMTOOL, else on PATH, else /usr/bin
# (scripts/install-prometheus.sh installs them). The Python packages of requirements.txt are
# installed with pip when missing.
#
# Exit status: 0 when everything agrees (or differs only as known-differences.txt lists),
# 1 on a mismatch, 3 when a prerequisite is missing or a server does not start.
# Reports: DIR/report.json and DIR/clients.json (DIR is a temporary directory, removed at the
# end unless --keep or --out is given).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SKEIN="$ROOT/target/debug/skein"
KEEP=0
OUT=""
ONLY=""
while (($#)); do
    case "$1" in
    --keep) KEEP=1 ;;
    --out)
        OUT="$2"
        shift
        ;;
    --only)
        ONLY="$2"
        shift
        ;;
    -h | --help)
        sed -n '2,22p' "$0"
        exit 0
        ;;
    *) SKEIN="$1" ;;
    esac
    shift
done

say() { echo "promql-compare: $*" >&2; }
die() {
    say "error: $*"
    exit 3
}

find_tool() { # name, env override
    local name="$1" override="${2:-}"
    if [[ -n "$override" ]]; then
        [[ -x "$override" ]] && { echo "$override"; return 0; }
        return 1
    fi
    command -v "$name" 2>/dev/null && return 0
    [[ -x "/usr/bin/$name" ]] && { echo "/usr/bin/$name"; return 0; }
    return 1
}
PROMETHEUS="$(find_tool prometheus "${SKEIN_PROMETHEUS:-}")" ||
    die "prometheus not found (\$SKEIN_PROMETHEUS, PATH, /usr/bin): install it with scripts/install-prometheus.sh"
PROMTOOL="$(find_tool promtool "${SKEIN_PROMTOOL:-}")" ||
    die "promtool not found (\$SKEIN_PROMTOOL, PATH, /usr/bin): install it with scripts/install-prometheus.sh"
[[ -x "$SKEIN" ]] || die "no skein binary at $SKEIN (cargo build -p skein, or pass its path)"
command -v python3 >/dev/null || die "python3 is not installed"
if ! python3 -c 'import cramjam, prometheus_api_client' 2>/dev/null; then
    say "installing the Python packages of $HERE/requirements.txt"
    python3 -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt" >&2 ||
        die "'python3 -m pip install -r $HERE/requirements.txt' failed (see above)"
    python3 -c 'import cramjam, prometheus_api_client' ||
        die "cramjam or prometheus_api_client still cannot be imported after pip install"
fi

if [[ -n "$OUT" ]]; then
    mkdir -p "$OUT"
    WORK="$(cd "$OUT" && pwd)"
    KEEP=1
else
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/promql-compare.XXXXXX")"
fi
PROM_PID=""
SKEIN_PID=""
cleanup() {
    local rc=$?
    [[ -n "$PROM_PID" ]] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
    [[ -n "$SKEIN_PID" ]] && kill "$SKEIN_PID" 2>/dev/null && wait "$SKEIN_PID" 2>/dev/null
    if ((KEEP)); then
        say "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# T0: a whole minute, three minutes ago.
NOW="$(date +%s)"
T0=$(((NOW / 60) * 60 - 180))
say "data ends at T0=$T0 ($(date -u -d "@$T0" +%FT%TZ)); work dir $WORK"
python3 "$HERE/gen_data.py" --t0 "$T0" --out "$WORK" >&2
EXPECTED_SAMPLES="$(python3 -c 'import json,sys; print(sum(len(s["samples"]) for s in json.load(open(sys.argv[1]))["series"]))' "$WORK/data.json")"

# ---- Prometheus -----------------------------------------------------------------------------
"$PROMTOOL" tsdb create-blocks-from openmetrics "$WORK/data.om" "$WORK/prometheus" >"$WORK/promtool-create-blocks.log" 2>&1 ||
    {
        cat "$WORK/promtool-create-blocks.log" >&2
        die "promtool tsdb create-blocks-from openmetrics failed"
    }
# No scrape jobs. evaluation_interval is the step of a subquery that names none (`x[15m:]`):
# Prometheus's default, 1m.
printf 'global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\n' >"$WORK/prometheus.yml"
PROM_PORT="$(free_port)"
"$PROMETHEUS" --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prometheus" \
    --storage.tsdb.retention.time=30d --web.listen-address="127.0.0.1:$PROM_PORT" \
    >"$WORK/prometheus.log" 2>&1 &
PROM_PID=$!
PROM_URL="http://127.0.0.1:$PROM_PORT"
for _ in $(seq 300); do
    if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$PROM_URL/-/ready" 2>/dev/null; then
        break
    fi
    kill -0 "$PROM_PID" 2>/dev/null || { tail -20 "$WORK/prometheus.log" >&2; die "prometheus exited"; }
    sleep 0.1
done
python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$PROM_URL/-/ready" 2>/dev/null ||
    { tail -20 "$WORK/prometheus.log" >&2; die "prometheus not ready after 30 s"; }
say "prometheus $("$PROMETHEUS" --version 2>&1 | head -1 | awk '{print $3}') ready at $PROM_URL"

# ---- Skein ----------------------------------------------------------------------------------
mkdir -p "$WORK/skein"
env -u SKEIN_CONFIG -u SKEIN_DATA_DIR -u SKEIN_INGEST_TOKEN -u SKEIN_QUERY_TOKEN -u SKEIN_API -u SKEIN_LOG NO_COLOR=1 \
    "$SKEIN" collector --data-dir "$WORK/skein" --otlp-http 127.0.0.1:0 --otlp-grpc 127.0.0.1:0 --api 127.0.0.1:0 \
    >"$WORK/skein.log" 2>&1 </dev/null &
SKEIN_PID=$!
READY=""
for _ in $(seq 600); do
    READY="$(grep -m1 '^skein collector ready ' "$WORK/skein.log" || true)"
    [[ -n "$READY" ]] && break
    kill -0 "$SKEIN_PID" 2>/dev/null || { tail -20 "$WORK/skein.log" >&2; die "skein collector exited"; }
    sleep 0.1
done
[[ -n "$READY" ]] || { tail -20 "$WORK/skein.log" >&2; die "skein collector printed no ready line in 60 s"; }
OTLP_HTTP="$(sed -E 's/.*otlp_http=([^ ]+).*/\1/' <<<"$READY")"
API="$(sed -E 's/.*api=([^ ]+).*/\1/' <<<"$READY")"
SKEIN_URL="http://$API"
say "skein collector ready: remote write http://$OTLP_HTTP/api/v1/write, query API $SKEIN_URL"
python3 "$HERE/load_skein.py" --data "$WORK/data.json" --url "http://$OTLP_HTTP/api/v1/write" >&2 ||
    { tail -20 "$WORK/skein.log" >&2; die "remote write to skein failed"; }

# ---- both hold the same samples? --------------------------------------------------------------
python3 - "$PROM_URL" "$SKEIN_URL" "$T0" "$EXPECTED_SAMPLES" <<'EOF' >&2 || true
import json, sys, time, urllib.parse, urllib.request
prom, skein, t0, want = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
# Every stored sample, by one range-vector query (count_over_time would need the series'
# names kept apart).
q = '{job=~".+"}[2h1m]'
def count(base):
    try:
        url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": t0})
        d = json.load(urllib.request.urlopen(url, timeout=60))
        return sum(len(s["values"]) for s in d["data"]["result"])
    except Exception as e:  # the comparison shows the details
        return f"{type(e).__name__}: {e}"
deadline = time.monotonic() + 20
while True:
    p, s = count(prom), count(skein)
    if (p == want and s == want) or time.monotonic() > deadline:
        break
    time.sleep(0.5)
print(f"promql-compare: samples stored ({q} at T0): generated {want}, prometheus {p}, skein {s}")
EOF

# ---- compare --------------------------------------------------------------------------------
RC=0
ONLY_ARGS=()
[[ -n "$ONLY" ]] && ONLY_ARGS=(--only "$ONLY")
python3 "$HERE/compare.py" --expected "$PROM_URL" --actual "$SKEIN_URL" --t0 "$T0" \
    --report "$WORK/report.json" "${ONLY_ARGS[@]}" >"$WORK/compare.out" 2>&1 || RC=1
cat "$WORK/compare.out"
CRC=0
python3 "$HERE/clients.py" --expected "$PROM_URL" --actual "$SKEIN_URL" --t0 "$T0" --promtool "$PROMTOOL" \
    --report "$WORK/clients.json" >"$WORK/clients.out" 2>&1 || CRC=1
echo
cat "$WORK/clients.out"
echo
grep '^SUMMARY' "$WORK/compare.out" || echo "SUMMARY: compare.py printed no summary (exit $RC)"
grep '^CLIENTS' "$WORK/clients.out" || echo "CLIENTS: clients.py printed no summary (exit $CRC)"
if ((RC || CRC)); then
    echo "RESULT: differences found (queries: exit $RC, clients: exit $CRC)"
    exit 1
fi
echo "RESULT: Skein answers as Prometheus does"
