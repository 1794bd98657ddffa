"""Part B: an exact count with a filter on a keyword payload field that keeps 1% of the points, through
`tessera serve`, with and without a payload index on the field.

The collection (FILTER_POINTS points, default 10⁶, a 4-d dense vector each, payload {"group": "g<k>"} with k
the point's number modulo FILTER_GROUPS) is written by `tessera import --payload`. The counts without the index
run first; then the server stops, `tessera index-payload NAME group keyword` declares the index, and a new
server answers the same counts. The times are client-side HTTP round trips on loopback."""

import json
import os
import time

import numpy as np

from engine_common import Client, Server, encode, log, median, percentile, run_command


NAME = "filter"


def generate(folder, points, groups, seed):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((points, 4), dtype=np.float32)
    np.save(os.path.join(folder, "vectors.npy"), vectors)
    with open(os.path.join(folder, "ids.txt"), "w") as ids, open(os.path.join(folder, "payload.jsonl"), "w") as payload:
        for start in range(0, points, 100_000):
            stop = min(points, start + 100_000)
            ids.write("".join(f"{i + 1}\n" for i in range(start, stop)))
            payload.write("".join(f'{{"group":"g{i % groups}"}}\n' for i in range(start, stop)))


def timed_counts(port, body, repeats, budget_seconds, expected):
    """Counts until `repeats` are done or the budget is spent (at least 3); returns latencies in ms."""
    client = Client(port)
    data = encode(body)
    latencies = []
    deadline = time.monotonic() + budget_seconds
    while len(latencies) < repeats and (len(latencies) < 3 or time.monotonic() < deadline):
        seconds, payload = client.timed("POST", f"/collections/{NAME}/points/count", data)
        latencies.append(seconds * 1e3)
        if len(latencies) == 1:
            count = json.loads(payload)["result"]["count"]
            if count != expected:
                raise RuntimeError(f"B: the filter counted {count} points, expected {expected}")
    client.close()
    return latencies


def run(settings, report):
    part = "B. filter"
    folder = os.path.join(settings.work, "filter-input")
    data = os.path.join(settings.work, "filter-data")
    points, groups = settings.filter_points, settings.filter_groups
    log(f"B: generating {points} points in {groups} groups")
    generate(folder, points, groups, settings.seed)
    seconds, output = run_command(
        [settings.tessera, "import", NAME, "--data", data,
         "--vectors", f"v={os.path.join(folder, 'vectors.npy')}",
         "--ids", os.path.join(folder, "ids.txt"),
         "--payload", os.path.join(folder, "payload.jsonl")], "tessera import (filter)")
    log(output.strip())
    report.add(part, "filter.import_s", f"tessera import of {points} points with payloads", seconds, "s")

    group = 7 % groups
    body = {"filter": {"must": [{"key": "group", "match": {"value": f"g{group}"}}]}, "exact": True}
    expected = len(range(group, points, groups))
    with Server(settings.tessera, data, settings.threads, settings.pidfile) as server:
        server.wait_ready()
        client = Client(server.port)
        health = []
        for _ in range(50):
            health.append(client.raw("GET", "/healthz")[2] * 1e3)
        client.close()
        scan_first = timed_counts(server.port, body, 1, 0, expected)  # opens the collection
        timed_counts(server.port, body, 1, 0, expected)
        scan = timed_counts(server.port, body, settings.filter_scan_repeats, 30, expected)
    log(f"B: {len(scan)} counts without the index, median {median(scan):.2f} ms")

    index_seconds, output = run_command([settings.tessera, "index-payload", NAME, "group", "keyword", "--data", data],
                                  "tessera index-payload")
    log(output.strip())
    with Server(settings.tessera, data, settings.threads, settings.pidfile) as server:
        server.wait_ready()
        first = timed_counts(server.port, body, 1, 0, expected)
        timed_counts(server.port, body, 3, 0, expected)
        indexed = timed_counts(server.port, body, settings.filter_repeats, 60, expected)
    log(f"B: {len(indexed)} counts with the index, median {median(indexed):.3f} ms")

    share = f"{expected} of {points} points"
    report.add(part, "filter.count_indexed_ms",
               f"count, keyword index ({share}; median of {len(indexed)}, HTTP round trip included)",
               median(indexed), "ms", upper=1)
    report.add(part, "filter.count_indexed_p95_ms", "count, keyword index, p95", percentile(indexed, 0.95), "ms")
    report.add(part, "filter.count_indexed_first_ms",
               "count, keyword index, the first request of a new server (opens the collection)",
               first[0], "ms")
    report.add(part, "filter.count_scan_ms", f"count without the index (median of {len(scan)})", median(scan), "ms")
    report.add(part, "filter.count_scan_first_ms",
               "count without the index, the first request of a new server", scan_first[0], "ms")
    report.add(part, "filter.scan_over_indexed",
               "without / with the index", f"{median(scan) / median(indexed):.1f}×", None)
    report.add(part, "filter.index_payload_s",
               "tessera index-payload (declare and build, process included)", index_seconds, "s")
    report.add(part, "filter.healthz_ms", "GET /healthz round trip (median of 50), for scale", median(health), "ms")
    report.context["filter"] = {"points": points, "groups": groups, "matching": expected,
                                "counts_indexed": len(indexed), "counts_scan": len(scan)}
