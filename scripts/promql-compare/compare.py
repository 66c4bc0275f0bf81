#!/usr/bin/env python3
"""Runs every query of queries.txt against two Prometheus-compatible query APIs and compares.

    compare.py --expected http://127.0.0.1:9090 --actual http://127.0.0.1:7700 --t0 T0 \
        [--queries queries.txt] [--known known-differences.txt] [--report report.json]

The expected side is the real Prometheus, the actual side Skein. Every query is run as an
instant query at T0, T0-7m, T0-30m and T0-61m+17s, as a range query over [T0-60m, T0] at
steps 60 s and 17 s, and over [T0-47m+7s, T0-2m+7s] at step 30 s (off the samples' grid).
Two answers agree when they have

- the same status, and for errors the same errorType (the messages may differ);
- the same resultType;
- the same set of label sets; for instant queries whose outermost call is sort, sort_desc, topk
  or bottomk (without by/without) also the same order of values;
- the same timestamps, and values equal within 1e-9 relative or 1e-12 absolute (NaN equals NaN,
  infinities must be equal exactly); strings exactly.

Mismatches of queries listed in the known-differences file (`QUERY ## reason`) are printed and
reported but do not fail the run. Exit status: 0 when every other evaluation agrees, 1 when not,
2 on bad usage. Standard library only (urllib).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

REL_TOL = 1e-9
ABS_TOL = 1e-12
HERE = os.path.dirname(os.path.abspath(__file__))

PLACEHOLDER = re.compile(r"\$\{T0(?:([+-])(\d+))?\}")


def substitute(query: str, t0: int) -> str:
    def repl(m: re.Match) -> str:
        if not m.group(1):
            return str(t0)
        d = int(m.group(2))
        return str(t0 + d if m.group(1) == "+" else t0 - d)

    return PLACEHOLDER.sub(repl, query)


def read_queries(path: str) -> list[str]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            out.append(line.strip())
    return out


def read_known(path: str) -> dict[str, str]:
    """`QUERY ## reason` per line; '#' lines and blank lines are comments."""
    known: dict[str, str] = {}
    if not path or not os.path.exists(path):
        return known
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if " ## " not in line:
                sys.exit(f"{path}:{n}: expected 'QUERY ## reason', got: {line}")
            q, why = line.rsplit(" ## ", 1)
            known[q.strip()] = why.strip()
    return known


def evaluations(t0: int) -> list[dict]:
    ev = []
    for name, t in (("T0", t0), ("T0-7m", t0 - 420), ("T0-30m", t0 - 1800), ("T0-61m+17s", t0 - 3643)):
        ev.append({"name": f"instant@{name}", "kind": "instant", "time": t})
    for step in (60, 17):
        ev.append({"name": f"range step={step}s", "kind": "range", "start": t0 - 3600, "end": t0, "step": step})
    # Off the samples' 15 s grid: [T0-47m+7s, T0-2m+7s] every 30 s.
    ev.append({"name": "range step=30s off-grid", "kind": "range", "start": t0 - 2813, "end": t0 - 113, "step": 30})
    return ev


def http_get(base: str, path: str, params: dict, timeout: float) -> dict:
    url = base.rstrip("/") + path + "?" + urllib.parse.urlencode(params)
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
            code = r.status
    except urllib.error.HTTPError as e:
        body = e.read()
        code = e.code
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
        return {"status": "client_error", "errorType": "unreachable", "error": str(e)}
    try:
        doc = json.loads(body)
        if not isinstance(doc, dict):
            raise ValueError("not an object")
    except ValueError:
        return {
            "status": "client_error",
            "errorType": f"http_{code}_not_json",
            "error": body[:300].decode("utf-8", "replace"),
        }
    doc["_http"] = code
    return doc


def run_eval(base: str, query: str, ev: dict, timeout: float) -> dict:
    if ev["kind"] == "instant":
        return http_get(base, "/api/v1/query", {"query": query, "time": ev["time"]}, timeout)
    return http_get(
        base,
        "/api/v1/query_range",
        {"query": query, "start": ev["start"], "end": ev["end"], "step": ev["step"]},
        timeout,
    )


# ---- comparison --------------------------------------------------------------------------------


def num(s) -> float:
    return float(s)


def values_equal(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        x, y = num(a), num(b)
    except (TypeError, ValueError):
        return False
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    d = abs(x - y)
    return d <= ABS_TOL or d <= REL_TOL * max(abs(x), abs(y))


def ts_equal(a, b) -> bool:
    try:
        return round(float(a) * 1000) == round(float(b) * 1000)
    except (TypeError, ValueError):
        return False


def labels_key(metric: dict) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted((metric or {}).items())) + "}"


def ordered(query: str) -> bool:
    return re.match(r"\s*(sort|sort_desc|topk|bottomk)\s*\(", query) is not None


def short(v, n: int = 200) -> str:
    s = json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v
    return s if len(s) <= n else s[:n] + "..."


def compare_docs(query: str, ev: dict, exp: dict, act: dict) -> list[str]:
    """Differences between the expected and the actual answer (empty when they agree)."""
    diffs: list[str] = []
    es, as_ = exp.get("status"), act.get("status")
    if es != as_:
        what = lambda d: (  # noqa: E731
            f"{d.get('status')}" + (f" {d.get('errorType')}: {short(d.get('error', ''), 160)}" if d.get("status") != "success" else f" {d.get('data', {}).get('resultType')} ({len(d.get('data', {}).get('result') or [])} results)")
        )
        return [f"status: expected {what(exp)}; got {what(act)}"]
    if es != "success":
        if exp.get("errorType") != act.get("errorType"):
            diffs.append(
                f"errorType: expected {exp.get('errorType')} ({short(exp.get('error', ''), 120)}); "
                f"got {act.get('errorType')} ({short(act.get('error', ''), 120)})"
            )
        return diffs
    ed, ad = exp.get("data") or {}, act.get("data") or {}
    et, at = ed.get("resultType"), ad.get("resultType")
    if et != at:
        return [f"resultType: expected {et}; got {at}"]
    er, ar = ed.get("result"), ad.get("result")
    if et in ("scalar", "string"):
        if not isinstance(ar, list) or len(ar) != 2:
            return [f"result: expected {short(er)}; got {short(ar)}"]
        if not ts_equal(er[0], ar[0]):
            diffs.append(f"timestamp: expected {er[0]}; got {ar[0]}")
        ok = er[1] == ar[1] if et == "string" else values_equal(er[1], ar[1])
        if not ok:
            diffs.append(f"value: expected {er[1]!r}; got {ar[1]!r}")
        return diffs
    if not isinstance(ar, list):
        return [f"result: expected a list, got {short(ar)}"]
    emap: dict[str, dict] = {}
    amap: dict[str, dict] = {}
    for side, res, m in (("expected", er, emap), ("actual", ar, amap)):
        for s in res:
            k = labels_key(s.get("metric"))
            if k in m:
                diffs.append(f"{side} answer has label set {k} twice")
            m[k] = s
    missing = [k for k in emap if k not in amap]
    extra = [k for k in amap if k not in emap]
    if missing:
        diffs.append(f"missing {len(missing)} series: " + "; ".join(missing[:3]) + (" ..." if len(missing) > 3 else ""))
    if extra:
        diffs.append(f"extra {len(extra)} series: " + "; ".join(extra[:3]) + (" ..." if len(extra) > 3 else ""))
    value_diffs: list[str] = []
    for k in emap:
        if k not in amap:
            continue
        e, a = emap[k], amap[k]
        if et == "vector":
            ev_, av = e.get("value") or [None, None], a.get("value") or [None, None]
            if not ts_equal(ev_[0], av[0]):
                value_diffs.append(f"{k} @ {ev_[0]}: timestamp {av[0]}")
            elif not values_equal(ev_[1], av[1]):
                value_diffs.append(f"{k} @ {ev_[0]}: expected {ev_[1]}, got {av[1]}")
        else:  # matrix
            ep = {round(float(t) * 1000): v for t, v in (e.get("values") or [])}
            ap = {round(float(t) * 1000): v for t, v in (a.get("values") or [])}
            only_e = sorted(set(ep) - set(ap))
            only_a = sorted(set(ap) - set(ep))
            if only_e:
                value_diffs.append(
                    f"{k}: {len(only_e)} points missing, first at {only_e[0] / 1000:g} (expected {ep[only_e[0]]})"
                )
            if only_a:
                value_diffs.append(
                    f"{k}: {len(only_a)} points extra, first at {only_a[0] / 1000:g} (got {ap[only_a[0]]})"
                )
            bad = [t for t in sorted(set(ep) & set(ap)) if not values_equal(ep[t], ap[t])]
            if bad:
                t = bad[0]
                value_diffs.append(
                    f"{k}: {len(bad)} values differ, first at {t / 1000:g}: expected {ep[t]}, got {ap[t]}"
                )
    if value_diffs:
        diffs.append(f"{len(value_diffs)} series differ: " + " | ".join(value_diffs[:3]) + (" ..." if len(value_diffs) > 3 else ""))
    if not diffs and et == "vector" and ev["kind"] == "instant" and ordered(query):
        evals = [s["value"][1] for s in er]
        avals = [s["value"][1] for s in ar]
        if len(evals) == len(avals) and not all(values_equal(x, y) for x, y in zip(evals, avals)):
            diffs.append(f"order: expected values in order {short(evals, 120)}; got {short(avals, 120)}")
    return diffs


def printed_differently(exp: dict, act: dict) -> tuple[int, str]:
    """Values equal as numbers but printed differently (e.g. 3e-07 and 0.0000003): how many,
    and one example. Not a mismatch (clients parse the numbers), but reported."""
    if exp.get("status") != "success" or act.get("status") != "success":
        return 0, ""
    ed, ad = exp.get("data") or {}, act.get("data") or {}
    if ed.get("resultType") != ad.get("resultType"):
        return 0, ""
    t = ed.get("resultType")

    def strings(res):
        if t == "scalar":
            return {"": [res[1]]} if isinstance(res, list) and len(res) == 2 else {}
        if t not in ("vector", "matrix") or not isinstance(res, list):
            return {}
        return {
            labels_key(x.get("metric")): [v for _, v in x.get("values") or []] or [(x.get("value") or [0, ""])[1]]
            for x in res
        }

    es, as_ = strings(ed.get("result")), strings(ad.get("result"))
    n, example = 0, ""
    for k, vs in es.items():
        for x, y in zip(vs, as_.get(k, [])):
            try:
                same = x != y and float(x) == float(y)
            except (TypeError, ValueError):
                same = False
            if same:
                n += 1
                example = example or f"{x} / {y}"
    return n, example


# ---- main --------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--expected", required=True, help="base URL of the reference (Prometheus)")
    ap.add_argument("--actual", required=True, help="base URL under test (Skein's query API)")
    ap.add_argument("--expected-name", default="prometheus")
    ap.add_argument("--actual-name", default="skein")
    ap.add_argument("--t0", type=int, required=True, help="end of the data (unix seconds)")
    ap.add_argument("--queries", default=os.path.join(HERE, "queries.txt"))
    ap.add_argument("--known", default=os.path.join(HERE, "known-differences.txt"))
    ap.add_argument("--report", default="", help="write a JSON report here")
    ap.add_argument("--only", default="", help="run only queries matching this regex")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request")
    ap.add_argument("--max-print", type=int, default=400, help="print at most this many mismatches")
    a = ap.parse_args()

    queries = read_queries(a.queries)
    if a.only:
        queries = [q for q in queries if re.search(a.only, q)]
    known = read_known(a.known)
    evs = evaluations(a.t0)
    jobs = [(qi, q, ev) for qi, q in enumerate(queries) for ev in evs]

    def one(job):
        qi, q, ev = job
        sq = substitute(q, a.t0)
        exp = run_eval(a.expected, sq, ev, a.timeout)
        act = run_eval(a.actual, sq, ev, a.timeout)
        return qi, q, ev, exp, act, compare_docs(sq, ev, exp, act), printed_differently(exp, act)

    started = time.monotonic()
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.workers)) as pool:
        for r in pool.map(one, jobs):
            results.append(r)
    elapsed = time.monotonic() - started

    mismatches = []
    ref_errors = 0
    unreachable = 0
    fmt_diffs = {}  # query -> (values, example)
    for qi, q, ev, exp, act, diffs, (n_fmt, fmt_example) in results:
        if n_fmt:
            c, e = fmt_diffs.get(q, (0, ""))
            fmt_diffs[q] = (c + n_fmt, e or fmt_example)
        if exp.get("status") != "success":
            ref_errors += 1
        if act.get("errorType") == "unreachable" or exp.get("errorType") == "unreachable":
            unreachable += 1
        if diffs:
            mismatches.append(
                {
                    "query": q,
                    "evaluation": ev["name"],
                    "diff": diffs,
                    "known": q in known,
                    "reason": known.get(q, ""),
                    "expected": exp,
                    "actual": act,
                }
            )

    new = [m for m in mismatches if not m["known"]]
    mismatched_queries = sorted({m["query"] for m in mismatches}, key=queries.index)
    new_queries = sorted({m["query"] for m in new}, key=queries.index)
    stale_known = [q for q in known if q in queries and q not in mismatched_queries]
    unknown_known = [
        q for q in known if q not in queries and not q.startswith(("promtool ", "api-client "))
    ]

    printed = 0
    for q in mismatched_queries:
        ms = [m for m in mismatches if m["query"] == q]
        tag = "KNOWN" if ms[0]["known"] else "MISMATCH"
        print(f"\n{tag} {q}")
        if ms[0]["known"]:
            print(f"  known difference: {ms[0]['reason']}")
        for m in ms:
            if printed >= a.max_print:
                break
            printed += 1
            for d in m["diff"]:
                print(f"  [{m['evaluation']}] {d}")
    for q in stale_known:
        print(f"\nNOTE: known difference no longer differs: {q}")
    for q in unknown_known:
        print(f"\nNOTE: known-differences.txt names a query that is not in the query set: {q}")

    if fmt_diffs:
        print(
            f"\nNOTE: {sum(c for c, _ in fmt_diffs.values())} values in {len(fmt_diffs)} queries are the "
            f"same numbers printed differently ({a.expected_name} / {a.actual_name}; not counted as "
            "mismatches):"
        )
        for q, (c, e) in list(fmt_diffs.items())[:10]:
            print(f"  {q}: {c} values, e.g. {e}")

    n_evals = len(results)
    summary = {
        "queries": len(queries),
        "evaluations": n_evals,
        "agreeing": n_evals - len(mismatches),
        "mismatches": len(mismatches),
        "mismatches_known": len(mismatches) - len(new),
        "mismatches_new": len(new),
        "queries_mismatched": len(mismatched_queries),
        "queries_mismatched_new": len(new_queries),
        "reference_errors": ref_errors,
        "unreachable": unreachable,
        "values_printed_differently": sum(c for c, _ in fmt_diffs.values()),
        "seconds": round(elapsed, 1),
    }
    print(
        f"\nSUMMARY {a.expected_name} vs {a.actual_name}: {summary['queries']} queries, "
        f"{n_evals} evaluations ({len(evs)} per query), {summary['agreeing']} agree, "
        f"{summary['mismatches']} mismatches in {summary['queries_mismatched']} queries "
        f"({summary['mismatches_known']} known, {summary['mismatches_new']} new in "
        f"{summary['queries_mismatched_new']} queries); {ref_errors} evaluations are errors in "
        f"{a.expected_name} (compared by errorType); {elapsed:.1f}s"
    )
    if a.report:
        with open(a.report, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "t0": a.t0,
                    "expected": a.expected_name,
                    "actual": a.actual_name,
                    "summary": summary,
                    "evaluations": [e["name"] for e in evs],
                    "mismatches": mismatches,
                    "stale_known_differences": stale_known,
                    "printed_differently": {q: {"values": c, "example": e} for q, (c, e) in fmt_diffs.items()},
                },
                f,
                indent=1,
                ensure_ascii=False,
            )
        print(f"report: {a.report}")
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main())
