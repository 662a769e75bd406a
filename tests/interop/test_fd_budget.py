"""The fd budget (issue 15; docs/architecture.md "Open files"): a standalone chronik whose
process may open only 512 descriptors (soft and hard RLIMIT_NOFILE, set before exec) serves 300
partitions, each with several segments. Kept open, their files alone would need 300 x 5 = 1,500
descriptors (.log, .index, .timeindex, raft-vote, raft-commit per partition, 3 more per sealed
segment). Every partition takes acks=all records from librdkafka, every record reads back exactly
once and in order, before and after a restart under the same limit; the process's descriptor count,
sampled throughout, stays under the limit; the cache closed files (its evictions metric) and the
node warned that the limit is below the budget plus `kafka.max-connections`."""
import os
import re
import resource
import threading
import time
import urllib.request

import pytest

from cluster import free_ports
from helpers import SecureBroker, create_topic, need_module, report, unique_topic

LIMIT = 512
PARTITIONS = 300
PER_PARTITION = 40
VALUE = 700  # bytes: 40 x ~0.8 KB per partition over 8 KiB segments: about 4 segments each


def _limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


class FdSampler:
    """Samples /proc/PID/fd of a process every 50 ms until stopped; keeps the largest count."""

    def __init__(self, pid):
        self.pid, self.max, self.samples = pid, 0, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                n = len(os.listdir(f"/proc/{self.pid}/fd"))
            except OSError:
                break
            self.max, self.samples = max(self.max, n), self.samples + 1
            self._stop.wait(0.05)

    def stop(self):
        self._stop.set()
        self._t.join(timeout=5)
        return self.max


def metric(admin, name):
    with urllib.request.urlopen(f"http://{admin}/metrics", timeout=10) as r:
        text = r.read().decode()
    m = re.search(rf'^{name}{{node="1"}} ([0-9.e+]+)$', text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def produce_all(ck, bootstrap, topic):
    acked, failures = {}, []

    def on_delivery(err, m):
        if err is not None:
            failures.append(err)
        else:
            acked.setdefault(m.partition(), []).append((m.offset(), m.value()))

    p = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                     "enable.idempotence": True, "batch.size": 4096,
                     "client.id": "interop-fd-budget"})
    for i in range(PER_PARTITION):
        for part in range(PARTITIONS):
            v = f"{part:03d}-{i:03d}-".encode() + b"x" * VALUE
            p.produce(topic, value=v, partition=part, on_delivery=on_delivery)
        p.poll(0)
    left = p.flush(120)
    assert left == 0, f"{left} records undelivered after flush(120)"
    assert not failures, f"{len(failures)} delivery failures, first: {failures[0]}"
    return {k: sorted(v) for k, v in acked.items()}


def consume_all(ck, bootstrap, topic, expect, timeout=120):
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": f"fd-{topic}-{time.monotonic_ns()}",
                     "enable.auto.commit": False, "client.id": "interop-fd-budget-consumer"})
    got = {}
    total = sum(len(v) for v in expect.values())
    try:
        c.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(PARTITIONS)])
        deadline, n = time.monotonic() + timeout, 0
        while n < total and time.monotonic() < deadline:
            for m in c.consume(num_messages=1000, timeout=1.0):
                if m.error():
                    raise AssertionError(f"consumer error: {m.error()}")
                got.setdefault(m.partition(), []).append((m.offset(), m.value()))
                n += 1
    finally:
        c.close()
    return got


@pytest.mark.chronik_only
def test_300_partitions_under_a_512_descriptor_limit(tmp_path):
    ck = need_module("confluent_kafka")
    kafka_port, admin_port = free_ports(2)
    admin = f"127.0.0.1:{admin_port}"
    b = SecureBroker(tmp_path, {"PLAINTEXT": kafka_port},
                     f'[admin]\nlisten = "{admin}"\n')
    b.preexec_fn = _limit
    b.start()
    try:
        sampler = FdSampler(b.proc.pid)
        topic = unique_topic("fds")
        # Small segments (the test-only topic config), so that reads cross sealed segments.
        create_topic(b.bootstrap("PLAINTEXT"), topic, PARTITIONS, config={"internal.segment.bytes": "8192"},
                     timeout=120)
        acked = produce_all(ck, b.bootstrap("PLAINTEXT"), topic)
        assert sorted(acked) == list(range(PARTITIONS))
        assert all(len(v) == PER_PARTITION for v in acked.values())
        got = consume_all(ck, b.bootstrap("PLAINTEXT"), topic, acked)
        assert got == acked, "records read back differ from the acknowledged ones"
        evictions = metric(admin, "chronik_file_cache_evictions_total")
        capacity = metric(admin, "chronik_file_cache_capacity")
        peak = sampler.stop()
        assert sampler.samples > 10
        assert peak < LIMIT, f"the process held {peak} descriptors (limit {LIMIT})"
        assert capacity == LIMIT // 2, "the default budget is half the soft limit"
        assert evictions > 0, "the cache never closed a file: the test did not exercise the budget"
        segments = sum(1 for _ in tmp_path.glob("data/**/*.log"))
        assert segments * 3 + PARTITIONS * 2 > LIMIT, f"only {segments} segments: kept open they would fit"
        assert "the open files limit is below what the fd budget and the connections may need" in b.log_text()
        report(f"fd budget: {PARTITIONS} partitions, {segments} segments, peak {peak} descriptors of {LIMIT}, "
               f"budget {capacity:.0f}, {evictions:.0f} closes")

        # A restart under the same limit opens every partition through the budget again. The node
        # opens the partitions it hosts before it serves, waiting for them up to 60 s (node.rs);
        # every standalone partition elects itself again, and each election fsyncs its raft-vote
        # and its log: 600 fsyncs, which took longer than the usual 30 s start timeout on a CI
        # disk. So the wait here is the node's own bound plus a margin; the time is printed.
        b.stop()
        t0 = time.monotonic()
        b.start(timeout=90)
        restart_s = time.monotonic() - t0
        sampler = FdSampler(b.proc.pid)
        got = consume_all(ck, b.bootstrap("PLAINTEXT"), topic, acked)
        assert got == acked, "after a restart, records read back differ from the acknowledged ones"
        peak = sampler.stop()
        assert peak < LIMIT, f"after the restart the process held {peak} descriptors (limit {LIMIT})"
        assert b.alive()
        assert "Too many open files" not in b.log_text()
        report(f"fd budget: restart with {PARTITIONS} partitions under the limit serving after {restart_s:.1f} s")
    finally:
        if b.alive():
            b.stop()
