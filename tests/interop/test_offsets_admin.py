"""Offsets administration with the real tools (issue 11): Kafka 4.4's
`kafka-consumer-groups --delete-offsets` (OffsetDelete, with GROUP_SUBSCRIBED_TO_TOPIC for a topic
an active group consumes), `kafka-topics --describe` paging through DescribeTopicPartitions on a
topic with many partitions, and `__consumer_offsets` listed as an internal topic by kafka-python
and confluent-kafka."""
import re
import time

from helpers import (TOPIC_COMMAND, create_topic, java_tool, need_module, report, unique_topic,
                     wait_topic_ready)

GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"


def group_offsets(bootstrap, group):
    """{(topic, partition): offset} from `kafka-consumer-groups --describe --offsets`."""
    r = java_tool(GROUP_COMMAND, "--bootstrap-server", bootstrap, "--describe", "--offsets",
                  "--group", group, timeout=90, check=False)
    out = {}
    for m in re.finditer(rf"^{re.escape(group)}\s+(\S+)\s+(\d+)\s+(\d+|-)\s", r.out, re.M):
        if m.group(3) != "-":
            out[(m.group(1), int(m.group(2)))] = int(m.group(3))
    return out, r


def reset_to(bootstrap, group, topic, offset):
    r = java_tool(GROUP_COMMAND, "--bootstrap-server", bootstrap, "--reset-offsets", "--group", group,
                  "--topic", topic, "--to-offset", offset, "--execute", timeout=90)
    assert topic in r.out, r.describe()


def test_delete_offsets_of_an_empty_group_and_refusal_for_a_subscribed_topic(broker):
    kafka = need_module("kafka")
    b = broker.bootstrap
    t1, t2 = unique_topic("odel"), unique_topic("osub")
    create_topic(b, t1, 3)
    create_topic(b, t2, 1)
    producer = kafka.KafkaProducer(bootstrap_servers=[b])
    for t in (t1, t2):
        for p in range(3 if t == t1 else 1):
            for i in range(10):
                producer.send(t, value=b"v%d" % i, partition=p)
    producer.flush(timeout=30)
    producer.close()

    # An empty group with offsets on both topics: --delete-offsets removes one topic's.
    g = unique_topic("gdel")
    reset_to(b, g, t1, 5)
    reset_to(b, g, t2, 7)
    before, r = group_offsets(b, g)
    assert before == {(t1, 0): 5, (t1, 1): 5, (t1, 2): 5, (t2, 0): 7}, r.describe()
    r = java_tool(GROUP_COMMAND, "--bootstrap-server", b, "--delete-offsets", "--group", g, "--topic", t1,
                  timeout=90)
    # Kafka 4.4 prints "Request succeeded for deleting offsets from group G." (older: "succeed").
    assert re.search(rf"Request succeed(ed)? for deleting offsets.*{re.escape(g)}", r.out), r.describe()
    assert len(re.findall(rf"^{re.escape(t1)}\s+\d+\s+Successful", r.out, re.M)) == 3, r.describe()
    after, r = group_offsets(b, g)
    assert after == {(t2, 0): 7}, r.describe()

    # An unknown group: "does not exist" (GROUP_ID_NOT_FOUND).
    r = java_tool(GROUP_COMMAND, "--bootstrap-server", b, "--delete-offsets", "--group", unique_topic("nog"),
                  "--topic", t1, timeout=90, check=False)
    assert "does not exist" in r.out, r.describe()

    # A group with an active member subscribed to t2: its offsets of t2 are refused.
    g2 = unique_topic("gactive")
    consumer = kafka.KafkaConsumer(t2, bootstrap_servers=[b], group_id=g2, auto_offset_reset="earliest",
                                   enable_auto_commit=False)
    try:
        deadline = time.monotonic() + 60
        got = 0
        while got < 10 and time.monotonic() < deadline:
            got += sum(len(v) for v in consumer.poll(timeout_ms=500).values())
        assert got == 10, f"the active consumer read {got} of 10 records"
        consumer.commit()
        r = java_tool(GROUP_COMMAND, "--bootstrap-server", b, "--delete-offsets", "--group", g2, "--topic", t2,
                      timeout=90, check=False)
        consumer.poll(timeout_ms=100)
        assert not re.search(r"Request succeed", r.out), r.describe()
        assert re.search(rf"^{re.escape(t2)}\s+0\s+Error:.*GroupSubscribedToTopicException", r.out, re.M), r.describe()
        assert consumer.committed(kafka.TopicPartition(t2, 0)) == 10, "the refused offset is still there"
    finally:
        consumer.close()
    report(f"kafka-consumer-groups --delete-offsets: deleted 3 partitions of an empty group; "
           f"refused GROUP_SUBSCRIBED_TO_TOPIC for an active group")


def test_topic_describe_pages_through_describe_topic_partitions(broker):
    b = broker.bootstrap
    t = unique_topic("many")
    n = 250  # several DescribeTopicPartitions pages of 100 partitions
    r = java_tool(TOPIC_COMMAND, "--bootstrap-server", b, "--create", "--topic", t, "--partitions", n,
                  "--replication-factor", 1, timeout=300)
    assert f"Created topic {t}." in r.out, r.describe()
    wait_topic_ready(b, t, n, timeout=300)
    r = java_tool(TOPIC_COMMAND, "--bootstrap-server", b, "--describe", "--topic", t,
                  "--partition-size-limit-per-response", 100, timeout=180)
    assert re.search(rf"Topic: {re.escape(t)}\s.*PartitionCount: {n}\b", r.out), r.describe()
    parts = [int(p) for p in re.findall(rf"Topic: {re.escape(t)}\s+Partition: (\d+)\s+Leader: 1\b", r.out)]
    assert sorted(parts) == list(range(n)), f"{len(parts)} partition lines\n{r.describe()[:4000]}"
    # --describe without --topic lists __consumer_offsets too (all topics, several pages).
    r = java_tool(TOPIC_COMMAND, "--bootstrap-server", b, "--describe", "--partition-size-limit-per-response",
                  100, timeout=180)
    assert re.search(r"Topic: __consumer_offsets\s.*PartitionCount: 1\b", r.out), r.describe()[:4000]
    assert len(re.findall(rf"Topic: {re.escape(t)}\s+Partition: \d+", r.out)) == n
    report(f"kafka-topics --describe: {n} partitions over DescribeTopicPartitions pages")


def test_consumer_offsets_is_listed_as_internal(broker):
    kafka = need_module("kafka")
    b = broker.bootstrap
    t = unique_topic("visible")
    create_topic(b, t, 1)
    admin = kafka.KafkaAdminClient(bootstrap_servers=[b])
    try:
        listed = {d.get("topic") or d.get("name"): d for d in admin.describe_topics()}
        assert t in listed
        assert listed["__consumer_offsets"]["is_internal"] is True, listed["__consumer_offsets"]
        assert "__consumer_offsets" in admin.list_topics()
    finally:
        admin.close()
    ck_admin = need_module("confluent_kafka.admin")
    md = ck_admin.AdminClient({"bootstrap.servers": b}).list_topics(timeout=10)
    assert "__consumer_offsets" in md.topics and t in md.topics
    assert len(md.topics["__consumer_offsets"].partitions) == 1
    # Producing to it is refused (INVALID_TOPIC_EXCEPTION), as Kafka refuses appends to internal topics.
    ck = need_module("confluent_kafka")
    errors = []
    p = ck.Producer({"bootstrap.servers": b, "message.timeout.ms": 10000})
    p.produce("__consumer_offsets", b"x", partition=0, on_delivery=lambda err, msg: errors.append(err))
    p.flush(20)
    assert errors and errors[0] is not None and errors[0].code() == ck.KafkaError.TOPIC_EXCEPTION, errors
