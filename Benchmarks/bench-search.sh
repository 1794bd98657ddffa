#!/usr/bin/env bash
# Exact search against the compressed index on BEIR data sets: for each data set, makes sure a collection
# (f16, plain profile) exists in .build/eval-collections — indexing it when missing, resuming when partial —,
# builds its compressed index when missing and its HNSW graph of the pooled vectors, then runs `tessera bench
# search` (exact, compressed alone at several nprobe, compressed + exact rerank; stage split of the index
# alone; the query pipelines: BM25, dense, dense → MaxSim, BM25 ∪ dense → MaxSim, the union with the
# compressed index, RRF and DBSF fusions; HNSW recall against exact dense search).
# Usage: Benchmarks/bench-search.sh [DATA_ROOT] [DATASET ...]
#   DATA_ROOT defaults to ../shared/ir-data; DATASET defaults to scifact cranfield.
#   REBUILD=1 retrains the compressed index; MODEL=DIR picks the encoder for a new collection.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
data="${1:-$root/../shared/ir-data}"
shift || true
datasets=("$@")
if [ ${#datasets[@]} -eq 0 ]; then datasets=(scifact cranfield); fi
bin="$root/.build/release/tessera"
(cd "$root" && swift build -c release --product tessera >&2)
out="$root/.build/eval-collections"
mkdir -p "$out"
for dataset in "${datasets[@]}"; do
    name="$dataset-f16-plain"
    echo "== $name" >&2
    flags=(--compressed --hnsw)
    if [ "${REBUILD:-0}" = 1 ]; then flags+=(--rebuild); fi
    "$bin" index "$name" --data "$out" --beir "$data/$dataset" --dtype f16 --profile plain \
        --model "${MODEL:-$root/models/all-MiniLM-L6-v2}" "${flags[@]}" >&2
    "$bin" bench search "$name" --data "$out" --beir "$data/$dataset" --nprobe 4,8,16,32 \
        --reranked 8:100,16:100,16:200 \
        --pipelines "bm25,dense,dense-rerank,$root/Benchmarks/pipelines/bm25-dense-maxsim.json,union,hybrid-rrf,hybrid"
done
