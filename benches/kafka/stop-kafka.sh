#!/usr/bin/env bash
# Stops Kafka brokers started by start-kafka.sh: the one for DATADIR, or with no argument every one
# this script started (tracked in .deps/kafka-broker/running/). SIGTERM, then SIGKILL after 30 s.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNDIR=$ROOT/.deps/kafka-broker/running
say() { echo "[stop-kafka] $*"; }

stop_pid() {  # PID DATADIR
    local pid=$1 dir=$2
    rm -f "$RUNDIR/$pid"
    # only signal the process if it still is our Kafka (the pid may have been reused)
    if ! tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $dir/server.properties"; then
        say "pid $pid ($dir) not running"; rm -f "$dir/kafka.pid"; return 0
    fi
    say "stopping pid $pid ($dir)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || { say "stopped"; rm -f "$dir/kafka.pid"; return 0; }
        sleep 0.5
    done
    say "still alive after 30 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/kafka.pid"
}

if [ $# -ge 1 ]; then
    DATADIR=$(cd "$1" && pwd)
    [ -f "$DATADIR/kafka.pid" ] || { say "no kafka.pid in $DATADIR"; exit 0; }
    stop_pid "$(cat "$DATADIR/kafka.pid")" "$DATADIR"
else
    found=0
    for f in "$RUNDIR"/*; do
        [ -f "$f" ] || continue
        found=1
        stop_pid "$(basename "$f")" "$(cat "$f")"
    done
    [ "$found" = 1 ] || say "nothing to stop"
fi
