"""Kafka Streams 4.4 (the real jar from Maven Central) on the broker: a stateful count
(tests/interop/streams/CountApp.java: groupBy -> a repartition topic, count -> a key-value store
with a compacted changelog topic), at_least_once.

- the output totals are exactly right;
- after commits, the repartition topic's log start offset moved forward (Streams purges it with
  DeleteRecords);
- stopped and started again as a new process with the same application.id and its local state
  directory wiped, the application restores its store from the changelog: further input gives
  the right running totals;
- with processing.guarantee=exactly_once_v2 (transactions, issue 12), killed with kill -9 while
  input arrives and replaced by a new instance with its state wiped, a read_committed reader
  never sees a count above the true total and ends at the exact totals.
"""
import collections
import shutil
import struct
import time

from helpers import DEPS, JAVA_OPTS, REPO, LoggedProcess, create_topic, kcat, need_module, report, run, unique_topic

STREAMS_LIB = DEPS / "streams" / "lib"
SOURCE = REPO / "tests" / "interop" / "streams" / "CountApp.java"
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon"]


def compile_app(tmp_path):
    java, javac = shutil.which("java"), shutil.which("javac")
    assert java and javac, "java/javac not on PATH; install them with scripts/install-test-deps.sh"
    assert list(STREAMS_LIB.glob("kafka-streams-*.jar")), \
        f"Kafka Streams jars missing from {STREAMS_LIB}; run scripts/install-test-deps.sh"
    classes = tmp_path / "classes"
    classes.mkdir()
    run([javac, "-d", str(classes), "-cp", f"{STREAMS_LIB}/*", str(SOURCE)], timeout=120)
    return [java, *JAVA_OPTS, "-cp", f"{classes}:{STREAMS_LIB}/*", "CountApp"]


class App(LoggedProcess):
    """One CountApp process; its output goes to a file."""

    what, stop_timeout = "CountApp", 40

    def wait_running(self, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "STATE RUNNING" in self.text():
                return
            assert self.proc.poll() is None, f"CountApp exited ({self.proc.returncode}):\n{self.text()[-4000:]}"
            time.sleep(0.5)
        raise AssertionError(f"CountApp not RUNNING after {timeout}s:\n{self.text()[-4000:]}")


def produce_words(bootstrap, topic, words):
    ck = need_module("confluent_kafka")
    p = ck.Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for w in words:
        p.produce(topic, value=w.encode())
    assert p.flush(30) == 0, "produce did not finish"


def wait_totals(bootstrap, topic, expected, app, timeout=90):
    """Reads the output topic from the beginning until the latest count of every word equals
    `expected`; fails on a count above it (at_least_once without failures counts each once)."""
    ck = need_module("confluent_kafka")
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("out"),
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    latest = {}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None:
                assert m.error() is None, m.error()
                word, (count,) = m.key().decode(), struct.unpack(">q", m.value())
                assert count <= expected.get(word, 0), f"{word} counted {count} > {expected.get(word)}"
                latest[word] = count
            if latest == expected:
                return latest
    finally:
        c.close()
    raise AssertionError(f"totals {latest} != expected {expected} after {timeout}s\n{app.text()[-3000:]}")


def earliest(bootstrap, topic):
    r = kcat("-b", bootstrap, "-Q", "-t", f"{topic}:0:-2", timeout=30)
    return int(r.out.strip().rsplit(" ", 1)[-1])


def test_streams_count_repartition_purge_and_restore(broker, tmp_path):
    b = broker.bootstrap
    app_id, src, out = unique_topic("app"), unique_topic("words"), unique_topic("counts")
    create_topic(b, src, 1)
    create_topic(b, out, 1)
    cmd = compile_app(tmp_path) + [b, app_id, src, out, str(tmp_path / "state")]

    app = App(cmd, tmp_path / "app1.log")
    app.wait_running()
    first = [WORDS[(i * 7) % 5 if i % 3 else i % 2] for i in range(300)]
    produce_words(b, src, first)
    expected = dict(collections.Counter(first))
    assert wait_totals(b, out, expected, app) == expected

    # Streams purged its repartition topic after committing (DeleteRecords).
    repartition = f"{app_id}-words-repartition"
    deadline = time.monotonic() + 60
    while earliest(b, repartition) == 0:
        assert time.monotonic() < deadline, f"{repartition} log start never moved\n{app.text()[-3000:]}"
        time.sleep(0.5)
    start = earliest(b, repartition)
    assert start > 0
    report(f"streams: repartition topic purged by DeleteRecords up to offset {start} of {len(first)} records")

    # A new process, same application.id, local state wiped: restored from the changelog.
    app.stop()
    shutil.rmtree(tmp_path / "state")
    app = App(cmd, tmp_path / "app2.log")
    app.wait_running()
    second = [WORDS[i % 5] for i in range(100)]
    produce_words(b, src, second)
    expected = dict(collections.Counter(first + second))
    try:
        assert wait_totals(b, out, expected, app) == expected
    finally:
        app.stop()
    # The store's changelog was created compacted, as Streams asks.
    ck_admin = need_module("confluent_kafka.admin")
    admin = ck_admin.AdminClient({"bootstrap.servers": b})
    res = ck_admin.ConfigResource(ck_admin.ResourceType.TOPIC, f"{app_id}-counts-changelog")
    configs = admin.describe_configs([res])[res].result(timeout=30)
    assert configs["cleanup.policy"].value == "compact", configs["cleanup.policy"]


def test_streams_exactly_once_v2_counts_exactly_across_a_kill(broker, tmp_path):
    """exactly_once_v2: Streams commits input offsets, store changelog and output in one
    transaction. A read_committed reader (wait_totals: librdkafka's default isolation) never sees
    a count above the true total; after kill -9 of the instance and a new one on the same
    application.id (state wiped), the totals go on exactly."""
    b = broker.bootstrap
    app_id, src, out = unique_topic("eos"), unique_topic("words"), unique_topic("counts")
    create_topic(b, src, 1)
    create_topic(b, out, 1)
    cmd = compile_app(tmp_path) + [b, app_id, src, out, str(tmp_path / "state"), "exactly_once_v2"]

    app = App(cmd, tmp_path / "eos1.log")
    app.wait_running()
    first = [WORDS[(i * 3) % 5] for i in range(200)]
    produce_words(b, src, first)
    expected = dict(collections.Counter(first))
    assert wait_totals(b, out, expected, app) == expected

    # kill -9 while more input arrives: whatever the instance had not committed is aborted.
    more = [WORDS[i % 5] for i in range(150)]
    produce_words(b, src, more[:75])
    time.sleep(0.3)
    app.proc.kill()
    app.proc.wait(timeout=10)
    app.log.close()
    shutil.rmtree(tmp_path / "state")

    app = App(cmd, tmp_path / "eos2.log")
    app.wait_running()
    produce_words(b, src, more[75:])
    expected = dict(collections.Counter(first + more))
    try:
        assert wait_totals(b, out, expected, app) == expected
    finally:
        app.stop()
    report(f"streams exactly_once_v2: {len(first) + len(more)} words counted exactly across a kill -9")
