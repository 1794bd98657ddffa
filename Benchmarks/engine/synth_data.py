"""Generates a synthetic multivector corpus for `tessera import`, in chunks (never the whole corpus in memory):

- tokens.npy   float16 [T, D]: clustered unit vectors. CENTRES random unit centres; each document draws 8 of
               them as its topics and each of its tokens is one topic's centre plus Gaussian noise (NOISE per
               dimension), normalised.
- offsets.npy  int64 [N + 1], from 0: document i owns tokens offsets[i] ..< offsets[i + 1].
- pooled.npy   float16 [N, D]: the normalised mean of each document's tokens.
- ids.txt      1 ... N, one a line (document i has id i + 1).

Document lengths are uniform in 32 ... 224 tokens; documents are drawn until the next would pass TOKENS, so
the corpus holds at most TOKENS tokens (fewer by less than one document).

    python synth_data.py OUT_DIR --tokens 300000 [--dimension 384] [--centres 4096] [--noise 0.03] [--seed 1]
"""

import argparse
import os
import sys
import time

import numpy as np
from numpy.lib.format import open_memmap

TOPICS_PER_DOCUMENT = 8
MIN_LENGTH, MAX_LENGTH = 32, 224
CHUNK_TOKENS = 1 << 17


def unit_rows(matrix):
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    matrix /= norms
    return matrix


def document_lengths(rng, token_budget):
    lengths, total = [], 0
    while total < token_budget:
        batch = rng.integers(MIN_LENGTH, MAX_LENGTH + 1, size=max(1024, (token_budget - total) // 128 + 1))
        lengths.append(batch)
        total += int(batch.sum())
    lengths = np.concatenate(lengths)
    keep = int(np.searchsorted(np.cumsum(lengths), token_budget, side="right"))
    if keep == 0:
        raise ValueError(f"{token_budget} tokens hold no document of {MIN_LENGTH}+ tokens")
    return lengths[:keep]


def generate(out, token_budget, dimension=384, centres=4096, noise=0.03, seed=1, progress=None):
    """Writes the four files into `out`; returns (documents, tokens)."""
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    lengths = document_lengths(rng, token_budget)
    documents = len(lengths)
    offsets = np.zeros(documents + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens_total = int(offsets[-1])
    np.save(os.path.join(out, "offsets.npy"), offsets)
    with open(os.path.join(out, "ids.txt"), "w") as ids:
        for start in range(0, documents, 100_000):
            ids.write("".join(f"{i + 1}\n" for i in range(start, min(documents, start + 100_000))))

    centre_rows = unit_rows(rng.standard_normal((centres, dimension), dtype=np.float32))
    tokens = open_memmap(os.path.join(out, "tokens.npy"), mode="w+", dtype=np.float16,
                         shape=(tokens_total, dimension))
    pooled = open_memmap(os.path.join(out, "pooled.npy"), mode="w+", dtype=np.float16,
                         shape=(documents, dimension))
    started = time.monotonic()
    first = 0
    while first < documents:
        # As many documents as fit in one chunk of tokens (at least one).
        last = int(np.searchsorted(offsets, offsets[first] + CHUNK_TOKENS, side="right")) - 1
        last = min(documents, max(last, first + 1))
        begin, end = int(offsets[first]), int(offsets[last])
        local_lengths = lengths[first:last]
        topics = rng.integers(0, centres, size=(last - first, TOPICS_PER_DOCUMENT))
        owner = np.repeat(np.arange(last - first), local_lengths)
        chosen = topics[owner, rng.integers(0, TOPICS_PER_DOCUMENT, size=end - begin)]
        rows = rng.standard_normal((end - begin, dimension), dtype=np.float32)
        rows *= noise
        rows += centre_rows[chosen]
        unit_rows(rows)
        tokens[begin:end] = rows
        starts = (offsets[first:last] - begin).astype(np.intp)
        means = np.add.reduceat(rows, starts, axis=0)
        pooled[first:last] = unit_rows(means)
        first = last
        if progress and (first == documents or time.monotonic() - started > 10):
            progress(f"generated {end} / {tokens_total} tokens, {first} / {documents} documents")
            started = time.monotonic()
    tokens.flush()
    pooled.flush()
    del tokens, pooled
    return documents, tokens_total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--tokens", type=int, default=20_000_000)
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--centres", type=int, default=4096)
    parser.add_argument("--noise", type=float, default=0.03)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    documents, tokens = generate(args.out, args.tokens, args.dimension, args.centres, args.noise, args.seed,
                                 progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"{documents} documents, {tokens} tokens in {args.out}")


if __name__ == "__main__":
    main()
