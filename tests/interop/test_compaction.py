"""Log compaction with a real client (confluent-kafka / librdkafka): a topic created with
cleanup.policy=compact, small segments, segment.ms and min.cleanable.dirty.ratio=0.01 through the
AdminClient; many lz4-compressed updates per key; the cleaner's metrics on the admin API's
/metrics; then a consumer from the beginning sees exactly the latest value of every key, each at
the offset the producer was told, offsets increasing."""
import re
import time
import urllib.request

import pytest

from conftest import ChronikBroker
from helpers import create_topic, need_module, report, unique_topic

KEYS = 50
ROUNDS = 40


def admin_addr(broker, timeout=30):
    """The admin API address the broker logged at start (it binds a free port)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"admin API.*?listen[:=] *\"?([0-9.]+:[0-9]+)", broker.log_text())
        if m:
            return m.group(1)
        time.sleep(0.1)
    pytest.fail(f"no admin API address in the broker log\n{broker.log_tail(40)}", pytrace=False)


def metric(admin, name, labels=""):
    """Sum of the series `name` whose label text contains `labels`, from /metrics."""
    with urllib.request.urlopen(f"http://{admin}/metrics", timeout=10) as r:
        text = r.read().decode()
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith(name + "{") and labels in line:
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    return total if seen else None


def consume_all(ck, bootstrap, topic, end, timeout=60):
    """(offset, key, value) of every record from offset 0 up to `end`, read with assign()."""
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": f"interop-{topic}",
                     "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        c.assign([ck.TopicPartition(topic, 0, 0)])
        out, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is None:
                if out and out[-1][0] >= end - 1:
                    break
                # Past the last surviving record: the position moved to the end.
                pos = c.position([ck.TopicPartition(topic, 0)])[0].offset
                if pos >= end:
                    break
                continue
            assert m.error() is None, m.error()
            out.append((m.offset(), m.key(), m.value()))
            if m.offset() >= end - 1:
                break
        else:
            pytest.fail(f"consumer did not reach offset {end} in {timeout}s (got {len(out)} records)")
        return out
    finally:
        c.close()


@pytest.mark.chronik_only
def test_compacted_topic_keeps_the_latest_value_per_key(tmp_path, monkeypatch):
    ck = need_module("confluent_kafka")
    # The cleaner checks every 200 ms instead of Kafka's 15 s.
    monkeypatch.setenv("CHRONIK_CLEANER__BACKOFF", "200ms")
    broker = ChronikBroker(tmp_path)
    broker.start()
    try:
        admin = admin_addr(broker)
        b = broker.bootstrap
        t = unique_topic("compact")
        create_topic(b, t, 1, config={"cleanup.policy": "compact", "internal.segment.bytes": "4096",
                                      "segment.ms": "500", "min.cleanable.dirty.ratio": "0.01"})
        written, failures = {}, []

        def on_delivery(err, m):
            if err is not None:
                failures.append(err)
            else:
                written[m.offset()] = (m.key(), m.value())

        # batch.size below internal.segment.bytes: a batch larger than a segment is
        # RECORD_BATCH_TOO_LARGE, on Kafka as on chronik.
        p = ck.Producer({"bootstrap.servers": b, "compression.type": "lz4", "linger.ms": 5,
                         "acks": "all", "enable.idempotence": True, "batch.size": 3000})
        for r in range(ROUNDS):
            for k in range(KEYS):
                p.produce(t, key=f"key-{k:03d}".encode(), value=f"round-{r:03d}-key-{k:03d}".encode(),
                          on_delivery=on_delivery)
            p.poll(0)
        assert p.flush(60) == 0
        assert not failures, failures[:3]
        total = KEYS * ROUNDS
        assert sorted(written) == list(range(total))
        latest = {}
        for off in sorted(written):
            latest[written[off][0]] = (off, written[off][1])

        # The cleaner ran (metrics), then consume until exactly one record per key is left: the
        # active segment rolls on segment.ms and is cleaned in turn. Bounded.
        t0 = time.monotonic()
        deadline = t0 + 90
        runs = None
        while time.monotonic() < deadline:
            runs = metric(admin, "chronik_cleaner_runs_total", 'node="1"')
            if runs and runs > 0:
                break
            time.sleep(0.2)
        assert runs and runs > 0, "the cleaner never ran"
        got = []
        while time.monotonic() < deadline:
            got = consume_all(ck, b, t, total)
            if len(got) == KEYS:
                break
            time.sleep(0.5)
        offsets = [o for o, _, _ in got]
        assert offsets == sorted(set(offsets)), "offsets increase"
        for o, k, v in got:
            assert written[o] == (k, v), f"offset {o} serves what the producer wrote there"
        assert {k: (o, v) for o, k, v in got} == latest, "the latest value of every key, once"
        assert len(got) == KEYS, f"{len(got)} records left of {total}"
        removed = metric(admin, "chronik_cleaner_records_removed_total", 'node="1"')
        read = metric(admin, "chronik_cleaner_bytes_read_total", 'node="1"')
        assert removed is not None and removed >= total - KEYS
        report(f"compaction: {total} updates of {KEYS} keys -> {len(got)} records in "
               f"{time.monotonic() - t0:.1f}s after the last produce; cleaner read {read:.0f} bytes, "
               f"removed {removed:.0f} records")
    finally:
        broker.stop()
