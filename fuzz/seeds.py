#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets (fuzz/seeds/<target>/). Run again after a
change to the wire forms; the fuzzer grows its own corpus from these."""
import json, os, struct

def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def key(f, wt): return varint((f << 3) | wt)
def ld(f, b): return key(f, 2) + varint(len(b)) + b
def s(f, text): return ld(f, text.encode())
def vi(f, n): return key(f, 0) + varint(n)
def f64(f, n): return key(f, 1) + struct.pack('<Q', n)
def dbl(f, x): return key(f, 1) + struct.pack('<d', x)
def sint(f, n): return key(f, 0) + varint((n << 1) ^ (n >> 63))

def anyv(v):
    if isinstance(v, str): return s(1, v)
    if isinstance(v, bool): return vi(2, int(v))
    if isinstance(v, int): return vi(3, v)
    if isinstance(v, float): return dbl(4, v)
    if isinstance(v, list): return ld(5, b''.join(ld(1, anyv(x)) for x in v))
    if isinstance(v, dict): return ld(6, b''.join(ld(1, kv(k, x)) for k, x in v.items()))
    if isinstance(v, bytes): return ld(7, v)

def kv(k, v): return s(1, k) + ld(2, anyv(v))
def attrs(f, d): return b''.join(ld(f, kv(k, v)) for k, v in d.items())
def resource(svc): return ld(1, attrs(1, {"service.name": svc, "host.name": "h1", "deployment.environment": "prod"}))

T = 1_700_000_000_000_000_000
TID = bytes(range(1, 17)); SID = bytes(range(1, 9))

def log_record(body, sev=9, extra=None):
    return (f64(1, T) + f64(11, T) + vi(2, sev) + s(3, "INFO") + ld(5, anyv(body))
            + attrs(6, extra or {"request_id": "r-1", "http.status_code": 502})
            + ld(9, TID) + ld(10, SID))

def logs():
    recs = ld(2, log_record("payment failed: timeout")) + ld(2, log_record({"msg": "nested", "n": [1, 2.5, True]}, 17))
    return ld(1, resource("payment") + ld(2, ld(1, s(1, "scope")) + recs))

def span(name, parent=b''):
    return (ld(1, TID) + ld(2, SID) + ld(4, parent) + s(5, name) + vi(6, 2) + f64(7, T) + f64(8, T + 5_000_000)
            + attrs(9, {"http.route": "/orders", "request_id": "r-1"})
            + ld(11, f64(1, T + 1) + s(2, "retry")) + ld(13, ld(1, TID) + ld(2, SID))
            + ld(15, s(2, "boom") + vi(3, 2)))

def traces():
    return ld(1, resource("order") + ld(2, ld(2, span("GET /orders")) + ld(2, span("db", bytes(8)))))

def ndp(v, a=None):
    return attrs(7, a or {"route": "/x"}) + f64(2, T - 10**9) + f64(3, T) + dbl(4, v)

def metrics():
    gauge = s(1, "cpu") + s(3, "1") + ld(5, ld(1, ndp(0.5)))
    sm = s(1, "requests") + ld(7, ld(1, ndp(10.0)) + vi(2, 2) + vi(3, 1))
    hdp = (attrs(9, {"route": "/x"}) + f64(2, T - 10**9) + f64(3, T) + f64(4, 6) + dbl(5, 12.5)
           + ld(6, b''.join(struct.pack('<Q', c) for c in [1, 2, 3])) + ld(7, b''.join(struct.pack('<d', x) for x in [1.0, 5.0])))
    hist = s(1, "latency") + s(3, "ms") + ld(9, ld(1, hdp) + vi(2, 1))
    edp = (attrs(1, {"route": "/x"}) + f64(2, T - 10**9) + f64(3, T) + f64(4, 5) + dbl(5, 9.0) + sint(6, 2) + f64(7, 1)
           + ld(8, sint(1, -2) + ld(2, b''.join(varint(c) for c in [1, 2, 1]))) + ld(9, sint(1, 0) + ld(2, varint(1))))
    exph = s(1, "size") + ld(10, ld(1, edp) + vi(2, 2))
    sdp = attrs(7, {"route": "/x"}) + f64(2, T - 10**9) + f64(3, T) + f64(4, 3) + dbl(5, 3.0) + ld(6, dbl(1, 0.5) + dbl(2, 1.0))
    summ = s(1, "rpc") + ld(11, ld(1, sdp))
    ms = b''.join(ld(2, m) for m in [gauge, sm, hist, exph, summ])
    return ld(1, resource("api") + ld(2, ms))

def write(target, name, data):
    d = os.path.join(os.path.dirname(__file__), "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

write("otlp_logs", "two-records", logs())
write("otlp_traces", "two-spans", traces())
write("otlp_metrics", "every-kind", metrics())

res = {"attributes": [{"key": "service.name", "value": {"stringValue": "payment"}}]}
jlogs = {"resourceLogs": [{"resource": res, "scopeLogs": [{"logRecords": [{
    "timeUnixNano": str(T), "severityNumber": 17, "severityText": "ERROR", "body": {"stringValue": "timeout"},
    "traceId": TID.hex(), "spanId": SID.hex(),
    "attributes": [{"key": "request_id", "value": {"stringValue": "r-1"}},
                   {"key": "n", "value": {"arrayValue": {"values": [{"intValue": "3"}, {"doubleValue": 1.5}]}}}]}]}]}]}
jtraces = {"resourceSpans": [{"resource": res, "scopeSpans": [{"spans": [{
    "traceId": TID.hex(), "spanId": SID.hex(), "name": "GET /pay", "kind": 2,
    "startTimeUnixNano": str(T), "endTimeUnixNano": str(T + 1000), "status": {"code": 2, "message": "x"},
    "events": [{"timeUnixNano": str(T), "name": "e"}], "links": [{"traceId": TID.hex(), "spanId": SID.hex()}]}]}]}]}
jmetrics = {"resourceMetrics": [{"resource": res, "scopeMetrics": [{"metrics": [
    {"name": "reqs", "sum": {"aggregationTemporality": 1, "isMonotonic": True, "dataPoints": [
        {"asInt": "5", "timeUnixNano": str(T), "attributes": [{"key": "route", "value": {"stringValue": "/x"}}]}]}},
    {"name": "lat", "histogram": {"aggregationTemporality": 2, "dataPoints": [
        {"count": "3", "sum": 4.5, "bucketCounts": ["1", "2", "0"], "explicitBounds": [1, 2], "timeUnixNano": str(T)}]}}]}]}]}
write("otlp_json", "logs", b"\x00" + json.dumps(jlogs).encode())
write("otlp_json", "traces", b"\x01" + json.dumps(jtraces).encode())
write("otlp_json", "metrics", b"\x02" + json.dumps(jmetrics).encode())

lines = [
    (0, '{"ts":"2026-11-22T10:00:00.123Z","level":"error","msg":"payment failed","trace_id":"0102030405060708090a0b0c0d0e0f10","request_id":"r-1","n":{"a":[1,2]}}'),
    (1, 'time=2026-11-22T10:00:00Z level=warn msg="slow query" duration=1.5s user=u-7'),
    (2, '2026-11-22 10:00:00,123 ERROR [main] something broke'),
    (3, '{"level":30,"time":1700000000000,"msg":"pino"}'),
    (4, '10.0.0.1 - alice [22/Nov/2026:10:00:00 +0000] "GET /orders HTTP/1.1" 502 123 "-" "curl/8"'),
    (5, '^(?P<time>\\S+) (?P<level>\\w+) (?P<msg>.*)$\n2026-11-22T10:00:00Z WARN disk almost full'),
    (6, '2026-11-22T10:00:00.123456789+01:00'),
    (6, '1700000000.5'),
    (6, '1e20s'),
]
for i, (mode, text) in enumerate(lines):
    write("agent_parse", f"line-{i}", bytes([mode]) + text.encode())

for i, q in enumerate(['timeout', 'service:payment AND (severity:error OR http.status_code:502)',
                       'NOT "connection refused" user_id:u-7', '(((a)))', 'body:time* -debug']):
    write("query_parse", f"q-{i}", q)

rule = '''[[rule]]
name = "HighErrorRate"
for = "2m"
labels = { severity = "critical" }
annotations = { summary = "{{ $labels.service }} errors at {{ $value | humanizePercentage }}" }
[rule.metric]
query = "rate(http_requests_total{status=~\\"5..\\"}[5m])"
op = ">"
threshold = 0.05

[[rule]]
name = "PaymentTimeouts"
[rule.logs]
query = "timeout"
service = "payment"
over = "5m"
op = ">"
threshold = 10
'''
write("alert_rules", "rules", b"\x00" + rule.encode())
write("alert_rules", "template", b"\x02" + struct.pack('<d', 1234.5) + b'{{ $labels.service }} at {{ $value | humanize }} ({{ printf "%.2f" $value }}){{- " " -}}\x00service=payment\n')

# Structured targets (wal_recovery, agent_cursor's buffer) start from the fuzzer's own inputs.
write("agent_cursor", "checkpoints", b"\x00" + json.dumps({"version": 1, "files": [
    {"id": {"dev": 1, "ino": 2, "fp": 3}, "offset": 120, "path": "/var/log/app.log", "updated": 1700000000}]}).encode())
write("tsdb_chunk", "samples", b"\x01" + b''.join(struct.pack('<qd', 1_700_000_000_000 + 15_000 * i, 0.5 * i) for i in range(20)))
write("tsdb_series_log", "series", b"\x00" + struct.pack('<I', 7) + bytes([1, 0]) + struct.pack('<H', 4) + b"reqs"
      + struct.pack('<H', 0) + struct.pack('<H', 1) + struct.pack('<H', 7) + b"service" + struct.pack('<H', 7) + b"payment")
