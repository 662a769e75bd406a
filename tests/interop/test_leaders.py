"""Leaders on three real chronik processes with Apache Kafka's own tool (issue 14, "Leaders").

    1 preferred election  a 6-partition RF 3 topic starts with every preferred replica leading;
                          `kafka-leader-election.sh --election-type preferred --all-topic-partitions`
                          then elects nothing. Node 3 is killed
                          (-9) and restarted: the others lead its partitions. The same command moves
                          them back: every partition is led by its preferred replica again, and
                          `--topic T --partition P` on a led partition is a no-op.
    2 bad input           an unknown topic and a partition that does not exist fail the command with
                          UnknownTopicOrPartitionException; UNCLEAN on a led partition is a no-op
                          (Raft never elects an unclean leader).
    3 log dirs            `kafka-log-dirs.sh --describe` (LogDirsCommand): its JSON lists one log dir
                          per broker, every replica of a topic with data on each of the 3 brokers with
                          a size > 0 and offset lag 0, and nothing for a topic the command was not
                          asked about.
    4 metadata quorum     `kafka-metadata-quorum.sh describe --status` (MetadataQuorumCommand) names the
                          __meta leader (the controller id of Metadata), its epoch and high watermark
                          and voters 1-3; `describe --replication` lists the three voters with the
                          leader's log end offset > 0.
"""
import json
import time

import pytest

from cluster import Cluster, metadata, wait_led
from helpers import CONSOLE_PRODUCER, TOPIC_COMMAND, java_tool, report, unique_topic

pytestmark = pytest.mark.chronik_only

LEADER_ELECTION = "org.apache.kafka.tools.LeaderElectionCommand"
LOG_DIRS = "org.apache.kafka.tools.LogDirsCommand"
METADATA_QUORUM = "org.apache.kafka.tools.MetadataQuorumCommand"
PARTITIONS = 6


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("leaders"))
    c.start()
    yield c
    c.stop()


def leaders_and_preferred(bootstrap, topic):
    _, _, topics = metadata(bootstrap, [topic])
    return {p: (pm.leader, pm.replicas[0]) for p, pm in topics[topic].partitions.items()}


def elect(cluster, *args, check=True):
    return java_tool(LEADER_ELECTION, "--bootstrap-server", cluster.bootstrap, *args, check=check)


def create_led(cluster, topic, partitions):
    """Creates `topic` with RF 3 (TopicCommand) and waits until every partition has a leader."""
    java_tool(TOPIC_COMMAND, "--bootstrap-server", cluster.bootstrap, "--create", "--topic", topic,
              "--partitions", partitions, "--replication-factor", 3)
    wait_led(cluster[1].bootstrap, topic, partitions, timeout=20)


def test_preferred_election_moves_leaders_back(cluster):
    topic = unique_topic("elect")
    create_led(cluster, topic, PARTITIONS)
    start = leaders_and_preferred(cluster[1].bootstrap, topic)
    assert all(l == p for l, p in start.values()), f"first leaders are the preferred replicas: {start}"

    r = elect(cluster, "--election-type", "preferred", "--all-topic-partitions")
    # Every partition already led by its preferred replica: Kafka leaves them out of an
    # all-partitions answer, so the tool reports no election.
    assert r.returncode == 0 and "Successfully completed" not in r.out, r.describe()
    assert leaders_and_preferred(cluster[1].bootstrap, topic) == start, "a balanced cluster moved a leader"

    cluster[3].kill9()
    deadline = time.monotonic() + 30
    while any(l == 3 for l, _ in leaders_and_preferred(cluster[1].bootstrap, topic).values()):
        assert time.monotonic() < deadline, "node 3's partitions were not taken over"
        time.sleep(0.2)
    cluster[3].start()
    cluster.wait_serving([3])
    moved = sorted(p for p, (_, pref) in start.items() if pref == 3)
    assert moved, f"node 3 was some partition's preferred replica: {start}"

    r = elect(cluster, "--election-type", "preferred", "--all-topic-partitions")
    assert "Successfully completed leader election (PREFERRED)" in r.out, r.describe()
    for p in moved:
        assert f"{topic}-{p}" in r.out, r.describe()
    after = leaders_and_preferred(cluster[1].bootstrap, topic)
    assert all(l == pref for l, pref in after.values()), f"preferred replicas lead again: {after}"
    report(f"preferred election: partitions {moved} moved back to node 3")

    r = elect(cluster, "--election-type", "preferred", "--topic", topic, "--partition", 0)
    assert "Valid replica already elected" in r.out, r.describe()
    assert leaders_and_preferred(cluster[1].bootstrap, topic) == after


def test_bad_input(cluster):
    topic = unique_topic("elect-bad")
    create_led(cluster, topic, 1)
    before = leaders_and_preferred(cluster[1].bootstrap, topic)
    for t, p in (("no-such-topic", 0), (topic, 9)):
        r = elect(cluster, "--election-type", "preferred", "--topic", t, "--partition", p, check=False)
        assert r.returncode != 0, r.describe()
        assert "UnknownTopicOrPartition" in r.out + r.err, r.describe()
    r = elect(cluster, "--election-type", "unclean", "--topic", topic, "--partition", 0)
    assert "Valid replica already elected" in r.out, r.describe()
    assert leaders_and_preferred(cluster[1].bootstrap, topic) == before


def test_log_dirs_describe(cluster):
    topic = unique_topic("logdirs")
    create_led(cluster, topic, 2)
    # 200 distinct keys: both partitions get records.
    lines = "".join(f"key{i}:value {i}\n" for i in range(200))
    java_tool(CONSOLE_PRODUCER, "--bootstrap-server", cluster.bootstrap, "--topic", topic,
              "--producer-property", "acks=all", "--property", "parse.key=true",
              "--property", "key.separator=:", input=lines.encode())
    deadline = time.monotonic() + 20
    while True:
        r = java_tool(LOG_DIRS, "--bootstrap-server", cluster.bootstrap, "--describe", "--topic-list", topic)
        doc = json.loads(next(line for line in r.out.splitlines() if line.startswith("{")))
        sizes = {}
        for b in doc["brokers"]:
            assert len(b["logDirs"]) == 1, f"one log dir per broker: {b}"
            d = b["logDirs"][0]
            assert d["error"] is None, d
            for p in d["partitions"]:
                assert p["partition"].startswith(topic + "-"), f"only the asked topic: {p}"
                assert p["offsetLag"] == 0 and p["isFuture"] is False, p
                sizes[(b["broker"], p["partition"])] = p["size"]
        want = {(b, f"{topic}-{p}") for b in (1, 2, 3) for p in (0, 1)}
        if set(sizes) == want and all(s > 0 for s in sizes.values()):
            break
        assert time.monotonic() < deadline, f"every replica with data has a size > 0: {sizes}\n{r.out}"
        time.sleep(0.5)
    report(f"kafka-log-dirs.sh: replica sizes {sorted(sizes.items())}")


def test_metadata_quorum(cluster):
    _, controller, _ = metadata(cluster[1].bootstrap, [])
    r = java_tool(METADATA_QUORUM, "--bootstrap-server", cluster.bootstrap, "describe", "--status")
    fields = dict(line.split(":", 1) for line in r.out.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    assert fields.get("LeaderId") == str(controller), r.describe()
    assert int(fields["LeaderEpoch"]) >= 1 and int(fields["HighWatermark"]) > 0, r.describe()
    assert all(f'"id": {i}' in fields.get("CurrentVoters", "") or f'"id":{i}' in fields.get("CurrentVoters", "")
               for i in (1, 2, 3)), r.describe()
    r = java_tool(METADATA_QUORUM, "--bootstrap-server", cluster.bootstrap, "describe", "--replication")
    rows = [line.split() for line in r.out.splitlines()[1:] if line.strip()]
    assert sorted(int(row[0]) for row in rows) == [1, 2, 3], r.describe()
    leader_row = next(row for row in rows if row[-1] == "Leader")
    assert int(leader_row[0]) == controller and int(leader_row[2]) > 0, r.describe()
    report(f"kafka-metadata-quorum.sh: leader {controller}, {len(rows)} voters")
