"""Idle cost of many partitions (issue 15: "10,000 partitions at RF 3 on 3 nodes: idle CPU per
node <= 3 % of a core"). A benchmark, not a test: it prints figures and asserts nothing.

For each mode (chronik with `raft.hibernate` on, chronik with it off, Apache Kafka 3 nodes KRaft
combined mode via benches/kafka/start-kafka-cluster.sh) it starts 3 real nodes on 127.0.0.1,
creates one topic of N partitions at RF 3, and measures:
    - the time from the CreateTopics request until every node's Metadata names a leader for every
      partition (Kafka: the topic is created with --kafka-create-step partitions and grown by as
      many per CreatePartitions, since its controller refuses one operation of over 10,000
      records: "Unable to perform excessively large batch operation");
    - after settling (chronik with hibernation: until every node reports all N groups quiet in
      `chronik_hibernating_groups`, then SETTLE seconds; the others: SETTLE seconds), the idle CPU
      of each node process over IDLE seconds from /proc/PID/stat (utime + stime), in % of a core;
    - each node's RSS, and (RSS after - RSS before the topic) / N per partition.
The 1-minute load average is printed beside each figure (the machine is shared).

    .deps/venv/bin/python benches/idle/bench.py --partitions 1000 [--idle 30] [--settle 10]
        [--modes hibernate,awake,kafka]
"""
import argparse
import os
import sys
import time
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "interop"))
import kafka_wire  # noqa: E402
from cluster import Cluster, free_ports, pid_figures, scrape_all, wait_led  # noqa: E402

RAFT_ENV = {"CHRONIK_RAFT__HEARTBEAT_INTERVAL": "150ms", "CHRONIK_RAFT__ELECTION_TIMEOUT": "3s"}


def load1():
    return os.getloadavg()[0]


CREATE_PARTITIONS = 37


def create_partitions(bootstrap, topic, count, timeout):
    """CreatePartitions v1: grow `topic` to `count` partitions (assignments chosen by the broker)."""
    body = (kafka_wire.array([kafka_wire.string(topic) + kafka_wire.i32(count) + kafka_wire.i32(-1)])
            + kafka_wire.i32(int(timeout * 1000)) + kafka_wire.i8(0))
    r = kafka_wire.Reader(kafka_wire.roundtrip(bootstrap, CREATE_PARTITIONS, 1, body, timeout=timeout + 10))
    r.i32()  # throttle_time_ms
    for _ in range(r.i32()):
        name, err, msg = r.string(), r.i16(), r.string()
        if err != 0:
            raise RuntimeError(f"CreatePartitions {name} -> {count}: error {err} {msg!r}")


def create_and_wait(bootstraps, topic, n, timeout, step=None):
    """CreateTopics of n partitions (with `step`: of `step`, then CreatePartitions by `step` up
    to n: Kafka's controller refuses one operation of more than 10,000 records), then until
    every node's Metadata names a leader for every partition. -> seconds."""
    t0 = time.monotonic()
    first = min(n, step) if step else n
    body = kafka_wire.roundtrip(bootstraps[0], kafka_wire.CREATE_TOPICS, 2,
                                kafka_wire.create_topics_v2_body(topic, first, 3, timeout_ms=int(timeout * 1000)),
                                timeout=timeout + 10)
    err, msg = kafka_wire.decode_create_topics_v2(body)[topic]
    if err != 0:
        raise RuntimeError(f"CreateTopics {topic} x {first}: error {err} {msg!r}")
    count = first
    while count < n:
        count = min(n, count + step)
        create_partitions(bootstraps[0], topic, count, max(1.0, timeout - (time.monotonic() - t0)))
    for b in bootstraps:
        wait_led(b, topic, n, timeout=max(1.0, timeout - (time.monotonic() - t0)), poll=0.5)
    return time.monotonic() - t0


def measure(pids, idle):
    before = {i: pid_figures(p) for i, p in pids.items()}
    l0 = load1()
    t0 = time.monotonic()
    time.sleep(idle)
    dt = time.monotonic() - t0
    after = {i: pid_figures(p) for i, p in pids.items()}
    cpu = {i: 100.0 * (after[i][0] - before[i][0]) / dt for i in pids}
    rss = {i: after[i][1] for i in pids}
    return cpu, rss, (l0, load1())


def chronik(args, hibernate, workdir):
    env = {**RAFT_ENV, "CHRONIK_RAFT__HIBERNATE": "true" if hibernate else "false"}
    c = Cluster(workdir, env=env)
    c.start(timeout=60)
    try:
        pids = {i: n.proc.pid for i, n in c.nodes.items()}
        time.sleep(3)
        base = {i: pid_figures(p)[1] for i, p in pids.items()}
        created = create_and_wait([n.bootstrap for n in c.nodes.values()], "idle", args.partitions, args.create_timeout)
        quiet_after = None
        if hibernate:
            t0 = time.monotonic()
            while time.monotonic() - t0 < args.quiet_timeout:
                s = scrape_all(c)
                q = {i: m.total("chronik_hibernating_groups", node=i) for i, m in s.items()}
                if all(v >= args.partitions for v in q.values()):
                    quiet_after = time.monotonic() - t0
                    break
                time.sleep(1.0)
            print(f"  quiet groups per node: {q} ({'all after %.1f s' % quiet_after if quiet_after else 'NOT all'})")
        time.sleep(args.settle)
        cpu, rss, loads = measure(pids, args.idle)
        return created, cpu, rss, base, loads, quiet_after
    finally:
        c.stop()


def kafka(args, workdir):
    base_port = free_ports(1)[0]
    base_port = 20000 + base_port % 20000
    data = Path(workdir)
    subprocess.run(["bash", str(ROOT / "benches/kafka/start-kafka-cluster.sh"), str(base_port), str(data)],
                   check=True, timeout=200)
    try:
        pids = {i: int((data / f"node{i}" / "kafka.pid").read_text()) for i in (1, 2, 3)}
        time.sleep(5)
        base = {i: pid_figures(p)[1] for i, p in pids.items()}
        boots = [f"127.0.0.1:{base_port + i}" for i in range(3)]
        created = create_and_wait(boots, "idle", args.partitions, args.create_timeout, args.kafka_create_step)
        time.sleep(args.settle)
        cpu, rss, loads = measure(pids, args.idle)
        return created, cpu, rss, base, loads, None
    finally:
        for i in (1, 2, 3):
            subprocess.run(["bash", str(ROOT / "benches/kafka/stop-kafka.sh"), str(data / f"node{i}")],
                           timeout=120, check=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--partitions", type=int, default=1000)
    ap.add_argument("--idle", type=float, default=30.0, help="seconds of idle CPU measured")
    ap.add_argument("--settle", type=float, default=10.0, help="seconds after creation (and quiet) before measuring")
    ap.add_argument("--quiet-timeout", type=float, default=120.0)
    ap.add_argument("--create-timeout", type=float, default=600.0)
    ap.add_argument("--modes", default="hibernate,awake,kafka")
    ap.add_argument("--kafka-create-step", type=int, default=4000,
                    help="Kafka only: create the topic with this many partitions, then add as many per "
                         "CreatePartitions (its controller refuses one operation of over 10,000 records)")
    ap.add_argument("--workdir", default=str(ROOT / "target" / "bench-idle"))
    args = ap.parse_args()
    rows = []
    for mode in args.modes.split(","):
        wd = Path(args.workdir) / f"{mode}-{args.partitions}-{int(time.time())}"
        print(f"== {mode}: {args.partitions} partitions at RF 3 on 3 nodes (load {load1():.2f})", flush=True)
        if mode == "kafka":
            r = kafka(args, wd)
        else:
            r = chronik(args, mode == "hibernate", wd)
        created, cpu, rss, base, loads, quiet = r
        per_part = {i: (rss[i] - base[i]) / args.partitions / 1024 for i in rss}
        line = (f"{mode:<10} N={args.partitions:<6} created+led {created:6.1f} s | idle CPU % of a core per node: "
                + " ".join(f"{cpu[i]:5.2f}" for i in sorted(cpu))
                + " | RSS MB: " + " ".join(f"{rss[i] / 1e6:6.1f}" for i in sorted(rss))
                + " | RSS KiB/partition: " + " ".join(f"{per_part[i]:5.1f}" for i in sorted(per_part))
                + f" | load1 {loads[0]:.2f} -> {loads[1]:.2f}")
        print(line, flush=True)
        rows.append(line)
    print("\n".join(["", "summary:"] + rows))


if __name__ == "__main__":
    main()
