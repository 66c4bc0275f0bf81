#!/usr/bin/env python3
"""Sends gen_data.py's samples to a Prometheus remote-write 1.0 receiver (Skein's collector).

    load_skein.py --data DIR/data.json --url http://127.0.0.1:4318/api/v1/write [--batch 4000]

The WriteRequest protobuf is encoded here by hand (no generated code):

    WriteRequest { repeated TimeSeries timeseries = 1; }
    TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    Label        { string name = 1; string value = 2; }
    Sample       { double value = 1; int64 timestamp = 2; }   // milliseconds

and compressed with snappy's block format (the `cramjam` package, as Prometheus does). Requests
go out one after the other, each holding every series' samples of one slice of time, so every
series' samples arrive in time order. Every request must be answered 204 (or 200); anything
else stops the load with the answer printed (exit 1). Labels are sent sorted by name, as
Prometheus sends them.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
import urllib.error
import urllib.request

try:
    import cramjam
except ImportError:  # pragma: no cover
    sys.exit("load_skein.py: the Python package 'cramjam' is missing: python3 -m pip install -r requirements.txt")


def varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 in two's complement, 10 bytes
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(num: int, data: bytes) -> bytes:
    return varint(num << 3 | 2) + varint(len(data)) + data


def label(name: str, value: str) -> bytes:
    return field_bytes(1, name.encode()) + field_bytes(2, value.encode())


def sample(value: float, ts_ms: int) -> bytes:
    # value: field 1, wire type 1 (64-bit); timestamp: field 2, wire type 0 (varint)
    return b"\x09" + struct.pack("<d", value) + b"\x10" + varint(ts_ms)


def timeseries(labels: dict[str, str], samples: list[tuple[int, float]]) -> bytes:
    body = b"".join(field_bytes(1, label(k, v)) for k, v in sorted(labels.items()))
    body += b"".join(field_bytes(2, sample(v, t)) for t, v in samples)
    return body


def write_request(series: list[tuple[dict[str, str], list[tuple[int, float]]]]) -> bytes:
    return b"".join(field_bytes(1, timeseries(l, s)) for l, s in series if s)


def post(url: str, payload: bytes, token: str | None) -> tuple[int, str]:
    body = cramjam.snappy.compress_raw(payload)
    headers = {
        "Content-Type": "application/x-protobuf",
        "Content-Encoding": "snappy",
        "X-Prometheus-Remote-Write-Version": "0.1.0",
        "User-Agent": "skein-promql-compare/1",
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=bytes(body), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="data.json from gen_data.py")
    ap.add_argument("--url", required=True, help="remote-write URL, e.g. http://127.0.0.1:4318/api/v1/write")
    ap.add_argument("--batch", type=int, default=4000, help="about this many samples per request")
    ap.add_argument("--token", default=None, help="bearer token, if the receiver wants one")
    a = ap.parse_args()

    with open(a.data, encoding="utf-8") as f:
        doc = json.load(f)
    series = [(s["labels"], [(int(t), float(v)) for t, v in s["samples"]]) for s in doc["series"]]
    total = sum(len(s) for _, s in series)
    # Slices of time holding about `batch` samples over all series.
    all_ts = sorted({t for _, s in series for t, _ in s})
    per_ts = max(1, total // max(1, len(all_ts)))
    ts_per_req = max(1, a.batch // per_ts)
    cursors = [0] * len(series)
    sent = requests = 0
    started = time.monotonic()
    for i in range(0, len(all_ts), ts_per_req):
        until = all_ts[min(len(all_ts), i + ts_per_req) - 1]
        part = []
        for j, (labels, samples) in enumerate(series):
            c = cursors[j]
            k = c
            while k < len(samples) and samples[k][0] <= until:
                k += 1
            if k > c:
                part.append((labels, samples[c:k]))
                sent += k - c
            cursors[j] = k
        if not part:
            continue
        code, text = post(a.url, write_request(part), a.token)
        requests += 1
        if code not in (200, 204):
            print(f"load_skein: request {requests} answered {code}: {text[:500]}", file=sys.stderr)
            return 1
    assert sent == total, (sent, total)
    print(
        f"load_skein: {len(series)} series, {sent} samples in {requests} requests to {a.url} "
        f"({time.monotonic() - started:.1f}s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
