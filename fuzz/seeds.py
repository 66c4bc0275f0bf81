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

# ---- scrape_parse: the first byte is the mode (bit 0 OpenMetrics, bits 1-2 the sample limit:
# 0, 3, 1000, none; bit 4 drops go_*). node-exporter is a real page of node_exporter 1.x
# (`curl 127.0.0.1:<port>/metrics`), kept as captured in scrape_parse/.node-exporter.txt.
here = os.path.dirname(os.path.abspath(__file__))
page = os.path.join(here, "seeds", "scrape_parse", ".node-exporter.txt")
if os.path.exists(page):
    with open(page, "rb") as f:
        write("scrape_parse", "node-exporter", b"\x06" + f.read())
    os.remove(page)
om = '''# HELP http_request_duration_seconds Request latency.
# TYPE http_request_duration_seconds histogram
# UNIT http_request_duration_seconds seconds
http_request_duration_seconds_bucket{method="GET",le="0.05"} 120 1700000000.123
http_request_duration_seconds_bucket{method="GET",le="0.5"} 140 # {trace_id="0af7651916cd43dd8448eb211c80319c"} 0.31 1700000000.1
http_request_duration_seconds_bucket{method="GET",le="+Inf"} 144
http_request_duration_seconds_count{method="GET"} 144
http_request_duration_seconds_sum{method="GET"} 21.5
http_request_duration_seconds_created{method="GET"} 1699990000.0
# TYPE jobs counter
jobs_total{queue="a\\"b\\\\c\\nd"} 17
jobs_created{queue="a\\"b\\\\c\\nd"} 1699990000
# TYPE rpc summary
rpc{quantile="0.5"} 0.01
rpc{quantile="0.99"} NaN
rpc_count 3
rpc_sum 0.2
# TYPE build info
build_info{version="1.2.3",revision="abc"} 1
# TYPE feature stateset
feature{feature="a"} 1
feature{feature="b"} 0
# TYPE queue_size gaugehistogram
queue_size_bucket{le="10"} 3
queue_size_bucket{le="+Inf"} 5
queue_size_gcount 5
queue_size_gsum 22
# TYPE temp gauge
temp{room="x"} -Inf
temp{room="y"} 1.5e-7
# EOF
'''
write("scrape_parse", "openmetrics", b"\x07" + om.encode())
text = '''# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 42
# TYPE http_requests_total counter
http_requests_total{code="200",path="/a,b"} 1027 1700000000000
http_requests_total{code="500",path="/x=\\"y\\""} 3 1700000000000
# TYPE latency histogram
latency_bucket{le="0.1"} 1
latency_bucket{le="+Inf"} 2
latency_sum 0.3
latency_count 2
untyped_thing{a="1"} +Inf
	spaced_metric   { a = "1" , b="2",}   12e3
'''
write("scrape_parse", "text-limit-3", b"\x02" + text.encode())
write("scrape_parse", "text-drop-go", b"\x14" + text.encode())
write("scrape_parse", "openmetrics-cut", b"\x05" + om.replace("# EOF\n", "").encode())

# ---- remote_write: byte 0 bit 0 set, the rest is protobuf and the target compresses it;
# clear, the rest is a snappy (block format) body as a sender sends it. Bit 1: tight limits.
def label(n, v): return ld(1, s(1, n) + s(2, v))
def rw_series(labels, samples, hist=0):
    return ld(1, b''.join(label(n, v) for n, v in labels)
              + b''.join(ld(2, dbl(1, v) + vi(2, t)) for t, v in samples)
              + b''.join(ld(4, vi(1, 3) + sint(4, 1)) for _ in range(hist)))
def rw_meta(t, family, unit=""):
    return ld(3, vi(1, t) + s(2, family) + s(4, "help text") + (s(5, unit) if unit else b""))
def snappy(b):
    try:
        import cramjam
        return bytes(cramjam.snappy.compress_raw(b))
    except ImportError:  # literals only: still snappy's block format
        out = bytearray(varint(len(b)))
        for i in range(0, len(b), 65536):
            chunk = b[i:i + 65536]
            out += bytes([61 << 2]) + struct.pack('<H', len(chunk) - 1) + chunk
        return bytes(out)
MS = 1_700_000_000_000
STALE_NAN = struct.unpack('<d', struct.pack('<Q', 0x7ff0000000000002))[0]
body = b''.join([
    rw_series([("__name__", "node_cpu_seconds_total"), ("cpu", "0"), ("instance", "h1:9100"), ("job", "node"), ("mode", "idle")],
              [(MS + 15000 * i, 1000.5 + 15 * i) for i in range(4)]),
    rw_series([("__name__", "node_load1"), ("instance", "h1:9100"), ("job", "node")], [(MS, 0.42), (MS + 15000, STALE_NAN)]),
    rw_series([("__name__", "http_request_duration_seconds_bucket"), ("job", "api"), ("le", "0.5")], [(MS, 10.0)]),
    rw_series([("__name__", "http_request_duration_seconds_bucket"), ("job", "api"), ("le", "+Inf")], [(MS, 12.0)]),
    rw_series([("__name__", "http_request_duration_seconds_sum"), ("job", "api")], [(MS, 3.25)]),
    rw_series([("__name__", "http_request_duration_seconds_count"), ("job", "api")], [(MS, 12.0)]),
])
write("remote_write", "prometheus-body", b"\x00" + snappy(body))
meta = (rw_meta(1, "node_cpu_seconds_total", "seconds") + rw_meta(3, "http_request_duration_seconds")
        + rw_meta(5, "rpc_duration_seconds") + rw_meta(2, "node_load1"))
write("remote_write", "with-metadata", b"\x00" + snappy(body + meta))
odd = b''.join([
    rw_series([("__name__", "native"), ("job", "x")], [], hist=2),
    rw_series([("job", "no-name")], [(MS, 1.0)]),
    rw_series([("__name__", "dup"), ("a", "1"), ("a", "2")], [(MS, 1.0)]),
    rw_series([("__name__", "empty_value"), ("a", ""), ("b", "caf\u00e9")], [(-1, float("inf")), (MS, float("nan"))]),
    rw_series([("__name__", "long_label_value_here"), ("label_name_long", "value-longer-than-8")], [(MS, 2.0)]),
])
write("remote_write", "odd-series", b"\x01" + odd + meta)
write("remote_write", "tight-limits", b"\x03" + body + odd)

# ---- prom_rules: Prometheus rule files (YAML) as written.
for name in ["demo", "skein"]:
    with open(os.path.join(here, "..", "alerts", f"{name}.rules.yml"), "rb") as f:
        write("prom_rules", f"shipped-{name}", f.read())
write("prom_rules", "anchors-and-records", '''groups:
  - name: records
    interval: 30s
    limit: 10
    rules:
      - record: job:http_requests:rate5m
        expr: sum by (job) (rate(http_requests_total[5m]))
        labels: &common
          team: api
  - name: alerts
    rules:
      - alert: HighErrors
        expr: |
          sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.05
        for: 5m
        keep_firing_for: 1m
        labels: *common
        annotations:
          summary: "{{ $labels.job }} errors at {{ $value | humanizePercentage }}"
          description: '{{ range $k, $v := $labels }}{{ $k }}={{ $v }} {{ end }}'
''')
write("prom_rules", "alias-bomb", "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\ngroups: []\n")

# ---- promql: byte 0 bit 0 a range query, byte 1 the time (x 30 s, from -10 min), byte 2 the
# steps, byte 3 the step (index into 1 ms, 1 s, 15 s, 17 s, 1 min, 5 min, 0, -15 s); then the
# query. Queries from scripts/promql-compare/queries.txt (over the target's series).
queries = [
    'http_requests_total', 'http_requests_total{code!~"2..|4..", instance=~"a:.*"}',
    'rate(http_requests_total[5m])', 'increase(http_requests_total[10m] offset 5m)',
    'sum by (code) (rate(http_requests_total[5m]))', 'irate(node_cpu_seconds_total[1m])',
    'avg_over_time(queue_depth[1m:15s])', 'idelta(queue_depth[5m])',
    'quantile_over_time(0.9, temperature_celsius[10m])', 'absent_over_time(nothing[5m])',
    'scalar(queue_depth{queue="q1"}) * temperature_celsius',
    'histogram_quantile(0.99, sum by (le) (rate(request_duration_seconds_bucket[10m])))',
    'histogram_fraction(0, 0.5, request_duration_seconds_bucket)',
    'holt_winters(queue_depth[30m], 0.1, 0.9)', 'count by (code) (http_requests_total)',
    'topk(1, sum by (instance) (rate(http_requests_total[5m])))',
    'temperature_celsius atan2 on(location) temperature_celsius offset 1m',
    'temperature_celsius > on() group_left vector(2)', 'quantile(0.5, ln(queue_depth - 5))',
    'timestamp(timestamp(queue_depth))', 'label_replace(queue_depth, "queue", "$0", "queue", ".*")',
    'queue_depth or up', 'rate(http_requests_total[5m]', 'max_over_time(deriv(queue_depth[5m])[30m:1m])',
    'predict_linear(node_cpu_seconds_total[10m], 3600)', 'sum(rpc_latency_seconds) without (quantile)',
    'sort_desc(count_values("v", queue_depth))', 'changes(temperature_celsius[1h]) unless resets(queue_depth[1h])',
    'clamp(temperature_celsius, -1, 1) @ 1800', '-0x1F + 2 ^ 3 % 5', 'stddev_over_time(temperature_celsius[1h:17s])',
    'absent(nonexistent{job="x"})', '"a string"', 'http_requests_total[5m]',
]
for i, q in enumerate(queries):
    head = bytes([1, 100, 60, 4]) if i % 2 else bytes([0, 140, 0, 0])
    write("promql", f"q-{i:02}", head + q.encode())

# ---- loki_push: byte 0 bits 0-1: 0 JSON as sent, 1 protobuf as sent (decompressed), 2 protobuf
# the target snappy-compresses, 3 JSON the target gzips; bit 2: the rest is label text.
def loki_entry(secs, nanos, line, meta=()):
    return (ld(1, vi(1, secs) + vi(2, nanos)) + s(2, line)
            + b''.join(ld(3, s(1, n) + s(2, v)) for n, v in meta))
def loki_stream(labels, entries): return ld(1, s(1, labels) + b''.join(ld(2, e) for e in entries) + vi(3, 7))
loki_pb = (loki_stream('{job="promtail", service_name="cart", host="node-1", request_id="r-1", level="warn"}',
                       [loki_entry(1_700_000_000, 5, "cart opened"),
                        loki_entry(1_700_000_001, 0, "cart failed", [("level", "error"), ("trace_id", "0af7651916cd43dd8448eb211c80319c")])])
           + loki_stream('{msg="a \\"q\\"\\t\\u00e9\\x41\\101", raw=`x\\n`,}', [loki_entry(0, 0, "")]))
write("loki_push", "protobuf", b"\x01" + loki_pb)
write("loki_push", "protobuf-snappy", b"\x02" + loki_pb)
loki_json = {"streams": [
    {"stream": {"app": "pay", "instance": "10.1.1.1:80", "n": 3},
     "values": [["1700000000000000002", "payment declined", {"request_id": "r-1", "level": "error"}],
                ["0", "no time"]]},
    {"stream": {"service": "py", "severity": "warning", "logger": "shop"}, "values": [["1700000000000000003", "stock low"]]},
    {"stream": {"a": "b"}}]}
write("loki_push", "json", b"\x00" + json.dumps(loki_json).encode())
write("loki_push", "json-gzip", b"\x03" + json.dumps(loki_json).encode())
write("loki_push", "json-bad-ts", b"\x00" + b'{"streams":[{"stream":{"a":"b"},"values":[["-1","x"],["9x","y"]]}]}')
write("loki_push", "labels", b"\x04" + '{a="\\a\\b\\f\\n\\r\\t\\v\\\\\\"\\\'", b=`raw`, c="\\U0001F600\\u00e9\\377", _d="" ,}'.encode())
write("loki_push", "labels-bad", b"\x04" + b'{a!="b", {c="d"}}')

# ---- logql: the query text. Queries from the LogQL unit tests and Grafana's requests.
logql = [
    '{service="payment"}',
    '{service_name=~"pay.*", level!="debug"} |= "declined" != "test" |~ `card \\d+` !~ "x"',
    '{service="a"} |= "a" or "b"',
    '{service="a"} | json | status >= 500 and path="/cart" or took > 250ms',
    '{service="a"} | logfmt | line_format "{{.status}} {{ .msg }} {{__line__}}"',
    '{service="a"} | json status="response.code", first="items[0]" | drop __error__, x="1" | keep status',
    'sum by (level, detected_level) (count_over_time({label="value"} | drop __error__[1m]))',
    'sum(rate({service="a"}[5m])) by (host)',
    'topk(5, sum by (service) (bytes_over_time({service=~".+"}[1h] offset 5m)))',
    'vector(1)+vector(1)',
    'count_over_time({a="b"}[1m]) / 2 > bool 1 or absent_over_time({a="c"}[5m]) unless vector(0)',
    '{service="payment"} | trace_id="4bf92f3577b34da6a3ce929d0e0e4736" | request_id="r-1"',
    '{host="h1"} | decolorize | (status="503" or n >= 3) , user!~"u.*"',
    '# comment\n{a="b\\x41\\u00e9"} |= `raw`',
]
for i, q in enumerate(logql):
    write("logql", f"q-{i:02}", q)
