#!/usr/bin/env python3
"""The leader balancer at scale (issue 14, "Leaders"). Started by benches/balancer/run.sh.

--nodes chronik nodes on 127.0.0.1 (the launcher of tests/interop/cluster.py, with
`leaders.imbalance-check-interval` = --check-interval), --topics topics of --partitions partitions
each at RF 3, created with Kafka's own `kafka-topics.sh` (replicas and preferred leaders placed by
chronik). Then node 1 is killed (-9): the others take its leaders; it is started again, and the
balancer (no command) moves leaders back. Leader counts per node are taken from Metadata after
creation, while node 1 is down, and until every node is within one leader of its share (or
--timeout). Not part of CI: it reports figures; it fails (exit 1) only when the counts never
come within one of the share.
"""
import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "interop"))

from cluster import Cluster, metadata, wait_led  # noqa: E402
from helpers import TOPIC_COMMAND, java_tool  # noqa: E402


def log(msg):
    print(f"[balancer {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def leaders(cluster, via):
    """{node: partitions it leads} over every topic, from Metadata on node `via`."""
    _, _, topics = metadata(cluster[via].bootstrap, None, timeout=30)
    c = Counter()
    unled = 0
    for name, t in topics.items():
        if not name.startswith("bal-"):
            continue
        for p in t.partitions.values():
            if p.leader > 0:
                c[p.leader] += 1
            else:
                unled += 1
    return c, unled


def spread(counts, nodes):
    return max(counts.get(n, 0) for n in nodes) - min(counts.get(n, 0) for n in nodes)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--topics", type=int, default=10)
    ap.add_argument("--partitions", type=int, default=100)
    ap.add_argument("--check-interval", default="10s", help="leaders.imbalance-check-interval")
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    total = a.topics * a.partitions
    share = total / a.nodes
    nodes = list(range(1, a.nodes + 1))
    work = Path(tempfile.mkdtemp(prefix="chronik-balancer-"))
    c = Cluster(work, size=a.nodes, env={"CHRONIK_LEADERS__IMBALANCE_CHECK_INTERVAL": a.check_interval})
    c.start(timeout=60)
    ok = False
    try:
        t0 = time.monotonic()
        for i in range(a.topics):
            topic = f"bal-{i}"
            java_tool(TOPIC_COMMAND, "--bootstrap-server", c.bootstrap, "--create", "--topic", topic,
                      "--partitions", a.partitions, "--replication-factor", 3, timeout=300)
            wait_led(c[2].bootstrap, topic, a.partitions, timeout=300)
        created = time.monotonic() - t0
        counts, _ = leaders(c, 2)
        log(f"{total} partitions at RF 3 on {a.nodes} nodes created and led in {created:.1f} s; "
            f"leaders per node {dict(sorted(counts.items()))} (share {share:.0f})")
        c[1].kill9()
        t1 = time.monotonic()
        while True:
            counts, unled = leaders(c, 2)
            if unled == 0 and counts.get(1, 0) == 0:
                break
            if time.monotonic() - t1 > a.timeout:
                raise SystemExit(f"node 1's partitions not re-led: {dict(counts)}, {unled} unled")
            time.sleep(1)
        log(f"node 1 killed (-9): every partition led again after {time.monotonic() - t1:.1f} s; "
            f"leaders per node {dict(sorted(counts.items()))}")
        c[1].start()
        c.wait_serving([1], timeout=120)
        t2 = time.monotonic()
        while True:
            counts, unled = leaders(c, 2)
            s = spread(counts, nodes)
            within = all(abs(counts.get(n, 0) - share) <= 1 for n in nodes)
            if within and unled == 0:
                ok = True
                break
            if time.monotonic() - t2 > a.timeout:
                break
            time.sleep(2)
        log(f"node 1 restarted: after {time.monotonic() - t2:.1f} s leaders per node "
            f"{dict(sorted(counts.items()))}, spread {s}, every node within one of {share:.0f}: {ok}")
    finally:
        c.stop()
    print(f"| {a.nodes} nodes | {total} partitions RF 3 | created+led {created:.1f} s | "
          f"balanced within one of {share:.0f}: {ok} |")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
