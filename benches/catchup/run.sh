#!/usr/bin/env bash
# The catch-up measurement (issue 14, "Catch-up at scale"): how fast a follower that was down
# while data went to its partition catches up after its restart.
#
#   bash benches/catchup/run.sh [catchup.py options]     e.g. --mb 1024 for the issue's 1 GB
#
# Installs what it needs (benches/prepare.sh), builds chronik (cargo build --release) and runs
# benches/catchup/catchup.py. Not part of CI: it measures, it asserts nothing but correctness
# (the follower ends with the leader's bytes).
source "$(dirname "$0")/../prepare.sh"
"$ROOT/.deps/venv/bin/python" benches/catchup/catchup.py "$@"
echo "[run.sh] done in $((SECONDS - T0)) s"
