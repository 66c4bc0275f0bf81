#!/usr/bin/env python3
"""The soak's checker: is every acknowledged request's story whole in Skein, and is every
record there exactly once?

What it compares (standard library only):

* Log lines. The truth is the services' log files (rotated ones included). A line is known by
  (service, time in ms, span ID, message); the store's logs are read back in full through
  GET /api/v1/logs in time windows that never cut a millisecond, and the two are compared as
  multisets: a line the files have more often than the store is missing, one the store has
  more often than the files is a duplicate.
* Stories. Every request the load generator sent is looked up by its request ID
  (GET /api/v1/traces/{id}). For an acknowledged one (2xx) the story is whole when every
  service it crosses has spans and logs (as the demo's own summary asks: all five for a placed
  order, gateway and order otherwise), every line the files hold for that request is in it,
  every span's parent is in it, and every line's span is in it. In the demo every span either
  writes a line or is the parent of one that does (a client span's child is the server span
  it called), so a span that is lost leaves a hole one of those two checks sees.
* Span duplicates. The trace lookup answers each span once; GET /api/v1/traces (the search)
  counts a trace's stored spans without removing duplicates. For every trace of every story
  the two counts must agree.

Records that are still on their way are waited for: checks that fail are tried again until
--settle seconds have passed. Exit status 0 when everything holds, 1 when a check fails, 2 on
bad input.
"""

import argparse
import calendar
import collections
import glob
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ALL_FIVE = ["gateway", "order", "coupon", "payment", "delivery"]
WINDOW_LIMIT = 1000  # the API's largest page (query.max_limit)
PARALLEL = 6  # lookups in flight
SAMPLES = 20  # examples kept per finding


def get(api, path, params=None, tries=5):
    url = api + path + ("?" + urllib.parse.urlencode(params) if params else "")
    last = None
    for i in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            last = "%s: HTTP %d %s" % (url, e.code, e.read()[:200])
        except (OSError, ValueError) as e:
            last = "%s: %s" % (url, e)
        time.sleep(1 + i)
    raise RuntimeError(last)


def line_key(service, ms, span_id, message):
    return (service, ms, span_id or "", message)


def read_files(logs_dir):
    """Every line of every service log file: a Counter of keys, the keys per request ID."""
    lines = collections.Counter()
    by_rid = collections.defaultdict(list)
    bad = []
    t_min, t_max = None, None
    files = sorted(glob.glob(os.path.join(logs_dir, "*.log*")))
    for path in files:
        with open(path, "rb") as f:
            for n, raw in enumerate(f, 1):
                try:
                    v = json.loads(raw)
                    ts = v["timestamp"]
                    ms = parse_rfc3339_ms(ts)
                except (ValueError, KeyError) as e:
                    if len(bad) < SAMPLES:
                        bad.append("%s:%d: %s" % (path, n, e))
                    continue
                k = line_key(v.get("service", ""), ms, v.get("span_id"), v.get("message", ""))
                lines[k] += 1
                rid = v.get("request_id")
                if rid:
                    by_rid[rid].append(k)
                t_min = ms if t_min is None else min(t_min, ms)
                t_max = ms if t_max is None else max(t_max, ms)
    return files, lines, by_rid, bad, t_min, t_max


def parse_rfc3339_ms(ts):
    """'2026-12-03T13:45:11.123Z' -> Unix milliseconds (the demo always writes this form)."""
    if not ts.endswith("Z"):
        raise ValueError("timestamp %r is not UTC" % ts)
    whole, _, frac = ts[:-1].partition(".")
    t = time.strptime(whole, "%Y-%m-%dT%H:%M:%S")
    ms = int((frac + "000")[:3]) if frac else 0
    return calendar.timegm(t) * 1000 + ms


def store_logs(api, t_min_ms, t_max_ms):
    """Every log in the store between the two times, as a Counter of keys. Windows start and
    end half a millisecond off the whole millisecond, so no line sits on a boundary."""
    got = collections.Counter()
    queries = 0
    stack = [(t_min_ms * 1_000_000 - 500_000, (t_max_ms + 1) * 1_000_000 - 500_000)]
    while stack:
        a, b = stack.pop()
        r = get(api, "/api/v1/logs", {"start": a, "end": b - 1, "limit": WINDOW_LIMIT})
        queries += 1
        logs = (r or {}).get("logs", [])
        if len(logs) >= WINDOW_LIMIT and b - a > 1_000_000:
            mid = a + ((b - a) // 2_000_000) * 1_000_000
            if mid <= a:
                mid = a + 1_000_000
            stack.append((a, mid))
            stack.append((mid, b))
            continue
        if len(logs) >= WINDOW_LIMIT:
            raise RuntimeError("more than %d logs in one millisecond at %d" % (WINDOW_LIMIT, a))
        for l in logs:
            got[line_key(l["service"], l["time_unix_nano"] // 1_000_000, l.get("span_id"), l.get("body", ""))] += 1
    return got, queries


def store_span_counts(api, t_min_ms, t_max_ms):
    """trace ID -> spans stored (duplicates included), from the trace search in windows."""
    counts = {}
    queries = 0
    step = 10_000_000_000
    stack = []
    a = (t_min_ms - 60_000) * 1_000_000
    end = (t_max_ms + 60_000) * 1_000_000
    while a < end:
        stack.append((a, min(a + step, end)))
        a += step
    while stack:
        a, b = stack.pop()
        r = get(api, "/api/v1/traces", {"start": a, "end": b, "limit": WINDOW_LIMIT})
        queries += 1
        traces = (r or {}).get("traces", [])
        if len(traces) >= WINDOW_LIMIT and b - a > 1_000_000:
            mid = (a + b) // 2
            stack.append((a, mid))
            stack.append((mid, b))
            continue
        for t in traces:
            counts[t["trace_id"]] = t["span_count"]
    return counts, queries


def expected_services(req):
    if req["kind"] in ("place", "place_coupon") and req["status"] == 201:
        return ALL_FIVE
    return ALL_FIVE[:2]


def story_gaps(req, story, file_keys):
    """What an acknowledged request's story lacks; empty when whole."""
    if story is None:
        return ["not found"]
    gaps = []
    spans = story.get("spans", [])
    logs = story.get("logs", [])
    for svc in expected_services(req):
        if not any(s["service"] == svc for s in spans):
            gaps.append("%s spans" % svc)
        if not any(l["service"] == svc for l in logs):
            gaps.append("%s logs" % svc)
    ids = {s["span_id"] for s in spans}
    for s in spans:
        if s.get("parent_span_id") and s["parent_span_id"] not in ids:
            gaps.append("parent %s of %s %r" % (s["parent_span_id"], s["service"], s["name"]))
    have = collections.Counter(
        line_key(l["service"], l["time_unix_nano"] // 1_000_000, l.get("span_id"), l.get("body", ""))
        for l in logs
    )
    for k, n in collections.Counter(file_keys).items():
        if have[k] < n:
            gaps.append("line %s %r at %d" % (k[0], k[3], k[1]))
        if k[2] and k[2] not in ids:
            gaps.append("span %s of line %s %r" % (k[2], k[0], k[3]))
    if story.get("truncated"):
        gaps.append("answer truncated")
    return gaps


def classify(t_ms, events):
    """Which fault a duplicate's time falls just before: the kinds whose at-least-once
    window (the 10 s before the fault) holds it."""
    out = []
    for e in events:
        if e["what"] in ("agent_kill", "collector_kill", "agent_stop") and e["t_ms"] - 10_000 <= t_ms <= e["t_ms"] + 2_000:
            out.append(e["what"])
    return out or ["none"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--api", required=True)
    ap.add_argument("--logs", required=True, help="the services' log directory")
    ap.add_argument("--requests", required=True, help="load.py's output")
    ap.add_argument("--events", required=True, help="soak.sh's events (JSON lines)")
    ap.add_argument("--stats", required=True, help="soak.sh's figures (JSON)")
    ap.add_argument("--out", required=True, help="the report (JSON)")
    ap.add_argument("--settle", type=float, default=180.0)
    a = ap.parse_args()
    started = time.time()

    try:
        reqs = [json.loads(l) for l in open(a.requests)]
        events = [json.loads(l) for l in open(a.events)]
        stats = json.load(open(a.stats))
    except (OSError, ValueError) as e:
        print("check.py: %s" % e, file=sys.stderr)
        sys.exit(2)

    files, file_lines, by_rid, bad, t_min, t_max = read_files(a.logs)
    if t_min is None:
        print("check.py: no log lines in %s" % a.logs, file=sys.stderr)
        sys.exit(2)

    # 1. Every log line exactly once, tried again while lines are missing.
    deadline = started + a.settle
    while True:
        got, log_queries = store_logs(a.api, t_min, t_max)
        missing = {k: n - got[k] for k, n in file_lines.items() if got[k] < n}
        if not missing or time.time() > deadline:
            break
        time.sleep(5)
    dups = {k: n - file_lines[k] for k, n in got.items() if n > file_lines[k] and k in file_lines}
    unknown = {k: n for k, n in got.items() if k not in file_lines}

    # 2. Every request's story, by its request ID.
    rid_of = {}
    for r in reqs:
        rid_of[r["rid"]] = r
    stories = {}
    gaps = {}
    lock = threading.Lock()

    def look(r):
        s = get(a.api, "/api/v1/traces/" + urllib.parse.quote(r["rid"], safe=""))
        g = story_gaps(r, s, by_rid.get(r["rid"], [])) if 200 <= r["status"] < 300 else []
        with lock:
            stories[r["rid"]] = s
            gaps[r["rid"]] = g

    todo = list(reqs)
    with ThreadPoolExecutor(PARALLEL) as pool:
        while True:
            list(pool.map(look, todo))
            todo = [r for r in todo if gaps[r["rid"]]]
            if not todo or time.time() > deadline:
                break
            time.sleep(5)

    # 3. Span duplicates: stored spans per trace against the distinct ones a lookup shows.
    distinct = {}
    ended = {}  # trace ID -> end of its latest span, in ms (about when it was exported)
    for s in stories.values():
        if not s:
            continue
        per = collections.Counter(sp["trace_id"] for sp in s.get("spans", []))
        for tid, n in per.items():
            distinct[tid] = max(distinct.get(tid, 0), n)
        for sp in s.get("spans", []):
            ended[sp["trace_id"]] = max(ended.get(sp["trace_id"], 0), sp["end_unix_nano"] // 1_000_000)
    raw, trace_queries = store_span_counts(a.api, t_min, t_max)
    span_dups = {tid: raw[tid] - n for tid, n in distinct.items() if raw.get(tid, n) > n}
    span_total = sum(distinct.values())

    acked = [r for r in reqs if 200 <= r["status"] < 300]
    whole = [r for r in acked if not gaps[r["rid"]]]
    not_whole = [r for r in acked if gaps[r["rid"]]]
    dup_classes = collections.Counter()
    dup_samples = []
    for k, n in dups.items():
        cls = "+".join(sorted(set(classify(k[1], events))))
        dup_classes[cls] += n
        if len(dup_samples) < SAMPLES:
            dup_samples.append({"service": k[0], "time_ms": k[1], "span_id": k[2], "message": k[3], "extra_copies": n, "near": cls})
    # Every duplicate fails the run: the agent names its batches (skein-batch-id) and the
    # collector stores a batch once however often it comes, also after an agent kill -9.
    # The classes only say which fault was near, to help find the cause.
    unexplained_dups = sum(dup_classes.values())
    span_dup_classes = collections.Counter()
    span_dup_samples = []
    for tid, n in span_dups.items():
        cls = "+".join(sorted(set(classify(ended.get(tid, 0), events))))
        span_dup_classes[cls] += n
        if len(span_dup_samples) < SAMPLES:
            span_dup_samples.append([tid, n, cls])
    unexplained_span_dups = sum(span_dup_classes.values())
    status = collections.Counter(str(r["status"]) for r in reqs)

    report = {
        "requests": {
            "sent": len(reqs),
            "acknowledged": len(acked),
            "by_status": dict(sorted(status.items())),
        },
        "stories": {
            "whole": len(whole),
            "not_whole": len(not_whole),
            "samples": [
                {"rid": r["rid"], "kind": r["kind"], "status": r["status"], "t0_ms": r["t0_ms"], "missing": gaps[r["rid"]][:8]}
                for r in not_whole[:SAMPLES]
            ],
        },
        "log_lines": {
            "files": len(files),
            "in_files": sum(file_lines.values()),
            "in_store": sum(got.values()),
            "missing": sum(missing.values()),
            "duplicates": sum(dups.values()),
            "duplicates_by_fault": dict(dup_classes),
            "not_in_files": sum(unknown.values()),
            "unreadable_lines": bad,
            "missing_samples": [
                {"service": k[0], "time_ms": k[1], "span_id": k[2], "message": k[3], "copies_missing": n}
                for k, n in list(missing.items())[:SAMPLES]
            ],
            "duplicate_samples": dup_samples,
            "not_in_files_samples": [list(k) for k in list(unknown)[:SAMPLES]],
        },
        "spans": {
            "in_stories": span_total,
            "traces": len(distinct),
            "duplicates": sum(span_dups.values()),
            "duplicates_by_fault": dict(span_dup_classes),
            "duplicate_traces": span_dup_samples,
            "traces_not_in_search": sum(1 for t in distinct if t not in raw),
        },
        "queries": {"log_windows": log_queries, "trace_windows": trace_queries, "lookups": len(reqs)},
        "check_seconds": round(time.time() - started, 1),
        "soak": stats,
    }
    failed = []
    if not acked:
        failed.append("no request was acknowledged")
    if not_whole:
        failed.append("%d acknowledged stories not whole" % len(not_whole))
    if missing:
        failed.append("%d log lines missing" % sum(missing.values()))
    if unexplained_dups:
        failed.append("%d duplicated log lines" % unexplained_dups)
    if unexplained_span_dups:
        failed.append("%d duplicated spans" % unexplained_span_dups)
    if unknown:
        failed.append("%d stored log lines that no file holds" % sum(unknown.values()))
    if bad:
        failed.append("%d unreadable lines in the files" % len(bad))
    report["failed"] = failed
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    print(render(report))
    sys.exit(1 if failed else 0)


def render(r):
    q, s, l, sp, k = r["requests"], r["stories"], r["log_lines"], r["spans"], r["soak"]
    out = [
        "",
        "skein soak: %s min at %s requests/s (%s)" % (k.get("minutes"), k.get("rate"), k.get("work")),
        "requests           %d sent, %d acknowledged (2xx); by status %s" % (q["sent"], q["acknowledged"], q["by_status"]),
        "stories            %d of %d acknowledged whole" % (s["whole"], q["acknowledged"]),
        "log lines          %d in files (%d files), %d in the store: %d missing, %d duplicates %s, %d not in any file"
        % (l["in_files"], l["files"], l["in_store"], l["missing"], l["duplicates"], l["duplicates_by_fault"] or "", l["not_in_files"]),
        "spans              %d in %d traces of the stories: %d duplicates %s"
        % (sp["in_stories"], sp["traces"], sp["duplicates"], sp["duplicates_by_fault"] or ""),
        "faults             %s collector kill -9, %s agent restarts (%s clean, %s kill -9), %s file rotations, %s disk-full episodes"
        % (k.get("collector_kills"), k.get("agent_restarts"), k.get("agent_clean_restarts"), k.get("agent_kills"), k.get("rotations"), k.get("disk_full_episodes")),
        "collector refused  %s (agent's view, by status); collector's own count %s" % (k.get("agent_failed_requests"), k.get("collector_ingest_errors")),
        "peak collector RSS %s MiB (largest VmHWM over its %s runs)" % (k.get("peak_collector_rss_mib"), k.get("collector_runs")),
        "check took         %s s" % r["check_seconds"],
    ]
    for x in s["samples"]:
        out.append("  not whole: %s (%s, %s, sent at %s): missing %s" % (x["rid"], x["kind"], x["status"], x["t0_ms"], "; ".join(x["missing"])))
    for x in l["missing_samples"]:
        out.append("  missing line: %s" % json.dumps(x))
    for x in l["duplicate_samples"]:
        out.append("  duplicate line: %s" % json.dumps(x))
    for t in sp["duplicate_traces"]:
        out.append("  duplicate spans: trace %s, %d extra, near %s" % tuple(t))
    if r["failed"]:
        out.append("FAIL: " + "; ".join(r["failed"]))
    else:
        out.append("PASS: every acknowledged story whole, every record once")
    return "\n".join(out)


if __name__ == "__main__":
    main()
