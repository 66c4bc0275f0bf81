#!/usr/bin/env bash
# Bytes per sample on disk (issue 4): real host metrics from the skein agent into the
# collector's metrics store, beside Debian's prometheus scraping prometheus-node-exporter,
# both every 10 s, over the same window (default 65 minutes: an hour of samples plus the
# block cut).
#
#   scripts/bench-metrics-size.sh              # 65 minutes
#   SECS=900 BLOCK=5m scripts/bench-metrics-size.sh   # a quick look
#
# Both stores cut blocks every BLOCK (skein: metrics.block_duration; prometheus: its hidden
# --storage.tsdb.min/max-block-duration), and bytes per sample is measured on the blocks only:
# skein = block file bytes / samples in blocks (and chunk bytes alone); prometheus = the
# blocks' chunks/ + index bytes / numSamples from their meta.json (and chunks alone).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS="${SECS:-3900}"
BLOCK="${BLOCK:-30m}"
OUT="${OUT:-target/bench-results/metrics-size-$(date -u +%Y%m%dT%H%M%SZ)}"
SKEIN="${SKEIN:-${CARGO_TARGET_DIR:-target}/release/skein}"

for pkg in prometheus prometheus-node-exporter; do
  command -v "$pkg" >/dev/null || apt-get install -y "$pkg" >/dev/null
done
[ -x "$SKEIN" ] || cargo build --release -p skein
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

cat > "$WORK/collector.toml" <<EOF
[metrics]
block_duration = "$BLOCK"
EOF
"$SKEIN" collector --config "$WORK/collector.toml" --data-dir "$WORK/collector" \
  --otlp-http 127.0.0.1:24318 --otlp-grpc 127.0.0.1:24317 --api 127.0.0.1:27700 \
  >"$OUT/collector.log" 2>&1 &
PIDS+=($!)
sleep 2
cat > "$WORK/agent.toml" <<EOF
[agent]
data_dir = "$WORK/agent"
[collector]
endpoint = "http://127.0.0.1:24318"
[receiver]
enabled = false
[telemetry]
listen = "127.0.0.1:27701"
[host_metrics]
enabled = true
interval = "10s"
EOF
"$SKEIN" agent --config "$WORK/agent.toml" >"$OUT/agent.log" 2>&1 &
PIDS+=($!)
prometheus-node-exporter --web.listen-address=127.0.0.1:29100 >"$OUT/node_exporter.log" 2>&1 &
PIDS+=($!)
cat > "$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 10s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:29100']
EOF
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom" \
  --web.listen-address=127.0.0.1:29090 \
  --storage.tsdb.min-block-duration="$BLOCK" --storage.tsdb.max-block-duration="$BLOCK" \
  >"$OUT/prometheus.log" 2>&1 &
PIDS+=($!)

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "nproc: $(nproc)"
  lscpu | grep 'Model name' || true
  echo "prometheus: $(prometheus --version 2>&1 | head -1)"
  echo "node_exporter: $(prometheus-node-exporter --version 2>&1 | head -1)"
  echo "window: ${SECS}s, blocks every $BLOCK, samples every 10 s"
} | tee "$OUT/summary.txt"
sleep "$SECS"

tsdb() { curl -s http://127.0.0.1:27700/metrics | awk -v k="size=\"$1\"" 'index($0, k) && /^skein_tsdb/ {print $NF}'; }
s_bytes=$(tsdb block_bytes); s_chunk=$(tsdb block_chunk_bytes); s_samples=$(tsdb block_samples)
s_series=$(tsdb series); s_blocks=$(tsdb blocks)
p_samples=0; p_chunk=0; p_index=0; p_blocks=0
for meta in "$WORK"/prom/*/meta.json; do
  [ -f "$meta" ] || continue
  d="$(dirname "$meta")"
  n=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['stats']['numSamples'])" "$meta")
  p_samples=$((p_samples + n))
  p_chunk=$((p_chunk + $(du -sb "$d/chunks" | cut -f1)))
  p_index=$((p_index + $(stat -c %s "$d/index")))
  p_blocks=$((p_blocks + 1))
done
p_series=$(curl -s http://127.0.0.1:29090/metrics | awk '/^prometheus_tsdb_head_series / {print $2}')
python3 - "$s_bytes" "$s_chunk" "$s_samples" "$s_series" "$s_blocks" \
  "$p_chunk" "$p_index" "$p_samples" "$p_series" "$p_blocks" <<'EOF' | tee -a "$OUT/summary.txt"
import sys
sb, sc, ss, sser, sbl, pc, pi, ps, pser, pbl = (float(x or 0) for x in sys.argv[1:])
def r(a, b): return a / b if b else float("nan")
print(f"skein:      {sbl:.0f} blocks, {ss:.0f} samples, {sser:.0f} series; "
      f"{r(sb, ss):.3f} bytes/sample (whole block files), {r(sc, ss):.3f} (chunks only)")
print(f"prometheus: {pbl:.0f} blocks, {ps:.0f} samples, {pser:.0f} head series; "
      f"{r(pc + pi, ps):.3f} bytes/sample (chunks + index), {r(pc, ps):.3f} (chunks only)")
print(f"ratio skein/prometheus (whole): {r(r(sb, ss), r(pc + pi, ps)):.2f}")
EOF
