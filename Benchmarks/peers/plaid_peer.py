#!/usr/bin/env python3
"""fast-plaid (PyPI) on the token vectors of a `tessera bench export` folder, as one row of `tessera bench search`.

The documents' vectors (float16 in the export, given to fast-plaid as one float32 tensor per document) are
indexed on CPU with the chosen nbits; the build runs in a child process, so that the search process's peak
RSS does not include the float32 copies and k-means. Then every exported query is searched on its own (a batch
of one, after one untimed warm-up search that also loads the index), top 100, timed with time.perf_counter.
Quality is computed here against BEIR qrels (queries without judgements are not evaluated): nDCG@k (gain = the
relevance grade, discount log2(rank + 1)), Recall@100 and MRR@k. Bytes/token is the index folder's size on disk
over the indexed tokens; RSS is the search process's peak (getrusage). Prints the build line and the table row
(`| method | nDCG@10 | Recall@100 | MRR@10 | p50 ms | p95 ms | bytes/token | RSS MiB |`); --json prints JSON.
fast-plaid scores the candidates of the probed cells with their centroids only, keeps the best n_full_scores, and
decompresses and scores exactly the best n_full_scores / 4 of those: it returns at most n_full_scores / 4 documents,
so n_full_scores below 400 leaves Recall@100 short. On CPU it computes in float16 (queries are cast to it).
Usage: plaid_peer.py --export DIR --qrels FILE [--nbits 2] [--centroids N] [--threads 2] [--k 10]
       [--n-ivf-probe N] [--n-full-scores N] [--limit-docs N] [--index-dir DIR] [--json]
"""
import argparse
import json
import math
import os
import resource
import shutil
import sys
import tempfile
import time


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--export", required=True, help="folder written by `tessera bench export`")
    parser.add_argument("--qrels", required=True, help="BEIR qrels TSV (query-id, corpus-id, score)")
    parser.add_argument("--nbits", type=int, default=2, help="bits per residual dimension (default 2)")
    parser.add_argument("--centroids", type=int, help="k-means centroids (default: fast-plaid's own heuristic)")
    parser.add_argument("--threads", type=int, default=2, help="torch and rayon threads (default 2)")
    parser.add_argument("--k", type=int, default=10, help="cutoff of nDCG and MRR (default 10)")
    parser.add_argument("--n-ivf-probe", type=int, help="cells probed per query token (default: fast-plaid's)")
    parser.add_argument("--n-full-scores", type=int, help="candidates kept after centroid scoring (default: fast-plaid's)")
    parser.add_argument("--limit-docs", type=int, help="index only the first N documents (smoke test; qrels restricted to them)")
    parser.add_argument("--index-dir", help="where the index is written and kept (default: a temporary folder, removed)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser.parse_args()


def log(message):
    print(message, file=sys.stderr, flush=True)


def read_ids(path):
    with open(path) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def load_export(folder, limit_docs, np):
    """Returns (meta, documents f16 memmap [tokens, dim], document offsets, document ids, queries, query ids)."""
    meta = json.load(open(os.path.join(folder, "meta.json")))
    dim = meta["dimension"]
    documents = np.memmap(os.path.join(folder, "documents.f16"), dtype="<f2", mode="r").reshape(-1, dim)
    offsets = np.fromfile(os.path.join(folder, "document_offsets.i64"), dtype="<i8")
    document_ids = read_ids(os.path.join(folder, "document_ids.txt"))
    queries = np.fromfile(os.path.join(folder, "queries.f32"), dtype="<f4").reshape(-1, dim)
    query_offsets = np.fromfile(os.path.join(folder, "query_offsets.i64"), dtype="<i8")
    query_ids = read_ids(os.path.join(folder, "query_ids.txt"))
    if len(offsets) != meta["documents"] + 1 or len(document_ids) != meta["documents"] or offsets[-1] != len(documents):
        sys.exit(f"{folder}: documents, offsets and ids disagree with meta.json")
    if len(query_offsets) != meta["queries"] + 1 or len(query_ids) != meta["queries"] or query_offsets[-1] != len(queries):
        sys.exit(f"{folder}: queries, offsets and ids disagree with meta.json")
    if limit_docs is not None and limit_docs < len(document_ids):
        offsets = offsets[:limit_docs + 1]
        document_ids = document_ids[:limit_docs]
    query_list = [queries[query_offsets[i]:query_offsets[i + 1]] for i in range(len(query_ids))]
    return meta, documents, offsets, document_ids, query_list, query_ids


def load_qrels(path):
    """{query id: {document id: grade}} for the judgements with a positive grade."""
    qrels = {}
    with open(path) as f:
        for number, line in enumerate(f):
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 3 or (number == 0 and not fields[2].lstrip("-").isdigit()):
                continue  # the header
            grade = int(fields[2])
            if grade > 0:
                qrels.setdefault(fields[0], {})[fields[1]] = grade
    return qrels


def ndcg(ranking, judged, k):
    dcg = sum(judged.get(doc, 0) / math.log2(rank + 1) for rank, doc in enumerate(ranking[:k], start=1))
    ideal = sum(grade / math.log2(rank + 1)
                for rank, grade in enumerate(sorted(judged.values(), reverse=True)[:k], start=1))
    return dcg / ideal if ideal > 0 else 0.0


def recall(ranking, judged, k):
    return len(set(ranking[:k]) & judged.keys()) / len(judged)


def reciprocal_rank(ranking, judged, k):
    for rank, doc in enumerate(ranking[:k], start=1):
        if doc in judged:
            return 1.0 / rank
    return 0.0


def percentile(values, fraction):
    """Nearest rank, as `tessera bench search` computes it."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round((len(ordered) - 1) * fraction)))] if ordered else 0.0


def folder_bytes(folder):
    """Bytes of the index on disk. Left out: the lock file, and `embeddings.npy`, the raw vectors fast-plaid
    keeps beside a small index (up to `start_from_scratch` documents) to rebuild it on update; search never reads it."""
    total = 0
    for parent, _, names in os.walk(folder):
        for name in names:
            if name not in ("plaid.lock", "embeddings.npy"):
                total += os.path.getsize(os.path.join(parent, name))
    return total


def build(args, index_dir):
    """Builds the index in a child process; returns what the child reports (seconds, centroid count, peak RSS)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        status = 1
        try:
            import numpy as np
            import torch
            import fast_plaid.search.fast_plaid as fast_plaid_module
            from fast_plaid.search import FastPlaid

            torch.set_num_threads(args.threads)
            _, documents, offsets, _, _, _ = load_export(args.export, args.limit_docs, np)
            tensors = [torch.from_numpy(np.asarray(documents[offsets[i]:offsets[i + 1]], dtype=np.float32))
                       for i in range(len(offsets) - 1)]
            if args.centroids is not None:
                # create() has no argument for it; compute_kmeans takes num_partitions (None: the heuristic).
                train = fast_plaid_module.compute_kmeans
                fast_plaid_module.compute_kmeans = lambda *a, **kw: train(*a, **kw, num_partitions=args.centroids)
            index = FastPlaid(index=index_dir, device="cpu")
            start = time.perf_counter()
            index.create(documents_embeddings=tensors, nbits=args.nbits)
            seconds = time.perf_counter() - start
            centroids = np.load(os.path.join(index_dir, "centroids.npy"), mmap_mode="r").shape[0] \
                if os.path.exists(os.path.join(index_dir, "centroids.npy")) else None
            report = {"seconds": seconds, "centroids": centroids, "documents": len(tensors),
                      "tokens": int(offsets[-1]),
                      "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
            os.write(write_end, json.dumps(report).encode())
            status = 0
        except BaseException as error:  # noqa: BLE001 - the parent reports it
            print(f"fast-plaid build failed: {error!r}", file=sys.stderr, flush=True)
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"
        sys.exit(f"fast-plaid index build did not finish ({how})")
    return json.loads(data)


def main():
    args = parse_arguments()
    # Rust (rayon) and torch's thread pools read these at start-up; set them before anything loads torch.
    for variable in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(args.threads)
    made_index_dir = args.index_dir is None
    index_dir = tempfile.mkdtemp(prefix="plaid-peer-") if made_index_dir else args.index_dir
    try:
        log(f"building the fast-plaid index in {index_dir} (nbits {args.nbits}, {args.threads} threads)")
        built = build(args, index_dir)  # before torch is imported here: the child forks a process without threads
        index_bytes = folder_bytes(index_dir)

        import inspect
        from importlib.metadata import version

        import numpy as np
        import torch
        from fast_plaid.search import FastPlaid

        torch.set_num_threads(args.threads)
        defaults = inspect.signature(FastPlaid.search).parameters
        probe = args.n_ivf_probe if args.n_ivf_probe is not None else defaults["n_ivf_probe"].default
        full_scores = args.n_full_scores if args.n_full_scores is not None else defaults["n_full_scores"].default
        _, _, _, document_ids, queries, query_ids = load_export(args.export, args.limit_docs, np)
        qrels = load_qrels(args.qrels)
        if args.limit_docs is not None:
            kept = set(document_ids)
            qrels = {q: {d: g for d, g in judged.items() if d in kept} for q, judged in qrels.items()}
            qrels = {q: judged for q, judged in qrels.items() if judged}

        index = FastPlaid(index=index_dir, device="cpu")
        tensors = [torch.from_numpy(np.ascontiguousarray(q)).unsqueeze(0) for q in queries]
        parameters = dict(top_k=100, n_ivf_probe=probe, n_full_scores=full_scores, show_progress=False)
        index.search(queries_embeddings=tensors[0], **parameters)  # warm-up: loads the index
        if full_scores // 4 < 100:
            log(f"warning: fast-plaid returns at most n_full_scores / 4 = {full_scores // 4} documents; "
                "Recall@100 is computed on those")
        log(f"searching {len(tensors)} queries one at a time (probe {probe}, full scores {full_scores})")
        times = []
        rankings = {}
        for query_id, tensor in zip(query_ids, tensors):
            start = time.perf_counter()
            result = index.search(queries_embeddings=tensor, **parameters)
            times.append((time.perf_counter() - start) * 1000)
            rankings[query_id] = [document_ids[passage] for passage, _ in result[0]]
        rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        fewest_results = min(len(ranking) for ranking in rankings.values())

        evaluated = [q for q in query_ids if q in qrels]
        missing = [q for q in qrels if q not in rankings]
        if missing and args.limit_docs is None:
            log(f"warning: {len(missing)} judged queries are not in the export and are not evaluated")
        if not evaluated:
            sys.exit("no exported query has judgements in the qrels file")
        count = len(evaluated)
        plaid_version = version("fast-plaid")
        row = {
            "method": f"fast-plaid {plaid_version} (nbits {args.nbits}, probe {probe}, full scores {full_scores})",
            f"ndcg@{args.k}": sum(ndcg(rankings[q], qrels[q], args.k) for q in evaluated) / count,
            "recall@100": sum(recall(rankings[q], qrels[q], 100) for q in evaluated) / count,
            f"mrr@{args.k}": sum(reciprocal_rank(rankings[q], qrels[q], args.k) for q in evaluated) / count,
            "p50_ms": percentile(times, 0.5),
            "p95_ms": percentile(times, 0.95),
            "bytes_per_token": index_bytes / built["tokens"],
            "rss_mib": rss_mib,
        }
        summary = {
            "fast_plaid": plaid_version,
            "torch": torch.__version__,
            "threads": args.threads,
            "nbits": args.nbits,
            "centroids": built["centroids"],
            "n_ivf_probe": probe,
            "n_full_scores": full_scores,
            "documents": built["documents"],
            "tokens": built["tokens"],
            "queries_searched": len(tensors),
            "queries_evaluated": count,
            "fewest_results": fewest_results,
            "build_seconds": built["seconds"],
            "build_rss_mib": built["rss_mib"],
            "index_bytes": index_bytes,
            "row": row,
        }
        if args.json:
            print(json.dumps(summary, indent=2))
            return
        print(f"fast-plaid {plaid_version} (torch {torch.__version__}, {args.threads} threads): index of "
              f"{built['documents']} documents, {built['tokens']} tokens, {built['centroids']} centroids, "
              f"nbits {args.nbits} built in {built['seconds']:.1f} s (peak RSS {built['rss_mib']:.0f} MiB); "
              f"{len(tensors)} queries searched, {count} evaluated")
        print(f"| method | nDCG@{args.k} | Recall@100 | MRR@{args.k} | p50 ms | p95 ms | bytes/token | RSS MiB |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| {row['method']} | {row[f'ndcg@{args.k}']:.4f} | {row['recall@100']:.4f} | {row[f'mrr@{args.k}']:.4f} "
              f"| {row['p50_ms']:.2f} | {row['p95_ms']:.2f} | {row['bytes_per_token']:.0f} | {row['rss_mib']:.0f} |")
    finally:
        if made_index_dir:
            shutil.rmtree(index_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
