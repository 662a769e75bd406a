#!/usr/bin/env python3
"""Moving a partition's replica, chronik against Apache Kafka in the same run (issue 14).
Started by benches/move/run.sh.

Each system runs three nodes on 127.0.0.1 (chronik: the launcher of tests/interop/cluster.py;
Kafka: benches/kafka/start-kafka-cluster.sh, KRaft combined mode). On each:
  1. topic `move` with one partition on brokers 1,2 (`--replica-assignment 1:2`), filled with
     --mb MB by ProducerPerformance (acks=all, 1 KB records);
  2. a baseline: ProducerPerformance sends --load-mb MB (acks=all) to topic `load` (one
     partition on 2,3: a leader that the move does not stop);
  3. `kafka-reassign-partitions.sh --execute` moves `move` to 2,3 (node 3 copies the whole
     partition, node 1 drops it) while the same load runs again; `--verify` is polled every
     0.5 s until it says complete. The move time runs from --execute to that answer.
Printed: move time and MB/s, the load's throughput before and during the move, for both
systems, and chronik's ratios to Kafka's. Nothing is asserted but that each move completes.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "interop"))

from cluster import Cluster, wait_led  # noqa: E402
from helpers import TOPIC_COMMAND, java_tool, perf_produce  # noqa: E402

REASSIGN = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
KAFKA_BASE = 39400


def log(msg):
    print(f"[move {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def produce(bootstrap, topic, mb):
    return perf_produce(bootstrap, topic, mb)


def move(bootstrap, mb, load_mb, workdir):
    """Steps 1-3 on the cluster behind `bootstrap`: (move seconds, load MB/s before, during)."""
    for topic, assignment in (("move", "1:2"), ("load", "2:3")):
        java_tool(TOPIC_COMMAND, "--bootstrap-server", bootstrap, "--create", "--topic", topic,
                  "--replica-assignment", assignment, timeout=120)
        wait_led(bootstrap.split(",")[0], topic, 1, timeout=60)
    rate = produce(bootstrap, "move", mb)
    log(f"filled `move` with {mb} MB at {rate:.1f} MB/s")
    before = produce(bootstrap, "load", load_mb)
    log(f"load alone: {before:.1f} MB/s")
    plan = workdir / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": "move", "partition": 0, "replicas": [2, 3]}]}))
    during = {}
    t = threading.Thread(target=lambda: during.setdefault("rate", produce(bootstrap, "load", load_mb)))
    t0 = time.monotonic()
    r = java_tool(REASSIGN, "--bootstrap-server", bootstrap, "--execute", "--reassignment-json-file", plan)
    assert "Successfully started partition reassignment" in r.out, r.describe()
    t.start()
    while True:
        r = java_tool(REASSIGN, "--bootstrap-server", bootstrap, "--verify", "--reassignment-json-file", plan)
        if "is completed" in r.out:
            break
        if time.monotonic() - t0 > 3600:
            raise SystemExit(f"the move did not complete: {r.out}")
        time.sleep(0.5)
    secs = time.monotonic() - t0
    t.join()
    log(f"moved {mb} MB in {secs:.1f} s ({mb / secs:.1f} MB/s); load during the move {during['rate']:.1f} MB/s")
    return secs, before, during["rate"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=1024, help="MB in the moved partition (1024)")
    ap.add_argument("--load-mb", type=float, default=200, help="MB of the load producer, each run (200)")
    ap.add_argument("--only", choices=["chronik", "kafka"], help="run one system only")
    a = ap.parse_args()
    out = {}
    if a.only in (None, "chronik"):
        work = Path(tempfile.mkdtemp(prefix="move-chronik-"))
        c = Cluster(work, size=3)
        c.start(timeout=60)
        try:
            out["chronik"] = move(c.bootstrap, a.mb, a.load_mb, work)
        finally:
            c.stop()
            shutil.rmtree(work, ignore_errors=True)
    if a.only in (None, "kafka"):
        work = Path(tempfile.mkdtemp(prefix="move-kafka-"))
        env = dict(os.environ, KAFKA_EXTRA_PROPS="auto.leader.rebalance.enable=true")
        subprocess.run(["bash", str(ROOT / "benches/kafka/start-kafka-cluster.sh"), str(KAFKA_BASE), str(work)],
                       check=True, env=env)
        try:
            out["kafka"] = move(f"127.0.0.1:{KAFKA_BASE}", a.mb, a.load_mb, work)
        finally:
            for n in (1, 2, 3):
                subprocess.run(["bash", str(ROOT / "benches/kafka/stop-kafka.sh"), str(work / f"node{n}")])
            shutil.rmtree(work, ignore_errors=True)
    print(f"| system | moved | time | MB/s | load before | load during | during/before |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, (secs, before, during) in out.items():
        print(f"| {name} | {a.mb:.0f} MB | {secs:.1f} s | {a.mb / secs:.1f} | {before:.1f} MB/s | "
              f"{during:.1f} MB/s | {during / before:.2f} |")
    if len(out) == 2:
        (cs, cb, cd), (ks, kb, kd) = out["chronik"], out["kafka"]
        print(f"chronik/Kafka: move time {cs / ks:.2f}, load during the move {cd / kd:.2f}")


if __name__ == "__main__":
    main()
