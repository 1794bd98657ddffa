#!/usr/bin/env bash
# Scatter-gather on loopback (Benchmarks/cluster/cluster_bench.py): a BEIR collection built by `tessera index`
# (.build/eval-collections, as bench-search makes it), its token vectors exported by `tessera bench export`, then
# served by one node and by three `tessera serve --cluster` nodes over one etcd.
# Usage: Benchmarks/bench-cluster.sh [DATA_ROOT] [DATASET]   (defaults: ../shared/ir-data scifact)
#   DOCS=N takes the first N documents; SECONDS_EACH and CLIENTS shape the throughput runs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
data="${1:-$root/../shared/ir-data}"
dataset="${2:-scifact}"
bin="$root/.build/release/tessera"
(cd "$root" && swift build -c release --product tessera >&2)
collections="$root/.build/eval-collections"
name="$dataset-f16-plain"
"$bin" index "$name" --data "$collections" --beir "$data/$dataset" --dtype f16 --profile plain \
    --model "${MODEL:-$root/models/all-MiniLM-L6-v2}" >&2
export_dir="$root/.build/cluster-bench/$dataset"
[ -f "$export_dir/meta.json" ] || "$bin" bench export "$name" --data "$collections" --beir "$data/$dataset" --out "$export_dir" >&2
NO_PROXY='*' no_proxy='*' python3 "$root/Benchmarks/cluster/cluster_bench.py" --tessera "$bin" --export "$export_dir" \
    --docs "${DOCS:-0}" --seconds "${SECONDS_EACH:-20}" --clients "${CLIENTS:-4}" --json "$export_dir/results.json"
