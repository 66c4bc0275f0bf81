#!/usr/bin/env bash
# Cluster mode beside single-node mode in one run: CPU per ingested record, freshness p99,
# lookup p99 through a node that does not own the record, time to recover from a collector's
# kill -9. Figures: BENCHMARKS.md ("Cluster mode"). Knobs: RECORDS, BATCH, CLIENTS, PROBES,
# LOOKUPS (environment).
set -euo pipefail
cd "$(dirname "$0")/.."
SKEIN_NATS_SERVER="${SKEIN_NATS_SERVER:-$(scripts/install-nats.sh)}"
export SKEIN_NATS_SERVER
cargo build --release -p skein
python3 scripts/bench-cluster/run.py
