"""Client quotas with the real Apache Kafka 4.4 tools: `kafka-configs.sh`
(org.apache.kafka.tools.ConfigCommand) sets `producer_byte_rate` for a client id and reads quotas
back (AlterClientQuotas / DescribeClientQuotas), and the Java producer with that client id is
held to the rate: 2 MB at 100 KB/s cannot finish in less than ~19 s (one second of burst); the
test asserts a generous lower bound (10 s) and a rate at most twice the quota. That is the
correctness of throttling, not a speed claim.
"""
import re
import time

from helpers import PRODUCER_PERFORMANCE, create_topic, java_tool, report, unique_topic

CONFIG_COMMAND = "org.apache.kafka.tools.ConfigCommand"
PERF_SUMMARY = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)")


def configs(b, *args, check=True):
    return java_tool(CONFIG_COMMAND, "--bootstrap-server", b, *args, timeout=90, check=check)


def test_kafka_configs_quotas_bound_a_producer(broker):
    b = broker.bootstrap
    t = unique_topic("quota")
    create_topic(b, t, 1)
    rate = 100 * 1024
    configs(b, "--alter", "--entity-type", "clients", "--entity-name", "qclient",
            "--add-config", f"producer_byte_rate={rate}")
    configs(b, "--alter", "--entity-type", "users", "--entity-name", "alice",
            "--add-config", "consumer_byte_rate=2048,request_percentage=50")
    r = configs(b, "--describe", "--entity-type", "clients", "--entity-name", "qclient")
    assert f"producer_byte_rate={rate}" in r.out.replace(".0", ""), r.describe()
    # Describing a user also asks DescribeUserScramCredentials, which the `tls` branch serves; the
    # quota part is printed first either way.
    r = configs(b, "--describe", "--entity-type", "users", "--entity-name", "alice", check=False)
    assert "consumer_byte_rate=2048" in r.out.replace(".0", ""), r.describe()
    assert "request_percentage=50" in r.out.replace(".0", ""), r.describe()

    n, size = 2048, 1024  # 2 MiB
    started = time.monotonic()
    r = java_tool(PRODUCER_PERFORMANCE, "--topic", t, "--num-records", n, "--record-size", size,
                  "--throughput", -1, "--producer-props", f"bootstrap.servers={b}", "acks=all",
                  "client.id=qclient", timeout=240)
    took = time.monotonic() - started
    final = [m for m in PERF_SUMMARY.finditer(r.out) if int(m.group(1)) == n]
    assert final, f"no '{n} records sent' summary\n{r.describe()}"
    mb_per_s = float(final[-1].group(3))
    report(f"producer_byte_rate={rate} B/s: {n * size} B took {took:.1f} s "
           f"(ProducerPerformance says {mb_per_s} MB/s)")
    assert took > 10, f"2 MiB at 100 KiB/s finished in {took:.1f} s: not throttled\n{r.describe()}"
    assert mb_per_s * 1024 * 1024 <= 2 * rate, f"rate {mb_per_s} MB/s above twice the quota"

    # --delete-config removes the value (AlterClientQuotas remove).
    configs(b, "--alter", "--entity-type", "clients", "--entity-name", "qclient",
            "--delete-config", "producer_byte_rate")
    r = configs(b, "--describe", "--entity-type", "clients", "--entity-name", "qclient")
    assert "producer_byte_rate" not in r.out, r.describe()
