"""DeleteRecords with the real Kafka 4.4 tool (`kafka-delete-records.sh`, i.e.
org.apache.kafka.tools.DeleteRecordsCommand with a JSON offsets file): the low watermark moves,
ListOffsets EARLIEST follows, a consumer seeking to the beginning starts at the new start (inside a
batch: the client skips the records before it), an offset past the end is refused and changes
nothing, and the start survives a restart of the broker."""
import json
import re

import pytest

from helpers import create_topic, java_tool, kcat, need_module, unique_topic

DELETE_RECORDS = "org.apache.kafka.tools.DeleteRecordsCommand"


def earliest(bootstrap, topic, partition=0):
    r = kcat("-b", bootstrap, "-Q", "-t", f"{topic}:{partition}:-2", timeout=30)
    m = re.search(rf"^{re.escape(topic)} \[{partition}\] offset (-?\d+)\s*$", r.out, re.M)
    assert m, f"could not parse kcat -Q output\n{r.describe()}"
    return int(m.group(1))


def delete_records(bootstrap, tmp_path, topic, offset):
    f = tmp_path / f"offsets-{offset}.json"
    f.write_text(json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "offset": offset}]}))
    return java_tool(DELETE_RECORDS, "--bootstrap-server", bootstrap, "--offset-json-file", f, timeout=60)


def produce(bootstrap, topic, batches, per_batch):
    ck = need_module("confluent_kafka")
    p = ck.Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "enable.idempotence": False})
    n = 0
    for _ in range(batches):  # one flush per batch: batches of `per_batch` records
        for _ in range(per_batch):
            p.produce(topic, value=f"v{n}".encode(), partition=0)
            n += 1
        assert p.flush(30) == 0, "produce did not finish"
    return n


def consume_from_beginning(bootstrap, topic, expect):
    """Offsets and values a fresh consumer reads from the beginning, until `expect` records."""
    ck = need_module("confluent_kafka")
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("g"),
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
    got = []
    try:
        for _ in range(200):  # bounded: ~100 s at most
            m = c.poll(0.5)
            if m is None:
                if len(got) >= expect:
                    break
                continue
            assert m.error() is None, m.error()
            got.append((m.offset(), m.value().decode()))
    finally:
        c.close()
    return got


@pytest.mark.chronik_only
def test_kafka_delete_records_moves_the_start_and_consumers_follow(broker, tmp_path):
    b = broker.bootstrap
    t = unique_topic("delrec")
    create_topic(b, t, 1)
    n = produce(b, t, 10, 10)  # offsets 0..99 in batches of 10
    assert (earliest(b, t), n) == (0, 100)

    # Inside the batch [40, 50).
    r = delete_records(b, tmp_path, t, 45)
    assert re.search(rf"partition: {re.escape(t)}-0\s+low_watermark: 45", r.out), r.describe()
    assert earliest(b, t) == 45
    got = consume_from_beginning(b, t, 55)
    assert [o for o, _ in got] == list(range(45, 100)), got[:5]
    assert got[0][1] == "v45"

    # Past the high watermark: OFFSET_OUT_OF_RANGE, nothing changes.
    r = delete_records(b, tmp_path, t, 1000)
    assert "OffsetOutOfRangeException" in r.out + r.err, r.describe()
    assert earliest(b, t) == 45

    # The start survives a restart of the broker.
    broker.restart()
    assert earliest(b, t) == 45
    got = consume_from_beginning(b, t, 55)
    assert [o for o, _ in got] == list(range(45, 100))

    # -1: up to the high watermark.
    r = delete_records(b, tmp_path, t, -1)
    assert re.search(rf"low_watermark: 100", r.out), r.describe()
    assert earliest(b, t) == 100
