#!/usr/bin/env bash
# Stand-in for the chronik binary that runs Apache Kafka in the foreground instead, accepting
# chronik's command line:
#     kafka-as-chronik.sh standalone --data-dir DIR --listen 127.0.0.1:PORT --advertised-addr HOST
# Use it to validate the whole interop suite, chronik_only tests included (kill -9, restart, log),
# against real Kafka:
#     CHRONIK_BIN=benches/kafka/kafka-as-chronik.sh .deps/venv/bin/python -m pytest -v tests/interop
# The controller listener gets a free loopback port, remembered in DIR for restarts.
# Needs scripts/install-kafka-broker.sh. Kafka takes a few seconds to start, chronik well under one.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LIB=$(cd "$HERE/../.." && pwd)/.deps/kafka-broker/lib
[ "${1:-}" = standalone ] || { echo "usage: $0 standalone --data-dir DIR --listen HOST:PORT --advertised-addr HOST" >&2; exit 2; }
shift
DATA="" LISTEN="" ADV=""
while [ $# -gt 0 ]; do
    case $1 in
        --data-dir) DATA=$2; shift 2 ;;
        --listen) LISTEN=$2; shift 2 ;;
        --advertised-addr) ADV=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -d "$LIB" ] || { echo "missing $LIB: run scripts/install-kafka-broker.sh" >&2; exit 1; }
mkdir -p "$DATA"
PORT=${LISTEN##*:}
HOST=${LISTEN%:*}
if [ ! -f "$DATA/controller.port" ]; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' > "$DATA/controller.port"
fi
CPORT=$(cat "$DATA/controller.port")
cat > "$DATA/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CPORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://${ADV:-$HOST}:$PORT,CONTROLLER://127.0.0.1:$CPORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA/logs
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
PROPS
Q=-Dorg.slf4j.simpleLogger.defaultLogLevel=warn
if [ ! -f "$DATA/logs/meta.properties" ]; then
    java $Q -cp "$LIB/*" kafka.tools.StorageTool format --standalone --config "$DATA/server.properties" \
        --cluster-id "$(java $Q -cp "$LIB/*" kafka.tools.StorageTool random-uuid | tail -1)"
fi
exec java ${KAFKA_HEAP_OPTS:--Xmx512m -Xms512m} -XX:+UseG1GC -cp "$LIB/*" kafka.Kafka "$DATA/server.properties"
