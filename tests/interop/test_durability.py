"""Acknowledged writes survive kill -9 (chronik only: the test kills and restarts the process)."""
import time

import pytest

from helpers import create_topic, need_module, unique_topic

N = 10_000


def consume_all(ck, bootstrap, topic, expect, timeout=60):
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": f"interop-{topic}",
                     "enable.auto.commit": False, "client.id": "interop-durability-consumer"})
    got = []
    try:
        c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        while len(got) < expect and time.monotonic() < deadline:
            for m in c.consume(num_messages=1000, timeout=1.0):
                if m.error():
                    raise AssertionError(f"consumer error: {m.error()}")
                got.append((m.offset(), m.value()))
    finally:
        c.close()
    return got


def produce(ck, bootstrap, topic, values):
    reports, failures = [], []

    def on_delivery(err, m):
        (failures.append(err) if err is not None else reports.append((m.offset(), m.value())))

    p = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                     "client.id": "interop-durability-producer"})
    for i, v in enumerate(values):
        p.produce(topic, value=v, partition=0, on_delivery=on_delivery)
        if i % 500 == 0:
            p.poll(0)
    left = p.flush(60)
    assert left == 0, f"{left} messages undelivered after flush(60)"
    assert not failures, f"{len(failures)} delivery failures, first: {failures[0]}"
    return sorted(reports)


@pytest.mark.chronik_only
def test_acked_messages_survive_kill9(broker):
    ck = need_module("confluent_kafka")
    t = unique_topic("durable")
    create_topic(broker.bootstrap, t, 1)
    values = [f"message {i:05d}".encode() for i in range(N)]
    reports = produce(ck, broker.bootstrap, t, values)
    assert reports == list(enumerate(values)), "delivery reports: wrong offsets or values"

    broker.kill9()
    broker.restart()

    got = consume_all(ck, broker.bootstrap, t, N)
    assert len(got) == N, f"after kill -9 and restart read {len(got)} of {N} acknowledged messages"
    assert got == list(enumerate(values))

    more = [f"after restart {i}".encode() for i in range(10)]
    reports = produce(ck, broker.bootstrap, t, more)
    assert [o for o, _ in reports] == list(range(N, N + 10)), f"offsets after restart: {reports}"
    got = consume_all(ck, broker.bootstrap, t, N + 10)
    assert got == list(enumerate(values + more))
