#!/usr/bin/env python3
"""Scatter-gather on loopback: a BEIR collection (token vectors exported by `tessera bench export`) served by one
node and, sharded 3 ways, by a cluster of three `tessera serve --cluster` nodes coordinated by one etcd.

Measures, with the same query vectors (exact MaxSim over every token, the collection's whole work per query):
- latency (one client, queries in turn, p50/p95) of the single node, of the 3 shards all on one node (the
  scatter-gather's own cost: the same work, split in three, plus the hops and the merge), and of the 3 shards
  on three nodes;
- throughput (CLIENTS concurrent clients for SECONDS each) with the shards on 1, 2 and 3 nodes (moved with
  `move_shard`) and of the single node;
- that every query's top 10 ids and scores agree between the single node and the cluster.

Usage: cluster_bench.py --tessera BIN --export DIR [--docs N] [--seconds S] [--clients C] [--json OUT]
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, method, path, body=None, timeout=600):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())["result"]


def wait_listening(log_path, process, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a server exited early:\n{open(log_path).read()}")
        for line in open(log_path):
            if line.startswith("listening on 127.0.0.1:"):
                return int(line.strip().rsplit(":", 1)[1])
        time.sleep(0.05)
    raise SystemExit(f"a server did not start:\n{open(log_path).read()}")


def vectors_json(matrix):
    """Token vectors as JSON text, 5 significant digits (float16 values round-trip)."""
    rows = ["[" + ",".join(np.char.mod("%.5g", row)) + "]" for row in matrix]
    return "[" + ",".join(rows) + "]"


# Every float16 value's text (5 significant digits round-trip float16), looked up by bit pattern: formatting
# 10^8 numbers one by one in Python would take longer than the engines take to ingest them.
F16_TEXT = np.array(
    [("%.5g" % v).encode() for v in np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)]
)


def f16_vectors_json(matrix):
    """Float16 token vectors as JSON bytes."""
    rows = [b"[" + b",".join(row) + b"]" for row in F16_TEXT[np.asarray(matrix).view(np.uint16)].tolist()]
    return b"[" + b",".join(rows) + b"]"


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tessera", required=True)
    parser.add_argument("--export", required=True)
    parser.add_argument("--docs", type=int, default=0, help="the first N documents (0: all)")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--json")
    arguments = parser.parse_args()

    meta = json.load(open(os.path.join(arguments.export, "meta.json")))
    dimension = int(meta["dimension"])
    offsets = np.fromfile(os.path.join(arguments.export, "document_offsets.i64"), dtype="<i8")
    tokens = np.memmap(os.path.join(arguments.export, "documents.f16"), dtype="<f2", mode="r").reshape(-1, dimension)
    documents = len(offsets) - 1 if arguments.docs <= 0 else min(arguments.docs, len(offsets) - 1)
    query_offsets = np.fromfile(os.path.join(arguments.export, "query_offsets.i64"), dtype="<i8")
    query_tokens = np.fromfile(os.path.join(arguments.export, "queries.f32"), dtype="<f4").reshape(-1, dimension)
    query_count = min(arguments.queries, len(query_offsets) - 1)
    queries = [
        json.loads(vectors_json(query_tokens[query_offsets[i] : query_offsets[i + 1]])) for i in range(query_count)
    ]
    token_count = int(offsets[documents])

    work = tempfile.mkdtemp(prefix="tessera-cluster-bench-")
    running = []

    def start(arguments_, log_name):
        log_path = os.path.join(work, log_name)
        process = subprocess.Popen(
            arguments_, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, start_new_session=True
        )
        running.append(process)
        return process, log_path

    try:
        client, peer = free_port(), free_port()
        start(
            [
                shutil.which("etcd") or "/usr/bin/etcd", "--name", "bench", "--data-dir", os.path.join(work, "etcd"),
                "--listen-client-urls", f"http://127.0.0.1:{client}",
                "--advertise-client-urls", f"http://127.0.0.1:{client}",
                "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-cluster", f"bench=http://127.0.0.1:{peer}",
            ],
            "etcd.log",
        )
        time.sleep(1.5)
        ports = {}
        for node in (1, 2, 3):
            process, log = start(
                [
                    arguments.tessera, "serve", "--data", os.path.join(work, f"node{node}"), "--port", "0",
                    "--threads", "1", "--cluster", f"http://127.0.0.1:{client}", "--node-id", str(node),
                ],
                f"node{node}.log",
            )
            ports[node] = wait_listening(log, process)
        process, log = start(
            [arguments.tessera, "serve", "--data", os.path.join(work, "single"), "--port", "0", "--threads", "1"],
            "single.log",
        )
        single = wait_listening(log, process)
        deadline = time.time() + 30
        while len(call(ports[1], "GET", "/cluster")["peers"]) < 3:
            if time.time() > deadline:
                raise SystemExit("the three nodes did not join")
            time.sleep(0.1)
        schema = {"vectors": {"late": {"size": dimension, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}}}
        call(single, "PUT", "/collections/single", schema)
        call(ports[1], "PUT", "/collections/sharded", dict(schema, shard_number=3, replication_factor=1))
        # One shard (on node 1, the lowest id): the same work as the single node, through the cluster's path.
        call(ports[1], "PUT", "/collections/whole", dict(schema, shard_number=1, replication_factor=1))

        started = time.time()
        ingest = {"single": 0.0, "cluster": 0.0, "whole": 0.0}
        batch = 32
        for first in range(0, documents, batch):
            last = min(documents, first + batch)
            points = b",".join(
                b'{"id":%d,"vector":{"late":%s}}' % (i, f16_vectors_json(tokens[offsets[i] : offsets[i + 1]]))
                for i in range(first, last)
            )
            body = b'{"points":[' + points + b"]}"
            targets = (
                ("single", single, "single"),
                ("cluster", ports[1 + (first // batch) % 3], "sharded"),
                ("whole", ports[1], "whole"),
            )
            for name, port, collection in targets:
                begin = time.time()
                call(port, "PUT", f"/collections/{collection}/points?wait=true", body)
                ingest[name] += time.time() - begin
        print(
            f"ingested {documents} documents, {token_count} tokens in {time.time() - started:.0f} s "
            f"(single node {ingest['single']:.0f} s, cluster {ingest['cluster']:.0f} s)",
            file=sys.stderr,
        )

        few = {"must": [{"has_id": list(range(0, min(documents, 30), 3))}]}

        def query(port, collection, vector, cheap=False):
            body = {"query": vector, "using": "late", "limit": 10, "params": {"exact": True}}
            if cheap:
                body["filter"] = few
            return call(port, "POST", f"/collections/{collection}/points/query", body)["points"]

        # The background optimisers finish first (sealing, indexes), so that every measurement sees the same state.
        def settled():
            return all(
                call(port, "GET", f"/collections/{name}")["status"] == "green"
                for port, name in ((single, "single"), (ports[1], "sharded"), (ports[1], "whole"))
            )

        deadline = time.time() + 1800
        while not settled() and time.time() < deadline:
            time.sleep(1)
        # Agreement.
        agree = 0
        for vector in queries:
            want = query(single, "single", vector)
            got = query(ports[2], "sharded", vector)
            same = [p["id"] for p in want] == [p["id"] for p in got] and all(
                abs(a["score"] - b["score"]) <= 1e-4 for a, b in zip(want, got)
            )
            agree += same
        print(f"top-10 agreement: {agree}/{len(queries)}", file=sys.stderr)

        def latency(port, collection, rounds=1, cheap=False):
            samples = []
            for vector in queries[:10]:
                query(port, collection, vector, cheap)  # warm
            for _ in range(rounds):
                for vector in queries:
                    begin = time.perf_counter()
                    query(port, collection, vector, cheap)
                    samples.append((time.perf_counter() - begin) * 1000)
            return percentile(samples, 0.5), percentile(samples, 0.95)

        def throughput(targets, collection):
            stop = threading.Event()
            counts = []

            def worker(index):
                done = 0
                while not stop.is_set():
                    query(targets[index % len(targets)], collection, queries[(index * 7 + done) % len(queries)])
                    done += 1
                counts.append(done)

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(arguments.clients)]
            begin = time.time()
            for thread in threads:
                thread.start()
            time.sleep(arguments.seconds)
            stop.set()
            for thread in threads:
                thread.join()
            return sum(counts) / (time.time() - begin)

        def placement():
            info = call(ports[1], "GET", "/collections/sharded/cluster")
            where = {s["shard_id"]: info["peer_id"] for s in info["local_shards"]}
            where.update({s["shard_id"]: s["peer_id"] for s in info["remote_shards"]})
            return where

        def move(shard, to):
            source = placement()[shard]
            if source == to:
                return
            call(ports[1], "POST", "/collections/sharded/cluster",
                 {"move_shard": {"shard_id": shard, "from_peer_id": source, "to_peer_id": to}})
            deadline = time.time() + 600
            while True:
                info = call(ports[1], "GET", "/collections/sharded/cluster")
                replicas = [s for s in info["local_shards"] if s["shard_id"] == shard] + [
                    s for s in info["remote_shards"] if s["shard_id"] == shard
                ]
                if len(replicas) == 1 and placement()[shard] == to and replicas[0]["state"] == "Active":
                    return
                if time.time() > deadline:
                    raise SystemExit(f"shard {shard} did not move to node {to}")
                time.sleep(0.2)

        results = {"documents": documents, "tokens": token_count, "agreement": [agree, len(queries)],
                   "clients": arguments.clients, "seconds": arguments.seconds}
        initial = placement()
        # The fixed cost of a query (parsing its vectors, the hops, the merge): ten documents scored, by id filter.
        results["cheap_single_latency"] = latency(single, "single", rounds=5, cheap=True)
        print("measured", "cheap_single_latency", results["cheap_single_latency"], file=sys.stderr)
        results["cheap_one_shard_local_latency"] = latency(ports[1], "whole", rounds=5, cheap=True)
        print("measured", "cheap_one_shard_local_latency", results["cheap_one_shard_local_latency"], file=sys.stderr)
        results["cheap_one_shard_remote_latency"] = latency(ports[2], "whole", rounds=5, cheap=True)
        print("measured", "cheap_one_shard_remote_latency", results["cheap_one_shard_remote_latency"], file=sys.stderr)
        results["cheap_three_shards_latency"] = latency(ports[1], "sharded", rounds=5, cheap=True)
        print("measured", "cheap_three_shards_latency", results["cheap_three_shards_latency"], file=sys.stderr)
        results["single_latency"] = latency(single, "single")
        print("measured", "single_latency", results["single_latency"], file=sys.stderr)
        results["one_shard_local_latency"] = latency(ports[1], "whole")
        print("measured", "one_shard_local_latency", results["one_shard_local_latency"], file=sys.stderr)
        results["one_shard_remote_latency"] = latency(ports[2], "whole")
        print("measured", "one_shard_remote_latency", results["one_shard_remote_latency"], file=sys.stderr)
        results["three_nodes_latency"] = latency(ports[1], "sharded")
        print("measured", "three_nodes_latency", results["three_nodes_latency"], file=sys.stderr)
        results["three_nodes_qps"] = throughput(list(ports.values()), "sharded")
        print("measured", "three_nodes_qps", results["three_nodes_qps"], file=sys.stderr)
        results["single_qps"] = throughput([single], "single")
        print("measured", "single_qps", results["single_qps"], file=sys.stderr)
        # Two nodes: the shard of node 3 moves to node 1.
        for shard, node in initial.items():
            if node == 3:
                move(shard, 1)
        results["two_nodes_qps"] = throughput([ports[1], ports[2]], "sharded")
        print("measured", "two_nodes_qps", results["two_nodes_qps"], file=sys.stderr)
        for shard, node in placement().items():
            if node != 1:
                move(shard, 1)
        results["one_node_latency"] = latency(ports[1], "sharded")
        print("measured", "one_node_latency", results["one_node_latency"], file=sys.stderr)
        results["one_node_qps"] = throughput([ports[1]], "sharded")
        print("measured", "one_node_qps", results["one_node_qps"], file=sys.stderr)
        results["cheap_overhead_p50_ms"] = {
            "one shard, local": results["cheap_one_shard_local_latency"][0] - results["cheap_single_latency"][0],
            "one shard, remote": results["cheap_one_shard_remote_latency"][0] - results["cheap_single_latency"][0],
            "three shards": results["cheap_three_shards_latency"][0] - results["cheap_single_latency"][0],
        }
        results["overhead_p50_ms"] = {
            "local": results["one_shard_local_latency"][0] - results["single_latency"][0],
            "remote": results["one_shard_remote_latency"][0] - results["single_latency"][0],
        }
        print(json.dumps(results, indent=2))
        if arguments.json:
            json.dump(results, open(arguments.json, "w"), indent=2)
    except BaseException:
        for name in sorted(os.listdir(work)):
            if name.endswith(".log"):
                print(f"--- {name} (last lines)", file=sys.stderr)
                print("".join(open(os.path.join(work, name)).readlines()[-25:]), file=sys.stderr)
        raise
    finally:
        for process in running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
