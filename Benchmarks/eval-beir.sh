#!/usr/bin/env bash
# Retrieval quality of exact MaxSim search on BEIR data sets: for each data set, storage type and encoding
# profile, builds a collection with the release `tessera` (index time, tokens, bytes per token) and evaluates
# it (nDCG@10, Recall@100, MRR@10, search latency p50/p95), then prints one Markdown table.
# Usage: Benchmarks/eval-beir.sh [DATA_ROOT] [CONFIG ...]
#   DATA_ROOT defaults to ../shared/ir-data; a CONFIG is dataset:dtype:profile[:precision] (the encoder's
#   arithmetic, f32 unless given: bf16 or int8 encode documents and queries at that precision), default
#   cranfield:f16:plain scifact:f16:plain cranfield:f32:plain scifact:f32:plain cranfield:int8:plain.
#   The colbert profile needs a ColBERT checkpoint (one with a projection): pass MODEL=DIR for it.
#   Collections are rebuilt in .build/eval-collections.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
data="${1:-$root/../shared/ir-data}"
shift || true
configs=("$@")
if [ ${#configs[@]} -eq 0 ]; then
    configs=(cranfield:f16:plain scifact:f16:plain cranfield:f32:plain scifact:f32:plain cranfield:int8:plain)
fi
bin="$root/.build/release/tessera"
(cd "$root" && swift build -c release --product tessera >&2)
out="$root/.build/eval-collections"
mkdir -p "$out"
results=()
for config in "${configs[@]}"; do
    IFS=: read -r dataset dtype profile precision <<<"$config"
    precision="${precision:-f32}"
    name="$dataset-$dtype-$profile"
    [ "$precision" = f32 ] || name="$name-$precision"
    echo "== $name" >&2
    rm -rf "${out:?}/$name"
    "$bin" index "$name" --data "$out" --beir "$data/$dataset" --dtype "$dtype" --profile "$profile" \
        --precision "$precision" --model "${MODEL:-$root/models/all-MiniLM-L6-v2}" --json >"$out/$name.index.json"
    "$bin" eval "$name" --data "$out" --beir "$data/$dataset" --first-stage exact --json >"$out/$name.eval.json"
    results+=("$out/$name")
done
python3 - "${results[@]}" <<'PY'
import json, os, sys
print("| data set | profile | encoder | storage | docs | tokens | index s | tokens/s | bytes/token | nDCG@10 | Recall@100 | MRR@10 | search p50 ms | p95 ms |")
print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for base in sys.argv[1:]:
    index = json.load(open(base + ".index.json"))
    ev = json.load(open(base + ".eval.json"))
    name = os.path.basename(base)
    dataset = name.split("-")[0]
    precision = name.split("-")[3] if name.count("-") >= 3 else "f32"
    tokens = index["tokens"] or 1
    seconds, rate = index["seconds"], index["tokensPerSecond"]
    print(f"| {dataset} | {ev['profile']} | {precision} | {ev['elementType']} | {ev['points']} | {index['tokens']} | {seconds:.0f} | "
          f"{rate:.0f} | {index['tokenVectorBytes'] / tokens:.0f} | {ev['ndcgAt10']:.4f} | {ev['recallAt100']:.4f} | "
          f"{ev['mrrAt10']:.4f} | {ev['searchMillisecondsP50']:.1f} | {ev['searchMillisecondsP95']:.1f} |")
PY
