"""Kafka's topic-config surface with the real Java tools (Kafka 4.4 ConfigCommand, TopicCommand)
and confluent-kafka: --describe --all of topics and brokers, --alter of every topic config,
--create --config cleanup.policy=compact, segment.bytes' floor and the test-only
internal.segment.bytes, and the produce rules (per-topic max.message.bytes in
both directions, LogAppendTime seen by a consumer, keyless records refused on a compacted topic),
and a consumer group with session.timeout.ms=3000 on a broker whose minimum is lowered."""
import re
import time

import pytest

from conftest import ChronikBroker
from helpers import TOPIC_COMMAND, create_topic, java_tool, need_module, unique_topic, wait_topic_ready

CONFIG_COMMAND = "org.apache.kafka.tools.ConfigCommand"

# Every topic config of Kafka 4.4's LogConfig (internal.segment.bytes is internal).
ALL_TOPIC_CONFIGS = [
    "segment.bytes", "segment.ms", "segment.jitter.ms", "segment.index.bytes", "flush.messages",
    "flush.ms", "retention.bytes", "retention.ms", "max.message.bytes",
    "max.decompressed.message.bytes", "index.interval.bytes", "delete.retention.ms",
    "min.compaction.lag.ms", "max.compaction.lag.ms", "file.delete.delay.ms",
    "min.cleanable.dirty.ratio", "cleanup.policy", "unclean.leader.election.enable",
    "min.insync.replicas", "compression.type", "compression.gzip.level", "compression.lz4.level",
    "compression.zstd.level", "preallocate", "message.timestamp.type",
    "message.timestamp.before.max.ms", "message.timestamp.after.max.ms",
    "leader.replication.throttled.replicas", "follower.replication.throttled.replicas",
    "remote.storage.enable", "local.retention.ms", "local.retention.bytes",
    "remote.log.copy.disable", "remote.copy.lag.ms", "remote.copy.lag.bytes",
    "remote.log.delete.on.disable", "errors.deadletterqueue.group.enable",
]

# A non-default valid value for each (ConfigCommand syntax: list values in [brackets]).
NEW_VALUES = {
    "segment.bytes": "2097152", "segment.ms": "3600000", "segment.jitter.ms": "10",
    "segment.index.bytes": "4096", "flush.messages": "1000", "flush.ms": "1000",
    "retention.bytes": "1073741824", "retention.ms": "86400000", "max.message.bytes": "2000000",
    "max.decompressed.message.bytes": "10000000", "index.interval.bytes": "8192",
    "delete.retention.ms": "1000", "min.compaction.lag.ms": "100", "max.compaction.lag.ms": "600000",
    "file.delete.delay.ms": "1000", "min.cleanable.dirty.ratio": "0.1",
    "cleanup.policy": "[compact,delete]", "unclean.leader.election.enable": "true",
    "min.insync.replicas": "1", "compression.type": "lz4", "compression.gzip.level": "5",
    "compression.lz4.level": "3", "compression.zstd.level": "7", "preallocate": "true",
    "message.timestamp.type": "LogAppendTime", "message.timestamp.before.max.ms": "86400000",
    "message.timestamp.after.max.ms": "60000", "leader.replication.throttled.replicas": "*",
    "follower.replication.throttled.replicas": "[0:1,1:1]", "remote.storage.enable": "false",
    "local.retention.ms": "1000", "local.retention.bytes": "1000", "remote.log.copy.disable": "true",
    "remote.copy.lag.ms": "5", "remote.copy.lag.bytes": "5", "remote.log.delete.on.disable": "true",
    "errors.deadletterqueue.group.enable": "true",
}
assert sorted(NEW_VALUES) == sorted(ALL_TOPIC_CONFIGS)


def configs(bootstrap, *args, check=True):
    return java_tool(CONFIG_COMMAND, "--bootstrap-server", bootstrap, *args, timeout=90, check=check)


def describe_all(bootstrap, entity_type, name):
    """{config: (value, rest of the line)} from `kafka-configs --describe --all`."""
    r = configs(bootstrap, "--describe", "--all", "--entity-type", entity_type, "--entity-name", name)
    out = {}
    for m in re.finditer(r"^\s+([a-z0-9.]+)=(.*?) sensitive=(\w+) synonyms=\{(.*)\}\s*$", r.out, re.M):
        out[m.group(1)] = (m.group(2), m.group(3), m.group(4))
    assert out, r.describe()
    return out, r


@pytest.fixture
def low_min_broker(tmp_path, monkeypatch):
    """A chronik broker whose [groups] min-session-timeout is 1 s (Kafka's default is 6 s)."""
    monkeypatch.setenv("CHRONIK_GROUPS__MIN_SESSION_TIMEOUT", "1s")
    monkeypatch.setenv("CHRONIK_GROUPS__INITIAL_REBALANCE_DELAY", "100ms")
    b = ChronikBroker(tmp_path)
    b.start()
    try:
        yield b
    finally:
        b.stop()


def test_describe_all_for_a_topic_lists_every_config_with_kafkas_sources(broker):
    b = broker.bootstrap
    t = unique_topic("cfgdesc")
    create_topic(b, t, 1, config={"retention.ms": "3600000"})
    got, r = describe_all(b, "topics", t)
    print(r.out)
    assert f"All configs for topic {t} are:" in r.out, r.describe()
    missing = [k for k in ALL_TOPIC_CONFIGS if k not in got]
    assert not missing, f"not described: {missing}\n{r.describe()}"
    assert got["retention.ms"][0] == "3600000"
    assert got["retention.ms"][2].startswith("DYNAMIC_TOPIC_CONFIG:retention.ms=3600000"), got["retention.ms"]
    assert got["cleanup.policy"] == ("delete", "false", "DEFAULT_CONFIG:log.cleanup.policy=delete")
    assert got["message.timestamp.type"][0] == "CreateTime"


def test_create_with_compact_policy_and_keyless_records_are_refused(broker):
    b = broker.bootstrap
    t = unique_topic("compacted")
    r = java_tool(TOPIC_COMMAND, "--bootstrap-server", b, "--create", "--topic", t, "--partitions", 1,
                  "--replication-factor", 1, "--config", "cleanup.policy=compact", timeout=60)
    assert f"Created topic {t}." in r.out, r.describe()
    wait_topic_ready(b, t, 1)
    got, _ = describe_all(b, "topics", t)
    assert got["cleanup.policy"][0] == "compact"

    ck = need_module("confluent_kafka")
    results = {}

    def delivered(err, msg):
        results[msg.key()] = err

    p = ck.Producer({"bootstrap.servers": b, "linger.ms": 0, "enable.idempotence": False,
                     "compression.type": "none"})
    p.produce(t, key=b"k1", value=b"v1", on_delivery=delivered)
    p.flush(30)
    p.produce(t, key=None, value=b"no key", on_delivery=delivered)
    assert p.flush(30) == 0, "bounded: every delivery report arrived"
    assert results[b"k1"] is None, results
    err = results[None]
    assert err is not None and err.code() == ck.KafkaError.INVALID_RECORD, err

    # A bad value is refused naming the key, by the tools too.
    r = java_tool(TOPIC_COMMAND, "--bootstrap-server", b, "--create", "--topic", unique_topic("bad"),
                  "--partitions", 1, "--replication-factor", 1, "--config", "cleanup.policy=compacted",
                  timeout=60, check=False)
    assert r.returncode != 0 and "cleanup.policy" in r.out + r.err, r.describe()


def test_alter_every_topic_config_then_delete_them(broker):
    b = broker.bootstrap
    t = unique_topic("cfgalter")
    create_topic(b, t, 1)
    add = ",".join(f"{k}={v}" for k, v in NEW_VALUES.items())
    r = configs(b, "--alter", "--entity-type", "topics", "--entity-name", t, "--add-config", add)
    assert "Completed updating config" in r.out, r.describe()
    got, r = describe_all(b, "topics", t)
    for k, v in NEW_VALUES.items():
        want = v.strip("[]")
        assert got[k][0] == want, f"{k}: described {got[k][0]!r}, set {want!r}\n{r.out}"
        assert got[k][2].startswith(f"DYNAMIC_TOPIC_CONFIG:{k}="), got[k]
    # Out of range, wrong type, unknown value, unknown key: refused naming the key.
    for bad in ["segment.ms=0", "retention.ms=soon", "compression.type=brotli", "no.such.config=1",
                "min.cleanable.dirty.ratio=1.5"]:
        r = configs(b, "--alter", "--entity-type", "topics", "--entity-name", t, "--add-config", bad,
                    check=False)
        key = bad.split("=")[0]
        assert r.returncode != 0 and key in r.out + r.err, f"{bad} accepted?\n{r.describe()}"
    r = configs(b, "--alter", "--entity-type", "topics", "--entity-name", t, "--delete-config",
                ",".join(NEW_VALUES))
    assert "Completed updating config" in r.out, r.describe()
    got, _ = describe_all(b, "topics", t)
    assert got["cleanup.policy"][0] == "delete"
    assert all(not v[2].startswith("DYNAMIC_TOPIC_CONFIG") for v in got.values()), got


def test_segment_bytes_floor_and_internal_segment_bytes(broker):
    """Kafka 4.4's rules, checked against Apache Kafka 4.4 with EXTERNAL_BOOTSTRAP too:
    segment.bytes below 1 MiB is refused with LogConfig's message; the test-only
    internal.segment.bytes takes any INT, and kafka-configs lists it (plain --describe and
    --describe --all) only on a topic that sets it, as DYNAMIC_TOPIC_CONFIG with itself as the
    only synonym; a batch larger than the segment size is RECORD_BATCH_TOO_LARGE."""
    b = broker.bootstrap
    t = unique_topic("segfloor")
    create_topic(b, t, 1)
    alter = ("--alter", "--entity-type", "topics", "--entity-name", t, "--add-config")
    r = configs(b, *alter, "segment.bytes=1000", check=False)
    assert r.returncode != 0, r.describe()
    assert ("InvalidConfigurationException: Invalid value 1000 for configuration segment.bytes: "
            "Value must be at least 1048576") in r.out + r.err, r.describe()
    r = configs(b, *alter, "segment.bytes=1048576")
    assert "Completed updating config" in r.out, r.describe()
    got, r = describe_all(b, "topics", t)
    assert got["segment.bytes"][0] == "1048576", r.out
    assert "internal.segment.bytes" not in got, "internal: not listed while unset\n" + r.out

    r = configs(b, *alter, "internal.segment.bytes=abc", check=False)
    assert r.returncode != 0 and ("Invalid value abc for configuration internal.segment.bytes: "
                                  "Not a number of type INT") in r.out + r.err, r.describe()
    r = configs(b, *alter, "internal.segment.bytes=1000")
    assert "Completed updating config" in r.out, r.describe()
    line = "internal.segment.bytes=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:internal.segment.bytes=1000}"
    r = configs(b, "--describe", "--entity-type", "topics", "--entity-name", t)
    assert line in r.out, r.describe()
    got, r = describe_all(b, "topics", t)
    assert got["internal.segment.bytes"] == ("1000", "false", "DYNAMIC_TOPIC_CONFIG:internal.segment.bytes=1000"), \
        r.out
    assert set(got) == set(ALL_TOPIC_CONFIGS) | {"internal.segment.bytes"}, r.out
    r = configs(b, "--alter", "--entity-type", "topics", "--entity-name", t, "--delete-config",
                "internal.segment.bytes")
    assert "Completed updating config" in r.out, r.describe()
    got, r = describe_all(b, "topics", t)
    assert "internal.segment.bytes" not in got, r.out

    # kafka-topics --create takes it too, and --describe shows it among the topic's configs.
    t2 = unique_topic("segsmall")
    r = java_tool(TOPIC_COMMAND, "--bootstrap-server", b, "--create", "--topic", t2, "--partitions", 1,
                  "--replication-factor", 1, "--config", "internal.segment.bytes=1024", timeout=60)
    assert f"Created topic {t2}." in r.out, r.describe()
    wait_topic_ready(b, t2, 1)
    r = java_tool(TOPIC_COMMAND, "--bootstrap-server", b, "--describe", "--topic", t2, timeout=60)
    configs_line = next((ln for ln in r.out.splitlines() if "Configs:" in ln), "")
    assert "internal.segment.bytes=1024" in configs_line, r.describe()

    # A record batch larger than the segment size is refused (RECORD_BATCH_TOO_LARGE, code 18);
    # one that fits is stored.
    ck = need_module("confluent_kafka")
    outcome = {}
    p = ck.Producer({"bootstrap.servers": b, "linger.ms": 0, "compression.type": "none",
                     "enable.idempotence": False, "retries": 0})
    for size in (2000, 100):
        p.produce(t2, value=b"x" * size, on_delivery=lambda err, msg: outcome.update(
            {len(msg.value()): err.code() if err else None}))
        assert p.flush(30) == 0, "bounded: the delivery report arrived"
    assert outcome == {2000: ck.KafkaError.RECORD_LIST_TOO_LARGE, 100: None}, outcome


def test_per_topic_max_message_bytes_in_both_directions(broker):
    b = broker.bootstrap
    ck = need_module("confluent_kafka")
    wide, narrow = unique_topic("wide"), unique_topic("narrow")
    create_topic(b, wide, 1, config={"max.message.bytes": str(5 * 1024 * 1024)})
    create_topic(b, narrow, 1, config={"max.message.bytes": "50000"})
    errors = []
    p = ck.Producer({"bootstrap.servers": b, "linger.ms": 0, "message.max.bytes": 10_000_000,
                     "compression.type": "none", "enable.idempotence": False})
    for topic, size in [(wide, 3 * 1024 * 1024), (narrow, 100_000), (narrow, 10_000)]:
        p.produce(topic, value=b"x" * size, on_delivery=lambda err, msg: errors.append(
            (msg.topic(), len(msg.value()), err)))
        assert p.flush(60) == 0, "bounded: the delivery report arrived"
    outcome = {(t, n): (e.code() if e else None) for t, n, e in errors}
    assert outcome[(wide, 3 * 1024 * 1024)] is None, \
        f"a 3 MiB record on a topic allowing 5 MiB (broker default 1 MB): {outcome}"
    assert outcome[(narrow, 100_000)] == ck.KafkaError.MSG_SIZE_TOO_LARGE, outcome
    assert outcome[(narrow, 10_000)] is None, outcome


def test_log_append_time_is_what_a_consumer_sees(broker):
    b = broker.bootstrap
    ck = need_module("confluent_kafka")
    t = unique_topic("lat")
    create_topic(b, t, 1, config={"message.timestamp.type": "LogAppendTime"})
    p = ck.Producer({"bootstrap.servers": b, "linger.ms": 0})
    before = int(time.time() * 1000)
    p.produce(t, key=b"k", value=b"v", timestamp=1_000)
    assert p.flush(30) == 0
    after = int(time.time() * 1000)
    c = ck.Consumer({"bootstrap.servers": b, "group.id": unique_topic("g"), "auto.offset.reset": "earliest",
                     "enable.auto.commit": False})
    c.assign([ck.TopicPartition(t, 0, 0)])
    msg = None
    deadline = time.monotonic() + 30
    while msg is None and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is not None and not m.error():
            msg = m
    c.close()
    assert msg is not None, "no record within 30 s"
    kind, ts = msg.timestamp()
    assert kind == ck.TIMESTAMP_LOG_APPEND_TIME, (kind, ts)
    assert before - 1000 <= ts <= after + 1000, (before, ts, after)


def test_group_session_timeout_3000_with_a_lowered_minimum_and_broker_describe(low_min_broker):
    b = low_min_broker.bootstrap
    got, r = describe_all(b, "brokers", "1")
    print(r.out)
    assert "All configs for broker 1 are:" in r.out, r.describe()
    assert got["group.min.session.timeout.ms"][0] == "1000"
    assert got["group.min.session.timeout.ms"][2].startswith("STATIC_BROKER_CONFIG:group.min.session.timeout.ms=1000")
    assert got["group.max.session.timeout.ms"] == (
        "1800000", "false", "DEFAULT_CONFIG:group.max.session.timeout.ms=1800000")
    for k in ["auto.create.topics.enable", "num.partitions", "default.replication.factor",
              "message.max.bytes", "log.retention.ms", "log.retention.bytes", "log.segment.bytes",
              "group.initial.rebalance.delay.ms", "group.max.size", "log.cleanup.policy"]:
        assert k in got, f"{k} not described\n{r.out}"
    r = configs(b, "--alter", "--entity-type", "brokers", "--entity-name", "1", "--add-config",
                "log.retention.ms=1000", check=False)
    assert r.returncode != 0 and "static" in r.out + r.err, r.describe()

    ck = need_module("confluent_kafka")
    t = unique_topic("sess")
    create_topic(b, t, 1)
    p = ck.Producer({"bootstrap.servers": b})
    p.produce(t, value=b"hello")
    assert p.flush(30) == 0
    errors = []
    c = ck.Consumer({"bootstrap.servers": b, "group.id": unique_topic("g3000"),
                     "session.timeout.ms": 3000, "heartbeat.interval.ms": 500,
                     "auto.offset.reset": "earliest", "error_cb": errors.append})
    c.subscribe([t])
    got_msg = None
    deadline = time.monotonic() + 40
    while got_msg is None and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            errors.append(m.error())
            continue
        got_msg = m
    c.close()
    assert got_msg is not None and got_msg.value() == b"hello", f"no record; errors: {errors}"
    assert not [e for e in errors if e.code() == ck.KafkaError.INVALID_SESSION_TIMEOUT], errors


def test_compression_type_recompresses_and_real_consumers_read_it(broker):
    """A topic with compression.type=X stores what an uncompressed producer sent recompressed with X;
    librdkafka and the Java consumer (snappy-java, lz4-java, zstd-jni) read the records back."""
    from helpers import CONSOLE_CONSUMER
    b = broker.bootstrap
    ck = need_module("confluent_kafka")
    for codec in ["gzip", "snappy", "lz4", "zstd"]:
        t = unique_topic(f"re{codec}")
        create_topic(b, t, 1, config={"compression.type": codec, "cleanup.policy": "compact"})
        p = ck.Producer({"bootstrap.servers": b, "linger.ms": 20, "compression.type": "none"})
        values = [f"{codec} value {i} " * 5 for i in range(50)]
        for i, v in enumerate(values):
            p.produce(t, key=f"k{i}".encode(), value=v.encode())
        assert p.flush(30) == 0
        # The keys of a batch the producer compressed itself are read too (compacted topic).
        errors = []
        p2 = ck.Producer({"bootstrap.servers": b, "compression.type": codec, "enable.idempotence": False})
        p2.produce(t, key=None, value=b"no key", on_delivery=lambda err, msg: errors.append(err))
        assert p2.flush(30) == 0
        assert errors and errors[0] is not None and errors[0].code() == ck.KafkaError.INVALID_RECORD, errors

        c = ck.Consumer({"bootstrap.servers": b, "group.id": unique_topic("g"), "enable.auto.commit": False})
        c.assign([ck.TopicPartition(t, 0, 0)])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < len(values) and time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is not None and not m.error():
                got.append(m.value().decode())
        c.close()
        assert got == values, f"{codec}: librdkafka read {len(got)} of {len(values)}"
        r = java_tool(CONSOLE_CONSUMER, "--bootstrap-server", b, "--topic", t, "--from-beginning",
                      "--max-messages", len(values), "--timeout-ms", 30000, timeout=90)
        assert r.out.splitlines() == values, f"{codec}: Java consumer\n{r.describe()}"
