"""Part A: the SciFact collection through `tessera serve` — open → first query answered (cold and warm page
cache), single-point upserts alone, queries alone from two threads, and the same upserts while two query
threads run.

The collection is copied to a temporary data folder first (the upserts write to it). Query vectors come from
the collection itself: ~32 tokens of a random stored document plus small noise as the query multivector, their
normalised mean as the dense query (fixed seed), so the encoder stays out of the numbers."""

import json
import os
import shutil
import subprocess
import threading
import time

import numpy as np

from engine_common import Client, Server, drop_page_cache, encode, log, median, percentile


def scroll_ids(client, name):
    ids, offset = [], None
    while True:
        body = {"limit": 1000, "with_payload": False, "with_vector": False}
        if offset is not None:
            body["offset"] = offset
        answer, _ = client.json("POST", f"/collections/{name}/points/scroll", body)
        ids.extend(point["id"] for point in answer["result"]["points"])
        offset = answer["result"].get("next_page_offset")
        if offset is None:
            return ids


def unit_rows(matrix):
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def query_body(tokens, dense, dense_field, token_field, candidates=100, limit=10):
    """Qdrant's late-interaction recipe: dense prefetch, then MaxSim over the candidates."""
    return {
        "prefetch": {"query": np.round(dense, 6).tolist(), "using": dense_field, "limit": candidates},
        "query": np.round(tokens, 6).tolist(),
        "using": token_field,
        "limit": limit,
    }


def make_queries(client, name, ids, rng, count, token_field, dense_field, query_tokens=32, noise=0.02):
    """Query bodies from the stored tokens of `count` random documents."""
    chosen = [ids[i] for i in rng.choice(len(ids), size=min(count, len(ids)), replace=False)]
    answer, _ = client.json("POST", f"/collections/{name}/points",
                            {"ids": chosen, "with_payload": False, "with_vector": [token_field]})
    bodies = []
    for point in answer["result"]:
        stored = np.asarray(point["vector"][token_field], dtype=np.float32)
        take = rng.choice(len(stored), size=min(query_tokens, len(stored)), replace=False)
        tokens = unit_rows(stored[np.sort(take)] + rng.normal(0, noise, (len(take), stored.shape[1])))
        dense = unit_rows(tokens.mean(axis=0))
        bodies.append(query_body(tokens, dense, dense_field, token_field))
    return bodies


def upsert_bodies(rng, first_id, count, dimension, token_field, dense_field, tokens_per_point=64):
    """Single-point upserts of random unit vectors, encoded ahead of the timed loop."""
    bodies = []
    for offset in range(count):
        tokens = unit_rows(rng.standard_normal((tokens_per_point, dimension)))
        dense = unit_rows(rng.standard_normal(dimension))
        bodies.append(encode({"points": [{
            "id": first_id + offset,
            "vector": {token_field: np.round(tokens, 6).tolist(), dense_field: np.round(dense, 6).tolist()},
        }]}))
    return bodies


def describe_stages(client, name, body):
    """What the query tree ran (explain: true), e.g. 'hnsw → maxsim'."""
    answer, _ = client.json("POST", f"/collections/{name}/points/query", dict(body, explain=True))
    result = answer["result"]
    stages = result.get("stages") if isinstance(result, dict) else None

    def walk(stage):
        if isinstance(stage, list):
            return [name for item in stage for name in walk(item)]
        if not isinstance(stage, dict):
            return []
        names = []
        for key in ("inputs", "prefetch", "children"):
            if key in stage:
                names.extend(walk(stage[key]))
        for key in ("method", "kind", "operation", "stage"):
            if isinstance(stage.get(key), str):
                names.append(stage[key])
                break
        return names

    names = walk(stages) if stages is not None else []
    return " → ".join(names) if names else "unknown", stages


class QueryLoop:
    """Query threads that each run until stopped, recording (start, seconds) per query."""

    def __init__(self, port, name, bodies, threads):
        self.port, self.name, self.bodies, self.threads = port, name, bodies, threads
        self.records = [[] for _ in range(threads)]
        self.errors = []
        self.stop = threading.Event()
        self.workers = []

    def _work(self, index, budget):
        client = Client(self.port)
        mine = self.records[index]
        position = index
        try:
            while not self.stop.is_set() and (budget is None or len(mine) < budget):
                data = self.bodies[position % len(self.bodies)]
                position += self.threads
                started = time.perf_counter()
                seconds, _ = client.timed("POST", f"/collections/{self.name}/points/query", data)
                mine.append((started, seconds))
        except Exception as error:  # noqa: BLE001 - reported after the run
            self.errors.append(repr(error))
        finally:
            client.close()

    def start(self, budget_per_thread=None):
        for index in range(self.threads):
            worker = threading.Thread(target=self._work, args=(index, budget_per_thread), daemon=True)
            worker.start()
            self.workers.append(worker)
        return self

    def join(self, timeout=600):
        self.stop.set()
        for worker in self.workers:
            worker.join(timeout)
        if self.errors:
            raise RuntimeError("query thread failed: " + self.errors[0])

    def wait(self, timeout=600):
        for worker in self.workers:
            worker.join(timeout)
        if self.errors:
            raise RuntimeError("query thread failed: " + self.errors[0])

    def latencies(self, since=None, until=None):
        return [seconds for thread in self.records for started, seconds in thread
                if (since is None or started >= since) and (until is None or started + seconds <= until)]


def first_query(settings, data, name, body, cold):
    """A fresh server: time its start, its first answer to /healthz, then the first query; its memory after."""
    if cold and not drop_page_cache():
        return None
    server = Server(settings.tessera, data, settings.threads, settings.pidfile)
    with server.start():
        ready = server.wait_ready()
        client = Client(server.port)
        seconds, payload = client.timed("POST", f"/collections/{name}/points/query", body)
        total = time.perf_counter() - server.started
        memory = server.memory()
        # The same query again in the same process, for what the first one paid to open the collection.
        second, _ = client.timed("POST", f"/collections/{name}/points/query", body)
        client.close()
    return {"first_query_ms": seconds * 1e3, "first_query_server_ms": json.loads(payload)["time"] * 1e3,
            "second_query_ms": second * 1e3, "ready_ms": ready * 1e3, "start_to_answer_ms": total * 1e3,
            "listening_ms": server.listening_seconds * 1e3, **memory}


def run(settings, report):
    name = settings.scifact_name
    source = os.path.join(settings.collections, name)
    if not os.path.isdir(source):
        raise RuntimeError(f"no collection at {source}")
    data = os.path.join(settings.work, "scifact")
    os.makedirs(data, exist_ok=True)
    log(f"A: copying {source} to {data}")
    subprocess.run(["cp", "-a", source, data], check=True)
    rng = np.random.default_rng(settings.seed)

    # Preparation (not timed): the collection's fields, ids and query vectors.
    with Server(settings.tessera, data, settings.threads, settings.pidfile) as server:
        server.wait_ready()
        client = Client(server.port)
        info, _ = client.json("GET", f"/collections/{name}")
        info = info["result"]
        vectors = info["config"]["params"]["vectors"]
        token_field = next(field for field, params in vectors.items() if params.get("multivector_config"))
        dense_field = next(field for field, params in vectors.items() if not params.get("multivector_config"))
        dimension = vectors[token_field]["size"]
        ids = scroll_ids(client, name)
        integer_ids = [i for i in ids if isinstance(i, int)]
        next_id = (max(integer_ids) if integer_ids else 0) + 1
        queries = make_queries(client, name, ids, rng, settings.query_documents, token_field, dense_field)
        stages, _ = describe_stages(client, name, queries[0])
        client.close()
    log(f"A: {len(ids)} points, fields {token_field} (multivector) and {dense_field} (dense), "
        f"{len(queries)} query vectors; the query runs {stages}")
    query_data = [encode(body) for body in queries]
    report.context["scifact"] = {"points": len(ids), "token_field": token_field, "dense_field": dense_field,
                                 "query_tokens": len(queries[0]["query"]), "prefetch_limit": 100, "limit": 10,
                                 "query_stages": stages, "status": info.get("status"),
                                 "segments_count": info.get("segments_count")}

    # 1. open → first query answered.
    cold = None
    if settings.drop_caches:
        cold = first_query(settings, data, name, query_data[0], cold=True)
        log(f"A1 cold: {cold}")
    warm = []
    for repeat in range(settings.open_repeats):
        warm.append(first_query(settings, data, name, query_data[0], cold=False))
        log(f"A1 warm {repeat + 1}: first query {warm[-1]['first_query_ms']:.1f} ms, "
            f"RSS {warm[-1]['VmRSS'] / 2**20:.1f} MiB")
    part = "A. SciFact"
    target_rss = 64 * 2**20
    for label, runs in (("cold cache", [cold] if cold else []), ("warm cache", warm)):
        if not runs:
            continue
        cache = label.split()[0]
        suffix = f" ({label}, {'1 run' if len(runs) == 1 else f'median of {len(runs)} fresh servers'})"

        def middle(key):
            return median([r[key] for r in runs])

        report.add(part, f"scifact.open.{cache}.first_query_ms",
                   "first query after /healthz answers" + suffix, middle("first_query_ms"), "ms", upper=100,
                   note="the first request opens the collection")
        report.add(part, f"scifact.open.{cache}.first_query_server_ms",
                   "  its server-side time (the answer's `time`)", middle("first_query_server_ms"), "ms")
        report.add(part, f"scifact.open.{cache}.second_query_ms",
                   "  the same query again, same process", middle("second_query_ms"), "ms")
        report.add(part, f"scifact.open.{cache}.start_to_answer_ms",
                   "  process start → first query answered", middle("start_to_answer_ms"), "ms")
        report.add(part, f"scifact.open.{cache}.rss_bytes", "  VmRSS after the first query", middle("VmRSS"), "bytes",
                   note=f"RssFile (mapped: binary, segments, indexes) {middle('RssFile') / 2**20:.1f} MiB; "
                        "target: 64 MB + what queries touch")
        report.add(part, f"scifact.open.{cache}.rss_anon_bytes",
                   "  RssAnon after the first query", middle("RssAnon"), "bytes", upper=target_rss,
                   note="the 64 MB part")
    report.context["scifact"]["open_runs"] = {"cold": cold, "warm": warm}

    # 2–4. One server for writes and queries.
    upserts_alone = upsert_bodies(rng, next_id, settings.upserts, dimension, token_field, dense_field)
    # Under load: at least UPSERTS upserts, more (up to 3×) until QUERIES queries ran during them.
    upserts_loaded = upsert_bodies(rng, next_id + settings.upserts, 3 * settings.upserts, dimension, token_field,
                                   dense_field)
    path = f"/collections/{name}/points?wait=true"
    with Server(settings.tessera, data, settings.threads, settings.pidfile) as server:
        server.wait_ready()
        QueryLoop(server.port, name, query_data, settings.query_threads).start(
            budget_per_thread=settings.warmup_queries).wait()

        client = Client(server.port)
        alone = []
        for data_bytes in upserts_alone:
            seconds, _ = client.timed("PUT", path, data_bytes)
            alone.append(seconds * 1e3)
        log(f"A2: {len(alone)} upserts, p50 {percentile(alone, 0.5):.2f} ms")

        loop = QueryLoop(server.port, name, query_data, settings.query_threads)
        loop.start(budget_per_thread=-(-settings.queries // settings.query_threads))
        loop.wait()
        queries_alone = [s * 1e3 for s in loop.latencies()]
        log(f"A3: {len(queries_alone)} queries, p50 {percentile(queries_alone, 0.5):.2f} ms")

        loop = QueryLoop(server.port, name, query_data, settings.query_threads).start()
        while min(len(r) for r in loop.records) < 3 and not loop.errors:
            time.sleep(0.01)
        loaded = []
        window_start = time.perf_counter()
        for data_bytes in upserts_loaded:
            seconds, _ = client.timed("PUT", path, data_bytes)
            loaded.append(seconds * 1e3)
            if len(loaded) >= settings.upserts and len(loop.latencies(since=window_start)) >= settings.queries:
                break
        window_end = time.perf_counter()
        loop.join()
        queries_loaded = [s * 1e3 for s in loop.latencies(since=window_start, until=window_end)]
        log(f"A4: {len(loaded)} upserts under load, {len(queries_loaded)} queries during them")
        count, _ = client.json("POST", f"/collections/{name}/points/count", {"exact": True})
        client.close()
        memory = server.memory()
    expected = len(ids) + len(alone) + len(loaded)
    if count["result"]["count"] != expected:
        raise RuntimeError(f"A: {count['result']['count']} points after the upserts, expected {expected}")

    upsert_p50 = percentile(alone, 0.5)
    query_p95 = percentile(queries_alone, 0.95)
    n = f"{len(alone)} upserts"
    report.add(part, "scifact.upsert_alone_p50_ms", f"upsert p50, alone ({n})", upsert_p50, "ms", upper=10)
    report.add(part, "scifact.upsert_alone_p95_ms", f"upsert p95, alone ({n})", percentile(alone, 0.95), "ms")
    q = f"{len(queries_alone)} queries, {settings.query_threads} threads"
    report.add(part, "scifact.query_alone_p50_ms", f"query p50, alone ({q})", percentile(queries_alone, 0.5), "ms")
    report.add(part, "scifact.query_alone_p95_ms", f"query p95, alone ({q})", query_p95, "ms")
    report.add(part, "scifact.upsert_loaded_p50_ms",
               f"upsert p50, under {settings.query_threads} query threads ({len(loaded)} upserts)",
               percentile(loaded, 0.5), "ms")
    report.add(part, "scifact.upsert_loaded_p95_ms",
               f"upsert p95, under {settings.query_threads} query threads ({len(loaded)} upserts)",
               percentile(loaded, 0.95), "ms", upper=3 * upsert_p50, target_text=f"≤ 3 × upsert p50 alone")
    q = f"{len(queries_loaded)} queries"
    report.add(part, "scifact.query_loaded_p50_ms",
               f"query p50, during the upserts ({q})", percentile(queries_loaded, 0.5), "ms")
    report.add(part, "scifact.query_loaded_p95_ms",
               f"query p95, during the upserts ({q})", percentile(queries_loaded, 0.95), "ms",
               upper=1.5 * query_p95, target_text="≤ 1.5 × query p95 alone")
    report.add(part, "scifact.rss_after_writes_bytes",
               "server VmRSS after the writes and queries", memory["VmRSS"], "bytes",
               note=f"VmHWM {memory['VmHWM'] / 2**20:.1f} MiB, RssAnon {memory['RssAnon'] / 2**20:.1f} MiB, "
                    f"RssFile {memory['RssFile'] / 2**20:.1f} MiB")
    shutil.rmtree(data, ignore_errors=True)
