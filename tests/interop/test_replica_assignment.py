"""Manual replica assignments and the automatic leader balancer on three real chronik processes
with Apache Kafka's own tool (issue 14, "Leaders"). One cluster for every case, started with
`leaders.imbalance-check-interval = 1s`.

    1 create     `kafka-topics.sh --create --replica-assignment 1:2,2:3,3:1`: Metadata gives those
                 replica lists, and each partition's first replica leads it.
    2 alter      `kafka-topics.sh --alter --partitions 5 --replica-assignment
                 1:2,2:3,3:1,2:1,3:2`: the two new partitions get 2:1 and 3:2 and are led by 2 and 3;
                 the first three are unchanged.
    3 bad input  an unknown broker (1:9) on create and on alter is refused by the broker with
                 Kafka's InvalidReplicaAssignmentException and message; a duplicate (1:1) is refused
                 by the tool itself (Kafka's message). Nothing is created or added.
    4 balancer   node 3 is killed (-9) and restarted: the others lead its partitions meanwhile, and
                 without any command the balancer gives them back to it (every partition led by
                 its preferred replica again).
"""
import time

import pytest

from cluster import Cluster, metadata, wait_led
from helpers import TOPIC_COMMAND, java_tool, report, unique_topic

pytestmark = pytest.mark.chronik_only


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("assign"), env={"CHRONIK_LEADERS__IMBALANCE_CHECK_INTERVAL": "1s"})
    c.start()
    yield c
    c.stop()


def topics(cluster, *args, check=True):
    return java_tool(TOPIC_COMMAND, "--bootstrap-server", cluster.bootstrap, *args, check=check)


def layout(cluster, topic):
    """{partition: (leader, replicas)} from Metadata, or None when the topic does not exist (asks
    for every topic: Metadata v1 naming a topic would create it)."""
    _, _, ts = metadata(cluster[1].bootstrap, None)
    t = ts.get(topic)
    if t is None or t.error != 0:
        return None
    return {p: (pm.leader, pm.replicas) for p, pm in t.partitions.items()}


def wait_layout(cluster, topic, want, timeout=20):
    deadline = time.monotonic() + timeout
    while (got := layout(cluster, topic)) != want:
        assert time.monotonic() < deadline, f"{topic}: {got}, want {want}"
        time.sleep(0.2)
    return got


def test_create_and_alter_with_replica_assignment(cluster):
    topic = unique_topic("assigned")
    topics(cluster, "--create", "--topic", topic, "--replica-assignment", "1:2,2:3,3:1")
    wait_led(cluster[1].bootstrap, topic, 3, timeout=20)
    wait_layout(cluster, topic, {0: (1, [1, 2]), 1: (2, [2, 3]), 2: (3, [3, 1])})

    topics(cluster, "--alter", "--topic", topic, "--partitions", 5,
           "--replica-assignment", "1:2,2:3,3:1,2:1,3:2")
    got = wait_layout(cluster, topic, {0: (1, [1, 2]), 1: (2, [2, 3]), 2: (3, [3, 1]),
                                       3: (2, [2, 1]), 4: (3, [3, 2])})
    report(f"kafka-topics.sh --replica-assignment: {got}")


def test_bad_assignments_are_refused(cluster):
    unknown = "The manual partition assignment includes broker 9, but no such broker is registered."
    topic = unique_topic("bad-assign")
    r = topics(cluster, "--create", "--topic", topic, "--replica-assignment", "1:9", check=False)
    assert r.returncode != 0, r.describe()
    assert "InvalidReplicaAssignmentException" in r.out + r.err and unknown in r.out + r.err, r.describe()
    r = topics(cluster, "--create", "--topic", topic, "--replica-assignment", "1:1", check=False)
    assert r.returncode != 0, r.describe()
    assert "Partition replica lists may not contain duplicate entries: 1" in r.out + r.err, r.describe()
    assert layout(cluster, topic) is None, "nothing was created"

    grown = unique_topic("bad-alter")
    topics(cluster, "--create", "--topic", grown, "--replica-assignment", "1:2")
    wait_led(cluster[1].bootstrap, grown, 1, timeout=20)
    r = topics(cluster, "--alter", "--topic", grown, "--partitions", 2, "--replica-assignment", "1:2,9:1",
               check=False)
    assert r.returncode != 0, r.describe()
    assert "InvalidReplicaAssignmentException" in r.out + r.err and unknown in r.out + r.err, r.describe()
    assert layout(cluster, grown) == {0: (1, [1, 2])}, "no partition was added"


def test_the_balancer_moves_leaders_back_after_a_restart(cluster):
    topic = unique_topic("balance")
    topics(cluster, "--create", "--topic", topic, "--partitions", 6, "--replication-factor", 3)
    wait_led(cluster[1].bootstrap, topic, 6, timeout=20)
    start = layout(cluster, topic)
    assert all(l == r[0] for l, r in start.values()), start
    mine = sorted(p for p, (_, r) in start.items() if r[0] == 3)
    assert mine, start

    cluster[3].kill9()
    deadline = time.monotonic() + 30
    while any(l == 3 for l, _ in layout(cluster, topic).values()):
        assert time.monotonic() < deadline, "node 3's partitions were not taken over"
        time.sleep(0.2)
    cluster[3].start()
    cluster.wait_serving([3])
    t0 = time.monotonic()
    wait_layout(cluster, topic, start, timeout=30)
    report(f"leader balancer: partitions {mine} back on node 3 {time.monotonic() - t0:.1f} s after its restart")
