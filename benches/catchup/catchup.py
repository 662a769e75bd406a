#!/usr/bin/env python3
"""How fast a follower catches up (issue 14). Started by benches/catchup/run.sh.

Three chronik nodes on 127.0.0.1 (the launcher of tests/interop/cluster.py), one topic with
--partitions partitions at RF 3. Node 3 is stopped (SIGTERM); ProducerPerformance (acks=all, 1 KB
records, as fast as it can) sends --mb MB to the topic; node 3 is started again. The catch-up time
runs from its start until its partition directories hold as many segment bytes as the leader's
(sampled every 0.2 s), and the rate is those bytes over that time. With --load-mb, a second
ProducerPerformance runs while node 3 catches up, and its throughput is printed beside the
throughput of the same producer run before the restart (the leader's produce, disturbed or not).
At the end the follower's `cluster status` checksums must equal the leader's.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "interop"))

from cluster import Cluster, cluster_status, status_groups, wait_led  # noqa: E402
from helpers import TOPIC_COMMAND, java_tool, perf_produce  # noqa: E402



def log(msg):
    print(f"[catchup {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def produce(bootstrap, topic, mb):
    return perf_produce(bootstrap, topic, mb)


def log_bytes(node, topic):
    """Bytes of the segment files (.log) of `topic`'s partitions on `node`."""
    total = 0
    for d in node.data_dir.rglob("*"):
        if d.is_file() and d.suffix == ".log" and topic in str(d.parent):
            total += d.stat().st_size
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=300, help="MB produced while node 3 is down (300)")
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--load-mb", type=float, default=0,
                    help="MB produced while node 3 catches up (0: none), and once before as a baseline")
    ap.add_argument("--timeout", type=float, default=900, help="give up on the catch-up after this (s)")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="catchup-"))
    c = Cluster(work, size=3)
    c.start(timeout=30)
    try:
        topic = "catchup"
        java_tool(TOPIC_COMMAND, "--bootstrap-server", c.bootstrap, "--create", "--topic", topic,
                  "--partitions", a.partitions, "--replication-factor", 3)
        wait_led(c[1].bootstrap, topic, a.partitions, timeout=30)
        c[3].stop()
        log(f"node 3 stopped; producing {a.mb} MB (acks=all, 1 KB records)")
        rate = produce(c[1].bootstrap, topic, a.mb)
        log(f"produced at {rate:.1f} MB/s with node 3 down")
        base = produce(c[1].bootstrap, "baseline", a.load_mb) if a.load_mb else None
        leader_bytes = max(log_bytes(c[i], topic) for i in (1, 2))
        log(f"leader holds {leader_bytes / 1e6:.1f} MB of segments; starting node 3")
        t0 = time.monotonic()
        c[3].start()
        loaded = None
        if a.load_mb:
            loaded = produce(c[1].bootstrap, "load", a.load_mb)
        got, last = 0, 0
        while time.monotonic() - t0 < a.timeout:
            got = log_bytes(c[3], topic)
            if got >= leader_bytes:
                break
            if time.monotonic() - last > 10:
                last = time.monotonic()
                log(f"node 3: {got / 1e6:.1f} of {leader_bytes / 1e6:.1f} MB after {last - t0:.0f} s")
            time.sleep(0.2)
        secs = time.monotonic() - t0
        if got < leader_bytes:
            raise SystemExit(f"node 3 had {got} of {leader_bytes} bytes after {secs:.0f} s")
        log(f"CATCH-UP: {leader_bytes / 1e6:.1f} MB in {secs:.1f} s = {leader_bytes / 1e6 / secs:.1f} MB/s "
            f"(from the restart, process start included)")
        if a.load_mb:
            log(f"LEADER PRODUCE: {base:.1f} MB/s before, {loaded:.1f} MB/s during the catch-up "
                f"({loaded / base:.2f})")
        # Byte-identical replicas: the status checksums agree once node 3 has applied everything.
        deadline = time.monotonic() + 120
        while True:
            rows = status_groups(cluster_status(c[1].admin), topic)
            sums = {}
            for r in rows:
                sums.setdefault(r.get("partition"), set()).add(r.get("checksum"))
            if rows and all(len(s) == 1 for s in sums.values()) and len(rows) == 3 * a.partitions:
                log("checksums: every replica equal")
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"replicas differ: {sums}")
            time.sleep(1)
    finally:
        c.stop()
        if os.environ.get("CATCHUP_KEEP") is None:
            subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
