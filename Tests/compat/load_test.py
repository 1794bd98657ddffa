"""A bounded load test of `tessera serve` from a second process on loopback: query threads (dense prefetch →
multivector rerank) and upsert threads run together for a fixed time over keep-alive connections; afterwards
every acknowledged upsert must be counted and a sample read back intact. Prints QPS and latency percentiles as
JSON; exits non-zero on any error or lost write."""

import argparse
import http.client
import json
import random
import sys
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--seconds", type=float, default=30)
parser.add_argument("--query-threads", type=int, default=4)
parser.add_argument("--upsert-threads", type=int, default=2)
parser.add_argument("--batch", type=int, default=8)
args = parser.parse_args()

NAME = "load"
DENSE, TOKENS = 32, 16


def request(connection, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    connection.request(method, path, body=data, headers={"content-type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    return response.status, json.loads(payload) if payload else None


def vector(rng, size):
    return [rng.uniform(-1, 1) for _ in range(size)]


def point(rng, pid):
    return {
        "id": pid,
        "vector": {"dense": vector(rng, DENSE), "tokens": [vector(rng, TOKENS) for _ in range(rng.randint(4, 24))]},
        "payload": {"n": pid, "group": pid % 5},
    }


setup = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
status, _ = request(
    setup,
    "PUT",
    f"/collections/{NAME}",
    {
        "vectors": {
            "dense": {"size": DENSE, "distance": "Cosine"},
            "tokens": {"size": TOKENS, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}},
        }
    },
)
if status != 200:
    sys.exit(f"load: create failed with {status}")
rng = random.Random(1)
initial = 2000
for start in range(0, initial, 200):
    status, _ = request(setup, "PUT", f"/collections/{NAME}/points?wait=true",
                        {"points": [point(rng, i) for i in range(start, start + 200)]})
    if status != 200:
        sys.exit(f"load: seeding failed with {status}")

lock = threading.Lock()
latencies = {"query": [], "upsert": []}
errors = []
acknowledged = []
deadline = time.monotonic() + args.seconds


def query_worker(seed):
    local_rng = random.Random(seed)
    connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
    mine = []
    while time.monotonic() < deadline:
        body = {
            "prefetch": {"query": vector(local_rng, DENSE), "using": "dense", "limit": 50},
            "query": [vector(local_rng, TOKENS) for _ in range(8)],
            "using": "tokens",
            "limit": 10,
            "filter": {"must_not": [{"key": "group", "match": {"value": 0}}]},
        }
        started = time.perf_counter()
        try:
            status, reply = request(connection, "POST", f"/collections/{NAME}/points/query", body)
        except Exception as error:  # a dropped connection is an error of the test
            with lock:
                errors.append(f"query: {error}")
            connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
            continue
        mine.append(time.perf_counter() - started)
        if status != 200 or len(reply["result"]["points"]) == 0:
            with lock:
                errors.append(f"query: status {status}")
    with lock:
        latencies["query"] += mine


def upsert_worker(index):
    local_rng = random.Random(1000 + index)
    connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
    next_id = 1_000_000 * (index + 1)
    mine, ids = [], []
    while time.monotonic() < deadline:
        batch = [point(local_rng, next_id + k) for k in range(args.batch)]
        started = time.perf_counter()
        try:
            status, _ = request(connection, "PUT", f"/collections/{NAME}/points?wait=true", {"points": batch})
        except Exception as error:
            with lock:
                errors.append(f"upsert: {error}")
            connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
            continue
        mine.append(time.perf_counter() - started)
        if status == 200:
            ids += [p["id"] for p in batch]
        else:
            with lock:
                errors.append(f"upsert: status {status}")
        next_id += args.batch
    with lock:
        latencies["upsert"] += mine
        acknowledged.extend(ids)


threads = [threading.Thread(target=query_worker, args=(i,)) for i in range(args.query_threads)]
threads += [threading.Thread(target=upsert_worker, args=(i,)) for i in range(args.upsert_threads)]
began = time.monotonic()
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
elapsed = time.monotonic() - began

# The set-up connection sat idle for the whole run, longer than the server's idle timeout (30 s), so the server
# has closed it, as servers do with idle keep-alive connections: open a new one.
setup.close()
setup = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
status, reply = request(setup, "POST", f"/collections/{NAME}/points/count", {"exact": True})
count = reply["result"]["count"]
sample = random.Random(2).sample(acknowledged, min(50, len(acknowledged)))
status, records = request(setup, "POST", f"/collections/{NAME}/points", {"ids": sample, "with_payload": True})
found = {r["id"]: r["payload"] for r in records["result"]}
lost = [pid for pid in sample if found.get(pid, {}).get("n") != pid]
request(setup, "DELETE", f"/collections/{NAME}")


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round((len(ordered) - 1) * fraction)))] * 1000 if ordered else 0


report = {
    "seconds": round(elapsed, 1),
    "query_threads": args.query_threads,
    "upsert_threads": args.upsert_threads,
    "points_before": initial,
    "queries": len(latencies["query"]),
    "query_qps": round(len(latencies["query"]) / elapsed, 1),
    "query_p50_ms": round(percentile(latencies["query"], 0.5), 2),
    "query_p99_ms": round(percentile(latencies["query"], 0.99), 2),
    "upserts": len(latencies["upsert"]),
    "upserted_points": len(acknowledged),
    "upsert_qps": round(len(latencies["upsert"]) / elapsed, 1),
    "upsert_p50_ms": round(percentile(latencies["upsert"], 0.5), 2),
    "upsert_p99_ms": round(percentile(latencies["upsert"], 0.99), 2),
    "errors": len(errors),
    "count_after": count,
}
print("load: " + json.dumps(report))
if errors:
    sys.exit(f"load: {len(errors)} errors, first: {errors[0]}")
if count != initial + len(acknowledged):
    sys.exit(f"load: {count} points counted, {initial + len(acknowledged)} acknowledged")
if lost:
    sys.exit(f"load: acknowledged points missing or wrong: {lost[:5]}")
print(f"load: no errors, every acknowledged upsert counted, {len(sample)} read back intact")
