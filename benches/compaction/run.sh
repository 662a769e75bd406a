#!/usr/bin/env bash
# The compaction benchmark (issue 11): chronik's cleaner against Apache Kafka's in the same run.
#
#   bash benches/compaction/run.sh [bench.py options]     e.g. --mb 1024 for the issue's 1 GB
#
# Installs what it needs (scripts/install-test-deps.sh: Java tools and the Python venv with
# confluent-kafka; scripts/install-kafka-broker.sh: the Kafka broker jars), builds chronik
# (cargo build --release) and runs benches/compaction/bench.py; results in
# benches/compaction/results/<time>/ (runs.csv, report.md). Not part of CI: a benchmark measures,
# it asserts nothing.
source "$(dirname "$0")/../prepare.sh"
export BENCH_COMMAND="bash benches/compaction/run.sh$(printf ' %q' "$@")"
"$ROOT/.deps/venv/bin/python" benches/compaction/bench.py "$@"
echo "[run.sh] done in $((SECONDS - T0)) s"
