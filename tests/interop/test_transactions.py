"""Transactions and exactly-once (issue 12) with real clients, nothing written for the test but a
20-line producer on the real Java client:

- the Java client (tests/interop/txn/TxnProducer.java, kafka-clients 4.4) commits and aborts
  alternating transactions over 6 partitions; read_committed consumers (confluent-kafka, the Java
  ConsoleConsumer, kafka-python, kcat) see exactly the committed records, in order per partition;
  read_uncommitted consumers see all of them;
- Kafka's own consume-transform-produce tool, TransactionalMessageCopier (sendOffsetsToTransaction
  with the group's metadata, random aborts), killed with kill -9 in the middle and started again:
  the output topic holds every input record exactly once, in order;
- confluent-kafka's transactional API: init, begin, produce, send_offsets_to_transaction, commit,
  abort; the group's committed offset moves only with the committed transaction;
- `kafka-transactions.sh` (TransactionsCommand) list, describe and describe-producers.
- the coordinator alone: a Java producer (tests/interop/txn/TxnOffsets.java) that only commits
  consumer offsets (abort leaves the offset, commit moves it, a second producer with the same
  transactional.id fences the first), and `kafka-transactions.sh list` / `describe`.
"""
import collections
import json
import re
import shutil
import time

import pytest

from helpers import (JAVA_OPTS, REPO, TOOLS_LIB, CONSOLE_CONSUMER, LoggedProcess, create_topic, java_tool,
                     kcat, need_module, report, run, unique_topic)

PRODUCER_SRC = REPO / "tests" / "interop" / "txn" / "TxnProducer.java"
COPIER = "org.apache.kafka.tools.TransactionalMessageCopier"
TRANSACTIONS_COMMAND = "org.apache.kafka.tools.TransactionsCommand"
PARTITIONS = 6


def compile_java(tmp_path, source):
    """Compiles one program of tests/interop/txn against the Kafka client jars; the command that
    runs it (its class is the file's name)."""
    java, javac = shutil.which("java"), shutil.which("javac")
    assert java and javac, "java/javac not on PATH; install them with scripts/install-test-deps.sh"
    classes = tmp_path / f"classes-{source.stem}"
    classes.mkdir()
    run([javac, "-d", str(classes), "-cp", f"{TOOLS_LIB}/*", str(source)], timeout=120)
    return [java, *JAVA_OPTS, "-cp", f"{classes}:{TOOLS_LIB}/*", source.stem]


def compile_producer(tmp_path):
    return compile_java(tmp_path, PRODUCER_SRC)


def expected_values(transactions, per_txn, committed_only):
    """Per partition, the values TxnProducer sent, in order; only the committed (even) transactions
    when `committed_only`."""
    out = collections.defaultdict(list)
    for i in range(transactions):
        if committed_only and i % 2:
            continue
        for j in range(per_txn):
            out[j % PARTITIONS].append(f"t{i}-{j}")
    return dict(out)


def read_ck(bootstrap, topic, isolation, expect_count, settle=2.0, timeout=60):
    """Every record of the topic from the beginning with confluent-kafka, per partition in order;
    reads until `expect_count` arrived and then `settle` seconds more (so extra records show)."""
    ck = need_module("confluent_kafka")
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("rd"), "enable.auto.commit": False,
                     "isolation.level": isolation, "auto.offset.reset": "earliest"})
    c.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(PARTITIONS)])
    got, n = collections.defaultdict(list), 0
    deadline, settled = time.monotonic() + timeout, None
    try:
        while time.monotonic() < deadline and (settled is None or time.monotonic() < settled):
            m = c.poll(0.2)
            if m is None:
                continue
            assert m.error() is None, m.error()
            got[m.partition()].append(m.value().decode())
            n += 1
            if n >= expect_count and settled is None:
                settled = time.monotonic() + settle
    finally:
        c.close()
    return dict(got)


def test_java_transactions_alternate_commit_and_abort(broker, tmp_path):
    b, t = broker.bootstrap, unique_topic("txn")
    create_topic(b, t, PARTITIONS)
    transactions, per_txn = 10, 60
    r = run(compile_producer(tmp_path) + list(map(str, [b, t, PARTITIONS, unique_topic("tid"), transactions, per_txn])),
            timeout=180)
    assert r.out.splitlines() == [f"{'COMMIT' if i % 2 == 0 else 'ABORT'} {i}" for i in range(transactions)] + ["DONE"], \
        r.describe()
    committed = expected_values(transactions, per_txn, committed_only=True)
    everything = expected_values(transactions, per_txn, committed_only=False)
    n_committed = sum(map(len, committed.values()))

    assert read_ck(b, t, "read_committed", n_committed) == committed
    assert read_ck(b, t, "read_uncommitted", sum(map(len, everything.values()))) == everything

    # The Java ConsoleConsumer, read_committed: the same multiset (partitions interleave).
    r = java_tool(CONSOLE_CONSUMER, "--bootstrap-server", b, "--topic", t, "--from-beginning",
                  "--isolation-level", "read_committed", "--timeout-ms", 10000, timeout=90, check=False)
    java_values = [v for v in r.out.splitlines() if v.startswith("t")]
    assert sorted(java_values) == sorted(v for vs in committed.values() for v in vs), r.describe()

    # kcat (librdkafka 2.0), read_committed, exits at the end of every partition (the LSO).
    r = kcat("-C", "-b", b, "-t", t, "-X", "isolation.level=read_committed", "-o", "beginning", "-e",
             "-f", "%p %s\n", timeout=60)
    per = collections.defaultdict(list)
    for line in r.out.splitlines():
        p, v = line.split(" ", 1)
        per[int(p)].append(v)
    assert dict(per) == committed, r.describe()

    # kafka-python, read_committed.
    kafka = need_module("kafka")
    c = kafka.KafkaConsumer(bootstrap_servers=[b], group_id=None, enable_auto_commit=False,
                            isolation_level="read_committed", auto_offset_reset="earliest",
                            consumer_timeout_ms=5000)
    c.assign([kafka.TopicPartition(t, p) for p in range(PARTITIONS)])
    c.seek_to_beginning()
    per = collections.defaultdict(list)
    for m in c:
        per[m.partition].append(m.value.decode())
    c.close()
    assert dict(per) == committed
    report(f"transactions: {transactions} Java transactions ({n_committed} records committed, as many aborted) "
           f"read exactly by confluent-kafka, ConsoleConsumer, kcat and kafka-python read_committed")


class Copier(LoggedProcess):
    what, stop_timeout = "TransactionalMessageCopier", 30

    def progress(self):
        """The last `totalProcessed` the copier printed (its JSON status lines)."""
        last = 0
        for line in self.text().splitlines():
            if line.startswith("{"):
                try:
                    last = json.loads(line).get("totalProcessed", last)
                except ValueError:
                    pass
        return last


@pytest.mark.chronik_only
def test_copier_killed_mid_run_copies_every_record_exactly_once(broker, tmp_path):
    b = broker.bootstrap
    src, out, group, tid = unique_topic("in"), unique_topic("out"), unique_topic("g"), unique_topic("tid")
    create_topic(b, src, 1)
    create_topic(b, out, 1)
    ck = need_module("confluent_kafka")
    p = ck.Producer({"bootstrap.servers": b, "linger.ms": 10})
    total = 3000
    for n in range(total):
        p.produce(src, key=f"k{n}".encode(), value=f"v{n}".encode(), partition=0)
    assert p.flush(30) == 0
    java = shutil.which("java")
    cmd = [java, *JAVA_OPTS, "-cp", f"{TOOLS_LIB}/*", COPIER, "--broker-list", b, "--input-topic", src,
           "--input-partition", "0", "--output-topic", out, "--consumer-group", group, "--transactional-id", tid,
           "--transaction-size", "25", "--enable-random-aborts", "--use-group-metadata"]

    first = Copier(cmd, tmp_path / "copier1.log")
    deadline = time.monotonic() + 120
    while first.progress() < 500:
        assert first.proc.poll() is None, f"copier exited early:\n{first.text()[-4000:]}"
        assert time.monotonic() < deadline, f"copier made no progress:\n{first.text()[-4000:]}"
        time.sleep(0.1)
    first.proc.kill()  # kill -9 in the middle of its transactions
    first.proc.wait(timeout=10)
    first.log.close()
    killed_at = first.progress()

    second = Copier(cmd, tmp_path / "copier2.log")
    try:
        second.proc.wait(timeout=240)
    except Exception:
        second.proc.kill()
        raise AssertionError(f"the restarted copier did not finish:\n{second.text()[-4000:]}")
    assert second.proc.returncode == 0, second.text()[-4000:]

    got = read_ck(b, out, "read_committed", total).get(0, [])
    dupes = [v for v, k in collections.Counter(got).items() if k > 1]
    assert not dupes, f"{len(dupes)} records copied twice, e.g. {dupes[:5]}"
    assert got == [f"v{n}" for n in range(total)], f"{len(got)} records, first missing " \
        f"{next((f'v{n}' for n in range(total) if f'v{n}' not in set(got)), None)}"
    report(f"transactions: TransactionalMessageCopier killed (-9) after {killed_at} of {total} records; "
           f"after the restart the output holds each of the {total} exactly once")


def test_confluent_kafka_transactional_api(broker):
    b, src, out, group = broker.bootstrap, unique_topic("in"), unique_topic("out"), unique_topic("g")
    create_topic(b, src, 1)
    create_topic(b, out, 1)
    ck = need_module("confluent_kafka")
    plain = ck.Producer({"bootstrap.servers": b})
    for n in range(10):
        plain.produce(src, value=f"in{n}".encode(), partition=0)
    assert plain.flush(30) == 0

    consumer = ck.Consumer({"bootstrap.servers": b, "group.id": group, "enable.auto.commit": False,
                            "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    consumer.subscribe([src])
    msgs, deadline = [], time.monotonic() + 60
    while len(msgs) < 10 and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and m.error() is None:
            msgs.append(m)
    assert len(msgs) == 10

    p = ck.Producer({"bootstrap.servers": b, "transactional.id": unique_topic("tid")})
    p.init_transactions(30)
    # Committed: the first five, with their input offsets.
    p.begin_transaction()
    for m in msgs[:5]:
        p.produce(out, value=m.value().upper(), partition=0)
    p.send_offsets_to_transaction([ck.TopicPartition(src, 0, msgs[4].offset() + 1)],
                                  consumer.consumer_group_metadata(), 30)
    p.commit_transaction(30)
    # Aborted: the other five, and their offsets with them.
    p.begin_transaction()
    for m in msgs[5:]:
        p.produce(out, value=m.value().upper(), partition=0)
    p.send_offsets_to_transaction([ck.TopicPartition(src, 0, msgs[9].offset() + 1)],
                                  consumer.consumer_group_metadata(), 30)
    assert p.flush(30) == 0  # in the log before the abort (abort purges what is still queued)
    p.abort_transaction(30)

    [committed] = consumer.committed([ck.TopicPartition(src, 0)], timeout=30)
    assert committed.offset == msgs[4].offset() + 1, "only the committed transaction's offsets count"
    consumer.close()
    got = read_ck(b, out, "read_committed", 5).get(0, [])
    assert got == [f"IN{n}" for n in range(5)]
    assert len(read_ck(b, out, "read_uncommitted", 10).get(0, [])) == 10


def test_kafka_transactions_tool_lists_and_describes(broker, tmp_path):
    b, t, tid = broker.bootstrap, unique_topic("txn"), unique_topic("tid")
    create_topic(b, t, PARTITIONS)
    run(compile_producer(tmp_path) + list(map(str, [b, t, PARTITIONS, tid, 2, 12])), timeout=180)

    r = java_tool(TRANSACTIONS_COMMAND, "--bootstrap-server", b, "list", timeout=60)
    assert tid in r.out, r.describe()
    r = java_tool(TRANSACTIONS_COMMAND, "--bootstrap-server", b, "describe", "--transactional-id", tid, timeout=60)
    assert tid in r.out and "CompleteAbort" in r.out, r.describe()
    r = java_tool(TRANSACTIONS_COMMAND, "--bootstrap-server", b, "describe-producers", "--topic", t,
                  "--partition", 0, timeout=60)
    # Header, then one line for the transactional producer (its id and epoch).
    rows = [line for line in r.out.splitlines() if line.strip() and not line.startswith("ProducerId")]
    assert len(rows) == 1, r.describe()

GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
OFFSETS_SRC = REPO / "tests" / "interop" / "txn" / "TxnOffsets.java"




def committed_offset(bootstrap, group, topic):
    r = java_tool(GROUP_COMMAND, "--bootstrap-server", bootstrap, "--describe", "--group", group,
                  "--offsets", timeout=60, check=False)
    m = re.search(rf"^{re.escape(group)}\s+{re.escape(topic)}\s+0\s+(\S+)", r.out, re.M)
    return m.group(1) if m else None, r


def test_java_transactional_offsets_and_the_transactions_command(broker, tmp_path):
    b = broker.bootstrap
    topic = unique_topic("txoff")
    create_topic(b, topic, 1)
    txn_id, group = f"{topic}-producer", f"{topic}-group"
    r = run([*compile_java(tmp_path, OFFSETS_SRC), b, txn_id, group, topic], timeout=180)
    lines = r.out.split()
    assert lines == ["INIT", "ABORTED", "COMMITTED", "SECOND", "INIT", "FENCED"], r.describe()

    offset, g = committed_offset(b, group, topic)
    assert offset == "7", f"the committed transaction's offset, not the aborted 42:\n{g.describe()}"

    r = java_tool(TRANSACTIONS_COMMAND, "--bootstrap-server", b, "list", timeout=60)
    row = [line.split() for line in r.out.splitlines() if line.startswith(txn_id)]
    assert row, r.describe()
    # TransactionalId Coordinator ProducerId TransactionState
    assert row[0][3] == "Empty", f"the second producer's InitProducerId left it Empty:\n{r.describe()}"

    r = java_tool(TRANSACTIONS_COMMAND, "--bootstrap-server", b, "describe", "--transactional-id", txn_id,
                  timeout=60)
    header, values = r.out.splitlines()[0].split("\t"), r.out.splitlines()[1].split("\t")
    described = dict(zip([h.strip() for h in header], [v.strip() for v in values]))
    assert described["TransactionalId"] == txn_id, r.describe()
    assert described["TransactionState"] == "Empty", r.describe()
    assert described["TransactionTimeoutMs"] == "60000", r.describe()
    # Two producers: epoch 0 (first), a bump per InitProducerId.
    assert int(described["ProducerEpoch"]) >= 1, r.describe()

    r = java_tool(TRANSACTIONS_COMMAND, "--bootstrap-server", b, "describe", "--transactional-id",
                  "no-such-transactional-id", timeout=60, check=False)
    assert r.returncode != 0 and "could not be found" in (r.out + r.err), r.describe()
