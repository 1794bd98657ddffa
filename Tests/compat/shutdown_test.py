"""Graceful shutdown of `tessera serve`: requests in flight when SIGTERM arrives are answered, and what they wrote
is there when the server starts again.

Phase `inflight` (the server running as --pid): calibrates an upsert that takes the server about a second, then
sends two such upserts and a batch of queries on three connections, signals SIGTERM while they run, and checks
that all three are answered with 200 and complete. Phase `verify` (the server
started again on the same data directory): every point of the answered upserts is counted and read back.
Exits non-zero on any failure."""

import argparse
import http.client
import json
import os
import random
import signal
import sys
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("phase", choices=["inflight", "verify"])
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--pid", type=int)
parser.add_argument("--state", required=True, help="a file where `inflight` leaves what `verify` checks")
args = parser.parse_args()

NAME = "shutdown"
DENSE, TOKENS = 32, 16


def fail(message):
    print(f"shutdown: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def request(connection, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    connection.request(method, path, body=data, headers={"content-type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    return response.status, json.loads(payload) if payload else None


def connect():
    return http.client.HTTPConnection("127.0.0.1", args.port, timeout=120)


def points(rng, first, count):
    return [
        {
            "id": pid,
            "vector": {
                "dense": [round(rng.uniform(-1, 1), 4) for _ in range(DENSE)],
                "tokens": [[round(rng.uniform(-1, 1), 4) for _ in range(TOKENS)] for _ in range(16)],
            },
            "payload": {"n": pid},
        }
        for pid in range(first, first + count)
    ]


if args.phase == "verify":
    state = json.load(open(args.state))
    connection = connect()
    status, reply = request(connection, "POST", f"/collections/{NAME}/points/count", {"exact": True})
    if status != 200:
        fail(f"count after restart: status {status}")
    count = reply["result"]["count"]
    if count != state["expected_count"]:
        fail(f"{count} points after restart, {state['expected_count']} acknowledged before SIGTERM")
    sample = random.Random(3).sample(state["acknowledged"], 50)
    status, reply = request(connection, "POST", f"/collections/{NAME}/points", {"ids": sample, "with_payload": True})
    found = {r["id"]: r["payload"]["n"] for r in reply["result"]}
    if any(found.get(pid) != pid for pid in sample):
        fail("points acknowledged before SIGTERM are missing after restart")
    request(connection, "DELETE", f"/collections/{NAME}")
    print(f"shutdown: after restart all {count} points are there, 50 read back intact")
    sys.exit(0)

setup = connect()
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
    fail(f"create: status {status}")
rng = random.Random(11)

# Calibrate: grow the batch until one upsert takes the server at least half a second.
size, next_id, seconds = 250, 0, 0.0
while True:
    batch = points(rng, next_id, size)
    started = time.perf_counter()
    status, _ = request(setup, "PUT", f"/collections/{NAME}/points?wait=true", {"points": batch})
    seconds = time.perf_counter() - started
    if status != 200:
        fail(f"calibration upsert: status {status}")
    next_id += size
    if seconds >= 0.5 or size >= 8000:
        break
    size *= 2
setup.close()
seeded = next_id

answers = {}
sent = threading.Barrier(4)


def send(label, method, path, body):
    connection = connect()
    connection.putrequest(method, path)
    data = json.dumps(body).encode()
    connection.putheader("content-type", "application/json")
    connection.putheader("content-length", str(len(data)))
    connection.endheaders(data)
    sent.wait()
    try:
        response = connection.getresponse()
        answers[label] = (response.status, json.loads(response.read()))
    except Exception as error:
        answers[label] = (None, str(error))


first, second = points(rng, next_id, size), points(rng, next_id + size, size)
queries = {
    "searches": [
        {"query": [[rng.uniform(-1, 1) for _ in range(TOKENS)] for _ in range(8)], "using": "tokens", "limit": 5}
        for _ in range(40)
    ]
}
threads = [
    threading.Thread(target=send, args=("upsert 1", "PUT", f"/collections/{NAME}/points?wait=true", {"points": first})),
    threading.Thread(target=send, args=("upsert 2", "PUT", f"/collections/{NAME}/points?wait=true", {"points": second})),
    threading.Thread(target=send, args=("query batch", "POST", f"/collections/{NAME}/points/query/batch", queries)),
]
for thread in threads:
    thread.start()
sent.wait()  # every request has been written to its socket
time.sleep(min(0.2, seconds / 4))
os.kill(args.pid, signal.SIGTERM)
signalled = time.perf_counter()
for thread in threads:
    thread.join()
answered = time.perf_counter() - signalled
for label, (status, body) in sorted(answers.items()):
    if status != 200:
        fail(f"{label} in flight at SIGTERM was not answered: {status} {body}")
if len(answers["query batch"][1]["result"]) != 40:
    fail("the query batch in flight at SIGTERM came back incomplete")
acknowledged = [p["id"] for p in first + second]
json.dump(
    {"expected_count": seeded + len(acknowledged), "acknowledged": acknowledged},
    open(args.state, "w"),
)
print(
    f"shutdown: 3 requests in flight at SIGTERM ({size} points per upsert, {seconds:.2f} s each alone) "
    f"answered with 200, the last {answered:.2f} s after the signal"
)
