"""Cluster membership on real chronik processes with Apache Kafka's own tools (issue 14). One
cluster: three seeds, then node 4 started with `--join` (no `--peers`).

    1 join          node 4 joins through node 1's Raft port: Metadata on every node lists brokers
                    1-4 (kcat -L), `kafka-metadata-quorum.sh describe --replication` shows 1, 2, 3
                    voting and 4 as an observer (a `__meta` learner).
    2 move          `kafka-reassign-partitions.sh --execute` moves a partition of 1,2,3 (1000
                    records) to 2,3,4; `--verify` completes; node 4 holds the replica.
    3 refusals      `chronik-server cluster remove-node` of an unknown node and `add-node` of a
                    known id at another address exit non-zero with a clear message; nothing
                    changes.
    4 decommission  `chronik-server cluster decommission --node-id 1` moves a second topic's
                    partition (1,2,3; 500 records) off node 1 and removes it: Metadata lists
                    brokers 2-4, the quorum is 2, 3, 4 (the learner was promoted), and every
                    record of both topics is read back exactly once.
"""
import json
import subprocess
import time

import pytest

from cluster import Cluster, chronik_bin, metadata, wait_led
from helpers import TOPIC_COMMAND, java_tool, kcat, report, unique_topic

pytestmark = pytest.mark.chronik_only

REASSIGN = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
METADATA_QUORUM = "org.apache.kafka.tools.MetadataQuorumCommand"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("membership"), size=4)
    c.peers = ",".join(f"{n.id}@127.0.0.1:{n.raft_port}" for n in (c[1], c[2], c[3]))
    c[4].join = f"127.0.0.1:{c[1].raft_port}"
    c.start(order=[1, 2, 3])
    yield c
    c.stop()


def cli(*args):
    """`chronik-server cluster ...`: the completed process."""
    return subprocess.run([str(chronik_bin()), "cluster", *map(str, args)], capture_output=True, text=True,
                          timeout=180)


def quorum(cluster, via):
    """{node id: status} of `kafka-metadata-quorum.sh describe --replication`."""
    r = java_tool(METADATA_QUORUM, "--bootstrap-server", cluster[via].bootstrap, "describe", "--replication")
    rows = [line.split() for line in r.out.splitlines()[1:] if line.strip()]
    return {int(row[0]): row[-1] for row in rows}


def wait_for(what, check, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last is True:
            return
        assert time.monotonic() < deadline, f"{what}: {last}"
        time.sleep(0.3)


def kcat_brokers(bootstrap):
    out = kcat("-b", bootstrap, "-L").out
    return sorted(int(line.split()[1].split(":")[0]) for line in out.splitlines()
                  if line.strip().startswith("broker ") and " at " in line)


def read_all(bootstrap, topic):
    return kcat("-b", bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q").out.split()


def test_join_move_and_decommission(cluster, tmp_path):
    a = unique_topic("joined")
    java_tool(TOPIC_COMMAND, "--bootstrap-server", cluster[2].bootstrap, "--create", "--topic", a,
              "--replica-assignment", "1:2:3")
    wait_led(cluster[2].bootstrap, a, 1, timeout=20)
    a_values = [f"a{i}" for i in range(1000)]
    kcat("-b", cluster[2].bootstrap, "-P", "-t", a, "-p", "0", "-X", "acks=all", input="\n".join(a_values) + "\n")

    # 1. Node 4 joins.
    t0 = time.monotonic()
    cluster.start(order=[4])
    joined = time.monotonic() - t0
    for i in (1, 2, 3, 4):
        wait_for(f"node {i} lists 4 brokers", lambda i=i: kcat_brokers(cluster[i].bootstrap) == [1, 2, 3, 4]
                 or kcat_brokers(cluster[i].bootstrap))
    wait_for("node 4 is a __meta observer",
             lambda: quorum(cluster, 2) in ({1: "Leader", 2: "Follower", 3: "Follower", 4: "Observer"},
                                            {1: "Follower", 2: "Leader", 3: "Follower", 4: "Observer"},
                                            {1: "Follower", 2: "Follower", 3: "Leader", 4: "Observer"})
             or quorum(cluster, 2))
    report(f"--join: node 4 serving {joined:.1f} s after its start; __meta voters 1,2,3, observer 4")

    # 2. kafka-reassign-partitions.sh moves topic a to 2,3,4.
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": a, "partition": 0, "replicas": [2, 3, 4]}]}))
    r = java_tool(REASSIGN, "--bootstrap-server", cluster[2].bootstrap, "--execute", "--reassignment-json-file", plan)
    assert "Successfully started partition reassignment" in r.out, r.describe()

    def verified():
        r = java_tool(REASSIGN, "--bootstrap-server", cluster[2].bootstrap, "--verify", "--reassignment-json-file",
                      plan)
        return "is completed" in r.out or r.out
    wait_for("reassignment to 2,3,4", verified, timeout=60)
    assert cluster[4].group_dirs(), "node 4 holds the moved replica"

    # 3. Refusals: a clear message, a non-zero exit, nothing changed.
    r = cli("remove-node", "--admin", cluster[2].admin, "--node-id", 9)
    assert r.returncode != 0 and "not a member" in r.stderr, (r.returncode, r.stdout, r.stderr)
    r = cli("add-node", "--admin", cluster[2].admin, "--node-id", 2, "--raft-addr", "127.0.0.1:1")
    assert r.returncode != 0 and "already" in r.stderr, (r.returncode, r.stdout, r.stderr)
    assert kcat_brokers(cluster[2].bootstrap) == [1, 2, 3, 4]

    # 4. Decommission node 1 while it holds topic b.
    b = unique_topic("drained")
    java_tool(TOPIC_COMMAND, "--bootstrap-server", cluster[2].bootstrap, "--create", "--topic", b,
              "--replica-assignment", "1:2:3")
    wait_led(cluster[2].bootstrap, b, 1, timeout=20)
    b_values = [f"b{i}" for i in range(500)]
    kcat("-b", cluster[2].bootstrap, "-P", "-t", b, "-p", "0", "-X", "acks=all", input="\n".join(b_values) + "\n")
    t0 = time.monotonic()
    r = cli("decommission", "--admin", cluster[1].admin, "--node-id", 1, "--timeout-secs", 60)
    assert r.returncode == 0, (r.stdout, r.stderr)
    took = time.monotonic() - t0
    assert json.loads(r.stdout)["reassigned"] == 1, r.stdout
    _, _, topics = metadata(cluster[2].bootstrap, [b])
    assert 1 not in topics[b].partitions[0].replicas and len(topics[b].partitions[0].replicas) == 3, topics[b]
    wait_for("brokers 2-4", lambda: kcat_brokers(cluster[3].bootstrap) == [2, 3, 4] or kcat_brokers(cluster[3].bootstrap))
    wait_for("__meta voters 2,3,4",
             lambda: sorted(k for k, v in quorum(cluster, 3).items() if v in ("Leader", "Follower")) == [2, 3, 4]
             or quorum(cluster, 3))
    cluster[1].stop()
    for topic, values in ((a, a_values), (b, b_values)):
        got = read_all(cluster[3].bootstrap, topic)
        assert sorted(got) == sorted(values) and len(got) == len(set(got)), f"{topic}: {len(got)} records read back"
    report(f"cluster decommission: node 1's partition moved and node 1 left __meta in {took:.1f} s; "
           "1500 records read back exactly once")
