#!/usr/bin/env python3
"""Deterministic test data for the PromQL comparison (Python 3.11, stdlib only).

    gen_data.py --t0 UNIX_SECONDS --out DIR

writes the same samples twice:

- DIR/data.om    OpenMetrics text with timestamps (`# TYPE`, `# EOF`), for
                 `promtool tsdb create-blocks-from openmetrics DIR/data.om BLOCKS`;
- DIR/data.json  {"t0": T0, "series": [{"labels": {...}, "samples": [[ms, value], ...]}]},
                 for load_skein.py (remote write).

Two hours of samples ending at T0 (a whole minute), every 15 s on a grid anchored at T0, with
gaps, counter resets, a series that stops 10 minutes before T0 and one that starts 45 minutes
before it. Values are finite (NaN and infinities come from the queries) and printed with repr(),
so both loaders read exactly the same doubles. The same T0 always gives the same data.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random

SPAN_S = 2 * 3600
STEP_S = 15


def om_escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def fmt(v: float) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    r = repr(float(v))
    return r


class Family:
    def __init__(self, name: str, typ: str, help_text: str):
        self.name = name
        self.typ = typ
        self.help = help_text
        # list of (labels dict incl. __name__, {ts_s: value})
        self.series: list[tuple[dict[str, str], dict[int, float]]] = []

    def add(self, sample_name: str, labels: dict[str, str], points: dict[int, float]):
        lab = {"__name__": sample_name}
        lab.update(labels)
        self.series.append((lab, points))


def clean(v: float) -> float:
    # No negative zero: its text form differs between printers.
    return v + 0.0


def generate(t0: int) -> list[Family]:
    rnd = random.Random(20240611)
    start = t0 - SPAN_S
    times = list(range(start, t0 + 1, STEP_S))  # 481 samples, the last at T0
    rel = lambda t: t - t0  # noqa: E731  seconds relative to T0 (<= 0)

    def in_gap(t: int, gaps: list[tuple[int, int]]) -> bool:
        # gaps as (from, to) relative to T0, to exclusive
        return any(a <= rel(t) < b for a, b in gaps)

    fams: list[Family] = []

    # --- counters with resets -------------------------------------------------------------
    f = Family("http_requests", "counter", "HTTP requests.")
    combos = []
    for inst in ("host-1:8080", "host-2:8080"):
        for method, code in (("GET", "200"), ("GET", "404"), ("GET", "500"), ("POST", "200"), ("POST", "500")):
            combos.append((inst, method, code))
    for i, (inst, method, code) in enumerate(combos):
        base = {"200": 12.0, "404": 1.5, "500": 0.7}[code] * (1.8 if method == "GET" else 1.0)
        resets = []
        if inst == "host-2:8080" and code == "200":
            resets = [-33 * 60, -12 * 60]
        if inst == "host-1:8080" and method == "POST" and code == "500":
            resets = [-50 * 60 - 30]
        gaps = []
        if inst == "host-2:8080" and method == "POST" and code == "500":
            gaps = [(-40 * 60, -37 * 60)]  # 3 minutes: inside the 5 m lookback
        if inst == "host-1:8080" and method == "GET" and code == "404":
            gaps = [(-25 * 60, -17 * 60)]  # 8 minutes: longer than the lookback
        v = float(rnd.randint(100, 5000))
        pts = {}
        for t in times:
            if rel(t) in resets:
                v = float(rnd.randint(0, 3))
            else:
                v += float(rnd.randint(0, int(base * 2)))
            if in_gap(t, gaps):
                continue
            pts[t] = v
        f.add("http_requests_total", {"job": "api", "instance": inst, "method": method, "code": code}, pts)
    fams.append(f)

    f = Family("node_cpu_seconds", "counter", "CPU seconds.")
    for inst in ("host-1:9100", "host-2:9100"):
        for cpu in ("0", "1"):
            for mode, share in (("idle", 0.8), ("user", 0.15), ("system", 0.05)):
                v = rnd.uniform(1000, 90000)
                v = round(v, 3)
                pts = {}
                for t in times:
                    if inst == "host-2:9100" and cpu == "1" and rel(t) == -20 * 60:
                        v = 0.25  # node restart
                    else:
                        v = round(v + share * STEP_S * rnd.uniform(0.7, 1.3), 3)
                    pts[t] = v
                f.add("node_cpu_seconds_total", {"job": "node", "instance": inst, "cpu": cpu, "mode": mode}, pts)
    fams.append(f)

    # Paths that exercise regular expressions (slashes, braces, dots, unicode, quotes).
    f = Family("api_path_hits", "counter", "Hits per path.")
    paths = ["/api/v1/users", "/api/v1/users/{id}", "/api/v2/orders", "/healthz", "/static/app.js", "/café/menü", '/search?q="a\\b"']
    # Hits per sample are multiples of sqrt(prime), different per path: no two paths have the
    # same rate over any window used here, so topk/bottomk over sums of them have no ties
    # (Prometheus breaks ties among aggregated series in no fixed order).
    primes = [2, 3, 5, 7, 11, 13, 17]
    for i, p in enumerate(paths):
        step = round(math.sqrt(primes[i]), 3)
        v = 0.0
        pts = {}
        for t in times:
            v = round(v + step * rnd.randint(0, 4), 3)
            pts[t] = v
        f.add("api_path_hits_total", {"job": "api", "path": p}, pts)
    fams.append(f)

    # --- gauges -------------------------------------------------------------------------------
    f = Family("temperature_celsius", "gauge", "Temperature.")
    for i, loc in enumerate(("eu-west.dc1", "eu-east.dc2", "us-west.dc3", "ap-south.dc4")):
        pts = {}
        for k, t in enumerate(times):
            x = (6 - 3 * i) + 9 * math.sin(k / (20.0 + 7 * i) + i) + rnd.uniform(-1, 1)
            pts[t] = clean(round(x * 2) / 2)  # half degrees: zeros and negatives
        f.add("temperature_celsius", {"job": "sensors", "location": loc, "sensor": "t1"}, pts)
    fams.append(f)

    f = Family("queue_depth", "gauge", "Messages waiting.")
    for i, q in enumerate(("emails", "sms", "push")):
        gaps = {"sms": [(-40 * 60, -37 * 60)], "push": [(-25 * 60, -17 * 60)]}.get(q, [])
        pts = {}
        v = 10
        for t in times:
            v = max(0, v + rnd.randint(-4, 4)) if rnd.random() > 0.1 else 0
            if in_gap(t, gaps):
                continue
            pts[t] = float(v)
        f.add("queue_depth", {"job": "worker", "queue": q}, pts)
    fams.append(f)

    f = Family("batch_job_progress", "gauge", "Progress of the batch job.")
    pts = {}
    for k, t in enumerate(times):
        if rel(t) > -10 * 60:
            break  # the series stops 10 minutes before T0 (no staleness marker)
        pts[t] = round((k % 97) / 97.0, 6)
    f.add("batch_job_progress", {"job": "batch", "instance": "batch-1"}, pts)
    fams.append(f)

    f = Family("deploy_replicas", "gauge", "Replicas per deployment.")
    for i, d in enumerate(("frontend", "backend", "cache", "canary")):
        pts = {}
        for k, t in enumerate(times):
            if d == "canary" and rel(t) < -45 * 60:
                continue  # starts 45 minutes before T0
            pts[t] = float([3, 2, 2, 1][i] + ((k // (16 + 3 * i)) % 3) - 1 + (1 if i == 3 else 0))
        f.add("deploy_replicas", {"job": "k8s", "deployment": d, "namespace": "shop" if i < 2 else "infra"}, pts)
    fams.append(f)

    f = Family("app_build_info", "gauge", "Build information.")
    for inst, ver, rev in (("host-1:8080", "1.2.3", "a1b2c3"), ("host-2:8080", "1.3.0-rc.1", "d4e5f6"), ("host-3:8080", "1.3.0", "0fa9be")):
        f.add("app_build_info", {"job": "api", "instance": inst, "version": ver, "revision": rev}, {t: 1.0 for t in times})
    fams.append(f)

    f = Family("disk_used_bytes", "gauge", "Large and small magnitudes.")
    pts = {}
    v = 1.5e12
    for t in times:
        v += rnd.uniform(-2e8, 3e8)
        pts[t] = round(v)
    f.add("disk_used_bytes", {"job": "node", "instance": "host-1:9100", "device": "sda1"}, {t: float(x) for t, x in pts.items()})
    pts = {}
    for k, t in enumerate(times):
        pts[t] = float(f"{(3.0 + math.cos(k / 9.0)) * 1e-7:.6e}")
    f.add("disk_error_ratio", {"job": "node", "instance": "host-1:9100", "device": "sda1"}, pts)
    fams.append(f)

    # --- a classic histogram ----------------------------------------------------------------
    f = Family("request_duration_seconds", "histogram", "Request latency.")
    les = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"]
    for inst, method, slow in (("host-1:8080", "GET", 0.2), ("host-1:8080", "POST", 0.9), ("host-2:8080", "GET", 0.35)):
        counts = [0.0] * len(les)
        total = 0.0
        pts_b: list[dict[int, float]] = [dict() for _ in les]
        pts_s: dict[int, float] = {}
        pts_c: dict[int, float] = {}
        for t in times:
            if inst == "host-2:8080" and rel(t) == -27 * 60:
                counts = [0.0] * len(les)  # process restart: every part resets
                total = 0.0
            n = rnd.randint(0, 30)
            for _ in range(n):
                d = rnd.expovariate(1.0 / slow)
                for j, le in enumerate(les):
                    if le == "+Inf" or d <= float(le):
                        counts[j] += 1
                total += round(d, 4)
            total = round(total, 4)
            for j in range(len(les)):
                pts_b[j][t] = counts[j]
            pts_s[t] = total
            pts_c[t] = counts[-1]
        base = {"job": "api", "instance": inst, "method": method}
        for j, le in enumerate(les):
            lab = dict(base)
            lab["le"] = le
            f.add("request_duration_seconds_bucket", lab, pts_b[j])
        f.add("request_duration_seconds_sum", base, pts_s)
        f.add("request_duration_seconds_count", base, pts_c)
    fams.append(f)

    # --- a summary --------------------------------------------------------------------------
    f = Family("rpc_latency_seconds", "summary", "RPC latency.")
    base = {"job": "rpc", "service": "checkout"}
    qpts: dict[str, dict[int, float]] = {q: {} for q in ("0.5", "0.9", "0.99")}
    spts: dict[int, float] = {}
    cpts: dict[int, float] = {}
    s = 0.0
    c = 0.0
    for k, t in enumerate(times):
        m = 0.1 + 0.05 * math.sin(k / 15.0)
        qpts["0.5"][t] = round(m, 5)
        qpts["0.9"][t] = round(m * 2.2 + rnd.uniform(0, 0.01), 5)
        qpts["0.99"][t] = round(m * 4.1 + rnd.uniform(0, 0.05), 5)
        n = rnd.randint(5, 40)
        c += n
        s = round(s + n * m * 1.1, 5)
        spts[t] = s
        cpts[t] = c
    for q, pts in qpts.items():
        lab = dict(base)
        lab["quantile"] = q
        f.add("rpc_latency_seconds", lab, pts)
    f.add("rpc_latency_seconds_sum", base, spts)
    f.add("rpc_latency_seconds_count", base, cpts)
    fams.append(f)

    return fams


def write_openmetrics(fams: list[Family], path: str):
    with open(path, "w", encoding="utf-8") as out:
        for fam in fams:
            out.write(f"# HELP {fam.name} {fam.help}\n")
            out.write(f"# TYPE {fam.name} {fam.typ}\n")
            # one sample of every series per timestamp, timestamps ascending
            all_ts = sorted({t for _, pts in fam.series for t in pts})
            rendered = []
            for lab, pts in fam.series:
                name = lab["__name__"]
                body = ",".join(f'{k}="{om_escape(v)}"' for k, v in lab.items() if k != "__name__")
                rendered.append((f"{name}{{{body}}}" if body else name, pts))
            for t in all_ts:
                for head, pts in rendered:
                    if t in pts:
                        out.write(f"{head} {fmt(pts[t])} {t}\n")
        out.write("# EOF\n")


def write_json(fams: list[Family], t0: int, path: str):
    series = []
    for fam in fams:
        for lab, pts in fam.series:
            series.append({"labels": lab, "samples": [[t * 1000, pts[t]] for t in sorted(pts)]})
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"t0": t0, "series": series}, out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--t0", type=int, required=True, help="end of the data, unix seconds (a whole minute)")
    ap.add_argument("--out", required=True, help="output directory")
    a = ap.parse_args()
    if a.t0 % 60:
        ap.error("--t0 must be a whole minute")
    os.makedirs(a.out, exist_ok=True)
    fams = generate(a.t0)
    write_openmetrics(fams, os.path.join(a.out, "data.om"))
    write_json(fams, a.t0, os.path.join(a.out, "data.json"))
    n_series = sum(len(f.series) for f in fams)
    n_samples = sum(len(p) for f in fams for _, p in f.series)
    print(f"gen_data: {n_series} series, {n_samples} samples, T0={a.t0}")


if __name__ == "__main__":
    main()
