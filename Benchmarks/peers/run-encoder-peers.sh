#!/usr/bin/env bash
# Encoder throughput of Tessera (f32, bf16 where the CPU has AVX512_BF16, int8) against ONNX Runtime (float32 and
# dynamic int8, FastEmbed's runtime) and sentence-transformers (PyTorch, CPU) on the same texts and threads, in one run.
# Creates Benchmarks/peers/.venv on first use (CPU torch wheel when the index has one, else the default wheel;
# onnxruntime, onnx, tokenizers), builds the release `tessera`, then runs encoder_peers.py, which exports the
# ONNX model from the local safetensors, runs every engine and prints one table.
# Usage: Benchmarks/peers/run-encoder-peers.sh [--limit N] [--threads N] [--batch-size N] [--repeats N]
#        [--corpus PATH] [--skip-torch] [--json]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    # A CPU-only build keeps the environment small; fall back to the default wheel if none is offered.
    "$venv/bin/pip" install -q "torch==2.13.0+cpu" || "$venv/bin/pip" install -q torch \
        || { echo "PyTorch cannot be installed here; the peer comparison cannot run." >&2; exit 1; }
fi
# The kernel peer script shares this environment and does not install sentence-transformers.
if ! "$venv/bin/python" -c "import sentence_transformers, onnxruntime, onnx, onnxscript, tokenizers" 2>/dev/null; then
    "$venv/bin/pip" install -q sentence-transformers "onnxruntime==1.32.0" onnx onnxscript tokenizers
fi
cd "$root"
swift build -c release --product tessera >&2
exec "$venv/bin/python" "$here/encoder_peers.py" --tessera "$root/.build/release/tessera" "$@"
