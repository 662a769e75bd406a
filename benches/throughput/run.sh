#!/usr/bin/env bash
# One command for the chronik vs Apache Kafka throughput benchmark (issue 6; docs/benchmarks.md):
#
#   bash benches/throughput/run.sh [bench.py options]     e.g. --records 20000 --reps 1
#
# 1. installs what it needs: scripts/install-test-deps.sh (Java, Kafka 4.x client tools, the Python
#    venv) and scripts/install-kafka-broker.sh (the Apache Kafka broker jars), all from Maven Central,
#    PyPI and Debian;
# 2. builds chronik (cargo build --release) and benches/throughput/AssignConsumerPerf.java;
# 3. runs benches/throughput/bench.py: every target, row and repetition, the scale curve and the
#    RSS measurement; results in benches/throughput/results/<time>/ and docs/benchmarks.md.
# `bench.py --help` lists the options (record count, repetitions, targets, rows, scale curve).
source "$(dirname "$0")/../prepare.sh"
if ! command -v javac >/dev/null 2>&1; then  # install-test-deps.sh may have installed only a JRE
    SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
    $SUDO apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q openjdk-17-jdk-headless >/dev/null
fi
# Charts of the run (benches/throughput/charts.py)
"$ROOT/.deps/venv/bin/python" -c "import matplotlib" 2>/dev/null \
    || "$ROOT/.deps/venv/bin/pip" install -q "matplotlib==${MATPLOTLIB_VERSION:-3.11.2}"
mkdir -p .deps/bench-classes
javac -cp ".deps/kafka-tools/lib/*" -d .deps/bench-classes benches/throughput/AssignConsumerPerf.java
export BENCH_COMMAND="bash benches/throughput/run.sh$(printf ' %q' "$@")"
"$ROOT/.deps/venv/bin/python" benches/throughput/bench.py "$@"
echo "[run.sh] done in $((SECONDS - T0)) s"
