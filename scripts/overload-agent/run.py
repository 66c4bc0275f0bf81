#!/usr/bin/env python3
"""The agent against a slow collector (scripts/overload-agent.sh runs this).

Starts a real collector, a slow proxy in front of it (this file: every request waits
--delay seconds, and a share is answered 503 or 429 with Retry-After instead of being
forwarded), and a real agent shipping to the proxy. Then offers the agent more than it can
ship: --clients threads post OTLP/HTTP JSON logs to its receiver as fast as it answers, and
one thread appends lines to a file the agent tails. Meanwhile the agent's RSS and its disk
buffer are sampled. When the load stops the proxy turns healthy and the script waits until
everything is shipped, then counts every record by its unique id among the requests the
collector answered 2xx: each acknowledged receiver record and each file line must be
there exactly once. Standard library only. Prints one JSON line last; exit 1 on a loss or
a duplicate.
"""

import argparse
import collections
import gzip
import http.client
import http.server
import json
import os
import random
import re
import subprocess
import sys
import threading
import time

ID_RE = re.compile(rb"ovl-([rf])-(\d+)-(\d+)")


def parse_ready(line, prefix):
    if not line.startswith(prefix):
        return None
    out = {}
    for part in line[len(prefix):].split():
        k, _, v = part.partition("=")
        out[k] = v
    return out


def start(cmd, log_path, prefix, env=None):
    log = open(log_path, "w")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        ready = parse_ready(line.strip(), prefix)
        if ready:
            # Keep draining stdout so the child never blocks on it.
            threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
            return p, ready
    p.kill()
    raise SystemExit(f"{cmd[1]} did not start; see {log_path}")


class Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True


def make_handler(state):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, status, body=b"", headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            is_data = self.path.startswith("/v1/")
            if state["slow"] and is_data:
                time.sleep(state["delay"])
                r = random.random()
                if r < state["p503"]:
                    with state["lock"]:
                        state["stats"]["answered_503"] += 1
                    return self.reply(503, b"slow collector", [("Retry-After", "1")])
                if r < state["p503"] + state["p429"]:
                    with state["lock"]:
                        state["stats"]["answered_429"] += 1
                    return self.reply(429, b"slow collector", [("Retry-After", "1")])
            fwd = {k: v for k, v in self.headers.items()
                   if k.lower() in ("content-type", "content-encoding", "authorization")}
            try:
                c = http.client.HTTPConnection(state["upstream"], timeout=30)
                c.request("POST", self.path, body=body, headers=fwd)
                resp = c.getresponse()
                answer = resp.read()
                status = resp.status
                hdrs = [(k, v) for k, v in resp.getheaders()
                        if k.lower() in ("content-type", "retry-after")]
                c.close()
            except OSError as e:
                with state["lock"]:
                    state["stats"]["upstream_errors"] += 1
                return self.reply(502, str(e).encode())
            if is_data and 200 <= status < 300:
                plain = body
                if self.headers.get("Content-Encoding") == "gzip":
                    plain = gzip.decompress(body)
                ids = ID_RE.findall(plain)
                with state["lock"]:
                    state["stats"]["forwarded_2xx"] += 1
                    for m in ids:
                        state["delivered"][m] += 1
            elif is_data:
                with state["lock"]:
                    state["stats"][f"collector_{status}"] += 1
            self.reply(status, answer, hdrs)

    return H


def rss_kib(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def metric(url, name):
    try:
        text = http.client.HTTPConnection(url, timeout=10)
        text.request("GET", "/metrics")
        body = text.getresponse().read().decode()
    except OSError:
        return None
    total = 0.0
    found = False
    for line in body.splitlines():
        if line.startswith(name):
            try:
                total += float(line.rsplit(" ", 1)[1])
                found = True
            except ValueError:
                pass
    return total if found else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skein", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--secs", type=float, default=60)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--pad", type=int, default=150, help="random bytes (hex) per record")
    ap.add_argument("--file-rate", type=int, default=2000, help="file lines per second")
    ap.add_argument("--delay", type=float, default=0.25)
    ap.add_argument("--p503", type=float, default=0.3)
    ap.add_argument("--p429", type=float, default=0.1)
    ap.add_argument("--buffer-mb", type=int, default=16)
    ap.add_argument("--segment-mb", type=int, default=2)
    ap.add_argument("--inflight", type=int, default=8)
    ap.add_argument("--max-request-mb", type=int, default=4)
    ap.add_argument("--drain-timeout", type=float, default=600)
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    work = os.path.join(out, "work")
    os.makedirs(work, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKEIN_")}
    env["SKEIN_LOG"] = "warn"
    env["NO_COLOR"] = "1"

    ccfg = os.path.join(work, "collector.toml")
    with open(ccfg, "w") as f:
        f.write('[listen]\notlp_http = "127.0.0.1:0"\notlp_grpc = "127.0.0.1:0"\napi = "127.0.0.1:0"\n')
    collector, cready = start(
        [a.skein, "collector", "--config", ccfg, "--data-dir", os.path.join(work, "collector-data")],
        os.path.join(out, "collector.log"), "skein collector ready ", env)

    state = {"slow": True, "delay": a.delay, "p503": a.p503, "p429": a.p429,
             "upstream": cready["otlp_http"], "lock": threading.Lock(),
             "stats": collections.Counter(), "delivered": collections.Counter()}
    proxy = Proxy(("127.0.0.1", 0), make_handler(state))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    proxy_addr = f"127.0.0.1:{proxy.server_address[1]}"

    logfile = os.path.join(work, "app.log")
    open(logfile, "w").close()
    acfg = os.path.join(work, "agent.toml")
    rss_limit_mib = 64 + 2 * a.inflight * a.max_request_mb
    with open(acfg, "w") as f:
        f.write(f"""[agent]
id = "overload-agent"
data_dir = "{os.path.join(work, 'agent-data')}"
[collector]
endpoint = "http://{proxy_addr}"
timeout = "10s"
compression = "gzip"
max_in_flight = 4
[batch]
max_records = 500
max_bytes = 262144
max_wait = "200ms"
[retry]
initial_backoff = "100ms"
max_backoff = "2s"
[buffer]
max_mb = {a.buffer_mb}
segment_mb = {a.segment_mb}
when_full = "block"
[receiver]
http = "127.0.0.1:0"
grpc = "127.0.0.1:0"
max_request_bytes = {a.max_request_mb * 1024 * 1024}
max_inflight_requests = {a.inflight}
[telemetry]
listen = "127.0.0.1:0"
[heartbeat]
interval = "2s"
[host_metrics]
enabled = false
[[source]]
name = "ovl"
paths = ["{logfile}"]
read_from = "beginning"
format = "plain"
""")
    agent, aready = start([a.skein, "agent", "--config", acfg],
                          os.path.join(out, "agent.log"), "skein agent ready ", env)
    buffer_dir = os.path.join(work, "agent-data", "buffer")

    stop = threading.Event()
    acked = collections.Counter()
    answers = collections.Counter()
    refusal_retry_after = collections.Counter()
    latencies = []
    lock = threading.Lock()

    def client(t):
        conn = None
        n = 0
        pad_len = a.pad
        while not stop.is_set():
            recs = []
            ids = []
            now = time.time_ns()
            for _ in range(a.batch):
                rid = f"ovl-r-{t}-{n}"
                n += 1
                ids.append(rid)
                recs.append({"timeUnixNano": str(now), "severityNumber": 9,
                             "body": {"stringValue": f"{rid} {os.urandom(pad_len).hex()}"}})
            body = json.dumps({"resourceLogs": [{
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "ovl"}}]},
                "scopeLogs": [{"logRecords": recs}]}]}).encode()
            started = time.time()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(aready["otlp_http"], timeout=60)
                conn.request("POST", "/v1/logs", body=body,
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                status = resp.status
                ra = resp.getheader("Retry-After")
            except OSError:
                conn = None
                status, ra = "error", None
            took = time.time() - started
            with lock:
                answers[status] += 1
                latencies.append(took)
                if status == 200:
                    for i in ids:
                        acked[i] += 1
                elif status in (429, 503):
                    refusal_retry_after[(status, ra is not None)] += 1
            if status != 200:
                # A client that backs off a little, not the full Retry-After: the offer stays
                # above what the agent can ship.
                time.sleep(0.05)

    written = [0]

    def file_writer():
        n = 0
        tick = 0.05
        per_tick = max(1, int(a.file_rate * tick))
        with open(logfile, "a") as f:
            while not stop.is_set():
                t0 = time.time()
                lines = []
                for _ in range(per_tick):
                    lines.append(f"ovl-f-0-{n} {os.urandom(a.pad).hex()}\n")
                    n += 1
                f.write("".join(lines))
                f.flush()
                written[0] = n
                time.sleep(max(0.0, tick - (time.time() - t0)))

    samples = []

    def sampler():
        while not stop.is_set() or not sampler_done.is_set():
            r = rss_kib(agent.pid)
            samples.append({"t": round(time.time() - t_start, 1),
                            "rss_kib": r.get("VmRSS", 0),
                            "buffer_bytes": dir_bytes(buffer_dir),
                            "shipped_ids": len(state["delivered"])})
            time.sleep(0.5)

    sampler_done = threading.Event()
    t_start = time.time()
    threads = [threading.Thread(target=client, args=(t,), daemon=True) for t in range(a.clients)]
    threads.append(threading.Thread(target=file_writer, daemon=True))
    smp = threading.Thread(target=sampler, daemon=True)
    smp.start()
    for th in threads:
        th.start()
    time.sleep(a.secs)
    stop.set()
    for th in threads:
        th.join()
    load_end = time.time()
    hwm_during_load = max((s["rss_kib"] for s in samples), default=0)

    # The collector recovers: the proxy forwards everything at once from now on.
    state["slow"] = False
    # What must arrive: every record the receiver answered 200 and every line written.
    want = {(b"r",) + tuple(x.encode() for x in k.split("-")[2:4]) for k in acked}
    want |= {(b"f", b"0", str(i).encode()) for i in range(written[0])}
    drained_at = None
    deadline = time.time() + a.drain_timeout
    while time.time() < deadline:
        with state["lock"]:
            have = set(state["delivered"])
        if want <= have:
            drained_at = time.time()
            break
        time.sleep(1)
    # Late duplicates, if any, would show up now.
    time.sleep(5)
    sampler_done.set()
    stop.set()
    with state["lock"]:
        delivered = dict(state["delivered"])
        stats = dict(state["stats"])
    missing = [w for w in want if w not in delivered]
    twice = [k for k, v in delivered.items() if v > 1]
    extra = [k for k in delivered if k not in want]
    collector_records = metric(cready["api"], 'skein_received_records_total{signal="logs"}')
    agent_metrics_dropped = metric(aready["metrics"], "skein_agent_dropped_total")
    final = rss_kib(agent.pid)
    agent.terminate()
    agent.wait(timeout=60)
    collector.terminate()
    collector.wait(timeout=60)
    proxy.shutdown()

    with open(os.path.join(out, "samples.jsonl"), "w") as f:
        for s in samples:
            f.write(json.dumps(s) + "\n")
    lat = sorted(latencies)
    pct = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))], 3) if lat else None
    result = {
        "bench": "overload-agent",
        "secs": a.secs,
        "clients": a.clients,
        "records_per_request": a.batch,
        "bytes_per_record": 2 * a.pad + 20,
        "file_lines_per_s": a.file_rate,
        "proxy": {"delay_s": a.delay, "p503": a.p503, "p429": a.p429, **stats},
        "receiver_answers": {str(k): v for k, v in answers.items()},
        "receiver_refusals_with_retry_after": {f"{k[0]} retry_after={k[1]}": v
                                               for k, v in refusal_retry_after.items()},
        "receiver_latency_s": {"p50": pct(0.5), "p99": pct(0.99), "max": lat[-1] if lat else None},
        "offered_records": (sum(answers.values())) * a.batch + written[0],
        "acked_receiver_records": len(acked),
        "file_lines_written": written[0],
        "delivered_unique": len(delivered),
        "missing": len(missing),
        "delivered_twice": len(twice),
        # Records of requests the client saw fail (a timeout) may still have been buffered:
        # at-least-once allows them. Records of a 429/503 would be a bug; none are expected.
        "delivered_not_acked": len(extra),
        "collector_received_records": collector_records,
        "agent_dropped_total": agent_metrics_dropped,
        "drain_secs_after_load": round(drained_at - load_end, 1) if drained_at else None,
        "agent_rss_peak_mib": round(final.get("VmHWM", 0) / 1024, 1),
        "agent_rss_peak_during_load_sampled_mib": round(hwm_during_load / 1024, 1),
        "rss_limit_mib": rss_limit_mib,
        "buffer_limit_mib": a.buffer_mb,
        "buffer_peak_mib": round(max((s["buffer_bytes"] for s in samples), default=0) / 2**20, 1),
    }
    ok = (not missing and not twice
          and result["agent_rss_peak_mib"] <= rss_limit_mib
          and result["buffer_peak_mib"] <= a.buffer_mb)
    result["ok"] = ok
    print(json.dumps(result))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
