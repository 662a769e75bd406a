"""kafka-python 3.x (pure Python): idempotent producer (its default), assign-only consumer."""
import time

from helpers import create_topic, need_module, unique_topic

N = 1000


def test_idempotent_producer_and_assigned_consumer(broker):
    kafka = need_module("kafka")
    b = broker.bootstrap
    t = unique_topic("kpy")
    create_topic(b, t, 1)

    producer = kafka.KafkaProducer(bootstrap_servers=[b], client_id="interop-kafka-python-producer",
                                   acks="all", request_timeout_ms=30000)
    try:
        assert producer.config["enable_idempotence"], "kafka-python 3 should default to idempotence"
        futures = [producer.send(t, key=f"k{i:04d}".encode(), value=f"message {i}".encode(), partition=0)
                   for i in range(N)]
        producer.flush(timeout=60)
        offsets = [f.get(timeout=30).offset for f in futures]
    finally:
        producer.close(timeout=10)
    assert offsets == list(range(N))

    consumer = kafka.KafkaConsumer(bootstrap_servers=[b], group_id=None, enable_auto_commit=False,
                                   client_id="interop-kafka-python-consumer",
                                   consumer_timeout_ms=2000)
    got = []
    try:
        tp = kafka.TopicPartition(t, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + 60
        while len(got) < N and time.monotonic() < deadline:
            for recs in consumer.poll(timeout_ms=1000, max_records=500).values():
                got.extend((r.offset, r.key, r.value) for r in recs)
    finally:
        consumer.close()
    assert len(got) == N, f"consumed {len(got)} of {N}"
    assert got == [(i, f"k{i:04d}".encode(), f"message {i}".encode()) for i in range(N)]
