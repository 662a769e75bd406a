#!/usr/bin/env bash
# The formation soak (issue 4, test 1) with a long idle window; not run in CI.
#
#   scripts/soak-cluster.sh [MINUTES]      (default 5)
#
# Starts three chronik-server raft-cluster processes on 127.0.0.1 (free ports, a fresh temp dir),
# creates a topic with 9 partitions at RF 3 (Java TopicCommand), checks that every group is led
# within 10 s, then stays idle for MINUTES and checks: exactly one election won per group
# (__meta included), max term <= 2, no election started during the idle window. It prints the
# elections per group, the max term and the time from start to all leaders elected.
#
# This is tests/interop/test_cluster.py::test_1_formation_9_partitions_rf3_then_idle with
# CLUSTER_IDLE_SECONDS=MINUTES*60 (the CI run uses 60 s). Needs scripts/install-test-deps.sh and a
# release build (CHRONIK_BIN defaults to target/release/chronik-server). The node logs stay in
# the printed --basetemp directory. Exit code 0 = pass.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MINUTES=${1:-5}
if ! [[ $MINUTES =~ ^[0-9]+$ ]] || [ "$MINUTES" -lt 1 ]; then
    echo "usage: $0 [MINUTES]   (a whole number >= 1; default 5)" >&2
    exit 2
fi
PY=$ROOT/.deps/venv/bin/python
if [ ! -x "$PY" ]; then
    echo "missing $PY: run scripts/install-test-deps.sh first" >&2
    exit 2
fi
export CHRONIK_BIN=${CHRONIK_BIN:-$ROOT/target/release/chronik-server}
if [ ! -x "$CHRONIK_BIN" ]; then
    echo "missing $CHRONIK_BIN: run cargo build --release (or set CHRONIK_BIN)" >&2
    exit 2
fi
export CLUSTER_IDLE_SECONDS=$((MINUTES * 60))
BASE=$(mktemp -d "${TMPDIR:-/tmp}/chronik-soak.XXXXXX")
echo "soak: ${MINUTES} min idle window, binary $CHRONIK_BIN, node logs under $BASE"
# The pytest-timeout net: the idle window plus 5 minutes for start, create and checks.
exec "$PY" -m pytest -v -s tests/interop/test_cluster.py \
    -k test_1_formation_9_partitions_rf3_then_idle \
    --basetemp="$BASE" -o timeout=$((CLUSTER_IDLE_SECONDS + 300))
