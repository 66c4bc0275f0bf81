#!/usr/bin/env bash
# Makes sure Debian's `prometheus` and `prometheus-node-exporter` are installed, for the
# Prometheus remote-write test (tests/remote_write.rs starts a real Prometheus that scrapes
# itself and remote-writes to a collector). Idempotent: when /usr/bin/prometheus and
# /usr/bin/prometheus-node-exporter are there, nothing is installed; otherwise both packages are
# installed with apt-get (as root, or through sudo).
#
#   scripts/install-prometheus.sh        # prints the path of the prometheus binary on stdout
#
# Everything else goes to stderr, so `SKEIN_PROMETHEUS="$(scripts/install-prometheus.sh)"`
# works (the test reads $SKEIN_PROMETHEUS, else /usr/bin/prometheus).
set -euo pipefail

PROMETHEUS=/usr/bin/prometheus
NODE_EXPORTER=/usr/bin/prometheus-node-exporter

say() { echo "install-prometheus: $*" >&2; }

installed() { [[ -x "$PROMETHEUS" && -x "$NODE_EXPORTER" ]]; }

if ! installed; then
    say "installing Debian's prometheus and prometheus-node-exporter"
    if ! command -v apt-get >/dev/null 2>&1; then
        say "error: apt-get is not available; install Prometheus 2.x yourself and point" \
            "SKEIN_PROMETHEUS at its binary"
        exit 1
    fi
    as_root=()
    if [[ "$(id -u)" -ne 0 ]]; then
        if ! command -v sudo >/dev/null 2>&1; then
            say "error: not root and sudo is not installed; run this script as root"
            exit 1
        fi
        as_root=(sudo)
    fi
    if ! "${as_root[@]}" apt-get update >&2; then
        say "error: 'apt-get update' failed (see above)"
        exit 1
    fi
    if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y prometheus prometheus-node-exporter >&2; then
        say "error: 'apt-get install -y prometheus prometheus-node-exporter' failed (see above)"
        exit 1
    fi
    if ! installed; then
        say "error: the packages were installed but $PROMETHEUS or $NODE_EXPORTER is missing"
        exit 1
    fi
fi

if ! version="$("$PROMETHEUS" --version 2>&1)"; then
    say "error: $PROMETHEUS does not run: $version"
    exit 1
fi
say "$(head -n 1 <<<"$version")"
echo "$PROMETHEUS"
