"""Part C: a synthetic collection of SYNTH_TOKENS tokens (384-d float16): generate it (synth_data.py), time
`tessera import` and `tessera optimize --force` (seal, merge, compressed index, HNSW graph), measure its bytes
on disk, then serve it and time queries by the compressed index and by the hybrid (dense prefetch → MaxSim),
sampling the server's VmRSS and VmHWM during the search phase.

Query vectors: up to 32 tokens of a random generated document plus small noise; the dense query is their
normalised mean. The answers also say how often the source document comes back in the top 10."""

import json
import os

import numpy as np

import synth_data
from engine_common import Client, MemorySampler, Server, disk_bytes, encode, log, percentile, run_command
from part_scifact import describe_stages, unit_rows

NAME = "synth"


def query_vectors(folder, count, rng, query_tokens=32, noise=0.02):
    tokens = np.load(os.path.join(folder, "tokens.npy"), mmap_mode="r")
    offsets = np.load(os.path.join(folder, "offsets.npy"))
    documents = len(offsets) - 1
    chosen = rng.choice(documents, size=min(count, documents), replace=False)
    queries = []
    for document in chosen:
        rows = np.asarray(tokens[offsets[document]:offsets[document + 1]], dtype=np.float32)
        take = np.sort(rng.choice(len(rows), size=min(query_tokens, len(rows)), replace=False))
        query = unit_rows(rows[take] + rng.normal(0, noise, (len(take), rows.shape[1])).astype(np.float32))
        queries.append((int(document) + 1, query, unit_rows(query.mean(axis=0))))
    return queries


def run_queries(port, bodies, warmup):
    """One client thread; returns (latencies in ms, share of queries whose source document is in the top 10)."""
    client = Client(port)
    for _, data in bodies[:warmup]:
        client.timed("POST", f"/collections/{NAME}/points/query", data)
    latencies, found = [], 0
    for source, data in bodies:
        seconds, payload = client.timed("POST", f"/collections/{NAME}/points/query", data)
        latencies.append(seconds * 1e3)
        points = json.loads(payload)["result"]["points"]
        found += any(point["id"] == source for point in points)
    client.close()
    return latencies, found / len(bodies)


def run(settings, report):
    part = "C. synthetic"
    folder = os.path.join(settings.work, "synth-input")
    data = os.path.join(settings.work, "synth-data")
    log(f"C: generating {settings.synth_tokens} tokens of dimension {settings.synth_dimension}")
    documents, tokens = synth_data.generate(folder, settings.synth_tokens, settings.synth_dimension,
                                            settings.synth_centres, settings.synth_noise, settings.seed,
                                            progress=lambda line: log("C:", line))
    input_bytes = disk_bytes(folder)
    queries = query_vectors(folder, settings.synth_queries, np.random.default_rng(settings.seed + 2))
    report.add(part, "synth.input_bytes",
               f"corpus: {documents} documents, {tokens} tokens × {settings.synth_dimension} float16",
               input_bytes, "bytes", note="input files")

    seconds, output = run_command(
        [settings.tessera, "import", NAME, "--data", data,
         "--vectors", f"tokens={os.path.join(folder, 'tokens.npy')}",
         "--offsets", f"tokens={os.path.join(folder, 'offsets.npy')}",
         "--vectors", f"pooled={os.path.join(folder, 'pooled.npy')}",
         "--ids", os.path.join(folder, "ids.txt")], "tessera import (synthetic)")
    log(output.strip())
    report.add(part, "synth.import_s", "tessera import (every core)", seconds, "s",
               note=f"{tokens / seconds:,.0f} tokens/s, {documents / seconds:,.0f} points/s")
    import_bytes = disk_bytes(os.path.join(data, NAME))
    if not settings.keep:
        os.remove(os.path.join(folder, "tokens.npy"))  # the largest input: the disk holds it and the collection

    kinds = [argument for kind in settings.synth_indexes for argument in ("--index", kind)]
    seconds, output = run_command([settings.tessera, "optimize", NAME, "--data", data, "--force"] + kinds,
                                  "tessera optimize")
    log(output.strip())
    report.add(part, "synth.optimize_s",
               f"tessera optimize --force (seal, merge, indexes: {', '.join(settings.synth_indexes)}; every core)",
               seconds, "s")
    with_compressed = "compressed" in settings.synth_indexes
    _, info = run_command([settings.tessera, "info", NAME, "--data", data], "tessera info")
    log(info.strip())
    on_disk = disk_bytes(os.path.join(data, NAME))
    raw = tokens * settings.synth_dimension * 2
    report.add(part, "synth.disk_after_import_bytes", "bytes on disk after import", import_bytes, "bytes")
    report.add(part, "synth.disk_bytes", "bytes on disk after optimize (du -sb)", on_disk, "bytes",
               note=f"{on_disk / raw:.2f} × the float16 tokens")

    compressed = [(source, encode({"query": np.round(q, 6).tolist(), "using": "tokens", "limit": 10,
                                   "params": {"nprobe": settings.synth_nprobe}}))
                  for source, q, _ in queries]
    hybrid = [(source, encode({"prefetch": {"query": np.round(d, 6).tolist(), "using": "pooled", "limit": 100},
                               "query": np.round(q, 6).tolist(), "using": "tokens", "limit": 10}))
              for source, q, d in queries]
    warmup = min(5, len(queries))
    with Server(settings.tessera, data, settings.threads, settings.pidfile) as server:
        server.wait_ready()
        client = Client(server.port)
        compressed_stages = None
        if with_compressed:
            compressed_stages, _ = describe_stages(client, NAME, json.loads(compressed[0][1]))
        hybrid_stages, _ = describe_stages(client, NAME, json.loads(hybrid[0][1]))
        client.close()
        opened = server.memory()
        with MemorySampler(server.process.pid) as sampler:
            compressed_ms, compressed_found = ([], 0.0)
            if with_compressed:
                compressed_ms, compressed_found = run_queries(server.port, compressed, warmup)
            hybrid_ms, hybrid_found = run_queries(server.port, hybrid, warmup)
        memory = sampler.last
    log(f"C: compressed query runs {compressed_stages}; hybrid runs {hybrid_stages}")
    n = f"{len(hybrid_ms)} queries, 1 client thread"
    if with_compressed:
        report.add(part, "synth.compressed_p50_ms",
                   f"compressed index query p50 (nprobe {settings.synth_nprobe}, limit 10; {n})",
                   percentile(compressed_ms, 0.5), "ms", upper=30)
        report.add(part, "synth.compressed_p95_ms", "compressed index query p95",
                   percentile(compressed_ms, 0.95), "ms")
        report.add(part, "synth.compressed_found",
                   "compressed: source document in the top 10", f"{compressed_found:.0%}", None)
    report.add(part, "synth.hybrid_p50_ms",
               f"hybrid query p50 (dense prefetch 100 → MaxSim; {n})", percentile(hybrid_ms, 0.5), "ms")
    report.add(part, "synth.hybrid_p95_ms", "hybrid query p95", percentile(hybrid_ms, 0.95), "ms")
    report.add(part, "synth.hybrid_found", "hybrid: source document in the top 10", f"{hybrid_found:.0%}", None)
    report.add(part, "synth.rss_open_bytes",
               "server VmRSS after opening (2 explained queries)", opened["VmRSS"], "bytes")
    report.add(part, "synth.rss_peak_bytes",
               "server VmRSS, peak sampled during the search phase", sampler.peak_rss, "bytes",
               upper=4 * 2**30)
    report.add(part, "synth.hwm_bytes",
               "server VmHWM after the search phase", memory["VmHWM"], "bytes", upper=4 * 2**30)
    report.add(part, "synth.anon_file", "  RssAnon / RssFile after the search phase",
               f"{memory['RssAnon'] / 2**20:.1f} / {memory['RssFile'] / 2**20:.1f} MiB", None)
    report.context["synth"] = {"documents": documents, "tokens": tokens, "dimension": settings.synth_dimension,
                               "centres": settings.synth_centres, "noise": settings.synth_noise,
                               "compressed_stages": compressed_stages, "hybrid_stages": hybrid_stages,
                               "input_bytes": input_bytes, "disk_bytes": on_disk, "info": info.strip()}
