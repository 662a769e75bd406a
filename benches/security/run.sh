#!/usr/bin/env bash
# The security benchmark (issue 13): produce/consume over SASL_SSL (SCRAM-SHA-512) against
# PLAINTEXT, on chronik and on Apache Kafka 4.4, in the same run.
#
#   bash benches/security/run.sh [bench.py options]     e.g. --records 1000000 --reps 3
#
# Installs what it needs (scripts/install-test-deps.sh: Java tools and the Python venv;
# scripts/install-kafka-broker.sh: the Kafka broker jars), builds chronik (cargo build --release)
# and runs benches/security/bench.py; results in benches/security/results/<time>/ (runs.csv,
# report.md). Not part of CI: a benchmark measures, it asserts nothing.
source "$(dirname "$0")/../prepare.sh"
export BENCH_COMMAND="bash benches/security/run.sh$(printf ' %q' "$@")"
"$ROOT/.deps/venv/bin/python" benches/security/bench.py "$@"
echo "[run.sh] done in $((SECONDS - T0)) s"
