#!/usr/bin/env bash
# The cluster test: one etcd and three `tessera serve --cluster` nodes on loopback ports, with a single-node
# server as the reference (Tests/cluster/cluster_test.py). Bounded in time; every process it starts is stopped.
# Usage: Tests/cluster/run-cluster-test.sh [TESSERA_BINARY]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${1:-$root/.build/release/tessera}"
[ -x "$bin" ] || { echo "cluster: no tessera binary at $bin (make release first)" >&2; exit 1; }
command -v etcd >/dev/null || { echo "cluster: etcd is not installed (make deps installs etcd-server)" >&2; exit 1; }
export NO_PROXY='*' no_proxy='*'
timeout 600 python3 "$root/Tests/cluster/cluster_test.py" --tessera "$bin" --load-seconds "${CLUSTER_LOAD_SECONDS:-20}"
