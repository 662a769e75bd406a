#!/usr/bin/env bash
# Idle cost of N partitions at RF 3 on 3 nodes: chronik with hibernation on and off, and Apache
# Kafka, in one run (benches/idle/bench.py). Needs target/release/chronik-server and, for Kafka,
# scripts/install-kafka-broker.sh.
#   benches/idle/run.sh [N=1000] [extra bench.py flags, e.g. --modes hibernate,awake --idle 30]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-1000}
shift || true
exec "$ROOT/.deps/venv/bin/python" "$ROOT/benches/idle/bench.py" --partitions "$N" "$@"
