#!/usr/bin/env python3
"""Sharded, replicated collections on loopback: one etcd, three `tessera serve --cluster` nodes and one
single-node server holding the same points as the reference.

Checks, in order (each step bounded in time; every process started here is stopped at the end, whatever happens):
1. a collection of 3 shards x 2 replicas, upserted through different nodes (list and batch forms), answers every
   query on every node with the ids and scores the single-node collection gives: dense, multivector (exact MaxSim),
   sparse, filtered, fusion (rrf, dbsf) over prefetches, a multivector rerank of a fused prefetch, a query by point
   id, offsets; count, scroll pages and retrieval agree too;
2. one node is killed with SIGKILL during a mixed load of queries and upserts: every query is answered after at
   most one retry on another node, and every acknowledged upsert is there afterwards;
3. the node is started again and its replicas catch up (Active, the same point counts as their peers), then it
   answers as the reference does;
4. a shard is moved to another node during the same kind of load, with the same guarantees;
5. GET /cluster, GET /collections/{name}/cluster, `tessera cluster status` and /metrics describe the cluster.

Usage: cluster_test.py --tessera BINARY [--load-seconds N]
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

checks = 0


def check(condition, message):
    global checks
    if not condition:
        raise AssertionError(message)
    checks += 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, method, path, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, method=method, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            return error.code, json.loads(text)
        except ValueError:
            return error.code, text.decode(errors="replace")


def ok(port, method, path, body=None, timeout=30):
    status, answer = call(port, method, path, body, timeout)
    if status != 200:
        raise AssertionError(f"{method} {path} on :{port} answered {status}: {answer}")
    return answer["result"]


class Processes:
    """Every process started, stopped at the end whatever happens."""

    def __init__(self):
        self.running = []

    def start(self, arguments, log):
        process = subprocess.Popen(arguments, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.running.append(process)
        return process

    def stop_all(self):
        for process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.time() + 10
        for process in self.running:
            try:
                process.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_listening(log_path, process, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited early:\n{open(log_path).read()}")
        for line in open(log_path):
            if line.startswith("listening on 127.0.0.1:"):
                return int(line.strip().rsplit(":", 1)[1])
        time.sleep(0.05)
    raise AssertionError(f"the server did not start:\n{open(log_path).read()}")


def wait_until(condition, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if condition():
                return
        except (OSError, AssertionError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


DIM = 8
SCHEMA = {
    "vectors": {
        "dense": {"size": DIM, "distance": "Cosine"},
        "late": {"size": DIM, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}},
    },
    "sparse_vectors": {"words": {}, "bm25": {"modifier": "idf"}},
}

VOCABULARY = (
    "shard replica leader quorum vector token segment index cluster merge query filter payload score rank "
    "fusion prefetch rerank sparse dense late interaction recovery transfer lease watch"
).split()


def sentence(rng):
    return " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(3, 12)))


def make_point(rng, pid):
    tokens = rng.randint(2, 6)
    indices = sorted(rng.sample(range(40), rng.randint(1, 5)))
    return {
        "id": pid,
        "vector": {
            "dense": [rng.uniform(-1, 1) for _ in range(DIM)],
            "late": [[rng.uniform(-1, 1) for _ in range(DIM)] for _ in range(tokens)],
            "words": {"indices": indices, "values": [round(rng.uniform(0.1, 2), 3) for _ in indices]},
            "bm25": {"text": sentence(rng), "model": "qdrant/bm25"},
        },
        "payload": {"group": pid % 4, "tag": ["red", "green", "blue"][pid % 3], "n": pid, "body": sentence(rng)},
    }


def queries(rng):
    def dense():
        return [rng.uniform(-1, 1) for _ in range(DIM)]

    def late():
        return [[rng.uniform(-1, 1) for _ in range(DIM)] for _ in range(3)]

    def words():
        indices = sorted(rng.sample(range(40), 4))
        return {"indices": indices, "values": [1.0] * len(indices)}

    blue = {"must": [{"key": "tag", "match": {"value": "blue"}}]}
    small = {"must": [{"key": "n", "range": {"lt": 150}}]}
    return [
        ("dense", {"query": dense(), "using": "dense", "limit": 10}),
        ("dense offset", {"query": dense(), "using": "dense", "limit": 5, "offset": 7}),
        ("maxsim exact", {"query": late(), "using": "late", "limit": 10, "params": {"exact": True}}),
        ("maxsim filtered", {"query": late(), "using": "late", "limit": 10, "filter": blue}),
        ("sparse", {"query": words(), "using": "words", "limit": 10}),
        ("text index bm25 (statistics over every shard)", {"query": {"text": sentence(rng)}, "using": "body", "limit": 10}),
        (
            "text index bm25 with k and b, filtered",
            {
                "query": {"text": {"query": sentence(rng), "scoring": {"bm25": {"k": 0.9, "b": 0.3}}}},
                "using": "body",
                "filter": blue,
                "limit": 10,
            },
        ),
        ("bm25 (idf over every shard)", {"query": {"text": sentence(rng), "model": "qdrant/bm25"}, "using": "bm25", "limit": 10}),
        (
            "hybrid bm25 + dense rrf",
            {
                "prefetch": [
                    {"query": dense(), "using": "dense", "limit": 25},
                    {"query": {"text": sentence(rng), "model": "qdrant/bm25"}, "using": "bm25", "limit": 25},
                ],
                "query": {"fusion": "rrf"},
                "limit": 10,
            },
        ),
        (
            "hybrid rrf",
            {
                "prefetch": [
                    {"query": dense(), "using": "dense", "limit": 30},
                    {"query": words(), "using": "words", "limit": 30},
                ],
                "query": {"fusion": "rrf"},
                "limit": 10,
            },
        ),
        (
            "hybrid dbsf filtered",
            {
                "prefetch": [
                    {"query": dense(), "using": "dense", "limit": 20},
                    {"query": words(), "using": "words", "limit": 20, "filter": small},
                ],
                "query": {"fusion": "dbsf"},
                "filter": {"must_not": [{"key": "group", "match": {"value": 1}}]},
                "limit": 10,
            },
        ),
        (
            "rerank of a fused prefetch",
            {
                "prefetch": {
                    "prefetch": [
                        {"query": dense(), "using": "dense", "limit": 40},
                        {"query": words(), "using": "words", "limit": 40},
                    ],
                    "query": {"rrf": {"k": 10}},
                    "limit": 40,
                },
                "query": late(),
                "using": "late",
                "limit": 10,
            },
        ),
        ("by point id", {"query": 17, "using": "dense", "limit": 8}),
    ]


def same_answer(name, got, want, wider=None):
    """Same scores position by position, and the same ids within each run of equal scores. The last run may be
    cut by the limit, where either side may keep any of the tied points: its ids need only hold that score in
    `wider()`, the reference's answer with a larger limit."""
    ids_got = [p["id"] for p in got]
    ids_want = [p["id"] for p in want]
    check(len(got) == len(want), f"{name}: {len(got)} results, the single node gives {len(want)}")
    for a, b in zip(got, want):
        check(abs(a["score"] - b["score"]) <= 1e-5 * max(1.0, abs(b["score"])), f"{name}: scores {ids_got} vs {ids_want}")
    if ids_got == ids_want:
        return
    runs_got, runs_want = {}, {}
    for points, runs in ((got, runs_got), (want, runs_want)):
        for p in points:
            runs.setdefault(round(p["score"], 5), set()).add(p["id"])
    last = round(want[-1]["score"], 5) if want else None
    for score in set(runs_got) | set(runs_want):
        if score == last and wider is not None:
            tied = {p["id"] for p in wider() if round(p["score"], 5) == score}
            check(runs_got.get(score, set()) <= tied, f"{name}: ids {ids_got}, the single node gives {ids_want}")
        else:
            check(runs_got.get(score) == runs_want.get(score), f"{name}: ids {ids_got}, the single node gives {ids_want}")


def compare_all(nodes, reference, rng, label):
    for name, body in queries(rng):
        body = dict(body, with_payload=True)
        want = ok(reference, "POST", "/collections/c/points/query", body)["points"]
        for port in nodes:
            got = ok(port, "POST", "/collections/c/points/query", body)["points"]

            def wider(body=body):
                return ok(reference, "POST", "/collections/c/points/query", dict(body, limit=body.get("limit", 10) + 200))["points"]

            same_answer(f"{label} {name} on :{port}", got, want, wider)
            for a, b in zip(got, want):
                if a["id"] == b["id"]:
                    check(a.get("payload") == b.get("payload"), f"{label} {name}: payload of {a['id']}")
    total = ok(reference, "POST", "/collections/c/points/count", {"exact": True})["count"]
    blue = {"filter": {"must": [{"key": "tag", "match": {"value": "blue"}}]}, "exact": True}
    for port in nodes:
        check(ok(port, "POST", "/collections/c/points/count", {"exact": True})["count"] == total, f"{label}: count")
        check(
            ok(port, "POST", "/collections/c/points/count", blue)["count"]
            == ok(reference, "POST", "/collections/c/points/count", blue)["count"],
            f"{label}: filtered count",
        )
    # Scroll pages in id order, across shards, as the single node pages.
    for port in nodes[:1]:
        offset, got, want_offset, want = None, [], None, []
        while True:
            page = ok(port, "POST", "/collections/c/points/scroll", {"limit": 37, "offset": offset, "with_payload": True})
            got += page["points"]
            offset = page["next_page_offset"]
            if offset is None:
                break
        while True:
            page = ok(reference, "POST", "/collections/c/points/scroll", {"limit": 37, "offset": want_offset, "with_payload": True})
            want += page["points"]
            want_offset = page["next_page_offset"]
            if want_offset is None:
                break
        check([p["id"] for p in got] == [p["id"] for p in want], f"{label}: scroll pages")
        check(got == want, f"{label}: scrolled payloads")
    ids = rng.sample(range(200), 12)
    for port in nodes:
        got = ok(port, "POST", "/collections/c/points", {"ids": ids, "with_vector": True, "with_payload": True})
        want = ok(reference, "POST", "/collections/c/points", {"ids": ids, "with_vector": True, "with_payload": True})
        got = sorted(json.dumps(p, sort_keys=True) for p in got)
        want = sorted(json.dumps(p, sort_keys=True) for p in want)
        differ = [(a, b) for a, b in zip(got, want) if a != b]
        check(got == want, f"{label}: retrieve on :{port}: {differ[:1]}")


class Load:
    """Queries and upserts from threads against the live nodes; a request that fails is retried once on another
    node, and a failure of the retry is an error. Acknowledged upserts are recorded, and written to the
    reference too."""

    def __init__(self, nodes, reference, first_id, rng_seed):
        self.nodes = list(nodes)
        self.reference = reference
        self.next_id = first_id
        self.lock = threading.Lock()
        self.acknowledged = []
        self.errors = []
        self.retries = 0
        self.queries = 0
        self.stop = threading.Event()
        self.rng = random.Random(rng_seed)

    def live(self):
        with self.lock:
            return list(self.nodes)

    def drop(self, port):
        with self.lock:
            self.nodes.remove(port)

    def attempt(self, method, path, body):
        nodes = self.live()
        first = random.choice(nodes)
        try:
            status, answer = call(first, method, path, body, timeout=15)
            if status == 200:
                return answer
            failure = f"{status} {answer}"
        except OSError as error:
            failure = str(error)
        with self.lock:
            self.retries += 1
        others = [n for n in self.live() if n != first] or nodes
        second = random.choice(others)
        try:
            status, answer = call(second, method, path, body, timeout=15)
            if status == 200:
                return answer
            failure += f"; retry: {status} {answer}"
        except OSError as error:
            failure += f"; retry: {error}"
        with self.lock:
            self.errors.append(f"{method} {path}: {failure}")
        return None

    def querier(self, seed):
        rng = random.Random(seed)
        while not self.stop.is_set():
            name, body = rng.choice(queries(rng))
            if self.attempt("POST", "/collections/c/points/query", body) is not None:
                with self.lock:
                    self.queries += 1

    def writer(self, seed):
        rng = random.Random(seed)
        while not self.stop.is_set():
            with self.lock:
                ids = list(range(self.next_id, self.next_id + 5))
                self.next_id += 5
            points = [make_point(rng, pid) for pid in ids]
            if self.attempt("PUT", "/collections/c/points?wait=true", {"points": points}) is not None:
                ok(self.reference, "PUT", "/collections/c/points?wait=true", {"points": points})
                with self.lock:
                    self.acknowledged += ids
            time.sleep(0.05)

    def run(self, seconds, during=None):
        threads = [threading.Thread(target=self.querier, args=(i,)) for i in range(2)]
        threads.append(threading.Thread(target=self.writer, args=(self.rng.randint(0, 1 << 30),)))
        for thread in threads:
            thread.start()
        try:
            if during:
                during(self)
            time.sleep(seconds)
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(timeout=60)


def shard_states(port):
    info = ok(port, "GET", "/collections/c/cluster")
    states = {}
    for shard in info["local_shards"]:
        states[(shard["shard_id"], info["peer_id"])] = shard["state"]
    for shard in info["remote_shards"]:
        states[(shard["shard_id"], shard["peer_id"])] = shard["state"]
    return states, info


def all_active(port):
    states, _ = shard_states(port)
    return bool(states) and all(state == "Active" for state in states.values())


def check_replicas_agree(nodes):
    """Every replica of a shard holds as many points as the others."""
    counts = {}
    for port in nodes:
        _, info = shard_states(port)
        for shard in info["local_shards"]:
            counts.setdefault(shard["shard_id"], []).append(shard["points_count"])
    for shard, values in counts.items():
        check(len(set(values)) == 1, f"replicas of shard {shard} hold {values} points")
    return counts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tessera", required=True)
    parser.add_argument("--load-seconds", type=float, default=20)
    arguments = parser.parse_args()
    etcd = shutil.which("etcd") or "/usr/bin/etcd"
    work = tempfile.mkdtemp(prefix="tessera-cluster-")
    processes = Processes()
    started = time.time()
    try:
        client, peer = free_port(), free_port()
        etcd_log = open(os.path.join(work, "etcd.log"), "w")
        processes.start(
            [
                etcd, "--name", "test", "--data-dir", os.path.join(work, "etcd"),
                "--listen-client-urls", f"http://127.0.0.1:{client}", "--advertise-client-urls", f"http://127.0.0.1:{client}",
                "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-cluster", f"test=http://127.0.0.1:{peer}",
            ],
            etcd_log,
        )

        def etcd_ready():
            request = urllib.request.Request(f"http://127.0.0.1:{client}/health")
            with urllib.request.urlopen(request, timeout=2) as response:
                return json.loads(response.read()).get("health") == "true"

        wait_until(etcd_ready, 30, "etcd")

        def start_node(node_id, log_name):
            log_path = os.path.join(work, log_name)
            process = processes.start(
                [
                    arguments.tessera, "serve", "--data", os.path.join(work, f"node{node_id}"), "--port", "0",
                    "--threads", "1", "--cluster", f"http://127.0.0.1:{client}", "--node-id", str(node_id),
                ],
                open(log_path, "w"),
            )
            return process, wait_listening(log_path, process), log_path

        nodes = {}
        for node_id in (1, 2, 3):
            nodes[node_id] = start_node(node_id, f"node{node_id}.log")
        ports = {node_id: entry[1] for node_id, entry in nodes.items()}
        reference_log = os.path.join(work, "reference.log")
        reference_process = processes.start(
            [arguments.tessera, "serve", "--data", os.path.join(work, "reference"), "--port", "0", "--threads", "1"],
            open(reference_log, "w"),
        )
        reference = wait_listening(reference_log, reference_process)
        wait_until(lambda: len(ok(ports[1], "GET", "/cluster")["peers"]) == 3, 30, "three peers")
        print(f"cluster: etcd and three nodes up after {time.time() - started:.1f} s")

        # 1. The same answers as one node.
        ok(ports[1], "PUT", "/collections/c", dict(SCHEMA, shard_number=3, replication_factor=2))
        ok(reference, "PUT", "/collections/c", SCHEMA)
        status, answer = call(ports[2], "PUT", "/collections/c", dict(SCHEMA, shard_number=3))
        check(status == 409, f"creating a collection twice answers 409, not {status}")
        status, answer = call(ports[2], "PUT", "/collections/d", dict(SCHEMA, replication_factor=4))
        check(status == 400 and "replication_factor" in answer["status"]["error"], f"4 replicas on 3 nodes: {answer}")
        for port in ports.values():
            check(ok(port, "GET", "/collections/c/exists")["exists"], "every node knows the collection")
            check([c["name"] for c in ok(port, "GET", "/collections")["collections"]] == ["c"], "one collection listed")
        rng = random.Random(7)
        points = [make_point(rng, pid) for pid in range(200)]
        for batch, start in enumerate(range(0, 200, 25)):
            chunk = points[start : start + 25]
            port = ports[1 + batch % 3]
            if batch % 2:
                body = {
                    "batch": {
                        "ids": [p["id"] for p in chunk],
                        "vectors": {name: [p["vector"][name] for p in chunk] for name in ("dense", "late", "words", "bm25")},
                        "payloads": [p["payload"] for p in chunk],
                    }
                }
            else:
                body = {"points": chunk}
            ok(port, "PUT", "/collections/c/points?wait=true", body)
            ok(reference, "PUT", "/collections/c/points?wait=true", {"points": chunk})
        ok(ports[3], "POST", "/collections/c/points/payload?wait=true", {"payload": {"flag": True}, "points": [3, 4, 5]})
        ok(reference, "POST", "/collections/c/points/payload?wait=true", {"payload": {"flag": True}, "points": [3, 4, 5]})
        ok(ports[2], "POST", "/collections/c/points/delete?wait=true", {"filter": {"must": [{"key": "n", "range": {"gte": 195}}]}})
        ok(reference, "POST", "/collections/c/points/delete?wait=true", {"filter": {"must": [{"key": "n", "range": {"gte": 195}}]}})
        operations = {
            "operations": [
                {"upsert": {"points": [make_point(rng, 500), make_point(rng, 501)]}},
                {"delete": {"points": [500]}},
                {"set_payload": {"payload": {"batched": 1}, "points": [501, 7]}},
                {"delete_payload": {"keys": ["n"], "points": [8]}},
            ]
        }
        results = ok(ports[2], "POST", "/collections/c/points/batch?wait=true", operations)
        check(len(results) == 4, f"one result per batch operation: {results}")
        ok(reference, "POST", "/collections/c/points/batch?wait=true", operations)
        ok(ports[1], "PUT", "/collections/c/index?wait=true", {"field_name": "tag", "field_schema": "keyword"})
        ok(reference, "PUT", "/collections/c/index?wait=true", {"field_name": "tag", "field_schema": "keyword"})
        scored = {"type": "text", "tokenizer": "word", "lowercase": True, "scoring": {"type": "bm25"}}
        ok(ports[3], "PUT", "/collections/c/index?wait=true", {"field_name": "body", "field_schema": scored})
        ok(reference, "PUT", "/collections/c/index?wait=true", {"field_name": "body", "field_schema": scored})
        info = ok(ports[2], "GET", "/collections/c")
        check(info["points_count"] == 196, f"collection info counts {info['points_count']} points, not 196")
        check(info["config"]["params"]["shard_number"] == 3 and info["config"]["params"]["replication_factor"] == 2, "info shows the sharding")
        check(info["payload_schema"]["tag"]["points"] == 196, f"payload index over every shard: {info['payload_schema']}")
        counts = check_replicas_agree(list(ports.values()))
        check(sum(values[0] for values in counts.values()) == 196, f"shards hold {counts}")
        check(all(values[0] > 30 for values in counts.values()), f"points spread over the shards: {counts}")
        compare_all(list(ports.values()), reference, random.Random(11), "settled")
        status, answer = call(ports[1], "GET", "/collections/c__shard0/exists")
        check(status == 404, "shard collections are not visible to clients")
        print(f"cluster: answers equal a single node's ({checks} checks, {time.time() - started:.1f} s)")

        # 5. Describing the cluster.
        cluster = ok(ports[1], "GET", "/cluster")
        check(cluster["status"] == "enabled" and cluster["peer_id"] == 1, f"GET /cluster: {cluster}")
        check(sorted(cluster["peers"]) == ["1", "2", "3"], f"peers: {cluster['peers']}")
        states, info = shard_states(ports[2])
        check(len(states) == 6 and info["shard_count"] == 3, f"3 shards x 2 replicas: {states}")
        status_text = subprocess.run(
            [arguments.tessera, "cluster", "status", "--url", f"http://127.0.0.1:{ports[3]}"],
            capture_output=True, text=True, timeout=30,
        )
        check(status_text.returncode == 0, f"tessera cluster status failed: {status_text.stderr}")
        check("peer 1" in status_text.stdout and "c shard 2" in status_text.stdout and "Active" in status_text.stdout,
              f"tessera cluster status says:\n{status_text.stdout}")
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[1]}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        check("tessera_cluster_peers 3" in metrics, "peer gauge in /metrics")
        check('tessera_cluster_replicas{state="Active"} 2' in metrics, "replica gauge in /metrics")

        # 2. SIGKILL during load.
        victim = 3
        load = Load(ports.values(), reference, 10_000, 5)

        def kill_victim(load):
            time.sleep(arguments.load_seconds / 4)
            nodes[victim][0].send_signal(signal.SIGKILL)
            nodes[victim][0].wait()
            load.drop(ports[victim])

        load.run(arguments.load_seconds, during=lambda load: threading.Thread(target=kill_victim, args=(load,)).start())
        time.sleep(0.5)
        check(not load.errors, f"{len(load.errors)} requests failed after a retry: {load.errors[:3]}")
        check(load.queries > 20 and len(load.acknowledged) > 20, f"load ran: {load.queries} queries, {len(load.acknowledged)} writes")
        live = [ports[1], ports[2]]
        got = ok(live[0], "POST", "/collections/c/points", {"ids": load.acknowledged})
        check(len(got) == len(load.acknowledged), f"{len(load.acknowledged) - len(got)} acknowledged writes are missing")
        states, _ = shard_states(live[0])
        check(any(state == "Dead" for (shard, peer), state in states.items() if peer == victim), f"the killed node's replicas are Dead: {states}")
        compare_all(live, reference, random.Random(12), "one node down")
        print(f"cluster: SIGKILL under load: {load.queries} queries, {len(load.acknowledged)} writes acknowledged, {load.retries} retried, 0 errors")

        # 3. Restart and catch up.
        restarted = time.time()
        nodes[victim] = start_node(victim, f"node{victim}-again.log")
        ports[victim] = nodes[victim][1]
        wait_until(lambda: all_active(ports[1]), 60, "the restarted node's replicas to catch up")
        check_replicas_agree(list(ports.values()))
        compare_all(list(ports.values()), reference, random.Random(13), "caught up")
        print(f"cluster: the restarted node caught up in {time.time() - restarted:.1f} s")

        # 4. Move a shard during load.
        _, info = shard_states(ports[1])
        placement = {}
        for (shard, peer), _state in shard_states(ports[1])[0].items():
            placement.setdefault(shard, set()).add(peer)
        shard = 0
        source = sorted(placement[shard])[0]
        target = ({1, 2, 3} - placement[shard]).pop()
        load = Load(ports.values(), reference, 20_000, 6)

        def move(load):
            time.sleep(1)
            ok(ports[1], "POST", "/collections/c/cluster", {"move_shard": {"shard_id": shard, "from_peer_id": source, "to_peer_id": target}})

        load.run(arguments.load_seconds / 2, during=lambda load: threading.Thread(target=move, args=(load,)).start())

        def moved():
            placement_now = {}
            states_now, _ = shard_states(ports[2])
            for (s, peer), state in states_now.items():
                placement_now.setdefault(s, {})[peer] = state
            return set(placement_now[shard]) == (placement[shard] - {source}) | {target} and all(
                state == "Active" for state in placement_now[shard].values()
            )

        wait_until(moved, 60, f"shard {shard} to move from node {source} to node {target}")
        check(not load.errors, f"{len(load.errors)} requests failed during the move: {load.errors[:3]}")
        got = ok(ports[1], "POST", "/collections/c/points", {"ids": load.acknowledged})
        check(len(got) == len(load.acknowledged), "acknowledged writes during the move are all there")
        check_replicas_agree(list(ports.values()))
        compare_all(list(ports.values()), reference, random.Random(14), "moved")
        print(f"cluster: shard {shard} moved from node {source} to node {target} under load: {load.queries} queries, 0 errors")

        # Replication changed while queries and writes go on: 3 replicas per shard, then 2 again.
        def replicas_per_shard(wanted):
            states, _ = shard_states(ports[3])
            per_shard = {}
            for (s, peer), state in states.items():
                per_shard.setdefault(s, []).append(state)
            return len(per_shard) == 3 and all(len(v) == wanted and set(v) == {"Active"} for v in per_shard.values())

        load = Load(ports.values(), reference, 30_000, 8)

        def raise_replication(load):
            time.sleep(0.5)
            ok(ports[2], "PATCH", "/collections/c", {"params": {"replication_factor": 3}})

        load.run(arguments.load_seconds / 4, during=lambda load: threading.Thread(target=raise_replication, args=(load,)).start())
        wait_until(lambda: replicas_per_shard(3), 60, "three Active replicas of every shard")
        check(not load.errors, f"{len(load.errors)} requests failed while replicas were added: {load.errors[:3]}")
        check(ok(ports[1], "GET", "/collections/c")["config"]["params"]["replication_factor"] == 3, "info shows 3 replicas")
        check_replicas_agree(list(ports.values()))
        compare_all(list(ports.values()), reference, random.Random(15), "three replicas")
        status, answer = call(ports[1], "PATCH", "/collections/c", {"params": {"replication_factor": 4}})
        check(status == 400 and "live nodes" in answer["status"]["error"], f"4 replicas on 3 nodes: {answer}")
        ok(ports[1], "PATCH", "/collections/c", {"params": {"replication_factor": 2}})
        wait_until(lambda: replicas_per_shard(2), 30, "two replicas of every shard again")
        compare_all(list(ports.values()), reference, random.Random(16), "two replicas again")
        print(f"cluster: replication raised to 3 under load and lowered to 2: {load.queries} queries, 0 errors")

        ok(ports[2], "DELETE", "/collections/c")
        wait_until(lambda: not ok(ports[1], "GET", "/collections/c/exists")["exists"], 10, "the delete to reach every node")
        print(f"cluster: {checks} checks passed in {time.time() - started:.1f} s")
    except BaseException:
        for name in sorted(os.listdir(work)):
            if name.endswith(".log"):
                print(f"--- {name} (last lines)", file=sys.stderr)
                print("".join(open(os.path.join(work, name)).readlines()[-30:]), file=sys.stderr)
        raise
    finally:
        processes.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
