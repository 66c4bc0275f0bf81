# Shared by the bench-*.sh scripts: the machine summary and the runner.
# Source it after OUT and BIN are set. Not meant to be run on its own.

# Prints what the run was made on (date, commit, CPU, memory, disk, rustc) into
# $OUT/summary.txt. Extra lines (peer versions) come on standard input.
machine_summary() {
  {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo " + uncommitted changes ($(git diff | sha1sum | cut -c1-8))")"
    echo "nproc: $(nproc)"
    lscpu | grep 'Model name' || true
    echo "memory: $(free -g | awk '/Mem:/ {print $2 " GiB"}')"
    echo "disk: $(df -h /tmp | awk 'NR==2 {print $1 " " $2 " (" $5 " used)"}')"
    echo "rustc: $(rustc --version)"
    cat
  } | tee "$OUT/summary.txt"
}

# run NAME ARGS...: runs skein-bench ARGS, keeps its output in $OUT/NAME.txt and its
# last line (the JSON result) in $OUT/results.jsonl.
run() {
  local name="$1"; shift
  echo "== $name: $* (load: $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$OUT/summary.txt"
  "$BIN" "$@" 2>&1 | tee "$OUT/$name.txt"
  tail -n 1 "$OUT/$name.txt" >> "$OUT/results.jsonl"
}
