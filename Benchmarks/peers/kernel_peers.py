"""MaxSim kernel peers, side by side with `tessera bench kernel` on identical data.

Runs the tessera binary (which times its own kernels and OpenBLAS sgemm and exports each workload's data),
then times on the same data: numpy per pair `(d @ q.T).max(0).sum()`, numpy with one GEMM and
`np.maximum.reduceat`, maxsim-cpu (`maxsim_scores` for uniform lengths, `maxsim_scores_variable`
otherwise) and torch when it is installed. Prints one table with every method's median time, its
effective GFLOP/s and the ratio of its time to Tessera's Float32 kernel (above 1: Tessera is faster).

Usage: python kernel_peers.py --tessera .build/release/tessera [--threads 2] [--repeats 7]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def timed(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def timed_in_child(fn, repeats):
    """Times fn in a forked child (it shares the loaded data) so that a peer that crashes costs only its row.
    Returns the median seconds, or a string saying how the child ended."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            median = statistics.median(timed(fn, repeats))
            os.write(write_end, repr(median).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    data = b""
    while chunk := os.read(read_end, 4096):
        data += chunk
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    if data:
        return float(data.decode())
    if os.WIFSIGNALED(status):
        return f"crashed (signal {os.WTERMSIG(status)})"
    return f"failed (exit {os.WEXITSTATUS(status)})"


def load(folder, np):
    shape = json.load(open(os.path.join(folder, "shape.json")))
    dim = shape["dimension"]
    queries = np.fromfile(os.path.join(folder, "queries.f32"), dtype=np.float32).reshape(-1, dim)
    documents = np.fromfile(os.path.join(folder, "documents.f32"), dtype=np.float32).reshape(-1, dim)
    offsets = np.fromfile(os.path.join(folder, "offsets.i64"), dtype=np.int64)
    return shape, queries, documents, offsets


def peers_for(shape, queries, documents, offsets, np):
    """Returns (name, callable) pairs, each computing all the workload's scores."""
    lq = shape["query_tokens"]
    nq = shape["query_count"]
    docs = [documents[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
    qs = [queries[i * lq:(i + 1) * lq] for i in range(nq)]
    starts = offsets[:-1]
    uniform = len(set(int(offsets[i + 1] - offsets[i]) for i in range(len(offsets) - 1))) == 1
    methods = []

    def numpy_per_pair():
        return [[float((d @ q.T).max(0).sum()) for d in docs] for q in qs]

    def numpy_gemm_reduceat():
        sims = documents @ queries.T  # [ΣLd, nq·lq]
        maxima = np.maximum.reduceat(sims, starts, axis=0)  # [docs, nq·lq]
        return maxima.reshape(len(docs), nq, lq).sum(2)

    methods.append(("numpy per pair", numpy_per_pair))
    methods.append(("numpy gemm+reduceat", numpy_gemm_reduceat))
    if uniform:
        ld = int(offsets[1] - offsets[0])

        def numpy_padded():
            sims = (documents @ queries.T).reshape(len(docs), ld, nq, lq)
            return sims.max(1).sum(2)

        methods.append(("numpy padded gemm", numpy_padded))
    try:
        import maxsim_cpu

        if uniform:
            padded = documents.reshape(len(docs), -1, documents.shape[1])
            methods.append(("maxsim-cpu", lambda: [maxsim_cpu.maxsim_scores(q, padded) for q in qs]))
        else:
            methods.append(("maxsim-cpu", lambda: [maxsim_cpu.maxsim_scores_variable(q, docs) for q in qs]))
    except ImportError:
        print("maxsim-cpu is not installed; skipping it", file=sys.stderr)
    try:
        import torch

        tq = torch.from_numpy(queries)
        td = torch.from_numpy(documents)
        tstarts = torch.from_numpy(offsets)

        def torch_segment():
            sims = td @ tq.T
            maxima = torch.segment_reduce(sims, "max", offsets=tstarts, axis=0)
            return maxima.reshape(len(docs), nq, lq).sum(2)

        methods.append(("torch gemm+segment_reduce", torch_segment))
    except ImportError:
        print("torch is not installed; skipping it", file=sys.stderr)
    return methods


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tessera", default=".build/release/tessera")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--workloads", default="W1,W2,W3,W1-384")
    args = parser.parse_args()
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
        os.environ[variable] = str(args.threads)
    import numpy as np

    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    rows = []
    with tempfile.TemporaryDirectory() as export:
        for workload in args.workloads.split(","):
            command = [args.tessera, "bench", "kernel", "--json", "--skip-peak", "--workloads", workload,
                       "--threads", str(args.threads), "--repeats", str(args.repeats), "--export", export]
            report = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            row = report["rows"][0]
            flop = row["flop"]
            ours = row["kernel"]["float32"]["median"]
            rows.append((workload, "tessera float32", ours, flop, ours))
            for key in ("float16", "bfloat16", "int8"):
                if key in row["kernel"]:
                    rows.append((workload, f"tessera {key}", row["kernel"][key]["median"], flop, ours))
            rows.append((workload, "openblas sgemm (no max)", row["sgemm"]["median"], flop, ours))
            shape, queries, documents, offsets = load(os.path.join(export, workload), np)
            for name, fn in peers_for(shape, queries, documents, offsets, np):
                rows.append((workload, name, timed_in_child(fn, args.repeats), flop, ours))
                print(f"  timed {workload} {name}: {rows[-1][2]}", file=sys.stderr, flush=True)
            del queries, documents
            for entry in os.listdir(os.path.join(export, workload)):
                os.remove(os.path.join(export, workload, entry))
    print(f"\n{report['machine']}, {args.threads} threads, median of {args.repeats} after a warm-up\n")
    print("| workload | method | median ms | GFLOP/s | peer time / Tessera f32 time |")
    print("|---|---|---:|---:|---:|")
    for workload, name, seconds, flop, ours in rows:
        if isinstance(seconds, str):
            print(f"| {workload} | {name} | {seconds} | – | – |")
        else:
            print(f"| {workload} | {name} | {seconds * 1e3:.1f} | {flop / seconds / 1e9:.1f} | {seconds / ours:.2f} |")


if __name__ == "__main__":
    main()
