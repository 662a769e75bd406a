#!/usr/bin/env python3
"""A node restart under load, chronik against Apache Kafka in the same run (issue 15): the p99
of a producer at half of the cluster's capacity before, during and after one node, holding
--fill-mb MB of log over --partitions partitions, restarts. Started by benches/restart/run.sh.

Each system runs three nodes on 127.0.0.1 (chronik: the launcher of tests/interop/cluster.py;
Kafka: benches/kafka/start-kafka-cluster.sh, KRaft combined mode). On each:
  1. topic `fill` (--partitions partitions, RF 3) gets --fill-mb MB from ProducerPerformance
     (acks=1, 10 KB records): the log node 3 holds when it restarts;
  2. topic `load` (6 partitions, RF 3): ProducerPerformance acks=all, 1 KB records, as fast as it
     goes, for --capacity-mb MB: the capacity; the stream then runs at half of it (msg/s);
  3. three phases of that stream, each its own ProducerPerformance run: before (--phase-s
     seconds), during (2 x --phase-s; node 3 is stopped with SIGTERM 2 s in and started again at
     once), after (--phase-s). Each phase's p50/p99/max latency is ProducerPerformance's own.
Printed: a table per system, the restart's time to serve, and chronik's p99 ratios to Kafka's.
Nothing is asserted but that each run completes.
"""
import argparse
import os
import re
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
from helpers import JAVA_OPTS, PRODUCER_PERFORMANCE, TOOLS_LIB, TOPIC_COMMAND, java_tool  # noqa: E402

KAFKA_BASE = 39500
FULL = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                  r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th")


def log(msg):
    print(f"[restart {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def perf(bootstrap, topic, records, size, rate, acks, extra=()):
    cmd = ["java", *JAVA_OPTS, "-cp", f"{TOOLS_LIB}/*", PRODUCER_PERFORMANCE, "--topic", topic,
           "--num-records", str(records), "--record-size", str(size), "--throughput", str(rate),
           "--producer-props", f"bootstrap.servers={bootstrap}", f"acks={acks}", *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    m = [x for x in FULL.finditer(p.stdout) if int(x.group(1)) == records]
    if p.returncode != 0 or not m:
        raise SystemExit(f"ProducerPerformance failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    m = m[-1]
    return {"msgs": float(m.group(2)), "mb": float(m.group(3)), "max": float(m.group(5)),
            "p50": int(m.group(6)), "p99": int(m.group(8))}


def run(bootstrap, restart, a):
    """Steps 1-3 on the cluster behind `bootstrap`; `restart()` stops and starts node 3 and
    returns the seconds until it serves again."""
    for topic, parts in (("fill", a.partitions), ("load", 6)):
        java_tool(TOPIC_COMMAND, "--bootstrap-server", bootstrap, "--create", "--topic", topic,
                  "--partitions", parts, "--replication-factor", 3, timeout=300)
        wait_led(bootstrap.split(",")[0], topic, parts, timeout=300)
    f = perf(bootstrap, "fill", int(a.fill_mb * 1e6 / 10240), 10240, -1, 1,
             ("batch.size=262144", "linger.ms=20", "buffer.memory=134217728"))
    log(f"filled `fill` with {a.fill_mb} MB at {f['mb']:.1f} MB/s")
    cap = perf(bootstrap, "load", int(a.capacity_mb * 1e6 / 1024), 1024, -1, "all")
    rate = max(1, int(cap["msgs"] / 2))
    log(f"capacity {cap['msgs']:.0f} msg/s ({cap['mb']:.1f} MB/s); the stream runs at {rate} msg/s")
    phases = {"before": perf(bootstrap, "load", rate * a.phase_s, 1024, rate, "all")}
    served = {}
    t = threading.Thread(target=lambda: (time.sleep(2.0), served.setdefault("s", restart())))
    t.start()
    phases["during"] = perf(bootstrap, "load", rate * a.phase_s * 2, 1024, rate, "all")
    t.join()
    phases["after"] = perf(bootstrap, "load", rate * a.phase_s, 1024, rate, "all")
    for k, v in phases.items():
        log(f"{k}: {v['msgs']:.0f} msg/s, p50 {v['p50']} ms, p99 {v['p99']} ms, max {v['max']:.0f} ms")
    log(f"node 3 served again {served.get('s', float('nan')):.1f} s after its stop")
    return cap, rate, phases, served.get("s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fill-mb", type=float, default=2048, help="MB of log node 3 holds (2048)")
    ap.add_argument("--partitions", type=int, default=200, help="partitions of the filled topic (200)")
    ap.add_argument("--capacity-mb", type=float, default=300, help="MB of the capacity run (300)")
    ap.add_argument("--phase-s", type=int, default=20, help="seconds of the before/after phases (20)")
    ap.add_argument("--only", choices=["chronik", "kafka"], help="run one system only")
    a = ap.parse_args()
    out = {}
    if a.only in (None, "chronik"):
        work = Path(tempfile.mkdtemp(prefix="restart-chronik-"))
        c = Cluster(work, size=3)
        c.start(timeout=60)

        def restart():
            t0 = time.monotonic()
            c[3].stop()
            c[3].start()
            c.wait_serving([3], timeout=600)
            return time.monotonic() - t0
        try:
            out["chronik"] = run(c.bootstrap, restart, a)
        finally:
            c.stop()
            shutil.rmtree(work, ignore_errors=True)
    if a.only in (None, "kafka"):
        work = Path(tempfile.mkdtemp(prefix="restart-kafka-"))
        start = ["bash", str(ROOT / "benches/kafka/start-kafka-cluster.sh"), str(KAFKA_BASE), str(work)]
        subprocess.run(start, check=True)

        def restart():
            t0 = time.monotonic()
            subprocess.run(["bash", str(ROOT / "benches/kafka/stop-kafka.sh"), str(work / "node3")], check=True)
            subprocess.run(start, check=True, env=dict(os.environ, KAFKA_NODES="3"))
            return time.monotonic() - t0
        try:
            out["kafka"] = run(",".join(f"127.0.0.1:{KAFKA_BASE + i}" for i in range(3)), restart, a)
        finally:
            for n in (1, 2, 3):
                subprocess.run(["bash", str(ROOT / "benches/kafka/stop-kafka.sh"), str(work / f"node{n}")])
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nnode 3 holds {a.fill_mb:.0f} MB over {a.partitions} partitions; load average "
          f"{os.getloadavg()[0]:.1f}")
    print("| system | capacity msg/s | stream msg/s | p99 before | p99 during | p99 after | max during | restart to serving |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, (cap, rate, ph, served) in out.items():
        print(f"| {name} | {cap['msgs']:.0f} | {rate} | {ph['before']['p99']} ms | {ph['during']['p99']} ms | "
              f"{ph['after']['p99']} ms | {ph['during']['max']:.0f} ms | {served:.1f} s |")
    if len(out) == 2:
        c, k = out["chronik"][2], out["kafka"][2]
        print("chronik/Kafka p99: " + ", ".join(f"{p} {c[p]['p99'] / max(k[p]['p99'], 1):.2f}"
                                                 for p in ("before", "during", "after")))


if __name__ == "__main__":
    main()
