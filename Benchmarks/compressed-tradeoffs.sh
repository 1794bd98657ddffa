#!/usr/bin/env bash
# Rebuilds the compressed index of a copy of a BEIR collection at several centroid counts and training samples
# and prints, per build, its build time and `tessera bench search` rows (alone at nprobe 8 and 16; nprobe 8 then
# an exact rerank of 100). The copy lives in a scratch folder; the source collection is not touched.
#
# Usage: Benchmarks/compressed-tradeoffs.sh COLLECTION BEIR_FOLDER [CONFIG ...]
#   CONFIG is CENTROIDS:TRAINING_TOKENS (TRAINING_TOKENS "-" for the default), e.g. 4096:- 2048:65536.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
collection="${1:?collection folder}"
beir="${2:?BEIR folder}"
shift 2
configs=("$@")
if [ ${#configs[@]} -eq 0 ]; then configs=(1024:- 2048:- 4096:- 8192:- 4096:65536 4096:262144); fi
tessera="$root/.build/release/tessera"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/tessera-tradeoffs.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
cp -r "$collection" "$scratch/collection"
for config in "${configs[@]}"; do
    centroids="${config%%:*}"
    training="${config#*:}"
    arguments=(--centroids "$centroids")
    if [ "$training" != "-" ]; then arguments+=(--training-tokens "$training"); fi
    echo "## $centroids centroids, training tokens: $training"
    "$tessera" index "$scratch/collection" --beir "$beir" --rebuild "${arguments[@]}" | grep '^compressed index:' | tail -1
    "$tessera" bench search "$scratch/collection" --beir "$beir" --no-exact --nprobe 8,16 --reranked 8:100 \
        | grep -E '^\| compressed'
done
