#!/usr/bin/env bash
# Compaction benchmark (issue 11): chronik vs Apache Kafka, same run, same client (confluent-kafka).
#
#   bash benches/compaction/run.sh [bench.py options]    e.g. --mb 200 --keys 100000
#
# Installs what it needs (scripts/install-test-deps.sh, scripts/install-kafka-broker.sh), builds
# chronik (cargo build --release), then runs benches/compaction/bench.py: per target, produce MB/s
# into a delete topic (no cleaner) and into a compacted topic while the cleaner runs, then the time
# until the compacted partition stops shrinking and its size before and after. Not a test: nothing
# is asserted; `bench.py --help` lists the options (default: 1024 MB over 100k keys).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
bash scripts/install-test-deps.sh
bash scripts/install-kafka-broker.sh
cargo build --release
export CHRONIK_BIN=${CHRONIK_BIN:-$ROOT/target/release/chronik-server}
"$ROOT/.deps/venv/bin/python" benches/compaction/bench.py "$@"
