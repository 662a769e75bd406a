#!/usr/bin/env bash
# A node restart under load, chronik against Apache Kafka in the same run (issue 15): p99 of a
# producer at half of the capacity before, during and after node 3 (2 GB of log over 200
# partitions by default) restarts.
#
#   bash benches/restart/run.sh [restart.py options]     e.g. --fill-mb 2048 --phase-s 20
#
# Installs what it needs (benches/prepare.sh), builds chronik and runs benches/restart/restart.py.
# Not part of CI.
source "$(dirname "$0")/../prepare.sh"
"$ROOT/.deps/venv/bin/python" benches/restart/restart.py "$@"
echo "[run.sh] done in $((SECONDS - T0)) s"
