"""Consumer groups with real clients: the Java console consumer, ConsumerPerformance and
ConsumerGroupCommand; confluent-kafka rebalancing 3 → 2 members; kcat -G; kafka-python with
commits; committed offsets across kill -9; a member frozen with SIGSTOP past its session timeout.
"""
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import (CONSOLE_CONSUMER, CONSOLE_PRODUCER, CONSUMER_PERFORMANCE, PRODUCER_PERFORMANCE,
                     create_topic, high_watermark, java_tool, kcat, need_module, unique_topic)

CONSUMER_GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
HERE = Path(__file__).resolve().parent
ERROR_LINE = re.compile(r"(^|\s)(ERROR|FATAL)(\s|$)|Exception\b|^\s+at [\w$.]+\(", re.M)


def produce_to_partitions(ck, bootstrap, topic, per_partition, tag="m"):
    """Writes per_partition[p] messages to each partition p; returns {(p, value)}."""
    p = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                     "client.id": "interop-groups-producer"})
    failures, sent = [], set()

    def on_delivery(err, m):
        if err is not None:
            failures.append(err)

    for part, n in enumerate(per_partition):
        for i in range(n):
            v = f"{tag}-{part}-{i}"
            p.produce(topic, value=v.encode(), partition=part, on_delivery=on_delivery)
            sent.add((part, v))
        p.poll(0)
    assert p.flush(60) == 0, "undelivered messages after flush(60)"
    assert not failures, f"delivery failures: {failures[:3]}"
    return sent


# --- Java ---------------------------------------------------------------------------------------
def test_console_consumer_reads_1000_lines(broker):
    b = broker.bootstrap
    t = unique_topic("jgroup")
    create_topic(b, t, 3)
    lines = [f"line-{i:04d} {i * 7919 % 1000003}" for i in range(1000)]
    r = java_tool(CONSOLE_PRODUCER, "--bootstrap-server", b, "--topic", t,
                  input="\n".join(lines) + "\n", timeout=120)
    assert not ERROR_LINE.search(r.out + r.err), r.describe()
    # The console consumer joins its own group console-consumer-NNNNN.
    r = java_tool(CONSOLE_CONSUMER, "--bootstrap-server", b, "--topic", t, "--from-beginning",
                  "--max-messages", 1000, "--timeout-ms", 60000, timeout=180)
    got = r.out.splitlines()
    assert sorted(got) == sorted(lines), f"read {len(got)} lines\n{r.describe()}"
    assert "Processed a total of 1000 messages" in r.err, r.describe()
    assert not ERROR_LINE.search(r.err), r.describe()


PERF_HEADER = "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec"


def test_consumer_performance_reads_100k(broker):
    b = broker.bootstrap
    t = unique_topic("jcperf")
    n = 100_000
    create_topic(b, t, 3)
    r = java_tool(PRODUCER_PERFORMANCE, "--topic", t, "--num-records", n, "--record-size", 1024,
                  "--throughput", -1, "--producer-props", f"bootstrap.servers={b}", "acks=all",
                  timeout=300)
    assert f"{n} records sent" in r.out, r.describe()
    assert sum(high_watermark(b, t, p) for p in range(3)) == n

    group = unique_topic("perf-group")
    r = java_tool(CONSUMER_PERFORMANCE, "--bootstrap-server", b, "--topic", t, "--num-records", n,
                  "--group", group, "--timeout", 30000, timeout=300)
    assert not ERROR_LINE.search(r.out + r.err), r.describe()
    rows = [line for line in r.out.splitlines() if line.strip()]
    header = next(i for i, line in enumerate(rows) if line.startswith("start.time"))
    assert rows[header].startswith(PERF_HEADER), r.describe()
    values = [v.strip() for v in rows[header + 1].split(",")]
    names = [h.strip() for h in rows[header].split(",")]
    stats = dict(zip(names, values))
    consumed = int(stats["data.consumed.in.nMsg"])
    print(f"\nConsumerPerformance: {consumed} records, {float(stats['nMsg.sec']):.0f} msg/s, "
          f"{float(stats['MB.sec']):.2f} MB/s (rebalance {stats.get('rebalance.time.ms')} ms, "
          f"fetch {float(stats.get('fetch.nMsg.sec', 0)):.0f} msg/s, "
          f"{float(stats.get('fetch.MB.sec', 0)):.2f} MB/s)")
    assert consumed >= n, f"ConsumerPerformance consumed {consumed} of {n}\n{r.describe()}"


def describe_rows(bootstrap, group, topic):
    """ConsumerGroupCommand --describe: {partition: (current offset, log end offset, lag, consumer id)}."""
    r = java_tool(CONSUMER_GROUP_COMMAND, "--bootstrap-server", bootstrap, "--describe", "--group", group,
                  timeout=120)
    rows = {}
    for line in r.out.splitlines():
        cols = line.split()
        if len(cols) >= 6 and cols[0] == group and cols[1] == topic:
            rows[int(cols[2])] = (cols[3], cols[4], cols[5], cols[6] if len(cols) > 6 else "-")
    return rows, r


def test_consumer_group_command_describes_offsets_and_lag(broker):
    ck = need_module("confluent_kafka")
    b = broker.bootstrap
    t = unique_topic("jdescribe")
    create_topic(b, t, 3)
    produce_to_partitions(ck, b, t, [10, 20, 30])
    group = unique_topic("describe-group")
    c = ck.Consumer({"bootstrap.servers": b, "group.id": group, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "client.id": "interop-describe"})
    try:
        c.subscribe([t])
        got, deadline = 0, time.monotonic() + 60
        while got < 60 and time.monotonic() < deadline:
            for m in c.consume(num_messages=100, timeout=1.0):
                assert not m.error(), m.error()
                got += 1
        assert got == 60
        # Commit less than everything on partition 2 so there is lag to show.
        c.commit(offsets=[ck.TopicPartition(t, 0, 10), ck.TopicPartition(t, 1, 20),
                          ck.TopicPartition(t, 2, 25)], asynchronous=False)
        rows, r = describe_rows(b, group, t)  # the member is still in the group (Stable)
        print(r.out)
        assert sorted(rows) == [0, 1, 2], r.describe()
        assert [rows[p][:3] for p in range(3)] == [("10", "10", "0"), ("20", "20", "0"), ("25", "30", "5")], \
            r.describe()
        assert all(rows[p][3].startswith("interop-describe") or rows[p][3].startswith("rdkafka")
                   for p in range(3)), f"no consumer id for an active member\n{r.describe()}"
    finally:
        c.close()
    rows, r = describe_rows(b, group, t)  # no members left: offsets and lag only
    print(r.out)
    assert "has no active members" in r.out + r.err, r.describe()
    assert [rows[p][:3] for p in range(3)] == [("10", "10", "0"), ("20", "20", "0"), ("25", "30", "5")], \
        r.describe()


# --- confluent-kafka ----------------------------------------------------------------------------
class Member:
    """A confluent-kafka consumer that records its assignment and what it consumed."""

    def __init__(self, ck, bootstrap, group, topic, name):
        self.name = name
        self.assignment = set()
        self.rebalances = 0
        self.consumed = []  # (partition, offset, value)
        self.c = ck.Consumer({
            "bootstrap.servers": bootstrap, "group.id": group, "client.id": name,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000,
            "partition.assignment.strategy": "range",
        })
        self.c.subscribe([topic], on_assign=self._assigned, on_revoke=self._revoked)

    def _assigned(self, _c, parts):
        self.assignment = {p.partition for p in parts}
        self.rebalances += 1

    def _revoked(self, _c, parts):
        self.assignment = set()

    def poll(self):
        """One poll; commits synchronously what it consumed."""
        msgs = self.c.consume(num_messages=200, timeout=0.2)
        batch = []
        for m in msgs:
            if m.error():
                raise AssertionError(f"{self.name}: consumer error {m.error()}")
            batch.append((m.partition(), m.offset(), m.value().decode()))
        if batch:
            self.consumed.extend(batch)
            self.c.commit(asynchronous=False)
        return len(batch)


def poll_until(members, done, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in members:
            m.poll()
        if done():
            return
    state = {m.name: (sorted(m.assignment), len(m.consumed)) for m in members}
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: {state}")


def test_three_consumers_share_six_partitions_then_two_take_over(broker):
    ck = need_module("confluent_kafka")
    b = broker.bootstrap
    t = unique_topic("ckgroup")
    create_topic(b, t, 6)
    first = produce_to_partitions(ck, b, t, [500] * 6, tag="first")
    group = unique_topic("ck-group")

    t0 = time.monotonic()
    members = [Member(ck, b, group, t, f"interop-member-{i}") for i in range(3)]
    everyone = list(members)
    try:
        poll_until(members, lambda: sorted(len(m.assignment) for m in members) == [2, 2, 2], 60,
                   "3 members with 2 partitions each")
        rebalance_s = time.monotonic() - t0
        print(f"\n3-member rebalance: {rebalance_s:.2f} s from subscribe to 2+2+2 "
              f"(includes the 3 s group.initial.rebalance.delay)")
        assert set().union(*(m.assignment for m in members)) == set(range(6))
        poll_until(members, lambda: sum(len(m.consumed) for m in members) >= len(first), 60,
                   "the first 3000 messages")

        # One member leaves (close sends LeaveGroup); the other two take over its partitions.
        leaver = members.pop()
        t1 = time.monotonic()
        leaver.c.close()
        poll_until(members, lambda: sorted(len(m.assignment) for m in members) == [3, 3], 60,
                   "2 members with 3 partitions each")
        print(f"2-member rebalance after a leave: {time.monotonic() - t1:.2f} s")
        assert set().union(*(m.assignment for m in members)) == set(range(6))

        second = produce_to_partitions(ck, b, t, [500] * 6, tag="second")
        everything = first | second
        poll_until(members, lambda: {(p, v) for m in everyone for p, _, v in m.consumed} >= everything, 60,
                   "all 6000 messages")
        for _ in range(10):  # nothing more arrives: no redelivery of committed messages
            for m in members:
                m.poll()
    finally:
        for m in members:
            m.c.close()
    consumed = [(p, o) for m in everyone for p, o, _ in m.consumed]
    assert len(consumed) == len(set(consumed)) == len(everything), \
        f"{len(consumed)} consumed, {len(set(consumed))} distinct, {len(everything)} produced"


# --- kcat and kafka-python ----------------------------------------------------------------------
def test_kcat_balanced_group_consume(broker):
    ck = need_module("confluent_kafka")
    b = broker.bootstrap
    t = unique_topic("kcatgroup")
    create_topic(b, t, 4)
    sent = produce_to_partitions(ck, b, t, [50] * 4)
    group = unique_topic("kcat-group")
    # Two balanced consumers start together: each gets two partitions and reads them to the end.
    cmd = ["kcat", "-b", b, "-G", group, "-o", "beginning", "-e", "-q", "-f", "%p %s\\n",
           "-X", "session.timeout.ms=10000", t]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
             for _ in range(2)]
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=90)
            outs.append((p.returncode, out.decode(), err.decode()))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for rc, out, err in outs:
        assert rc == 0, f"kcat exit {rc}\n{err[-3000:]}"
    got = [tuple(line.split(" ", 1)) for _, out, _ in outs for line in out.splitlines()]
    got = [(int(p), v) for p, v in got]
    assert set(got) == sent, f"{len(set(got))} distinct of {len(sent)}"
    per_member = [len(out.splitlines()) for _, out, _ in outs]
    print(f"\nkcat -G: messages per member {per_member}")
    assert all(n > 0 for n in per_member), "the group was not balanced"
    # The group committed where it stopped.
    c = ck.Consumer({"bootstrap.servers": b, "group.id": group})
    try:
        committed = c.committed([ck.TopicPartition(t, p) for p in range(4)], timeout=10)
        assert [tp.offset for tp in committed] == [50] * 4
    finally:
        c.close()


def test_kafka_python_group_consumer_with_commits(broker):
    kafka = need_module("kafka")
    ck = need_module("confluent_kafka")
    b = broker.bootstrap
    t = unique_topic("kpygroup")
    create_topic(b, t, 2)
    produce_to_partitions(ck, b, t, [100, 100], tag="a")
    group = unique_topic("kpy-group")

    def consumer():
        return kafka.KafkaConsumer(t, bootstrap_servers=[b], group_id=group, enable_auto_commit=False,
                                   auto_offset_reset="earliest", client_id="interop-kafka-python-group",
                                   session_timeout_ms=10000, heartbeat_interval_ms=1000)

    def drain(c, want):
        got, deadline = [], time.monotonic() + 60
        while len(got) < want and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                got.extend((r.partition, r.offset, r.value.decode()) for r in recs)
            c.commit()
        return got

    c = consumer()
    try:
        got = drain(c, 200)
        assert len(got) == 200 and len(set(got)) == 200, f"read {len(got)}"
        tps = [kafka.TopicPartition(t, p) for p in range(2)]
        assert [c.committed(tp) for tp in tps] == [100, 100]
    finally:
        c.close()
    more = produce_to_partitions(ck, b, t, [5, 5], tag="b")
    c = consumer()
    try:
        got = drain(c, 10)
        assert {(p, v) for p, _, v in got} == more, "the new member resumes from the committed offsets"
        assert all(o >= 100 for _, o, _ in got)
    finally:
        c.close()


# --- restart and session expiry -----------------------------------------------------------------
@pytest.mark.chronik_only
def test_committed_offsets_survive_kill9_and_consumption_resumes(broker):
    ck = need_module("confluent_kafka")
    b = broker.bootstrap
    t = unique_topic("restartgroup")
    create_topic(b, t, 2)
    produce_to_partitions(ck, b, t, [100, 100], tag="before")
    group = unique_topic("restart-group")
    m = Member(ck, b, group, t, "interop-restart")
    try:
        poll_until([m], lambda: len(m.consumed) >= 200, 60, "200 messages")
        committed = m.c.committed([ck.TopicPartition(t, p) for p in range(2)], timeout=10)
        assert [tp.offset for tp in committed] == [100, 100]

        broker.kill9()
        broker.restart()

        check = ck.Consumer({"bootstrap.servers": b, "group.id": group})
        try:
            committed = check.committed([ck.TopicPartition(t, p) for p in range(2)], timeout=30)
            assert [tp.offset for tp in committed] == [100, 100], "committed offsets after kill -9"
        finally:
            check.close()

        # The same consumer keeps running: it rejoins the group and resumes after its commits.
        after = produce_to_partitions(ck, b, t, [20, 20], tag="after")
        poll_until([m], lambda: {(p, v) for p, _, v in m.consumed} >= after, 90, "messages after the restart")
        offsets = [(p, o) for p, o, _ in m.consumed]
        assert len(offsets) == len(set(offsets)) == 240, "nothing consumed twice, nothing lost"
    finally:
        m.c.close()


class MemberProcess:
    """group_member.py in a child process; its JSON events are read by a thread."""

    def __init__(self, bootstrap, group, topic, session_ms):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "group_member.py"), bootstrap, group, topic, str(session_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.events = queue.Queue()
        self.assignment = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                pass

    def drain(self):
        while True:
            try:
                e = self.events.get_nowait()
            except queue.Empty:
                return
            if e["event"] == "assigned":
                self.assignment = e["partitions"]
            elif e["event"] == "revoked":
                self.assignment = []

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGCONT)
                self.proc.stdin.close()
                self.proc.wait(timeout=15)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait(timeout=10)


def wait_assignments(procs, want, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            p.drain()
        if want([p.assignment for p in procs]):
            return time.monotonic()
        time.sleep(0.1)
    err = [p.proc.stderr.read1(4000).decode(errors="replace") if p.proc.poll() is not None else "" for p in procs]
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: {[p.assignment for p in procs]} {err}")


def test_frozen_member_is_removed_after_its_session_timeout_and_rejoins(broker):
    ck = need_module("confluent_kafka")
    b = broker.bootstrap
    t = unique_topic("sigstop")
    create_topic(b, t, 4)
    produce_to_partitions(ck, b, t, [10] * 4)
    group = unique_topic("sigstop-group")
    session_ms = 6000
    a = MemberProcess(b, group, t, session_ms)
    z = MemberProcess(b, group, t, session_ms)
    try:
        wait_assignments([a, z], lambda s: all(x is not None and len(x) == 2 for x in s), 60,
                         "2 partitions each")
        os.kill(z.proc.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        done = wait_assignments([a], lambda s: s[0] is not None and len(s[0]) == 4, 60,
                                "the live member to take all 4 partitions")
        took = done - stopped
        print(f"\nfrozen member removed and its partitions reassigned after {took:.1f} s "
              f"(session timeout {session_ms / 1000:.0f} s)")
        assert took >= session_ms / 1000 - 1, "reassigned before the session timeout"
        os.kill(z.proc.pid, signal.SIGCONT)
        wait_assignments([a, z], lambda s: all(x is not None and len(x) == 2 for x in s), 60,
                         "the thawed member to rejoin (2 partitions each)")
    finally:
        a.stop()
        z.stop()
