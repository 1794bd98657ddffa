#!/usr/bin/env bash
# The storage-engine benchmark: SciFact through `tessera serve` (open → first query answered, cold and warm
# page cache; single-point upserts alone; queries from two threads alone; both together), a keyword filter
# keeping 1% of 10⁶ points with and without its payload index, and a synthetic collection of SYNTH_TOKENS
# 384-d float16 tokens (generate, `tessera import`, `tessera optimize --force`, bytes on disk, compressed and
# hybrid queries with the server's memory). Prints a Markdown table and a JSON summary on standard output.
#
# Usage: Benchmarks/bench-engine.sh        (make bench-engine builds the release binary and the model first)
# Environment:
#   TESSERA=PATH          the binary (default .build/release/tessera)
#   COLLECTIONS=DIR       where the SciFact collection is, built there when missing (default .build/eval-collections)
#   DATA=DIR              BEIR data root (default ../shared/ir-data); MODEL=DIR the encoder for a new collection
#   SKIP_SCIFACT=1 SKIP_FILTER=1 SKIP_SYNTH=1   leave a part out
#   SYNTH_TOKENS=N        synthetic tokens (default 20000000, about 15 GB of float16 input)
#   SYNTH_INDEXES=LIST    the derived indexes optimize builds for it (default compressed,hnsw)
#   FILTER_POINTS=N       points of the filter collection (default 1000000)
#   OPEN_REPEATS UPSERTS QUERIES QUERY_THREADS SYNTH_QUERIES SYNTH_NPROBE SERVE_THREADS SEED   sizes
#   NO_DROP_CACHES=1      no cold-cache run (dropping the page cache needs root)
#   KEEP=1                keep the temporary folder (.build/bench-engine.*) with the generated files
# Smoke run (a minute or two once SciFact is indexed):
#   SYNTH_TOKENS=300000 FILTER_POINTS=100000 OPEN_REPEATS=2 UPSERTS=50 QUERIES=50 Benchmarks/bench-engine.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tessera="${TESSERA:-$root/.build/release/tessera}"
collections="${COLLECTIONS:-$root/.build/eval-collections}"
data="${DATA:-$root/../shared/ir-data}"
if [ ! -x "$tessera" ]; then
    echo "no tessera binary at $tessera (make release, or TESSERA=PATH)" >&2
    exit 1
fi

venv="$root/Benchmarks/engine/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check numpy
fi

scifact="${SCIFACT_COLLECTION:-scifact-f16-plain}"
if [ "${SKIP_SCIFACT:-0}" != 1 ] && [ ! -f "$collections/$scifact/collection.sqlite" ]; then
    echo "== indexing SciFact into $collections/$scifact (once; 5–10 minutes)" >&2
    mkdir -p "$collections"
    "$tessera" index "$scifact" --data "$collections" --beir "$data/scifact" --dtype f16 --profile plain \
        --model "${MODEL:-$root/models/all-MiniLM-L6-v2}" --compressed --hnsw >&2
fi

mkdir -p "$root/.build"
work="$(mktemp -d "$root/.build/bench-engine.XXXXXX")"
harness=""
cleanup() {
    # The harness first (when the script is interrupted), then the servers it started and did not stop (it
    # writes each one's pid here when it starts it).
    if [ -n "$harness" ] && kill -0 "$harness" 2>/dev/null; then
        kill -TERM "$harness" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$harness" 2>/dev/null || break; sleep 0.1; done
    fi
    if [ -f "$work/servers.pid" ]; then
        while read -r pid; do
            if kill -0 "$pid" 2>/dev/null; then
                kill -TERM "$pid" 2>/dev/null || true
                for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done <"$work/servers.pid"
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

BENCH_WORK="$work" TESSERA="$tessera" COLLECTIONS="$collections" SCIFACT_COLLECTION="$scifact" \
    "$venv/bin/python" "$root/Benchmarks/engine/bench_engine.py" &
harness=$!
status=0
wait "$harness" || status=$?
exit "$status"
