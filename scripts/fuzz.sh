#!/usr/bin/env bash
# Builds Skein's fuzz targets (fuzz/, cargo-fuzz on the nightly toolchain) and runs each for a
# set time, then writes executions, speed, corpus size and crashes per target to a summary.
# What each target feeds and checks: RELIABILITY.md.
#
#   scripts/fuzz.sh                          # every target, 600 s each, two at a time
#   FUZZ_SECONDS=60 scripts/fuzz.sh wal_recovery tsdb_chunk   # some targets, one minute
#   scripts/fuzz.sh --build-only             # build only; so does FUZZ_SECONDS=0
#   scripts/fuzz.sh --replay                 # build, then run every target once over its seeds
#                                            # and its kept crashes (seconds; what CI runs)
#   scripts/fuzz.sh --list                   # the target names
#
# Settings (environment):
#   FUZZ_SECONDS  seconds per target (default 600; 0 = build only)
#   FUZZ_JOBS     targets run at once (default 2; each is one process)
#   FUZZ_RSS_MB   memory limit per process, MiB (-rss_limit_mb, default 2048): past it is a crash
#   FUZZ_MAX_LEN  largest input, bytes (-max_len, default 1048576); targets also bound it
#   FUZZ_TIMEOUT  seconds one input may take before it counts as a hang (-timeout, default 10)
#   FUZZ_NICE     nice level of the runs (default 19: the machine stays usable)
#   OUT           results folder (default fuzz/runs/<UTC time>)
#
# Each target keeps a corpus in fuzz/corpus/<target>/ (git-ignored; grows run after run),
# seeded from fuzz/seeds/<target>/ when present. A crash stops that target's run and leaves
# the input in fuzz/artifacts/<target>/ (named in the summary); reproduce it with
#   fuzz/target/x86_64-unknown-linux-gnu/release/<target> <file>    (or under $CARGO_TARGET_DIR)
# and keep the minimized input (`cargo +nightly fuzz tmin <target> <file>`) in
# fuzz/crashes/<target>/ beside the unit test that reproduces it.
#
# Output: $OUT/<target>.log (libFuzzer's output), $OUT/summary.tsv and a table on stdout.
# cargo-fuzz is installed (`cargo install cargo-fuzz --locked`) when `cargo fuzz` is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-600}"
FUZZ_JOBS="${FUZZ_JOBS:-2}"
FUZZ_RSS_MB="${FUZZ_RSS_MB:-2048}"
FUZZ_MAX_LEN="${FUZZ_MAX_LEN:-1048576}"
FUZZ_TIMEOUT="${FUZZ_TIMEOUT:-10}"
FUZZ_NICE="${FUZZ_NICE:-19}"

all_targets() {
    sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^skein-fuzz$'
}

build_only=0
replay=0
targets=()
for arg in "$@"; do
    case "$arg" in
        --build-only) build_only=1 ;;
        --replay) replay=1 ;;
        --list) all_targets; exit 0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
        *) targets+=("$arg") ;;
    esac
done
[ "$FUZZ_SECONDS" = 0 ] && build_only=1
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(all_targets)
fi
for t in "${targets[@]}"; do
    [ -f "fuzz/fuzz_targets/$t.rs" ] || { echo "fuzz.sh: no target $t (see --list)" >&2; exit 2; }
done

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz.sh: the nightly toolchain is needed: rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# One build for all targets (debug assertions and AddressSanitizer on, as cargo fuzz does).
build_args=()
[ ${#targets[@]} -eq 1 ] && build_args=("${targets[0]}")
nice -n "$FUZZ_NICE" cargo +nightly fuzz build "${build_args[@]}"
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
bin_dir="${CARGO_TARGET_DIR:-fuzz/target}/$triple/release"

# Scratch folders of target processes that have ended (file targets work under /dev/shm).
clean_scratch() {
    local d
    for d in /dev/shm/skein-fuzz-* "${TMPDIR:-/tmp}"/skein-fuzz-*; do
        [ -d "$d" ] || continue
        kill -0 "${d##*-}" 2>/dev/null || rm -rf "$d"
    done
}

if [ "$replay" = 1 ]; then
    # Every seed and every kept crash input, once each: a crash fixed stays fixed.
    for t in "${targets[@]}"; do
        files=()
        for f in "fuzz/seeds/$t"/* "fuzz/crashes/$t"/*; do
            [ -f "$f" ] && files+=("$f")
        done
        [ ${#files[@]} -gt 0 ] || continue
        if ! "$bin_dir/$t" -rss_limit_mb="$FUZZ_RSS_MB" -timeout="$FUZZ_TIMEOUT" "${files[@]}" \
            >"${TMPDIR:-/tmp}/skein-fuzz-replay-$t.log" 2>&1; then
            cat "${TMPDIR:-/tmp}/skein-fuzz-replay-$t.log" >&2
            echo "fuzz.sh: $t fails on a kept input" >&2
            exit 1
        fi
        echo "fuzz.sh: $t: ${#files[@]} kept inputs pass"
    done
    clean_scratch
    exit 0
fi
if [ "$build_only" = 1 ]; then
    echo "fuzz.sh: built ${#targets[@]} targets"
    exit 0
fi
OUT="${OUT:-fuzz/runs/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"

run_one() {
    local t="$1" corpus="fuzz/corpus/$1" artifacts="fuzz/artifacts/$1/" log="$OUT/$1.log"
    mkdir -p "$corpus" "$artifacts"
    [ -d "fuzz/seeds/$t" ] && cp -n "fuzz/seeds/$t"/* "$corpus"/ 2>/dev/null || true
    local before
    before="$(find "$artifacts" -type f | wc -l)"
    local start=$SECONDS rc=0
    nice -n "$FUZZ_NICE" "$bin_dir/$t" "$corpus" \
        -max_total_time="$FUZZ_SECONDS" -rss_limit_mb="$FUZZ_RSS_MB" -max_len="$FUZZ_MAX_LEN" \
        -timeout="$FUZZ_TIMEOUT" -artifact_prefix="$artifacts" -print_final_stats=1 \
        >"$log" 2>&1 || rc=$?
    local secs=$((SECONDS - start))
    # Executions: the final stats, else the last status line (a run stopped by a crash).
    local execs
    execs="$(sed -n 's/^stat::number_executed_total: *//p' "$log" | tail -1)"
    [ -n "$execs" ] || execs="$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')"
    execs="${execs:-0}"
    local rss
    rss="$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)"
    # Corpus: the entries libFuzzer keeps (its last status line), else the files in the folder.
    local corpus_n
    corpus_n="$(grep -oE 'corp: [0-9]+' "$log" | tail -1 | tr -dc '0-9')"
    [ -n "$corpus_n" ] || corpus_n="$(find "$corpus" -type f | wc -l)"
    local after crashes artifact=""
    after="$(find "$artifacts" -type f | wc -l)"
    crashes=$((after - before))
    if [ "$crashes" -gt 0 ]; then
        artifact="$(ls -t "$artifacts" | head -1)"
        artifact="$artifacts$artifact"
    elif [ "$rc" -ne 0 ]; then
        # Stopped without leaving an input: the run itself failed (see the log).
        crashes="?"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$secs" "$execs" \
        "$((execs / (secs > 0 ? secs : 1)))" "$corpus_n" "${rss:-?}" "$crashes" "$artifact" \
        >"$OUT/$t.tsv"
    echo "fuzz.sh: $t: ${secs}s, $execs executions, $crashes crashes" >&2
}

echo "fuzz.sh: ${#targets[@]} targets, ${FUZZ_SECONDS}s each, $FUZZ_JOBS at a time; logs in $OUT" >&2
running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$FUZZ_JOBS" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    run_one "$t" &
    running=$((running + 1))
done
wait
clean_scratch

{
    printf 'target\tseconds\texecutions\texec_per_s\tcorpus\tpeak_rss_mb\tcrashes\tartifact\n'
    for t in "${targets[@]}"; do cat "$OUT/$t.tsv"; done
} >"$OUT/summary.tsv"
{
    echo "machine: $(nproc) cores, $(uname -sr), $(rustc +nightly --version)"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    column -t -s $'\t' "$OUT/summary.tsv"
} | tee "$OUT/summary.txt"
if awk -F'\t' 'NR > 1 && $7 != "0" { bad = 1 } END { exit !bad }' "$OUT/summary.tsv"; then
    echo "fuzz.sh: crashes found; inputs are named in $OUT/summary.tsv" >&2
    exit 1
fi
