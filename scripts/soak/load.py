#!/usr/bin/env python3
"""The soak's load generator: a steady rate of requests to the demo's gateway.

Like the demo's own generator (demo/src/load.rs): 65 % orders without a coupon, 20 % with a
coupon, 15 % lookups of a recently placed order. Unlike it, every request carries its own
X-Request-ID (soak-<16 hex>), so that each one can be looked up later, and every request is
written down (one JSON line each, at most MAX_RECORDS lines) for the checker. Runs until
SIGTERM or SIGINT, then waits for the requests in flight.

Standard library only.
"""

import argparse
import http.client
import json
import random
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

MAX_IN_FLIGHT = 64  # a tick that finds this many in flight is skipped (counted)
TIMEOUT_S = 10.0  # one request's time limit
MAX_RECORDS = 2_000_000  # lines written at most (an hour at 500/s)
MAX_RECENT = 1000  # placed order IDs kept for lookups
SKUS = ["pizza", "burger", "ramen", "salad", "tacos", "curry"]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gateway", required=True, help="host:port")
    ap.add_argument("--rate", type=float, default=10.0, help="requests per second")
    ap.add_argument("--out", required=True, help="JSON lines, one per request")
    ap.add_argument("--seed", type=int, default=16)
    a = ap.parse_args()
    if not (0 < a.rate <= 500):
        sys.exit("load.py: --rate must be above 0 and at most 500")
    host, port = a.gateway.rsplit(":", 1)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    rng = random.Random(a.seed)
    run_tag = random.Random().getrandbits(24)
    out = open(a.out, "a", buffering=1)
    lock = threading.Lock()
    recent = []
    counts = {"sent": 0, "skipped": 0, "written": 0}
    in_flight = threading.Semaphore(MAX_IN_FLIGHT)
    local = threading.local()

    def conn():
        c = getattr(local, "c", None)
        if c is None:
            c = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT_S)
            local.c = c
        return c

    def send(seq, kind, rid, body, order_id):
        t0 = time.time()
        status, got_rid, placed = 0, rid, None
        try:
            c = conn()
            headers = {"x-request-id": rid}
            if body is not None:
                data = json.dumps(body).encode()
                headers["content-type"] = "application/json"
                c.request("POST", "/orders", body=data, headers=headers)
            else:
                c.request("GET", "/orders/" + order_id, headers=headers)
            r = c.getresponse()
            payload = r.read()
            status = r.status
            got_rid = r.getheader("x-request-id") or rid
            if body is not None and 200 <= status < 300:
                try:
                    placed = json.loads(payload).get("order_id")
                except ValueError:
                    placed = None
            if r.getheader("connection", "").lower() == "close":
                c.close()
                local.c = None
        except (OSError, http.client.HTTPException):
            # No answer (or half of one): counted as status 0; a new connection next time.
            try:
                local.c.close()
            except Exception:
                pass
            local.c = None
        rec = {
            "seq": seq,
            "rid": got_rid,
            "sent_rid": rid,
            "kind": kind,
            "status": status,
            "t0_ms": int(t0 * 1000),
            "dur_ms": int((time.time() - t0) * 1000),
            "order_id": placed or order_id,
        }
        with lock:
            if placed:
                recent.append(placed)
                if len(recent) > MAX_RECENT:
                    del recent[0]
            if counts["written"] < MAX_RECORDS:
                out.write(json.dumps(rec) + "\n")
                counts["written"] += 1
        in_flight.release()

    period = 1.0 / a.rate
    pool = ThreadPoolExecutor(max_workers=MAX_IN_FLIGHT)
    seq = 0
    next_t = time.monotonic()
    while not stop.is_set():
        now = time.monotonic()
        if now < next_t:
            stop.wait(next_t - now)
            continue
        next_t += period
        if next_t < now - 1.0:
            next_t = now  # behind by more than a second (machine busy): do not burst
        if not in_flight.acquire(blocking=False):
            counts["skipped"] += 1
            continue
        seq += 1
        roll = rng.randrange(100)
        rid = "soak-%06x%010x" % (run_tag, seq)
        if roll < 85:
            kind = "place" if roll < 65 else "place_coupon"
            items = [
                {
                    "sku": rng.choice(SKUS),
                    "qty": rng.randint(1, 3),
                    "price_cents": rng.randint(199, 2999),
                }
                for _ in range(rng.randint(1, 3))
            ]
            body = {
                "customer_id": "cust-%d" % rng.randint(1, 500),
                "items": items,
                "coupon": ("SAVE-%04X" % rng.getrandbits(16)) if kind == "place_coupon" else None,
            }
            order_id = None
        else:
            kind = "get"
            body = None
            with lock:
                order_id = rng.choice(recent) if recent else "ord-%012x" % rng.getrandbits(48)
        counts["sent"] += 1
        pool.submit(send, seq, kind, rid, body, order_id)
    pool.shutdown(wait=True)
    out.close()
    print(json.dumps({"sent": counts["sent"], "skipped": counts["skipped"]}), flush=True)


if __name__ == "__main__":
    main()
