#!/usr/bin/env bash
# Compatibility with the real qdrant-client: creates its own virtual environment (cached in
# .build/compat-venv), starts `tessera serve` on a free loopback port over a fresh data directory, and runs
# Tests/compat/qdrant_client_compat.py against it, then the load test (Tests/compat/load_test.py), then the
# graceful shutdown test (Tests/compat/shutdown_test.py: requests in flight at SIGTERM are answered, and their
# writes are there after a restart), then the multi-process hardening test (Tests/compat/hardening_test.py: one
# owner per data folder and collection, delete under traffic, timeouts, SIGTERM with stalled clients). Fails loudly
# when anything cannot run.
# Usage: Tests/compat/run-qdrant-client.sh [TESSERA_BINARY]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${1:-$root/.build/release/tessera}"
[ -x "$bin" ] || { echo "compat: no tessera binary at $bin (make release first)" >&2; exit 1; }
# The newest qdrant-client runs every test; the previous pin runs the compatibility checks again.
client_version="1.20.0"
older_version="1.15.1"
# The reference statement of Qdrant's built-in BM25 model (the qdrant/bm25 checks) needs the Snowball stemmer
# Qdrant runs and MurmurHash3.
reference_packages=("py-rust-stemmers==0.1.8" "mmh3==5.3.1")
# Makes (or reuses) a virtual environment at $1 holding qdrant-client $2 and the packages after it.
client_venv() {
    local venv="$1" version="$2"
    shift 2
    local wanted
    wanted="$(printf '%s\n' "qdrant-client==$version" "$@" | sort | tr '\n' ' ')"
    if [ "$(cat "$venv/.packages" 2>/dev/null)" != "$wanted" ]; then
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q "qdrant-client==$version" "$@"
        echo "$wanted" > "$venv/.packages"
    fi
}
venv="${COMPAT_VENV:-$root/.build/compat-venv}"
older_venv="${COMPAT_OLDER_VENV:-$root/.build/compat-venv-$older_version}"
client_venv "$venv" "$client_version" "${reference_packages[@]}"
client_venv "$older_venv" "$older_version"
python="$venv/bin/python"
data="$(mktemp -d)"
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$data"
}
trap cleanup EXIT

# Starts the server on a free port; sets $server and $port.
start_server() {
    local log="$1"
    "$bin" serve --data "$data/collections" --port 0 --threads 2 >"$log" 2>&1 &
    server=$!
    port=""
    for _ in $(seq 1 100); do
        port="$(grep -o '^listening on 127.0.0.1:[0-9]*' "$log" | head -1 | cut -d: -f2 || true)"
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { echo "compat: the server did not start:" >&2; cat "$log" >&2; exit 1; }
}

# Waits for the server to exit after a signal; fails unless it exits with status 0.
expect_clean_exit() {
    local signal="$1" log="$2" status=0
    wait "$server" || status=$?
    server=""
    if [ "$status" -ne 0 ]; then
        echo "compat: the server exited with status $status on $signal" >&2; cat "$log" >&2; exit 1
    fi
    echo "compat: server stopped cleanly on $signal"
}

export NO_PROXY='*' no_proxy='*'
start_server "$data/serve.log"
"$python" "$root/Tests/compat/qdrant_client_compat.py" --url "http://127.0.0.1:$port" --tessera "$bin" \
    --data "$data/collections"
"$older_venv/bin/python" "$root/Tests/compat/qdrant_client_compat.py" --url "http://127.0.0.1:$port" \
    --tessera "$bin" --data "$data/collections" --older-client
# A bounded load test from a second process: queries and upserts together for 30 s.
"$python" "$root/Tests/compat/load_test.py" --port "$port" --seconds "${LOAD_SECONDS:-30}"
# Graceful shutdown: requests in flight at SIGTERM are answered, the server exits with status 0, and a server
# started again on the same data finds every acknowledged write.
"$python" "$root/Tests/compat/shutdown_test.py" inflight --port "$port" --pid "$server" --state "$data/state.json"
expect_clean_exit SIGTERM "$data/serve.log"
start_server "$data/serve-again.log"
"$python" "$root/Tests/compat/shutdown_test.py" verify --port "$port" --state "$data/state.json"
kill -INT "$server"
expect_clean_exit SIGINT "$data/serve-again.log"
# One owner per folder and collection, delete under traffic, connection timeouts, SIGTERM with stalled clients:
# servers of its own on fresh folders, each step bounded in time.
"$python" "$root/Tests/compat/hardening_test.py" --tessera "$bin" --model "$root/models/all-MiniLM-L6-v2"
