#!/usr/bin/env bash
# The load soak (issue 5, test 6); not run in CI.
#
#   scripts/soak-stability.sh [MINUTES]      (default 30)
#
# Starts three chronik-server raft-cluster processes on 127.0.0.1 (free ports, an admin API endpoint
# each, a fresh temp dir), creates a topic of 3 partitions at RF 3, and runs Apache Kafka's
# ProducerPerformance at 10,000 msg/s of 1 KiB records with acks=all for MINUTES. It checks that no
# election, leader change or term change happens after formation (from the nodes' /metrics), and
# that heartbeat send intervals p50 and p99 stay within 150 ms +- 10 ms on every link. It prints
# the elections per group, the max term, heartbeat p50/p99/max per peer (the last 4096 to 8192 intervals
# of each link, i.e. the last 10 to 20 minutes), msg/s, latencies, CPU seconds per node and a
# progress line every minute.
#
# This is tests/interop/test_stability.py::test_1_load_10k_msgs_no_election_heartbeats_regular
# with STABILITY_LOAD_RECORDS = MINUTES * 60 * 10,000 (CI sends 100,000). So that the disk does
# not fill (10 MB/s per replica), topics roll 64 MiB segments and keep 256 MiB per partition
# (override with CHRONIK_TOPICS__SEGMENT_BYTES / CHRONIK_TOPICS__RETENTION_BYTES). Set
# STABILITY_LOAD_RATE or STABILITY_RECORD_SIZE to change the load.
#
# Needs scripts/install-test-deps.sh and a release build (CHRONIK_BIN defaults to
# target/release/chronik-server). The node logs stay under the printed directory (delete it
# afterwards: the data dirs hold up to ~1 GiB per node). Exit code 0 = pass.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MINUTES=${1:-30}
if ! [[ $MINUTES =~ ^[0-9]+$ ]] || [ "$MINUTES" -lt 1 ]; then
    echo "usage: $0 [MINUTES]   (a whole number >= 1; default 30)" >&2
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
export STABILITY_LOAD_RATE=${STABILITY_LOAD_RATE:-10000}
export STABILITY_LOAD_RECORDS=$((MINUTES * 60 * STABILITY_LOAD_RATE))
# The nodes inherit these (chronik reads CHRONIK_* variables as configuration).
export CHRONIK_TOPICS__SEGMENT_BYTES=${CHRONIK_TOPICS__SEGMENT_BYTES:-67108864}
export CHRONIK_TOPICS__RETENTION_BYTES=${CHRONIK_TOPICS__RETENTION_BYTES:-268435456}
export CHRONIK_STORAGE__RETENTION_CHECK_INTERVAL=${CHRONIK_STORAGE__RETENTION_CHECK_INTERVAL:-10s}
BASE=$(mktemp -d "${TMPDIR:-/tmp}/chronik-soak-stability.XXXXXX")
echo "soak: ${MINUTES} min, ${STABILITY_LOAD_RECORDS} records at ${STABILITY_LOAD_RATE} msg/s," \
     "binary $CHRONIK_BIN, node logs and data under $BASE"
df -h "$BASE" | tail -1
# The pytest-timeout net: the load plus 10 minutes for start, formation, a slow producer and checks.
set +e
"$PY" -m pytest -v -s tests/interop/test_stability.py \
    -k test_1_load_10k_msgs_no_election_heartbeats_regular \
    --basetemp="$BASE" -o timeout=$((MINUTES * 60 + 600))
rc=$?
set -e
echo "soak: data left on disk: $(du -sh "$BASE" 2>/dev/null | cut -f1) in $BASE"
exit $rc
