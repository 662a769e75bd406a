#!/usr/bin/env bash
# The long fault-checker run: 100 faults (kill -9 + restart, SIGSTOP/SIGCONT, network cuts between
# nodes in network namespaces, isolation of a node) against a 3-node cluster of real processes
# while an idempotent acks=all producer writes to 6 partitions; then everything is read back and
# checked (tests/interop/fault_checker.py). About 10 minutes. Needs root (network namespaces),
# scripts/install-test-deps.sh and `cargo build --release`.
#
#   bash scripts/fault-checker-long.sh [SEED] [FAULTS]
#
# The result (faults injected, counts, problems) is also written as JSON to
# ${TMPDIR:-/tmp}/fault-checker-SEED.json; on failure the nodes' logs and data are kept (path printed).
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${1:-$RANDOM}
FAULTS=${2:-100}
exec "$PWD/.deps/venv/bin/python" tests/interop/fault_checker.py \
    --faults "$FAULTS" --seed "$SEED" --partitions 6 --rate 500 --json "${TMPDIR:-/tmp}/fault-checker-$SEED.json"
