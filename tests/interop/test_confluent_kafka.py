"""confluent-kafka (librdkafka 2.16): every compression codec through a 6-partition topic, and the
AdminClient's topic operations."""
import random
import time
import zlib

import pytest

from helpers import create_topic, need_module, unique_topic

N = 10_000
PARTITIONS = 6


def make_messages(seed, n=N):
    """Distinct keys; values mix compressible text with random bytes (every byte value occurs)."""
    rnd = random.Random(seed)
    return [(f"key-{i:05d}".encode(),
             f"value-{i:05d}|".encode() + rnd.randbytes(rnd.randrange(0, 48))
             + b"compressible " * rnd.randrange(0, 12))
            for i in range(n)]


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_codec_roundtrip_6_partitions(broker, codec):
    ck = need_module("confluent_kafka")
    b = broker.bootstrap
    t = unique_topic(f"ck-{codec}")
    create_topic(b, t, PARTITIONS)
    msgs = make_messages(seed=zlib.crc32(codec.encode()))

    delivered, failures = [], []

    def on_delivery(err, m):
        if err is not None:
            failures.append(err)
        else:
            delivered.append((m.partition(), m.offset(), m.key(), m.value()))

    p = ck.Producer({"bootstrap.servers": b, "compression.type": codec, "linger.ms": 20,
                     "acks": "all", "client.id": f"interop-ck-{codec}"})
    for i, (k, v) in enumerate(msgs):
        p.produce(t, key=k, value=v, on_delivery=on_delivery)
        if i % 500 == 0:
            p.poll(0)
    left = p.flush(60)
    assert left == 0, f"{left} messages still undelivered after flush(60)"
    assert not failures, f"{len(failures)} delivery failures, first: {failures[0]}"
    assert len(delivered) == N
    # offsets per partition are exactly 0..n-1
    expected = {part: [] for part in range(PARTITIONS)}
    for part, off, k, v in sorted(delivered):
        expected[part].append((off, k, v))
    for part, rows in expected.items():
        assert [o for o, _, _ in rows] == list(range(len(rows))), f"partition {part}: offset gaps"
    assert sum(1 for rows in expected.values() if rows) >= 2, "all messages landed in one partition"

    c = ck.Consumer({"bootstrap.servers": b, "group.id": f"interop-{t}", "enable.auto.commit": False,
                     "client.id": f"interop-ck-consumer-{codec}"})
    try:
        c.assign([ck.TopicPartition(t, part, ck.OFFSET_BEGINNING) for part in range(PARTITIONS)])
        got = {part: [] for part in range(PARTITIONS)}
        count, deadline = 0, time.monotonic() + 90
        while count < N and time.monotonic() < deadline:
            for m in c.consume(num_messages=1000, timeout=1.0):
                if m.error():
                    raise AssertionError(f"consumer error: {m.error()}")
                got[m.partition()].append((m.offset(), m.key(), m.value()))
                count += 1
        for part in range(PARTITIONS):
            lo, hi = c.get_watermark_offsets(ck.TopicPartition(t, part), timeout=10)
            assert (lo, hi) == (0, len(expected[part])), f"partition {part} watermarks {(lo, hi)}"
    finally:
        c.close()
    assert count == N, f"consumed {count} of {N} messages"
    for part in range(PARTITIONS):
        assert got[part] == expected[part], f"partition {part}: content or order differs"
    assert {(k, v) for rows in got.values() for _, k, v in rows} == set(msgs)


def topic_names(admin):
    return set(admin.list_topics(timeout=10).topics)


def test_admin_create_list_delete(broker):
    ck_admin = need_module("confluent_kafka.admin")
    admin = ck_admin.AdminClient({"bootstrap.servers": broker.bootstrap})
    names = [unique_topic("ckadmin") for _ in range(2)]
    fs = admin.create_topics([ck_admin.NewTopic(n, num_partitions=2, replication_factor=1) for n in names],
                             operation_timeout=30, request_timeout=30)
    for n in names:
        assert fs[n].result(timeout=30) is None
    for _ in range(30):
        if set(names) <= topic_names(admin):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"created topics not listed: {names}")
    md = admin.list_topics(topic=names[0], timeout=10).topics[names[0]]
    assert len(md.partitions) == 2

    fs = admin.delete_topics(names, operation_timeout=30, request_timeout=30)
    for n in names:
        assert fs[n].result(timeout=30) is None
    for _ in range(30):
        if not set(names) & topic_names(admin):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"deleted topics still listed: {set(names) & topic_names(admin)}")


def test_admin_create_invalid_name_fails(broker):
    ck = need_module("confluent_kafka")
    ck_admin = need_module("confluent_kafka.admin")
    admin = ck_admin.AdminClient({"bootstrap.servers": broker.bootstrap})
    good = unique_topic("ckgood")
    fs = admin.create_topics([ck_admin.NewTopic("bad name!", 1, 1), ck_admin.NewTopic(good, 1, 1)],
                             operation_timeout=30, request_timeout=30)
    with pytest.raises(ck.KafkaException) as ei:
        fs["bad name!"].result(timeout=30)
    err = ei.value.args[0]
    assert err.code() == ck.KafkaError.TOPIC_EXCEPTION, f"expected INVALID_TOPIC_EXCEPTION (17), got {err}"
    assert fs[good].result(timeout=30) is None  # the valid one in the same request still succeeds
    assert "bad name!" not in topic_names(admin)
