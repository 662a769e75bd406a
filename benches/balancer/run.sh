#!/usr/bin/env bash
# The leader balancer at scale (issue 14): 5 nodes, 1,000 partitions at RF 3, node 1 killed and
# restarted; does the balancer leave every node within one leader of 200?
#
#   bash benches/balancer/run.sh [balancer.py options]     e.g. --nodes 5 --topics 10 --partitions 100
#
# Installs what it needs (benches/prepare.sh), builds chronik (cargo build --release) and runs
# benches/balancer/balancer.py. Not part of CI.
source "$(dirname "$0")/../prepare.sh"
"$ROOT/.deps/venv/bin/python" benches/balancer/balancer.py "$@"
echo "[run.sh] done in $((SECONDS - T0)) s"
