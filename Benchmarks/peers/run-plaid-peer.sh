#!/usr/bin/env bash
# Retrieval against fast-plaid (PLAID index, PyPI package, run on CPU) on the token vectors of a
# `tessera bench export` folder: quality (nDCG@10, Recall@100, MRR@10), one-query-at-a-time latency,
# index bytes/token and RSS, printed as a row of the bench table (see plaid_peer.py).
# Creates Benchmarks/peers/.venv-plaid on first use: fast-plaid pins an exact torch version, so it gets its own
# environment (the CPU wheel of that torch when download.pytorch.org answers, else the default PyPI wheel).
# Usage: Benchmarks/peers/run-plaid-peer.sh --export DIR --qrels FILE [--nbits 2] [--threads 2] [--k 10]
#        [--centroids N] [--n-ivf-probe N] [--n-full-scores N] [--limit-docs N] [--index-dir DIR] [--json]
# Versions: FAST_PLAID_VERSION and TORCH_VERSION (the torch that fast-plaid's wheel requires) override the pins.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-plaid"
fast_plaid_version="${FAST_PLAID_VERSION:-1.7.0.2110}"
torch_version="${TORCH_VERSION:-2.11.0}"

# Installs with pip; on failure prints one line naming the package and pip's last error, and exits.
install() {
    local what="$1"; shift
    local log
    log="$(mktemp)"
    if ! "$venv/bin/pip" install -q --disable-pip-version-check "$@" 2>"$log"; then
        local why
        why="$(grep -E '^ERROR' "$log" | tail -n 1 || true)"
        [ -n "$why" ] || why="$(tail -n 1 "$log")"
        rm -f "$log"
        echo "$what could not be installed in $venv: ${why:-pip failed}" >&2
        exit 1
    fi
    rm -f "$log"
}

if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import fast_plaid, torch" 2>/dev/null; }; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv" \
        || { echo "python3 -m venv could not create $venv" >&2; exit 1; }
    if ! "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$torch_version')" 2>/dev/null; then
        # The CPU build is a fraction of the size; the default wheel (CUDA build) runs on CPU as well.
        "$venv/bin/pip" install -q --disable-pip-version-check --retries 0 --timeout 15 \
            --index-url https://download.pytorch.org/whl/cpu "torch==$torch_version" 2>/dev/null \
            || install "torch $torch_version" "torch==$torch_version"
    fi
    install "fast-plaid $fast_plaid_version" "fast-plaid==$fast_plaid_version"
fi
exec "$venv/bin/python" "$here/plaid_peer.py" "$@"
