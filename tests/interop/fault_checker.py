#!/usr/bin/env python3
"""Fault checker: a 3-node chronik cluster of real processes, an idempotent acks=all producer
writing sequence-numbered records to several partitions while a fault schedule runs, then a
consumer that reads everything back and checks it.

Faults (one at a time, so a majority is always up; each lasts 1-5 s, then 1-2 s of health):
  kill     kill -9 of a random node, restarted after the fault's duration
  pause    SIGSTOP of a random node, SIGCONT after the duration
  cut      the network between two random nodes is cut (both directions)
  isolate  one node is cut from both others (clients still reach it)
Network cuts need network namespaces: every node runs in its own namespace
(`ip netns exec`), wired to a bridge, on 10.77.0.N; the clients run in another namespace. A cut is
a blackhole route on each side, so packets vanish as in a real partition. Without root (or
without `ip netns`), cuts are left out of the schedule and the run says so loudly.

Checks, at the end (after healing everything and restarting every node):
  - every acknowledged record is read exactly once, at the offset its acknowledgement gave,
    and records are in production order within each partition;
  - no record is read that was never produced;
  - committed consumer offsets never go backwards: only if the broker serves the consumer group
    APIs (OffsetCommit/OffsetFetch/FindCoordinator/JoinGroup); otherwise SKIPPED, loudly.
It prints the fault log and the counts: acknowledged, read, lost, duplicated (and more).
Exit status 0 only if every check passed.

With --transactional, the producer is transactional instead (tests/interop/txn_workload.py:
transactions committed or aborted on purpose), the read-back is read_committed, and the checks are
that every committed transaction is fully visible, no aborted one is, and a transaction whose
commit failed mid-fault is visible whole or not at all.

    python tests/interop/fault_checker.py --faults 10 --seed 7            # short (CI)
    python tests/interop/fault_checker.py --faults 100 --partitions 6     # long (scripts/)

Needs: root for namespaces, .deps/venv (confluent-kafka), target/release/chronik-server (or
CHRONIK_BIN).
"""
import argparse
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import txn_workload

REPO = Path(__file__).resolve().parents[2]
KAFKA_PORT, RAFT_PORT = 9092, 9093
GROUP_API_KEYS = {8: "OffsetCommit", 9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup"}


def log(msg):
    print(f"[checker {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(*args, check=True):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))}: exit {p.returncode}: {p.stderr.strip()}")
    return p


# --- network namespaces ------------------------------------------------------------------------------
class Net:
    """A bridge in its own namespace, one namespace per node and one for the clients."""

    CLIENT = 100

    def __init__(self, node_ids, prefix=None):
        self.prefix = prefix or f"chk{os.getpid() % 100000}"
        self.ids = list(node_ids) + [self.CLIENT]
        self.cuts = set()
        self.created = []

    def ns(self, i):
        return f"{self.prefix}-{i}"

    @staticmethod
    def ip(i):
        return f"10.77.0.{i}"

    def up(self):
        hub = f"{self.prefix}-hub"
        sh("ip", "netns", "add", hub)
        self.created.append(hub)
        sh("ip", "netns", "exec", hub, "ip", "link", "set", "lo", "up")
        sh("ip", "netns", "exec", hub, "ip", "link", "add", "br0", "type", "bridge")
        sh("ip", "netns", "exec", hub, "ip", "link", "set", "br0", "up")
        for i in self.ids:
            ns = self.ns(i)
            sh("ip", "netns", "add", ns)
            self.created.append(ns)
            sh("ip", "link", "add", f"{self.prefix}v{i}", "netns", ns, "type", "veth",
               "peer", "name", f"p{i}", "netns", hub)
            sh("ip", "netns", "exec", hub, "ip", "link", "set", f"p{i}", "master", "br0")
            sh("ip", "netns", "exec", hub, "ip", "link", "set", f"p{i}", "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.ip(i)}/24", "dev", f"{self.prefix}v{i}")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", f"{self.prefix}v{i}", "up")

    def down(self):
        for ns in reversed(self.created):
            sh("ip", "netns", "del", ns, check=False)
        self.created = []

    def enter_client(self):
        """Moves this (main) thread into the client namespace: threads started afterwards, such
        as librdkafka's, inherit it."""
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/var/run/netns/{self.ns(self.CLIENT)}", os.O_RDONLY)
        try:
            if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
                raise OSError(ctypes.get_errno(), "setns into the client namespace failed")
        finally:
            os.close(fd)

    def _route(self, op, a, b):
        sh("ip", "netns", "exec", self.ns(a), "ip", "route", op, "blackhole", f"{self.ip(b)}/32")

    def cut(self, a, b):
        key = (min(a, b), max(a, b))
        if key in self.cuts:
            return
        self._route("add", a, b)
        self._route("add", b, a)
        self.cuts.add(key)

    def heal(self, a, b):
        key = (min(a, b), max(a, b))
        if key not in self.cuts:
            return
        self._route("del", a, b)
        self._route("del", b, a)
        self.cuts.discard(key)

    def heal_all(self):
        for a, b in list(self.cuts):
            self.heal(a, b)


# --- nodes -------------------------------------------------------------------------------------------
class Node:
    def __init__(self, node_id, workdir, net, peers, binary):
        self.id = node_id
        self.net = net
        self.ip = net.ip(node_id) if net else "127.0.0.1"
        self.kafka_port = KAFKA_PORT if net else free_port()
        self.raft_port = RAFT_PORT if net else free_port()
        self.data_dir = workdir / f"node{node_id}"
        self.log_path = workdir / f"node{node_id}.log"
        self.peers = peers
        self.binary = binary
        self.proc = None
        self.paused = False
        self.starts = 0
        self.killed_on_purpose = False

    @property
    def bootstrap(self):
        return f"{self.ip}:{self.kafka_port}"

    def start(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(self.binary), "raft-cluster", "--node-id", str(self.id), "--advertised-addr", self.ip,
               "--listen", f"{self.ip}:{self.kafka_port}", "--raft-addr", f"{self.ip}:{self.raft_port}",
               "--data-dir", str(self.data_dir), "--peers", self.peers(),
               "--admin-listen", f"{self.ip}:0"]  # nodes may share a network: never the default 9300
        if self.net:
            cmd = ["ip", "netns", "exec", self.net.ns(self.id)] + cmd
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONIK_")}
        self.starts += 1
        self.killed_on_purpose = False
        with open(self.log_path, "ab") as f:
            f.write(f"===== start #{self.starts}: {' '.join(cmd)}\n".encode())
            f.flush()
            self.proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, start_new_session=True)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        self.killed_on_purpose = True
        self.resume()
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=20)

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.paused and self.alive():
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self):
        if self.proc is None:
            return
        self.resume()
        if self.alive():
            self.killed_on_purpose = True
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_versions(bootstrap, timeout=2.0):
    """ApiVersions v0 -> {api key: (min, max)}; raises OSError if the node does not answer."""
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.settimeout(timeout)
        body = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (1).to_bytes(4, "big") + (7).to_bytes(2, "big") + b"checker"
        s.sendall(len(body).to_bytes(4, "big") + body)
        n = int.from_bytes(recv_exact(s, 4), "big")
        r = recv_exact(s, n)
    err = int.from_bytes(r[4:6], "big", signed=True)
    if err != 0:
        raise OSError(f"ApiVersions error {err}")
    count = int.from_bytes(r[6:10], "big")
    out = {}
    for i in range(count):
        k, lo, hi = (int.from_bytes(r[10 + 6 * i + j:12 + 6 * i + j], "big", signed=True) for j in (0, 2, 4))
        out[k] = (lo, hi)
    return out


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk:
            raise OSError("connection closed")
        b += chunk
    return b


def wait_serving(nodes, timeout=60):
    deadline = time.monotonic() + timeout
    pending = {n.id for n in nodes}
    while pending and time.monotonic() < deadline:
        for n in nodes:
            if n.id not in pending:
                continue
            if not n.alive():
                raise RuntimeError(f"node {n.id} exited with {n.proc.returncode}:\n{tail(n)}")
            try:
                api_versions(n.bootstrap, timeout=1)
                pending.discard(n.id)
            except OSError:
                pass
        time.sleep(0.2)
    if pending:
        raise RuntimeError(f"nodes {sorted(pending)} not serving after {timeout}s\n"
                           + "\n".join(tail(n) for n in nodes if n.id in pending))


def tail(node, n=40):
    lines = node.log_text().splitlines()[-n:]
    return f"--- last {len(lines)} lines of {node.log_path} ---\n" + "\n".join(lines)


# --- the workload ------------------------------------------------------------------------------------
class Workload:
    """An idempotent acks=all producer writing `RUN:partition:seq` to every partition in turn."""

    def __init__(self, ck, bootstrap, topic, partitions, run_id, rate, debug=None):
        self.ck, self.bootstrap, self.topic = ck, bootstrap, topic
        self.partitions, self.run_id, self.rate = partitions, run_id, rate
        self.debug = debug  # (librdkafka debug contexts, file to log them to)
        self.next_seq = [0] * partitions
        self.attempted = set()
        self.acked = {}  # (partition, seq) -> offset
        self.failed = Counter()  # error name -> count
        self.fatal = []
        self.producers = 0
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def new_producer(self):
        self.producers += 1
        extra = {}
        if self.debug:
            import logging
            logger = logging.getLogger(f"librdkafka-{self.producers}")
            handler = logging.FileHandler(self.debug[1])
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.DEBUG)
            extra = {"debug": self.debug[0], "logger": logger}
        return self.ck.Producer({**extra,
            "bootstrap.servers": self.bootstrap, "enable.idempotence": True, "acks": "all",
            "linger.ms": 5, "message.timeout.ms": 20000, "request.timeout.ms": 5000,
            "socket.timeout.ms": 5000, "metadata.max.age.ms": 2000,
            "topic.metadata.refresh.interval.ms": 1000, "retry.backoff.ms": 100,
            "reconnect.backoff.max.ms": 1000, "client.id": f"checker-{self.run_id}",
            "error_cb": self.on_error})

    def on_error(self, err):
        if err.fatal():
            self.fatal.append(str(err))

    def on_delivery(self, err, msg):
        p, seq = self.key_of(msg.value())
        with self.lock:
            if err is None:
                self.acked[(p, seq)] = msg.offset()
            else:
                self.failed[err.name()] += 1

    def key_of(self, value):
        _, p, seq = value.decode().split(":")
        return int(p), int(seq)

    def run(self):
        prod = self.new_producer()
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        p = 0
        while not self.stop_flag.is_set():
            if self.fatal and len(self.fatal) >= self.producers:
                # An idempotent producer that hit a fatal error stays failed: start a new one.
                log(f"producer fatal error: {self.fatal[-1]}; starting a new producer")
                prod.flush(30)
                prod = self.new_producer()
            seq = self.next_seq[p]
            value = f"{self.run_id}:{p}:{seq}".encode()
            try:
                prod.produce(self.topic, value=value, partition=p, on_delivery=self.on_delivery)
            except BufferError:
                prod.poll(0.1)
                continue
            except self.ck.KafkaException as e:
                self.failed[f"produce() {e}"] += 1
                prod.poll(0.1)
                continue
            with self.lock:
                self.attempted.add((p, seq))
            self.next_seq[p] += 1
            p = (p + 1) % self.partitions
            prod.poll(0)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.monotonic()
        left = prod.flush(60)
        if left:
            self.failed["unflushed after 60 s"] += left
        self.final_producer = prod

    def start(self):
        self.thread.start()

    def acknowledged(self):
        with self.lock:
            return len(self.acked)

    def stop(self):
        self.stop_flag.set()
        self.thread.join(timeout=120)


class OffsetMonitor:
    """With the group APIs: a group consumer commits as it reads; another thread asks for the
    committed offsets every 0.5 s and records any that went backwards."""

    def __init__(self, ck, bootstrap, topic, partitions, group):
        self.ck, self.bootstrap, self.topic, self.partitions, self.group = ck, bootstrap, topic, partitions, group
        self.samples = 0
        self.backwards = []
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self.consume, daemon=True),
                        threading.Thread(target=self.watch, daemon=True)]

    def conf(self):
        return {"bootstrap.servers": self.bootstrap, "group.id": self.group, "enable.auto.commit": False,
                "auto.offset.reset": "earliest", "session.timeout.ms": 10000}

    def consume(self):
        c = self.ck.Consumer(self.conf())
        c.subscribe([self.topic])
        while not self.stop_flag.is_set():
            msgs = c.consume(num_messages=200, timeout=0.5)
            if msgs:
                try:
                    c.commit(asynchronous=False)
                except self.ck.KafkaException:
                    pass
        c.close()

    def watch(self):
        c = self.ck.Consumer(self.conf())
        last = {}
        tps = [self.ck.TopicPartition(self.topic, p) for p in range(self.partitions)]
        while not self.stop_flag.is_set():
            try:
                for tp in c.committed(tps, timeout=5):
                    if tp.offset < 0:
                        continue
                    self.samples += 1
                    if tp.offset < last.get(tp.partition, -1):
                        self.backwards.append((tp.partition, last[tp.partition], tp.offset))
                    last[tp.partition] = max(last.get(tp.partition, -1), tp.offset)
            except self.ck.KafkaException:
                pass
            time.sleep(0.5)
        c.close()

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=30)


def read_back(ck, bootstrap, topic, partitions, timeout=120, isolation="read_uncommitted"):
    """Every record of every partition, from the start to the high watermark: {p: [(offset, value)]}.
    With read_committed, a partition ends at its end-of-partition event at the high watermark
    (its last offset may be a transaction marker, which a consumer never sees)."""
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": f"readback-{topic}",
                     "enable.auto.commit": False, "auto.offset.reset": "earliest",
                     "enable.partition.eof": True, "isolation.level": isolation})
    try:
        hw = {}
        deadline = time.monotonic() + timeout
        for p in range(partitions):
            while True:
                try:
                    lo, hi = c.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10)
                    hw[p] = hi
                    break
                except ck.KafkaException as e:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"no watermarks for partition {p}: {e}")
                    time.sleep(0.5)
        c.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(partitions)])
        out = defaultdict(list)
        done = {p for p in range(partitions) if hw[p] == 0}
        while len(done) < partitions:
            if time.monotonic() > deadline:
                raise RuntimeError(f"read-back incomplete after {timeout}s: "
                                   f"{ {p: len(out[p]) for p in range(partitions)} } of {hw}")
            for m in c.consume(num_messages=1000, timeout=1.0):
                if m.error():
                    if m.error().code() == ck.KafkaError._PARTITION_EOF:
                        if m.offset() >= hw[m.partition()]:
                            done.add(m.partition())
                        continue
                    log(f"read-back error: {m.error()}")
                    continue
                out[m.partition()].append((m.offset(), m.value()))
                if m.offset() + 1 >= hw[m.partition()]:
                    done.add(m.partition())
        return out, hw
    finally:
        c.close()


def check(work, records, hw):
    """Returns (counts, problems)."""
    problems = []
    acked = dict(work.acked)
    seen = Counter()
    misplaced = 0
    good, unexpected, order = txn_workload.scan(records, work.run_id, lambda p, seq: (p, seq) in work.attempted,
                                                problems)
    read = sum(len(v) for v in records.values())
    for p, offset, seq in good:
        seen[(p, seq)] += 1
        if (p, seq) in acked and acked[(p, seq)] != offset and seen[(p, seq)] == 1:
            misplaced += 1
            if misplaced <= 20:
                problems.append(f"p{p}: seq {seq} acknowledged at offset {acked[(p, seq)]}, read at {offset}")
    lost = [k for k in acked if seen[k] == 0]
    dup = sum(n - 1 for n in seen.values() if n > 1)
    for k in lost[:20]:
        problems.append(f"lost: partition {k[0]} seq {k[1]} (acknowledged at offset {acked[k]})")
    if dup:
        problems.append(f"{dup} duplicated record(s): "
                        + ", ".join(f"p{k[0]} seq {k[1]} x{n}" for k, n in seen.items() if n > 1)[:500])
    counts = {
        "attempted": len(work.attempted), "acknowledged": len(acked), "read": read, "lost": len(lost),
        "duplicated": dup, "never_produced": unexpected, "out_of_order": order,
        "ack_offset_mismatch": misplaced, "unacknowledged_but_read": sum(1 for k in seen if k not in acked),
        "high_watermarks": sum(hw.values()),
    }
    return counts, problems


# --- the schedule ------------------------------------------------------------------------------------
def schedule(rng, n, kinds):
    return [(rng.choice(kinds), rng.uniform(1.0, 4.0), rng.uniform(1.0, 2.0)) for _ in range(n)]


def run_fault(kind, duration, nodes, net, rng):
    ids = [n.id for n in nodes]
    by_id = {n.id: n for n in nodes}
    if kind == "kill":
        n = by_id[rng.choice(ids)]
        n.kill9()
        time.sleep(duration)
        n.start()
        wait_serving([n], timeout=60)
        return f"kill -9 node {n.id}, down {duration:.1f}s, restarted"
    if kind == "pause":
        n = by_id[rng.choice(ids)]
        n.pause()
        time.sleep(duration)
        n.resume()
        return f"SIGSTOP node {n.id} for {duration:.1f}s"
    if kind == "cut":
        a, b = rng.sample(ids, 2)
        net.cut(a, b)
        time.sleep(duration)
        net.heal(a, b)
        return f"cut {a}<->{b} for {duration:.1f}s"
    if kind == "isolate":
        a = rng.choice(ids)
        others = [i for i in ids if i != a]
        for b in others:
            net.cut(a, b)
        time.sleep(duration)
        for b in others:
            net.heal(a, b)
        return f"isolate node {a} from {others} for {duration:.1f}s"
    raise ValueError(kind)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faults", type=int, default=10)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--rate", type=float, default=400.0, help="records per second")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--no-netns", action="store_true", help="127.0.0.1 only: no network cuts")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--json", default=None, help="also write the result here")
    ap.add_argument("--kinds", default=None, help="comma-separated fault kinds (default: all available)")
    ap.add_argument("--transactional", action="store_true",
                    help="a transactional producer and read_committed checks (txn_workload.py)")
    ap.add_argument("--client-debug", default=None, help="librdkafka debug contexts (e.g. eos,msg), "
                    "logged to WORKDIR/producer-debug.log")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    binary = Path(os.environ.get("CHRONIK_BIN", REPO / "target" / "release" / "chronik-server"))
    if not binary.is_file():
        sys.exit(f"chronik binary {binary} missing: cargo build --release (or set CHRONIK_BIN)")
    try:
        import confluent_kafka as ck
    except ImportError:
        sys.exit("confluent_kafka missing: run scripts/install-test-deps.sh and use .deps/venv/bin/python")

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="chronik-faults-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log(f"seed {seed}, {args.faults} faults, {args.partitions} partitions, workdir {workdir}")
    net = None
    if not args.no_netns:
        try:
            net = Net([1, 2, 3])
            net.up()
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            if net:
                net.down()
            net = None
            log(f"!!!! no network namespaces ({e}): network cuts are LEFT OUT of the schedule")
    else:
        log("!!!! --no-netns: network cuts are LEFT OUT of the schedule")
    kinds = ["kill", "pause", "cut", "isolate"] if net else ["kill", "pause"]
    if args.kinds:
        kinds = [k for k in args.kinds.split(",") if k in kinds]
    nodes = []
    result = {"seed": seed, "faults": [], "ok": False}
    try:
        if net:
            net.enter_client()
        nodes = [Node(i, workdir, net, lambda: peers, binary) for i in (1, 2, 3)]
        peers = ",".join(f"{n.id}@{n.ip}:{n.raft_port}" for n in nodes)
        for n in nodes:
            n.start()
        wait_serving(nodes)
        bootstrap = ",".join(n.bootstrap for n in nodes)
        topic = f"checked-{seed}"
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": bootstrap})
        futs = admin.create_topics([NewTopic(topic, num_partitions=args.partitions, replication_factor=3)],
                                   operation_timeout=30)
        futs[topic].result(timeout=60)
        log(f"topic {topic}: {args.partitions} partitions, replication factor 3")

        versions = api_versions(nodes[0].bootstrap)
        missing = [name for k, name in GROUP_API_KEYS.items() if k not in versions]
        monitor = None
        if args.transactional:
            log("transactional mode: the committed-offsets check is not part of it")
        elif missing:
            log(f"!!!! SKIPPING the committed-offsets check: the broker does not serve {', '.join(missing)} "
                f"(consumer groups are not in this build)")
        else:
            monitor = OffsetMonitor(ck, bootstrap, topic, args.partitions, f"checker-{seed}")

        debug = (args.client_debug, str(workdir / "producer-debug.log")) if args.client_debug else None
        if args.transactional:
            work = txn_workload.TxnWorkload(ck, bootstrap, topic, args.partitions, f"r{seed}", args.rate, log=log)
        else:
            work = Workload(ck, bootstrap, topic, args.partitions, f"r{seed}", args.rate, debug)
        work.start()
        if monitor:
            monitor.start()
        time.sleep(2.0)
        t0 = time.monotonic()
        for i, (kind, duration, pause) in enumerate(schedule(rng, args.faults, kinds), 1):
            what = run_fault(kind, duration, nodes, net, rng)
            result["faults"].append(what)
            acked = work.acknowledged()
            log(f"fault {i}/{args.faults}: {what}; acknowledged so far {acked}")
            for n in nodes:
                if not n.alive() and not n.killed_on_purpose:
                    raise RuntimeError(f"node {n.id} died (exit {n.proc.returncode})\n{tail(n, 80)}")
            time.sleep(pause)
        log(f"schedule done in {time.monotonic() - t0:.0f}s; healing, then 3 s of healthy traffic")
        if net:
            net.heal_all()
        for n in nodes:
            n.resume()
            if not n.alive():
                n.start()
        wait_serving(nodes)
        time.sleep(3.0)
        work.stop()
        if monitor:
            monitor.stop()
        if args.transactional:
            records, hw = read_back(ck, bootstrap, topic, args.partitions, isolation="read_committed")
            counts, problems = txn_workload.check(work, records)
            counts["high_watermarks"] = sum(hw.values())
        else:
            records, hw = read_back(ck, bootstrap, topic, args.partitions)
            counts, problems = check(work, records, hw)
        if work.failed:
            log(f"produce errors (unacknowledged, allowed): {dict(work.failed)}")
        if getattr(work, "fatal", None):
            log(f"fatal producer errors: {work.fatal[:3]} ({len(work.fatal)} in all)")
        if monitor:
            counts["committed_offset_samples"] = monitor.samples
            counts["committed_offsets_backwards"] = len(monitor.backwards)
            problems += [f"committed offset of p{p} went from {a} to {b}" for p, a, b in monitor.backwards[:20]]
        elif not args.transactional:
            counts["committed_offsets_check"] = "SKIPPED (no consumer group APIs)"
        crashed = [n.id for n in nodes for line in n.log_text().splitlines() if "panicked" in line]
        if crashed:
            problems.append(f"panics in the logs of nodes {sorted(set(crashed))}")
        result.update(counts=counts, problems=problems, ok=not problems)
        print("\n==== faults injected", flush=True)
        for i, f in enumerate(result["faults"], 1):
            print(f"  {i:3d}. {f}")
        print("==== counts")
        for k, v in counts.items():
            print(f"  {k:28s} {v}")
        if problems:
            print("==== PROBLEMS")
            for pr in problems[:60]:
                print(f"  {pr}")
        print(f"==== {'PASS' if not problems else 'FAIL'} (seed {seed})", flush=True)
    finally:
        for n in nodes:
            n.stop()
        if net:
            net.down()
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
        if result.get("ok") and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"work directory kept: {workdir}")
    sys.exit(0 if result.get("ok") else 1)


if __name__ == "__main__":
    main()
