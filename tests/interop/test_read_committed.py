"""read_committed consumers (kafka-python, kcat/librdkafka) against transactional data.

There is no transaction coordinator on this branch yet, so the transactions are written the way a
coordinator writes them: transactional batches by Produce (raw wire, Produce v7 with producer ids)
and COMMIT/ABORT markers by WriteTxnMarkers v1 (raw wire). Then real consumers read the
partition: read_committed ones see exactly the committed and the non-transactional records, in
offset order, nothing of the aborted transaction, nothing of the open one and no control record;
read_uncommitted ones see every data record. `kafka-transactions.sh describe-producers` (the Java
TransactionsCommand, DescribeProducers) lists the three producers and C's open transaction; the
Java console consumer with isolation.level=read_committed reads the committed records.

Offsets: A (pid 5000, aborted) 0-2, B (pid 5001, committed) 3-4, plain 5, ABORT A 6,
COMMIT B 7, plain 8, C (pid 5002, never ended) 9. High watermark 10, last stable offset 9.
"""
import time

import pytest

import kafka_wire as w
from helpers import CONSOLE_CONSUMER, create_topic, java_tool, kcat, need_module, unique_topic

WRITE_TXN_MARKERS = 27


def produce(bootstrap, topic, values, producer=(-1, -1, -1), transactional=False):
    batch = w.record_batch([(None, v.encode(), []) for v in values], producer=producer,
                           transactional=transactional)
    body = w.produce_v7_body(topic, 0, batch, acks=-1, transactional_id="interop-txn" if transactional else None)
    out = w.decode_produce_v7(w.roundtrip(bootstrap, w.PRODUCE, 7, body))
    err, base = out[(topic, 0)]
    assert err == w.NONE, f"produce {values}: error {err}"
    return base


def marker(bootstrap, topic, pid, commit):
    """WriteTxnMarkers v1 for partition 0 -> its error code."""
    frame = w.request(WRITE_TXN_MARKERS, 1, 7, w.write_txn_markers_v1_body([(pid, 0, commit, 0, [(topic, [0])])]),
                      header_version=2)
    with w.connect(bootstrap) as s:
        s.sendall(frame)
        resp = w.read_response(s)
    assert resp is not None, "broker closed the connection instead of answering WriteTxnMarkers"
    body = resp[1]
    # response header v1 tagged fields (0), markers [1], producer id, topics [1], name, partitions [1]
    r = w.Reader(body)
    assert r.data[0] == 0 and r.data[1] == 2, body
    r.pos = 2
    assert r.i64() == pid
    assert r.data[r.pos] == 2, body  # one topic
    r.pos += 1
    name_len = r.data[r.pos] - 1
    r.pos += 1 + name_len
    assert r.data[r.pos] == 2, body  # one partition
    r.pos += 1
    assert r.i32() == 0
    return r.i16()


# chronik_only: Apache Kafka refuses transactional records of a producer its coordinator did not
# add to a transaction (KIP-890 verification), so this coordinator-less setup is chronik's alone.
@pytest.mark.chronik_only
def test_read_committed_consumers_see_only_committed_records(broker):
    kafka = need_module("kafka")
    b = broker.bootstrap
    t = unique_topic("rc")
    create_topic(b, t, 1)

    assert produce(b, t, ["a0", "a1", "a2"], producer=(5000, 0, 0), transactional=True) == 0
    assert produce(b, t, ["b0", "b1"], producer=(5001, 0, 0), transactional=True) == 3
    assert produce(b, t, ["p0"]) == 5
    assert marker(b, t, 5000, commit=False) == w.NONE
    assert marker(b, t, 5001, commit=True) == w.NONE
    assert produce(b, t, ["p1"]) == 8
    assert produce(b, t, ["c0"], producer=(5002, 0, 0), transactional=True) == 9
    assert marker(b, "no-such-topic", 5000, commit=False) == w.UNKNOWN_TOPIC_OR_PARTITION

    def consume(isolation, want):
        consumer = kafka.KafkaConsumer(bootstrap_servers=[b], group_id=None, enable_auto_commit=False,
                                       isolation_level=isolation, consumer_timeout_ms=2000)
        got = []
        try:
            tp = kafka.TopicPartition(t, 0)
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            deadline = time.monotonic() + 30
            while len(got) < want and time.monotonic() < deadline:
                for recs in consumer.poll(timeout_ms=500, max_records=100).values():
                    got.extend((r.offset, r.value.decode()) for r in recs)
            # a little longer: nothing more may arrive (the open transaction, aborted records)
            for recs in consumer.poll(timeout_ms=1000).values():
                got.extend((r.offset, r.value.decode()) for r in recs)
            end = consumer.end_offsets([tp])[tp]
        finally:
            consumer.close()
        return got, end

    got, end = consume("read_committed", 4)
    assert got == [(3, "b0"), (4, "b1"), (5, "p0"), (8, "p1")], got
    assert end == 9, "end offset of read_committed is the last stable offset"
    got, end = consume("read_uncommitted", 8)
    assert got == [(0, "a0"), (1, "a1"), (2, "a2"), (3, "b0"), (4, "b1"), (5, "p0"), (8, "p1"), (9, "c0")], got
    assert end == 10

    # librdkafka (kcat) with isolation.level=read_committed: the same committed records
    r = kcat("-b", b, "-C", "-t", t, "-p", 0, "-o", "beginning", "-e", "-q", "-f", "%o %s\\n",
             "-X", "isolation.level=read_committed", timeout=60)
    lines = [l for l in r.out.splitlines() if l.strip()]
    assert lines == ["3 b0", "4 b1", "5 p0", "8 p1"], r.describe()
    r = kcat("-b", b, "-C", "-t", t, "-p", 0, "-o", "beginning", "-e", "-q", "-f", "%o %s\\n",
             "-X", "isolation.level=read_uncommitted", timeout=60)
    lines = [l for l in r.out.splitlines() if l.strip()]
    assert lines == ["0 a0", "1 a1", "2 a2", "3 b0", "4 b1", "5 p0", "8 p1", "9 c0"], r.describe()

    # kafka-transactions.sh describe-producers: 5002's transaction is open at offset 9
    r = java_tool("org.apache.kafka.tools.TransactionsCommand", "--bootstrap-server", b,
                  "describe-producers", "--topic", t, "--partition", "0")
    rows = {l.split()[0]: l.split() for l in r.out.splitlines()[1:] if l.strip()}
    assert set(rows) == {"5000", "5001", "5002"}, r.describe()
    header = r.out.splitlines()[0].split()
    start = header.index("CurrentTransactionStartOffset")
    assert [rows[p][start] for p in ("5000", "5001", "5002")] == ["None", "None", "9"], r.describe()

    # the Java consumer (ConsoleConsumer) with isolation.level=read_committed
    r = java_tool(CONSOLE_CONSUMER, "--bootstrap-server", b, "--topic", t, "--partition", "0",
                  "--offset", "earliest", "--max-messages", 4, "--timeout-ms", 20000,
                  "--command-property", "isolation.level=read_committed", timeout=90, check=False)
    got = [l for l in r.out.splitlines() if l.strip()]
    assert got == ["b0", "b1", "p0", "p1"], r.describe()
