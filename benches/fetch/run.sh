#!/usr/bin/env bash
# Zero-copy fetch against Apache Kafka (and optionally an older chronik build), same run:
#
#   bash benches/fetch/run.sh [bench.py options]     e.g. --before /tmp/old/chronik-server --rounds 2
#
# Installs and builds what it needs as benches/throughput/run.sh does, then runs
# benches/fetch/bench.py (`--help` for its options); results in benches/fetch/results/<time>/.
source "$(dirname "$0")/../prepare.sh"
if ! command -v javac >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
    $SUDO apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q openjdk-17-jdk-headless >/dev/null
fi
mkdir -p .deps/bench-classes
javac -cp ".deps/kafka-tools/lib/*" -d .deps/bench-classes benches/throughput/AssignConsumerPerf.java
"$ROOT/.deps/venv/bin/python" benches/fetch/bench.py "$@"
echo "[run.sh] done in $((SECONDS - T0)) s"
