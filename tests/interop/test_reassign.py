"""Partition reassignment on four real chronik processes with Apache Kafka's own tool,
`ReassignPartitionsCommand` (`kafka-reassign-partitions.sh`, issue 14). One cluster start.

    1 move       a partition on 1,2,3 with 1000 records: `--generate` for brokers 2,3,4, `--execute`
                 of the proposed plan, `--verify` until it completes; Metadata shows the proposed
                 replicas, node 1's partition directory is gone, every record is read back exactly
                 once (kcat).
    2 cancel     node 1 is stopped and the partition is moved back onto it: the reassignment stays
                 in progress (`--list`); `--cancel --preserve-throttles` cancels it (Kafka's message) and the replicas go
                 back; a second `--cancel` is answered with Kafka's "None of the specified partition
                 reassignments are active." (the tool lists before it cancels).
    3 bad input  an unknown broker (9) and a replica list with a duplicate ([1,1,2]) are refused by
                 the tool with Kafka's messages; nothing changes.
    4 throttle   `--execute --throttle 100000`: the tool sets `leader/follower.replication.throttled.rate`
                 on every broker involved and the topic's throttled replicas (Kafka's lists:
                 current replicas on the leader side, the new one on the follower side);
                 `kafka-configs.sh --describe` shows them (DYNAMIC_BROKER_CONFIG); the move
                 completes, and the `--verify` that sees it done removes every throttle. (That the
                 rate limits catch-up traffic is checked in-process: tests/throttle.rs.)
"""
import json
import time

import pytest

from cluster import Cluster, metadata, wait_led
from helpers import CONFIG_COMMAND, TOPIC_COMMAND, java_tool, kcat, report, unique_topic

pytestmark = pytest.mark.chronik_only

REASSIGN = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("reassign"), size=4)
    c.start()
    yield c
    c.stop()


def reassign(cluster, *args, check=True):
    return java_tool(REASSIGN, "--bootstrap-server", cluster[2].bootstrap, *args, check=check)


def replicas(cluster, topic, via=2):
    """(leader, replicas) of partition 0 as node `via` answers Metadata."""
    _, _, ts = metadata(cluster[via].bootstrap, None)
    p = ts[topic].partitions[0]
    return p.leader, p.replicas


def plan_file(tmp_path, name, topic, reps):
    f = tmp_path / name
    f.write_text(json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": reps}]}))
    return f


def verify_until_done(cluster, plan, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        r = reassign(cluster, "--verify", "--reassignment-json-file", plan)
        if "is completed" in r.out:
            return r
        assert "still in progress" in r.out, r.describe()
        assert time.monotonic() < deadline, r.describe()
        time.sleep(0.5)


def test_move_cancel_and_bad_input(cluster, tmp_path):
    topic = unique_topic("moved")
    java_tool(TOPIC_COMMAND, "--bootstrap-server", cluster[2].bootstrap, "--create", "--topic", topic,
              "--replica-assignment", "1:2:3")
    wait_led(cluster[2].bootstrap, topic, 1, timeout=20)
    values = [f"m{i}" for i in range(1000)]
    kcat("-b", cluster[2].bootstrap, "-P", "-t", topic, "-p", "0", "-X", "acks=all", input="\n".join(values) + "\n")
    dirs_before = cluster[1].group_dirs()
    assert dirs_before, "node 1 holds the partition"

    # 1. --generate for brokers 2,3,4, then --execute the proposed plan and --verify it.
    move = tmp_path / "move.json"
    move.write_text(json.dumps({"version": 1, "topics": [{"topic": topic}]}))
    r = reassign(cluster, "--generate", "--topics-to-move-json-file", move, "--broker-list", "2,3,4")
    proposed = json.loads(r.out.split("Proposed partition reassignment configuration")[1].strip().splitlines()[0])
    target = proposed["partitions"][0]["replicas"]
    assert sorted(target) == [2, 3, 4], r.out
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(proposed))
    t0 = time.monotonic()
    r = reassign(cluster, "--execute", "--reassignment-json-file", plan)
    assert "Successfully started partition reassignment" in r.out, r.describe()
    verify_until_done(cluster, plan)
    took = time.monotonic() - t0
    deadline = time.monotonic() + 20
    while replicas(cluster, topic)[1] != target or cluster[1].group_dirs() & dirs_before:
        assert time.monotonic() < deadline, (replicas(cluster, topic), cluster[1].group_dirs())
        time.sleep(0.2)
    assert cluster[4].group_dirs(), "node 4 holds the moved replica"
    got = kcat("-b", cluster[3].bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q").out.split()
    assert sorted(got) == sorted(values) and len(got) == len(set(got)), f"{len(got)} records read back"
    report(f"kafka-reassign-partitions.sh: 1000 records on 1,2,3 moved to {target} in {took:.1f} s "
           "(--execute to --verify completed), read back exactly once")

    # 2. Back onto node 1 while it is down: in progress until cancelled.
    cluster[1].stop()
    back = plan_file(tmp_path, "back.json", topic, [1] + target[1:])
    r = reassign(cluster, "--execute", "--reassignment-json-file", back)
    assert "Successfully started partition reassignment" in r.out, r.describe()
    r = reassign(cluster, "--list")
    assert f"{topic}-0" in r.out, r.describe()
    r = reassign(cluster, "--verify", "--reassignment-json-file", back)
    assert "still in progress" in r.out, r.describe()
    # --preserve-throttles: clearing them would address every broker, node 1 too (down).
    r = reassign(cluster, "--cancel", "--preserve-throttles", "--reassignment-json-file", back)
    assert "Successfully cancelled partition reassignment" in r.out, r.describe()
    deadline = time.monotonic() + 20
    while replicas(cluster, topic)[1] != target:
        assert time.monotonic() < deadline, replicas(cluster, topic)
        time.sleep(0.2)
    r = reassign(cluster, "--cancel", "--preserve-throttles", "--reassignment-json-file", back, check=False)
    # The tool lists first and sends nothing for a partition without a reassignment (the broker's
    # own answer, NO_REASSIGNMENT_IN_PROGRESS, is checked in tests/reassign.rs and kafka_api.rs).
    assert "None of the specified partition reassignments are active." in r.out, r.describe()
    cluster[1].start()
    cluster.wait_serving([1])

    # 3. Bad input, refused by the tool with Kafka's messages.
    r = reassign(cluster, "--execute", "--reassignment-json-file",
                 plan_file(tmp_path, "unknown.json", topic, [1, 9, 2]), check=False)
    assert r.returncode != 0 and "Unknown broker id 9" in r.out + r.err, r.describe()
    r = reassign(cluster, "--execute", "--reassignment-json-file",
                 plan_file(tmp_path, "dup.json", topic, [1, 1, 2]), check=False)
    assert r.returncode != 0, r.describe()
    assert "Partition replica lists may not contain duplicate entries" in r.out + r.err, r.describe()
    assert replicas(cluster, topic)[1] == target, "bad input changed nothing"
    assert "No partition reassignments found" in reassign(cluster, "--list").out


def configs(cluster, *entity):
    return java_tool(CONFIG_COMMAND, "--bootstrap-server", cluster[2].bootstrap, "--describe", *entity).out


def test_throttled_move_sets_and_clears_kafkas_throttles(cluster, tmp_path):
    topic = unique_topic("throttled")
    java_tool(TOPIC_COMMAND, "--bootstrap-server", cluster[2].bootstrap, "--create", "--topic", topic,
              "--replica-assignment", "1:2:3")
    wait_led(cluster[2].bootstrap, topic, 1, timeout=20)
    values = [f"t{i}" for i in range(500)]
    kcat("-b", cluster[2].bootstrap, "-P", "-t", topic, "-p", "0", "-X", "acks=all", input="\n".join(values) + "\n")
    plan = plan_file(tmp_path, "throttled.json", topic, [2, 3, 4])
    r = reassign(cluster, "--execute", "--throttle", "100000", "--reassignment-json-file", plan)
    assert "The inter-broker throttle limit was set to 100000 B/s" in r.out, r.describe()
    # The throttles as Kafka's own tool describes them, while (or just after) the move runs.
    broker4 = configs(cluster, "--entity-type", "brokers", "--entity-name", "4")
    assert "leader.replication.throttled.rate=100000" in broker4, broker4
    assert "follower.replication.throttled.rate=100000" in broker4, broker4
    assert "DYNAMIC_BROKER_CONFIG" in broker4, broker4
    t = configs(cluster, "--entity-type", "topics", "--entity-name", topic)
    assert "follower.replication.throttled.replicas=0:4" in t, t
    assert "leader.replication.throttled.replicas=0:1,0:2,0:3" in t, t
    r = verify_until_done(cluster, plan)
    assert "Clearing broker-level throttles on brokers 1,2,3,4" in r.out, r.describe()
    assert f"Clearing topic-level throttles on topic {topic}" in r.out, r.describe()
    assert replicas(cluster, topic)[1] == [2, 3, 4]
    for b in ("1", "4"):
        out = configs(cluster, "--entity-type", "brokers", "--entity-name", b)
        assert "throttled.rate=" not in out, out
    t = configs(cluster, "--entity-type", "topics", "--entity-name", topic)
    assert "throttled.replicas=" not in t, t
    got = kcat("-b", cluster[3].bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q").out.split()
    assert sorted(got) == sorted(values), f"{len(got)} records read back"
    report("kafka-reassign-partitions.sh --throttle 100000: rates and throttled replicas set and described "
           "as Kafka's, removed by --verify once complete")
