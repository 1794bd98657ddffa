#!/usr/bin/env bash
# Compatibility with the real qdrant-client: creates its own virtual environment (cached in
# .build/compat-venv), starts `tessera serve` on a free loopback port over a fresh data directory, and runs
# Tests/compat/qdrant_client_compat.py against it, then the load test (Tests/compat/load_test.py). Fails
# loudly when anything cannot run.
# Usage: Tests/compat/run-qdrant-client.sh [TESSERA_BINARY]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${1:-$root/.build/release/tessera}"
[ -x "$bin" ] || { echo "compat: no tessera binary at $bin (make release first)" >&2; exit 1; }
venv="$root/.build/compat-venv"
if ! "$venv/bin/python" -c "import qdrant_client" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "qdrant-client==1.15.1"
fi
data="$(mktemp -d)"
log="$data/serve.log"
"$bin" serve --data "$data/collections" --port 0 --threads 2 >"$log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
port=""
for _ in $(seq 1 100); do
    port="$(grep -o '^listening on 127.0.0.1:[0-9]*' "$log" | head -1 | cut -d: -f2 || true)"
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "compat: the server did not start:" >&2; cat "$log" >&2; exit 1; }
NO_PROXY='*' no_proxy='*' "$venv/bin/python" "$root/Tests/compat/qdrant_client_compat.py" \
    --url "http://127.0.0.1:$port" --tessera "$bin" --data "$data/collections"
# A bounded load test from a second process: queries and upserts together for 30 s.
NO_PROXY='*' no_proxy='*' "$venv/bin/python" "$root/Tests/compat/load_test.py" --port "$port" --seconds "${LOAD_SECONDS:-30}"
# Graceful shutdown: SIGTERM ends the server with status 0.
kill -TERM "$server"
if wait "$server"; then echo "compat: server stopped cleanly on SIGTERM"; else
    echo "compat: the server exited with status $? on SIGTERM" >&2; cat "$log" >&2; exit 1
fi
