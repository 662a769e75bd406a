"""The Apache Kafka 4.x Java command-line tools against the broker."""
import re
import time

from helpers import (CONSOLE_PRODUCER, PRODUCER_PERFORMANCE, TOPIC_COMMAND, create_topic,
                     high_watermark, java_tool, kcat, report, unique_topic, wait_topic_ready)

# A log line at ERROR level, an exception name, or a Java stack frame.
ERROR_LINE = re.compile(r"(^|\s)(ERROR|FATAL)(\s|$)|Exception\b|^\s+at [\w$.]+\(", re.M)


def topic_list(bootstrap):
    r = java_tool(TOPIC_COMMAND, "--bootstrap-server", bootstrap, "--list", timeout=60)
    return set(r.out.split())


def test_topic_command_create_describe_list_delete(broker):
    b = broker.bootstrap
    t = unique_topic("jtopic")
    r = java_tool(TOPIC_COMMAND, "--bootstrap-server", b, "--create", "--topic", t,
                  "--partitions", 3, "--replication-factor", 1, timeout=60)
    assert f"Created topic {t}." in r.out, r.describe()
    wait_topic_ready(b, t, 3)

    r = java_tool(TOPIC_COMMAND, "--bootstrap-server", b, "--describe", "--topic", t, timeout=60)
    print(r.out)
    assert re.search(rf"Topic: {re.escape(t)}\s.*PartitionCount: 3\b", r.out), r.describe()
    parts = re.findall(rf"Topic: {re.escape(t)}\s+Partition: (\d+)\s+Leader: (-?\d+)\s+Replicas: ([\d,]+)", r.out)
    assert sorted(int(p) for p, _, _ in parts) == [0, 1, 2], r.describe()
    for p, leader, replicas in parts:
        assert int(leader) >= 0, f"partition {p} has no leader\n{r.describe()}"
        assert leader in replicas.split(","), f"partition {p}: leader {leader} not in replicas {replicas}"

    assert t in topic_list(b)

    r = java_tool(TOPIC_COMMAND, "--bootstrap-server", b, "--delete", "--topic", t, timeout=60)
    assert not ERROR_LINE.search(r.out + r.err), r.describe()
    for _ in range(30):  # bounded: ~30 s at most
        if t not in topic_list(b):
            break
        time.sleep(1)
    else:
        raise AssertionError(f"topic {t} still listed 30 s after --delete")


def test_console_producer_1000_lines_read_back_with_kcat(broker):
    b = broker.bootstrap
    t = unique_topic("jconsole")
    create_topic(b, t, 1)
    lines = [f"line-{i:04d} the quick brown fox {i * 7919 % 1000003}" for i in range(1000)]
    r = java_tool(CONSOLE_PRODUCER, "--bootstrap-server", b, "--topic", t,
                  input="\n".join(lines) + "\n", timeout=120)
    assert not ERROR_LINE.search(r.out + r.err), r.describe()

    r = kcat("-b", b, "-C", "-t", t, "-p", 0, "-o", "beginning", "-e", "-q", "-f", "%s\\n", timeout=60)
    got = r.out.splitlines()
    assert len(got) == len(lines), f"read {len(got)} lines, produced {len(lines)}"
    assert got == lines
    assert high_watermark(b, t) == 1000


PERF_LINE = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def test_producer_performance_100k_acks_all(broker):
    b = broker.bootstrap
    t = unique_topic("jperf")
    n = 100_000
    create_topic(b, t, 1)
    # defaults otherwise: enable.idempotence=true, linger.ms=5, batch.size=16384
    r = java_tool(PRODUCER_PERFORMANCE, "--topic", t, "--num-records", n, "--record-size", 1024,
                  "--throughput", -1, "--producer-props", f"bootstrap.servers={b}", "acks=all",
                  timeout=300)
    final = [m for m in PERF_LINE.finditer(r.out) if int(m.group(1)) == n]
    assert final, f"no '{n} records sent' summary line\n{r.describe()}"
    bad = ERROR_LINE.search(r.out + r.err)
    assert not bad, f"error output: {bad.group(0)!r}\n{r.describe()}"
    m = final[-1]
    report(f"ProducerPerformance (1 KiB, acks=all, idempotent): {m.group(1)} records, "
           f"{float(m.group(2)):.0f} msg/s, {float(m.group(3)):.2f} MB/s, avg {m.group(4)} ms, "
           f"p50 {m.group(6)} ms, p99 {m.group(8)} ms, max {m.group(5)} ms")

    assert high_watermark(b, t) == n
    # Fetch them all back: every offset 0..n-1 exactly once, each value 1024 bytes.
    r = kcat("-b", b, "-C", "-t", t, "-p", 0, "-o", "beginning", "-e", "-q", "-f", "%o %S\\n",
             timeout=180)
    rows = r.out.splitlines()
    assert len(rows) == n, f"kcat read {len(rows)} records, expected {n}"
    assert [int(x.split()[0]) for x in rows] == list(range(n))
    assert all(x.split()[1] == "1024" for x in rows)
