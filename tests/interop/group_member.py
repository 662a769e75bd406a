"""A consumer-group member in its own process, for tests that freeze it (SIGSTOP/SIGCONT).

    python group_member.py BOOTSTRAP GROUP TOPIC SESSION_TIMEOUT_MS

Subscribes with confluent-kafka and prints one JSON object per line on stdout (flushed):
{"event": "assigned", "partitions": [..]} after each rebalance, {"event": "revoked", ...} when
partitions are taken away, {"event": "consumed", "count": N} at most once a second, and
{"event": "error", "error": "..."} for consumer errors. Runs until stdin is closed or it is killed.
"""
import json
import select
import sys
import time

from confluent_kafka import Consumer


def say(**kv):
    print(json.dumps(kv), flush=True)


def main():
    bootstrap, group, topic, session_ms = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "session.timeout.ms": session_ms,
        "heartbeat.interval.ms": max(500, session_ms // 6),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        "client.id": f"interop-member-{group}",
    })

    def on_assign(consumer, parts):
        say(event="assigned", partitions=sorted(p.partition for p in parts))

    def on_revoke(consumer, parts):
        say(event="revoked", partitions=sorted(p.partition for p in parts))

    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    count, last_report = 0, 0.0
    try:
        while True:
            if select.select([sys.stdin], [], [], 0)[0] and not sys.stdin.readline():
                break  # the test closed our stdin: leave the group
            for m in c.consume(num_messages=100, timeout=0.2):
                if m.error():
                    say(event="error", error=str(m.error()))
                else:
                    count += 1
            now = time.monotonic()
            if now - last_report >= 1.0:
                say(event="consumed", count=count)
                last_report = now
    finally:
        c.close()
        say(event="closed")


if __name__ == "__main__":
    main()
