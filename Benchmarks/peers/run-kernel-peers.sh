#!/usr/bin/env bash
# Creates Benchmarks/peers/.venv (numpy, maxsim-cpu; torch when a CPU wheel installs) and runs the
# kernel peer comparison against a release build of tessera. Extra arguments go to kernel_peers.py.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/Benchmarks/peers/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check numpy maxsim-cpu
    "$venv/bin/pip" install --quiet --disable-pip-version-check torch==2.13.0+cpu 2>/dev/null \
        || echo "torch (CPU) did not install; the table will have no torch row" >&2
fi
(cd "$root" && swift build -c release --product tessera >/dev/null)
exec "$venv/bin/python" "$root/Benchmarks/peers/kernel_peers.py" --tessera "$root/.build/release/tessera" "$@"
