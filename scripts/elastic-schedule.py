#!/usr/bin/env python3
"""The elastic-cluster schedule of issue 14 on real chronik processes (not part of CI: its figures go
in the notes). Loopback, the launcher of tests/interop/cluster.py, Apache Kafka's own tools.

While the fault checker's idempotent acks=all producer (tests/interop/fault_checker.py `Workload`)
writes sequence-numbered records to every partition of a 6-partition RF 3 topic:
  1. start nodes 1, 2, 3 (the seeds);
  2. nodes 4 and 5 join (`--join` node 1's Raft port);
  3. half of the partitions (0, 1, 2) move onto 4 and 5 with `kafka-reassign-partitions.sh`;
  4. a preferred leader election of every partition (`kafka-leader-election.sh`);
  5. node 1 is decommissioned (`chronik-server cluster decommission`) and stopped;
  6. node 2 is killed (-9), node 6 joins (through node 3), and `chronik-server cluster remove-node` replaces node 2's
     replicas on the live nodes.
At the end: every acknowledged record is read back exactly once, in order, from every partition
(the fault checker's checks); the longest time any partition went without an acknowledgement at
each step (the issue asks at most 2 election timeouts: 6 s at the default 3 s); the replicas'
`cluster status` checksums are equal. Exit status 0 only if every check passed.

    .deps/venv/bin/python scripts/elastic-schedule.py [--rate 200]
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "interop"))

import confluent_kafka as ck  # noqa: E402
from cluster import Cluster, chronik_bin, cluster_status, metadata, status_groups, wait_led  # noqa: E402
from fault_checker import Workload, check, read_back  # noqa: E402
from helpers import TOPIC_COMMAND, java_tool  # noqa: E402

REASSIGN = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
ELECT = "org.apache.kafka.tools.LeaderElectionCommand"
TOPIC = "elastic"
PARTITIONS = 6


def log(msg):
    print(f"[elastic {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class TimedWorkload(Workload):
    """The fault checker's producer, also noting when each partition was last acknowledged and the
    longest gap between acknowledgements of a partition since the last `mark`."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.last_ack = {}
        self.gap = defaultdict(float)

    def on_delivery(self, err, msg):
        super().on_delivery(err, msg)
        if err is None:
            now = time.monotonic()
            p = msg.partition()
            with self.lock:
                if p in self.last_ack:
                    self.gap[p] = max(self.gap[p], now - self.last_ack[p])
                self.last_ack[p] = now

    def mark(self):
        """The longest gap of each partition since the last mark (open gaps up to now included)."""
        now = time.monotonic()
        with self.lock:
            out = {p: max(self.gap[p], now - self.last_ack.get(p, now)) for p in range(self.partitions)}
            self.gap.clear()
        return out


def cli(*args):
    r = subprocess.run([str(chronik_bin()), "cluster", *map(str, args)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise SystemExit(f"chronik-server cluster {' '.join(map(str, args))}: {r.stdout}\n{r.stderr}")
    return r.stdout


def replicas(cluster, via):
    _, _, ts = metadata(cluster[via].bootstrap, [TOPIC], timeout=10)
    return {p: m.replicas for p, m in ts[TOPIC].partitions.items()}


def wait_until(what, ok, timeout=180):
    deadline = time.monotonic() + timeout
    while True:
        got = ok()
        if got is True:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: {got}")
        time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=200, help="records per second, all partitions (200)")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="elastic-"))
    c = Cluster(work, size=6)
    c.peers = ",".join(f"{n.id}@127.0.0.1:{n.raft_port}" for n in (c[1], c[2], c[3]))
    for n in (4, 5):
        c[n].join = f"127.0.0.1:{c[1].raft_port}"
    c[6].join = f"127.0.0.1:{c[3].raft_port}"  # node 1 is gone by then
    steps = []
    ok = True
    w = None
    try:
        c.start(order=[1, 2, 3])
        java_tool(TOPIC_COMMAND, "--bootstrap-server", c[1].bootstrap, "--create", "--topic", TOPIC,
                  "--partitions", PARTITIONS, "--replication-factor", 3)
        wait_led(c[1].bootstrap, TOPIC, PARTITIONS, timeout=30)
        w = TimedWorkload(ck, c[3].bootstrap, TOPIC, PARTITIONS, "el", a.rate)
        w.start()
        time.sleep(5)
        steps.append(("producing on 1,2,3", w.mark()))

        t0 = time.monotonic()
        for n in (4, 5):
            c[n].start()
        c.wait_serving([4, 5], timeout=60)
        wait_until("brokers 1-5", lambda: sorted(metadata(c[3].bootstrap, [])[0]) == [1, 2, 3, 4, 5] or "not yet")
        steps.append((f"nodes 4 and 5 joined ({time.monotonic() - t0:.1f} s)", w.mark()))

        t0 = time.monotonic()
        now = replicas(c, 3)
        targets = {0: [4, 5, 1], 1: [5, 4, 2], 2: [4, 5, 3]}
        plan = work / "plan.json"
        plan.write_text(json.dumps({"version": 1, "partitions": [
            {"topic": TOPIC, "partition": p, "replicas": r} for p, r in targets.items()]}))
        java_tool(REASSIGN, "--bootstrap-server", c[3].bootstrap, "--execute", "--reassignment-json-file", plan)
        def moved():
            r = java_tool(REASSIGN, "--bootstrap-server", c[3].bootstrap, "--verify", "--reassignment-json-file", plan)
            if "still in progress" in r.out:
                return "in progress"
            now = replicas(c, 3)
            return all(sorted(now[p]) == sorted(t) for p, t in targets.items()) or now
        wait_until("the move", moved, timeout=300)
        steps.append((f"partitions 0-2 moved from {[now[p] for p in range(3)]} onto 4, 5 "
                      f"({time.monotonic() - t0:.1f} s)", w.mark()))

        t0 = time.monotonic()
        java_tool(ELECT, "--bootstrap-server", c[3].bootstrap, "--election-type", "preferred",
                  "--all-topic-partitions", check=False)
        steps.append((f"preferred leader election ({time.monotonic() - t0:.1f} s)", w.mark()))

        t0 = time.monotonic()
        cli("decommission", "--admin", c[3].admin, "--node-id", 1, "--timeout-secs", 300)
        c[1].stop()
        steps.append((f"node 1 decommissioned and stopped ({time.monotonic() - t0:.1f} s)", w.mark()))

        t0 = time.monotonic()
        c[2].kill9()
        c[6].start()
        c.wait_serving([6], timeout=60)
        cli("remove-node", "--admin", c[3].admin, "--node-id", 2)
        wait_until("node 2's replicas replaced", lambda: all(2 not in r for r in replicas(c, 3).values())
                   or replicas(c, 3), timeout=300)
        steps.append((f"node 2 killed, node 6 joined, node 2 removed ({time.monotonic() - t0:.1f} s)", w.mark()))
        time.sleep(5)
        w.stop()
        steps.append(("to the end", w.mark()))

        records, hw = read_back(ck, c[3].bootstrap, TOPIC, PARTITIONS)
        counts, problems = check(w, records, hw)
        log(f"counts: {counts}")
        for p in problems:
            log(f"PROBLEM: {p}")
        ok &= not problems and counts["lost"] == 0 and counts["acknowledged"] > 0

        def sums_equal():
            rows = status_groups(cluster_status(c[3].admin), TOPIC)
            by = defaultdict(set)
            for r in rows:
                by[r.get("partition")].add(r.get("checksum"))
            return (len(rows) == 3 * PARTITIONS and all(len(s) == 1 for s in by.values())) or rows
        wait_until("replica checksums", sums_equal, timeout=120)
        log("checksums: every replica of every partition equal")
    finally:
        if w is not None and w.thread.is_alive():
            w.stop()
        c.stop()
    print("| step | longest gap without an acknowledgement (any partition) |")
    print("| --- | --- |")
    for name, gaps in steps:
        worst = max(gaps.values()) if gaps else 0
        ok &= worst <= 6.0
        print(f"| {name} | {worst:.2f} s |")
    print(f"every check passed: {ok}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
