#!/usr/bin/env python3
"""Cluster mode beside single-node mode, in one run, on this machine (standard library only).

For each mode it starts real processes (the release `skein` binary; nats-server for the
cluster: 3 servers, stream replicas 3, 3 collectors, index_replicas 2), then:
  1. ingest: RECORDS log records as OTLP/JSON in batches of BATCH from CLIENTS threads, every
     batch round-robin over the nodes; CPU seconds of every Skein and NATS process (from
     /proc/<pid>/stat) divided by the records acknowledged;
  2. freshness: a log with a new request ID sent to one node, then looked up by that ID
     through another node (single node: the same) until found; PROBES times;
  3. lookup: GET /api/v1/traces/<request id> of ingested records through a node that does not
     own the record's partition (single node: the one node); LOOKUPS times;
  4. cluster only: kill -9 of one collector; the time until every partition again has two
     caught-up owners, and whether lookups through a survivor stayed whole meanwhile.
Prints a JSON summary. Usage: scripts/bench-cluster.sh (builds the release binary first).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SKEIN = os.environ.get("SKEIN", "target/release/skein")
NATS = os.environ.get("SKEIN_NATS_SERVER") or shutil.which("nats-server")
RECORDS = int(os.environ.get("RECORDS", "200000"))
BATCH = int(os.environ.get("BATCH", "500"))
CLIENTS = int(os.environ.get("CLIENTS", "4"))
PROBES = int(os.environ.get("PROBES", "200"))
LOOKUPS = int(os.environ.get("LOOKUPS", "1000"))
PARTITIONS = 6


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http(method, url, body=None, headers=None, timeout=30):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


class Proc:
    def __init__(self, args, log):
        self.log = open(log, "w")
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.ready = {}

    def wait_ready(self, word="ready"):
        for line in self.p.stdout:
            if word in line:
                for kv in line.split():
                    if "=" in kv:
                        k, v = kv.split("=", 1)
                        self.ready[k] = v
                threading.Thread(target=self.p.stdout.read, daemon=True).start()
                return self.ready
        raise SystemExit(f"process ended before it was ready: {self.p.args}")

    def kill(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()


def start_nats(n, tmp):
    clients = [free_port() for _ in range(n)]
    routes = [free_port() for _ in range(n)]
    procs = []
    for i in range(n):
        args = [NATS, "-a", "127.0.0.1", "-p", str(clients[i]), "--server_name", f"b{i}", "-js",
                "-sd", f"{tmp}/nats{i}"]
        if n > 1:
            others = ",".join(f"nats://127.0.0.1:{routes[j]}" for j in range(n) if j != i)
            args += ["--cluster", f"nats://127.0.0.1:{routes[i]}", "--cluster_name", "bench",
                     "--routes", others]
        procs.append(subprocess.Popen(args, stdout=open(f"{tmp}/nats{i}.log", "w"),
                                      stderr=subprocess.STDOUT))
    for port in clients:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
    return procs, [f"nats://127.0.0.1:{p}" for p in clients]


def start_collector(tmp, name, nats_urls=None, n=1):
    cfg = f"{tmp}/{name}.toml"
    text = (f'data_dir = "{tmp}/{name}"\n[listen]\notlp_http = "127.0.0.1:0"\n'
            f'otlp_grpc = "127.0.0.1:0"\napi = "127.0.0.1:0"\n')
    if nats_urls:
        urls = ", ".join(f'"{u}"' for u in nats_urls)
        text += (f"[cluster]\nnats = [{urls}]\nnode = \"{name}\"\npartitions = {PARTITIONS}\n"
                 f"replicas = {min(3, n)}\nindex_replicas = {min(2, n)}\nlease_ttl_ms = 6000\n")
    with open(cfg, "w") as f:
        f.write(text)
    p = Proc([SKEIN, "collector", "--config", cfg], f"{tmp}/{name}.log")
    r = p.wait_ready()
    p.http = "http://" + r["otlp_http"]
    p.api = "http://" + r["api"]
    p.name = name
    return p


def log_body(start, n, run):
    recs = []
    for i in range(n):
        rid = f"req-{run}-{start + i}"
        recs.append({
            "timeUnixNano": str(time.time_ns()),
            "severityNumber": 9,
            "body": {"stringValue": f"order {start + i} accepted for customer {i % 977}"},
            "attributes": [{"key": "request_id", "value": {"stringValue": rid}}],
        })
    return json.dumps({"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "bench"}}]},
        "scopeLogs": [{"logRecords": recs}]}]}).encode()


def pct(values, q):
    v = sorted(values)
    if not v:
        return None
    return v[min(len(v) - 1, int(q * len(v)))]


def ingest(nodes, run):
    batches = list(range(0, RECORDS, BATCH))
    lock = threading.Lock()
    acked = [0]
    refused = [0]

    def worker(k):
        for idx in range(k, len(batches), CLIENTS):
            start = batches[idx]
            body = log_body(start, min(BATCH, RECORDS - start), run)
            node = nodes[idx % len(nodes)]
            hdr = {"content-type": "application/json", "skein-batch-id": f"bench:{run}:{idx}"}
            while True:
                code, _ = http("POST", node.http + "/v1/logs", body, hdr)
                if code == 200:
                    with lock:
                        acked[0] += min(BATCH, RECORDS - start)
                    break
                with lock:
                    refused[0] += 1
                time.sleep(0.2)

    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return acked[0], time.time() - t0, refused[0]


def lookup_ms(api, rid):
    t0 = time.perf_counter()
    code, body = http("GET", f"{api}/api/v1/traces/{rid}")
    ms = (time.perf_counter() - t0) * 1000
    partial = b'"partial":true' in body
    return ms, code, partial


def wait_whole(api, rid, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        _, code, partial = lookup_ms(api, rid)
        if code == 200 and not partial:
            return True
        time.sleep(0.05)
    return False


def owners(api):
    _, body = http("GET", api + "/api/v1/cluster")
    try:
        return json.loads(body)
    except ValueError:
        return {}


def balanced(api, live):
    s = owners(api)
    parts = s.get("partition_owners", [])
    return len(parts) == PARTITIONS and all(
        len(p["owners"]) == min(2, len(live)) and all(o["ready"] and o["node"] in live
                                                       for o in p["owners"]) for p in parts)


def crc32_partition(key):
    import zlib
    return zlib.crc32(key.encode()) % PARTITIONS


def measure(mode, tmp):
    run = f"{mode}{int(time.time())}"
    nats = []
    if mode == "cluster":
        nats, urls = start_nats(3, tmp)
        nodes = [start_collector(tmp, f"n{i}", urls, 3) for i in range(3)]
        end = time.time() + 90
        while not balanced(nodes[0].api, {"n0", "n1", "n2"}) and time.time() < end:
            time.sleep(0.2)
    else:
        nodes = [start_collector(tmp, "single")]
    pids = [n.p.pid for n in nodes] + [p.pid for p in nats]
    nats_pids = [p.pid for p in nats]
    cpu0 = sum(cpu_seconds(p) for p in pids)
    nats0 = sum(cpu_seconds(p) for p in nats_pids)
    acked, secs, refused = ingest(nodes, run)
    last = f"req-{run}-{RECORDS - 1}"
    wait_whole(nodes[-1].api, last, 120)
    # Every node indexes in the background: wait until each partition's owners caught up.
    if mode == "cluster":
        end = time.time() + 120
        while time.time() < end:
            s = owners(nodes[0].api)
            if all(o["lag"] == 0 and o["ready"] for p in s.get("partition_owners", [])
                   for o in p["owners"]):
                break
            time.sleep(0.2)
    cpu1 = sum(cpu_seconds(p) for p in pids)
    nats1 = sum(cpu_seconds(p) for p in nats_pids)
    out = {"mode": mode, "records": acked, "ingest_seconds": round(secs, 2),
           "records_per_s": round(acked / secs), "refused_retried": refused,
           "cpu_seconds": round(cpu1 - cpu0, 2),
           "cpu_us_per_record": round((cpu1 - cpu0) / max(acked, 1) * 1e6, 2),
           "nats_cpu_us_per_record": round((nats1 - nats0) / max(acked, 1) * 1e6, 2)}

    # Freshness: sent to node 0, looked up through the last node.
    fresh = []
    for i in range(PROBES):
        rid = f"fresh-{run}-{i}"
        body = log_body(0, 1, run).replace(f"req-{run}-0".encode(), rid.encode())
        code, _ = http("POST", nodes[0].http + "/v1/logs", body, {"content-type": "application/json"})
        if code != 200:
            continue
        t0 = time.perf_counter()
        while True:
            _, c, _ = lookup_ms(nodes[-1].api, rid)
            if c == 200:
                fresh.append((time.perf_counter() - t0) * 1000)
                break
            if time.perf_counter() - t0 > 30:
                break
            time.sleep(0.005)
    out["freshness_ms"] = {"p50": round(pct(fresh, 0.5), 1), "p99": round(pct(fresh, 0.99), 1),
                           "n": len(fresh)}

    # Lookups through a node that does not own the record's partition.
    via = nodes[-1]
    held = set()
    if mode == "cluster":
        for p in owners(via.api).get("partition_owners", []):
            if any(o["node"] == via.name for o in p["owners"]):
                held.add(p["partition"])
    lat = []
    i = 0
    while len(lat) < LOOKUPS and i < RECORDS:
        rid = f"req-{run}-{(i * 7919) % RECORDS}"
        i += 1
        # The partition of a log without a trace ID is its first key's (here: the request id).
        if mode == "cluster" and crc32_partition(rid) in held:
            continue
        ms, code, partial = lookup_ms(via.api, rid)
        if code == 200 and not partial:
            lat.append(ms)
    out["lookup_ms"] = {"p50": round(pct(lat, 0.5), 2), "p99": round(pct(lat, 0.99), 2),
                        "n": len(lat), "through_non_owner": mode == "cluster"}

    if mode == "cluster":
        victim = nodes[1]
        t0 = time.time()
        victim.kill(signal.SIGKILL)
        short = 0
        checks = 0
        while not balanced(nodes[0].api, {"n0", "n2"}) and time.time() - t0 < 120:
            rid = f"req-{run}-{(checks * 104729) % RECORDS}"
            _, code, partial = lookup_ms(nodes[0].api, rid)
            checks += 1
            if code != 200 or partial:
                short += 1
            time.sleep(0.1)
        out["recovery"] = {"seconds_until_two_owners_again": round(time.time() - t0, 1),
                           "lookups_during": checks, "lookups_not_whole_during": short}
    for n in nodes:
        n.kill()
    for p in nats:
        p.terminate()
        p.wait()
    return out


def main():
    if not NATS:
        sys.exit("nats-server is needed: scripts/install-nats.sh")
    results = []
    for mode in ("single", "cluster"):
        with tempfile.TemporaryDirectory(prefix=f"skein-bench-{mode}-") as tmp:
            r = measure(mode, tmp)
            print(json.dumps(r), flush=True)
            results.append(r)
    single, cluster = results
    print(json.dumps({
        "cpu_ratio_cluster_to_single": round(cluster["cpu_us_per_record"] / single["cpu_us_per_record"], 2),
        "machine": f"{os.cpu_count()} cores",
    }))


if __name__ == "__main__":
    main()
