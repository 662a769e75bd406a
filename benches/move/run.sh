#!/usr/bin/env bash
# Moving a partition's replica with kafka-reassign-partitions.sh, chronik against Apache Kafka in
# the same run (issue 14): time to move --mb MB (1 GB by default) and the throughput of a producer
# while it moves.
#
#   bash benches/move/run.sh [move.py options]     e.g. --mb 1024 --load-mb 200
#
# Installs what it needs (benches/prepare.sh: the Kafka tools and the Kafka broker), builds chronik
# and runs benches/move/move.py. Not part of CI.
source "$(dirname "$0")/../prepare.sh"
"$ROOT/.deps/venv/bin/python" benches/move/move.py "$@"
echo "[run.sh] done in $((SECONDS - T0)) s"
