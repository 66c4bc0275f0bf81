#!/usr/bin/env python3
"""Real clients against both servers: `promtool query` and the `prometheus-api-client` package.

    clients.py --expected http://127.0.0.1:9090 --actual http://127.0.0.1:7700 --t0 T0 \
        [--promtool /usr/bin/promtool] [--report clients.json]

1. `promtool query instant --time T <url> <query>` and `promtool query range --start --end
   --step <url> <query>` for a dozen queries against both servers: same exit code and the same
   text on stdout (for an error, the same `query error: <errorType>:` on stderr). Two answers
   that differ only in the last digits of values (within compare.py's 1e-9: Go's and Rust's
   math libraries round ln, log2, sin, ... differently in the last bit) count as equal, noted;
   so do vector rows of a query whose order PromQL does not define (no sort/topk/bottomk) that
   come in another order.
2. `prometheus_api_client.PrometheusConnect`: all_metrics, custom_query, custom_query_range,
   get_metric_range_data (one chunk and several), get_current_metric_value, get_label_names,
   get_label_values, get_series, check_prometheus_connection. The answers of both servers must
   be equal (label sets, timestamps, values within 1e-9 relative).
3. /api/v1/status/buildinfo (the same fields) and /api/v1/metadata (a success with the shape
   of Prometheus's answer): their contents cannot be equal here.

A check named in known-differences.txt (`CHECK NAME ## why`, the name as printed) may differ.
Prints one line per check and `CLIENTS: N checks, M differ (K known, D new)`; exit 1 when a
check not listed there differs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the repo
from compare import read_known, values_equal  # noqa: E402

PROMTOOL_QUERIES = [
    'http_requests_total{code="200"}',
    "queue_depth",
    "sum by (instance) (http_requests_total)",
    'rate(http_requests_total{code="500"}[5m])',
    "sort_desc(temperature_celsius)",
    "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
    'api_path_hits_total{path=~"/caf.*|/search.*"}',
    "avg_over_time(disk_error_ratio[10m])",
    "log2(queue_depth + 1)",
    'count_values("replicas", deploy_replicas)',
    "scalar(sum(queue_depth))",
    "time()",
    "sum(http_requests_total",
]
# Instant only: a range vector cannot be a range query's result.
PROMTOOL_INSTANT_ONLY = ["queue_depth[2m]"]


def run(cmd: list[str]) -> tuple[int, str, str]:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def error_kind(stderr: str) -> str:
    m = re.search(r"query error: (\w+):", stderr)
    return m.group(1) if m else stderr.strip()[:200]


def ordered(query: str) -> bool:
    return re.match(r"\s*(sort|sort_desc|topk|bottomk)\s*\(", query) is not None


class Checks:
    def __init__(self, known: dict[str, str]):
        self.rows: list[dict] = []
        self.known = known

    def add(self, name: str, ok: bool, detail: str = "", note: str = ""):
        known = not ok and name in self.known
        self.rows.append({"check": name, "ok": ok, "known": known, "detail": detail, "note": note})
        mark = "ok  " if ok else ("KNOWN" if known else "DIFF")
        if known:
            note = f"known difference: {self.known[name]}"
        print(f"{mark} {name}" + (f"  ({note})" if note else ""))
        if detail and not ok:
            for line in detail.splitlines()[:40]:
                print(f"       {line}")


def text_diff(exp: str, act: str) -> str:
    import difflib

    return "\n".join(
        difflib.unified_diff(exp.splitlines(), act.splitlines(), "prometheus", "skein", lineterm="", n=1)
    )


def promtool_checks(c: Checks, promtool: str, exp_url: str, act_url: str, t0: int):
    cases = []
    for q in PROMTOOL_QUERIES + PROMTOOL_INSTANT_ONLY:
        cases.append((f"promtool query instant {q}", ["query", "instant", f"--time={t0}"], q))
    for q in PROMTOOL_QUERIES:
        cases.append(
            (
                f"promtool query range {q}",
                ["query", "range", f"--start={t0 - 600}", f"--end={t0}", "--step=60s"],
                q,
            )
        )
    for name, args, q in cases:
        ec, eo, ee = run([promtool, *args, exp_url, q])
        ac, ao, ae = run([promtool, *args, act_url, q])
        if ec != 0 or ac != 0:
            ok = ec == ac and error_kind(ee) == error_kind(ae) and eo == ao
            c.add(
                name,
                ok,
                f"prometheus: exit {ec}, {ee.strip()[:300]}\nskein:      exit {ac}, {ae.strip()[:300]}\n{text_diff(eo, ao)}",
                note=f"both refuse it: {error_kind(ee)}" if ok else "",
            )
            continue
        if eo == ao:
            c.add(name, True)
        elif same_within_tolerance(eo, ao):
            c.add(name, True, note="same text but for the last digits of some values (within 1e-9)")
        elif (
            not ordered(q)
            and " =>\n" not in eo  # vector rows, one per line (not a matrix)
            and sorted(eo.splitlines()) == sorted(ao.splitlines())
        ):
            c.add(name, True, note="same lines in another order; PromQL defines no order here")
        else:
            c.add(name, False, text_diff(eo, ao))


PROMTOOL_VALUE = re.compile(r"^(.*?)(\S+) @\[(\S+)\]$")


def same_within_tolerance(exp: str, act: str) -> bool:
    """promtool outputs equal line by line, values (`V @[T]`) within compare.py's tolerance."""
    el, al = exp.splitlines(), act.splitlines()
    if len(el) != len(al):
        return False
    for x, y in zip(el, al):
        if x == y:
            continue
        mx, my = PROMTOOL_VALUE.match(x), PROMTOOL_VALUE.match(y)
        if not (mx and my and mx.group(1) == my.group(1) and mx.group(3) == my.group(3)):
            return False
        if not values_equal(mx.group(2), my.group(2)):
            return False
    return True


def norm_result(res) -> list:
    """A query result (list of {metric, value|values}) as a sorted, comparable list."""
    out = []
    for s in res or []:
        key = json.dumps(s.get("metric", {}), sort_keys=True, ensure_ascii=False)
        if "values" in s:
            out.append((key, [(float(t), v) for t, v in s["values"]]))
        else:
            t, v = s.get("value", [None, None])
            out.append((key, [(float(t), v)]))
    return sorted(out, key=lambda x: x[0])


def same_result(a, b) -> tuple[bool, str]:
    na, nb = norm_result(a), norm_result(b)
    ka, kb = [k for k, _ in na], [k for k, _ in nb]
    if ka != kb:
        miss = [k for k in ka if k not in kb]
        extra = [k for k in kb if k not in ka]
        return False, f"label sets differ: missing {miss[:3]}, extra {extra[:3]}"
    for (k, pa), (_, pb) in zip(na, nb):
        if len(pa) != len(pb):
            return False, f"{k}: {len(pa)} points, got {len(pb)}"
        for (ta, va), (tb, vb) in zip(pa, pb):
            if round(ta * 1000) != round(tb * 1000) or not values_equal(va, vb):
                return False, f"{k}: expected {va} @{ta}, got {vb} @{tb}"
    return True, f"{len(na)} series"


def api_client_checks(c: Checks, exp_url: str, act_url: str, t0: int):
    try:
        from prometheus_api_client import PrometheusConnect
    except ImportError:
        c.add("prometheus-api-client installed", False, "python3 -m pip install -r requirements.txt")
        return
    exp = PrometheusConnect(url=exp_url, disable_ssl=True)
    act = PrometheusConnect(url=act_url, disable_ssl=True)
    utc = dt.timezone.utc
    T = lambda s: dt.datetime.fromtimestamp(s, tz=utc)  # noqa: E731

    def both(name, fn, cmp):
        results = []
        for client in (exp, act):
            try:
                results.append(("ok", fn(client)))
            except Exception as e:  # noqa: BLE001  any client error is a result to compare
                results.append(("error", f"{type(e).__name__}: {e}"[:400]))
        (es, ev), (as_, av) = results
        if es != "ok" or as_ != "ok":
            c.add(name, es == as_, f"prometheus: {es} {str(ev)[:300]}\nskein: {as_} {str(av)[:300]}")
            return
        ok, detail = cmp(ev, av)
        c.add(name, ok, detail, note=detail if ok else "")

    def eq(a, b):
        if a == b:
            return True, (f"{len(a)} items" if hasattr(a, "__len__") else str(a))
        if isinstance(a, list) and isinstance(b, list):
            miss = [x for x in a if x not in b]
            extra = [x for x in b if x not in a]
            return False, f"missing {str(miss)[:300]}\nextra   {str(extra)[:300]}"
        return False, f"expected {str(a)[:300]}\ngot      {str(b)[:300]}"

    def eq_sorted_dicts(a, b):
        ka = sorted(json.dumps(x, sort_keys=True) for x in a)
        kb = sorted(json.dumps(x, sort_keys=True) for x in b)
        return eq(ka, kb)

    both("api-client check_prometheus_connection", lambda p: p.check_prometheus_connection(), eq)
    both("api-client all_metrics", lambda p: p.all_metrics(), eq)
    both("api-client get_label_names", lambda p: p.get_label_names(), eq)
    both("api-client get_label_values job", lambda p: p.get_label_values("job"), eq)
    both("api-client get_label_values path", lambda p: p.get_label_values("path"), eq)
    both(
        "api-client get_series match[]=queue_depth",
        lambda p: p.get_series(T(t0 - 3600), T(t0), params={"match[]": "queue_depth"}),
        eq_sorted_dicts,
    )
    both(
        'api-client get_series match[]={job="api"}',
        lambda p: p.get_series(T(t0 - 7200), T(t0), params={"match[]": '{job="api"}'}),
        eq_sorted_dicts,
    )
    both(
        "api-client custom_query rate(http_requests_total[5m])",
        lambda p: p.custom_query("rate(http_requests_total[5m])", params={"time": t0}),
        same_result,
    )
    both(
        "api-client custom_query sum by (code) (increase(http_requests_total[10m]))",
        lambda p: p.custom_query("sum by (code) (increase(http_requests_total[10m]))", params={"time": t0 - 600}),
        same_result,
    )
    both(
        "api-client custom_query_range sum by (instance) (rate(node_cpu_seconds_total[5m]))",
        lambda p: p.custom_query_range(
            "sum by (instance) (rate(node_cpu_seconds_total[5m]))", T(t0 - 3600), T(t0), step="60"
        ),
        same_result,
    )
    both(
        "api-client get_metric_range_data queue_depth{queue='sms'} 1h",
        lambda p: p.get_metric_range_data("queue_depth", label_config={"queue": "sms"}, start_time=T(t0 - 3600), end_time=T(t0)),
        same_result,
    )
    both(
        "api-client get_metric_range_data temperature_celsius 2h in 30m chunks",
        lambda p: p.get_metric_range_data(
            "temperature_celsius", start_time=T(t0 - 7200), end_time=T(t0), chunk_size=dt.timedelta(minutes=30)
        ),
        same_result,
    )
    both(
        "api-client get_metric_range_data http_requests_total{code='500',method='POST'} 90m",
        lambda p: p.get_metric_range_data(
            "http_requests_total", label_config={"code": "500", "method": "POST"}, start_time=T(t0 - 5400), end_time=T(t0)
        ),
        same_result,
    )
    both(
        "api-client get_current_metric_value deploy_replicas (time=T0)",
        lambda p: p.get_current_metric_value("deploy_replicas", params={"time": t0}),
        same_result,
    )


def get_json(base: str, path: str):
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(base.rstrip("/") + path, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return {"status": f"http {e.code}"}
    except (OSError, ValueError) as e:
        return {"status": f"{type(e).__name__}: {e}"}


def shape_checks(c: Checks, exp_url: str, act_url: str):
    """Endpoints whose answers cannot be equal, by their shape: buildinfo (each its own
    version) and metadata (Prometheus has metadata only from scrapes, none here; Skein from
    the stored kinds)."""
    e, a = get_json(exp_url, "/api/v1/status/buildinfo"), get_json(act_url, "/api/v1/status/buildinfo")
    ek = sorted((e.get("data") or {}).keys()) if e.get("status") == "success" else e.get("status")
    ak = sorted((a.get("data") or {}).keys()) if a.get("status") == "success" else a.get("status")
    c.add(
        "api /api/v1/status/buildinfo fields",
        ek == ak and isinstance((a.get("data") or {}).get("version"), str),
        f"prometheus: {ek}\nskein:      {ak}",
        note=f"skein says version {(a.get('data') or {}).get('version')}" if ek == ak else "",
    )
    for path in ("/api/v1/metadata", "/api/v1/metadata?metric=queue_depth&limit=5"):
        e, a = get_json(exp_url, path), get_json(act_url, path)
        data = a.get("data")
        ok = (
            e.get("status") == a.get("status") == "success"
            and isinstance(data, dict)
            and all(
                isinstance(v, list) and all(isinstance(m, dict) and {"type", "help", "unit"} <= m.keys() for m in v)
                for v in data.values()
            )
        )
        c.add(
            f"api {path} shape",
            ok,
            f"prometheus: {short_json(e)}\nskein:      {short_json(a)}",
            note=f"prometheus {len(e.get('data') or {})} names, skein {len(data or {})}" if ok else "",
        )


def short_json(v) -> str:
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) < 300 else s[:300] + "..."


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--expected", required=True)
    ap.add_argument("--actual", required=True)
    ap.add_argument("--t0", type=int, required=True)
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("--report", default="")
    ap.add_argument("--known", default=os.path.join(HERE, "known-differences.txt"))
    a = ap.parse_args()
    c = Checks(read_known(a.known))
    promtool_checks(c, a.promtool, a.expected, a.actual, a.t0)
    api_client_checks(c, a.expected, a.actual, a.t0)
    shape_checks(c, a.expected, a.actual)
    bad = [r for r in c.rows if not r["ok"] and not r["known"]]
    known = [r for r in c.rows if r["known"]]
    print(f"\nCLIENTS: {len(c.rows)} checks, {len(bad) + len(known)} differ ({len(known)} known, {len(bad)} new)")
    if a.report:
        with open(a.report, "w", encoding="utf-8") as f:
            json.dump({"t0": a.t0, "checks": c.rows}, f, indent=1, ensure_ascii=False)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
