"""A three-node chronik cluster of real processes on 127.0.0.1, for tests/interop/test_cluster.py and
scripts/soak-cluster.sh.

Each node is
    $CHRONIK_BIN raft-cluster --node-id N --advertised-addr 127.0.0.1 --kafka-port KP_N
        --raft-addr 127.0.0.1:RP_N --data-dir DIR/nodeN --peers "1@127.0.0.1:RP_1,..."
with its stdout+stderr in DIR/nodeN.log. A node serves Kafka only after `__meta` has registered it,
i.e. once a quorum is up, so `Cluster.start()` launches every node before waiting on any port.

Everything that reads elections out of the nodes goes through `election_stats()`, so that it can be
switched from log parsing to a metrics endpoint in one place.

Usable without pytest (the soak script imports it): failures raise `ClusterError`.
"""
import atexit
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path

import kafka_wire

REPO = Path(__file__).resolve().parents[2]
# chronik reads CHRONIK_* environment variables as configuration and rejects unknown ones.
HARNESS_ENV = ("CHRONIK_BIN",)
META = "__meta"
_LIVE = set()


class ClusterError(AssertionError):
    pass


@atexit.register
def _kill_leftovers():
    for p in list(_LIVE):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGCONT)  # a paused node cannot die otherwise
            except OSError:
                pass
            p.kill()
            p.wait(timeout=10)


def chronik_bin():
    return Path(os.environ.get("CHRONIK_BIN", REPO / "target" / "release" / "chronik-server"))


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (all held open together so that none repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# --- one node --------------------------------------------------------------------------------------
class Node:
    def __init__(self, cluster, node_id, kafka_port, raft_port, admin_port):
        self.cluster = cluster
        self.id = node_id
        self.kafka_port = kafka_port
        self.raft_port = raft_port
        self.bootstrap = f"127.0.0.1:{kafka_port}"
        # Every node serves the admin API (status, faults, /metrics) on a port of its own.
        self.admin_port = admin_port
        self.admin = f"127.0.0.1:{admin_port}"
        self.data_dir = cluster.workdir / f"node{node_id}"
        self.log_path = cluster.workdir / f"node{node_id}.log"
        self.proc = None
        self.started_at = None  # time.monotonic() of the latest start
        self.starts = 0
        self.killed_on_purpose = False
        self.paused = False
        self.node_env = {}  # CHRONIK_* entries for this node only
        self.join = None  # a member's raft address: start with --join it instead of --peers

    def command(self):
        return [str(self.cluster.bin), "raft-cluster", "--node-id", str(self.id),
                "--advertised-addr", "127.0.0.1", "--kafka-port", str(self.kafka_port),
                "--raft-addr", f"127.0.0.1:{self.raft_port}", "--data-dir", str(self.data_dir),
                *(["--join", self.join] if self.join else ["--peers", self.cluster.peers]),
                # Nodes share a machine: each has its own admin port, never the default 9300.
                "--admin-listen", self.admin, *self.cluster.extra_args]

    def start(self, nice=0):
        """Starts the node; `nice` > 0 starts it at a lower CPU priority (a test of one node's
        effect on the others stands in for separate machines on a shared one)."""
        b = self.cluster.bin
        if not b.is_file() or not os.access(b, os.X_OK):
            raise ClusterError(f"chronik binary {b} is missing or not executable: build it with "
                               f"`cargo build --release` or set CHRONIK_BIN")
        assert not self.alive(), f"node {self.id} is already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = self.command()
        env = {k: v for k, v in os.environ.items() if k not in HARNESS_ENV}
        env.update(self.cluster.env)
        env.update(self.node_env)
        self.starts += 1
        self.killed_on_purpose = False
        with open(self.log_path, "ab") as log:
            log.write(f"===== start #{self.starts}: {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env,
                                         preexec_fn=(lambda: os.nice(nice)) if nice else None)
        self.started_at = time.monotonic()
        _LIVE.add(self.proc)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def serving(self, timeout=2.0):
        """The Kafka port answers ApiVersions v0 (it is only opened once the node is registered)."""
        try:
            return kafka_wire.api_versions_ok(self.bootstrap, timeout=timeout)
        except (OSError, AssertionError, ValueError):
            return False

    def pause(self):
        """SIGSTOP: the process keeps its sockets but does nothing (a hung node)."""
        assert self.alive()
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.proc is not None and self.paused:
            self.proc.send_signal(signal.SIGCONT)
            self.paused = False

    def kill9(self):
        assert self.alive(), f"kill9(): node {self.id} is not running"
        self.killed_on_purpose = True
        self.resume()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        _LIVE.discard(self.proc)

    def stop(self, grace=10):
        if self.proc is None:
            return
        self.resume()
        if self.proc.poll() is None:
            self.killed_on_purpose = True
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        _LIVE.discard(self.proc)

    def log_text(self, since=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_size(self):
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_tail(self, n=60):
        lines = self.log_text().splitlines()[-n:]
        return f"--- last {len(lines)} lines of {self.log_path} ---\n" + "\n".join(lines)

    def group_dirs(self):
        """Names of the partition-group directories DIR/nodeN/groups/<id>."""
        d = self.data_dir / "groups"
        return {p.name for p in d.iterdir()} if d.is_dir() else set()


# --- the cluster -----------------------------------------------------------------------------------
class Cluster:
    def __init__(self, workdir, size=3, env=None, extra_args=()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.bin = chronik_bin()
        self.env = dict(env or {})
        self.extra_args = list(extra_args)
        ports = free_ports(3 * size)
        self.nodes = {i + 1: Node(self, i + 1, ports[3 * i], ports[3 * i + 1], ports[3 * i + 2])
                      for i in range(size)}
        self.peers = ",".join(f"{n.id}@127.0.0.1:{n.raft_port}" for n in self.nodes.values())
        self.started_at = None

    def __getitem__(self, node_id):
        return self.nodes[node_id]

    @property
    def bootstrap(self):
        return ",".join(n.bootstrap for n in self.nodes.values())

    def start(self, order=None, wait=True, timeout=30):
        """Launch the nodes (all of them, or `order`), then wait until each launched node serves."""
        ids = list(order or self.nodes)
        if self.started_at is None:
            self.started_at = time.monotonic()
        for i in ids:
            self.nodes[i].start()
        if wait:
            self.wait_serving(ids, timeout=timeout)

    def wait_serving(self, ids=None, timeout=30):
        """Bounded wait until every node in `ids` answers ApiVersions; returns {id: seconds from
        that node's start}."""
        ids = list(ids or self.nodes)
        deadline = time.monotonic() + timeout
        ready = {}
        while time.monotonic() < deadline and len(ready) < len(ids):
            for i in ids:
                n = self.nodes[i]
                if i in ready:
                    continue
                if not n.alive():
                    raise ClusterError(f"node {i} exited with code {n.proc.returncode} during "
                                       f"startup\n{n.log_tail(80)}")
                if n.serving(timeout=1):
                    ready[i] = time.monotonic() - n.started_at
            time.sleep(0.1)
        missing = [i for i in ids if i not in ready]
        if missing:
            raise ClusterError(f"nodes {missing} not serving Kafka after {timeout}s\n"
                               + "\n".join(self.nodes[i].log_tail(40) for i in ids))
        return ready

    def stop(self):
        for n in self.nodes.values():
            n.stop()

    def dead_nodes(self):
        """Nodes that exited without the harness stopping them."""
        return [n.id for n in self.nodes.values()
                if n.proc is not None and not n.alive() and not n.killed_on_purpose]

    def check_alive(self):
        dead = self.dead_nodes()
        if dead:
            raise ClusterError(f"node(s) {dead} died: "
                               + "\n".join(f"node {i} exit code {self.nodes[i].proc.returncode}\n"
                                           f"{self.nodes[i].log_tail(60)}" for i in dead))

    def log_marks(self):
        """Current size of every node's log: pass to election_stats(since=...) to look only at
        what is logged afterwards."""
        return {i: n.log_size() for i, n in self.nodes.items()}

    def logs(self, since=None):
        since = since or {}
        return {i: n.log_text(since.get(i, 0)) for i, n in self.nodes.items()}

    def log_tails(self, n=60):
        return "\n".join(node.log_tail(n) for node in self.nodes.values())

    def grep(self, pattern, since=None):
        """All log lines matching `pattern` (regex), as (node id, line)."""
        rx = re.compile(pattern)
        return [(i, line) for i, text in self.logs(since).items()
                for line in text.splitlines() if rx.search(line)]


# --- log parsing: elections ------------------------------------------------------------------------
# raft-rs lines carry chronik's logger fields: `..., raft_id: N, group: __meta` for the metadata
# group and `..., raft_id: N, partition: P, topic: NAME` for a partition group.
_GROUP_RX = re.compile(r"raft_id: (\d+), (?:group: (__meta)|partition: (\d+), topic: ([^,\s]+))")
_LEADER_RX = re.compile(r"became leader at term (\d+)")
_ELECTION_RX = re.compile(r"starting a new election")
_CANDIDATE_RX = re.compile(r"became (pre-candidate|candidate) at term (\d+)")
_TERM_RX = re.compile(r"\bterm: (\d+)")
_TS_RX = re.compile(r"^(\w{3} +\d+ \d\d:\d\d:\d\d\.\d+)")
_STARTED_RX = re.compile(r"partition started, group: (\d+), partition: (\d+), topic: ([^,\s]+)")


def group_key(line):
    """'__meta' or 'TOPIC/PARTITION' for a raft-rs log line, or None."""
    m = _GROUP_RX.search(line)
    if not m:
        return None
    return META if m.group(2) else f"{m.group(4)}/{m.group(3)}"


def log_time(line):
    """Seconds since midnight of a slog line's timestamp (`Nov 26 14:08:22.130`), or None."""
    m = _TS_RX.match(line)
    if not m:
        return None
    hms = m.group(1).split()[-1]
    h, mi, s = hms.split(":")
    return int(h) * 3600 + int(mi) * 60 + float(s)


class ElectionStats:
    """Per group: elections won (`became leader` lines on any node), elections started, candidate
    transitions, the highest term seen, and the nodes that won."""

    def __init__(self):
        self.won = Counter()
        self.started = Counter()
        self.candidacies = Counter()
        self.max_term = defaultdict(int)
        self.winners = defaultdict(list)  # group -> [(node, term, time-of-day seconds)]
        self.first_start = {}  # group -> time-of-day of the first `starting a new election`

    def groups(self, topic=None):
        keys = set(self.won) | set(self.started) | set(self.max_term)
        if topic is not None:
            keys = {k for k in keys if k.startswith(topic + "/")}
        return sorted(keys)

    def overall_max_term(self, groups=None):
        groups = self.groups() if groups is None else groups
        return max((self.max_term[g] for g in groups), default=0)

    def table(self, groups=None):
        groups = self.groups() if groups is None else groups
        rows = [f"{'group':<40} {'won':>4} {'started':>8} {'max term':>9}  winners (node@term)"]
        for g in groups:
            w = " ".join(f"{n}@{t}" for n, t, _ in self.winners[g])
            rows.append(f"{g:<40} {self.won[g]:>4} {self.started[g]:>8} {self.max_term[g]:>9}  {w}")
        return "\n".join(rows)


def election_stats(cluster, since=None):
    """Elections per group, read from the nodes' logs (from `since`, a `log_marks()` result, on).
    The one place to switch to a metrics endpoint once there is one."""
    st = ElectionStats()
    for node_id, text in cluster.logs(since).items():
        for line in text.splitlines():
            if "raft_id:" not in line:
                continue
            g = group_key(line)
            if g is None:
                continue
            m = _TERM_RX.search(line)
            if m:
                st.max_term[g] = max(st.max_term[g], int(m.group(1)))
            m = _LEADER_RX.search(line)
            if m:
                st.won[g] += 1
                st.winners[g].append((node_id, int(m.group(1)), log_time(line)))
                st.winners[g].sort(key=lambda w: (w[1], w[2] or 0))
                continue
            if _ELECTION_RX.search(line):
                st.started[g] += 1
                t = log_time(line)
                if t is not None and (g not in st.first_start or t < st.first_start[g]):
                    st.first_start[g] = t
                continue
            if _CANDIDATE_RX.search(line):
                st.candidacies[g] += 1
    return st


def group_ids_from_logs(cluster, topic):
    """{partition: group id} from `partition started` lines (any node)."""
    out = {}
    for _, line in cluster.grep(r"partition started, group: \d+, partition: \d+, topic: "
                                + re.escape(topic) + r"(,|\s|$)"):
        m = _STARTED_RX.search(line)
        if m and m.group(3) == topic:
            out[int(m.group(2))] = m.group(1)
    return out


# --- the admin CLI ---------------------------------------------------------------------------------
def status_cli_help():
    p = subprocess.run([str(chronik_bin()), "cluster", "status", "--help"], capture_output=True,
                       text=True, timeout=20, env=_cli_env())
    return p.stdout + p.stderr


def _cli_env():
    return {k: v for k, v in os.environ.items() if k not in HARNESS_ENV}


def cluster_status(admin, timeout=30, checksums=True):
    """`chronik-server cluster status --admin HOST:PORT --json` (a node's admin API address,
    `node.admin`), parsed; without `checksums` (`--no-checksums`) no replica reads its log for
    one. Raises ClusterError with the command's output when it fails or prints something that is
    not one JSON object."""
    cmd = [str(chronik_bin()), "cluster", "status", "--admin", admin, "--json"]
    if not checksums:
        cmd.append("--no-checksums")
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_cli_env())
    except subprocess.TimeoutExpired:
        raise ClusterError(f"`{' '.join(cmd)}` timed out after {timeout}s")
    if p.returncode != 0:
        raise ClusterError(f"`{' '.join(cmd)}` exited {p.returncode}\nstdout: {p.stdout[-3000:]}\n"
                           f"stderr: {p.stderr[-3000:]}")
    try:
        doc = json.loads(p.stdout)
    except ValueError as e:
        raise ClusterError(f"`{' '.join(cmd)}` did not print JSON ({e})\nstdout: {p.stdout[-3000:]}")
    if not isinstance(doc, dict):
        raise ClusterError(f"`{' '.join(cmd)}` printed JSON that is not an object: {p.stdout[:500]}")
    return doc


def status_groups(doc, topic=None):
    """The per-node group rows of a status document (optionally only those of `topic`)."""
    rows = doc.get("groups")
    if rows is None:
        raise ClusterError(f"cluster status has no `groups` field; keys: {sorted(doc)}")
    if topic is not None:
        rows = [r for r in rows if r.get("topic") == topic]
    return rows


def node_counter(doc, name):
    """{node id: value} of a per-node counter (e.g. deserialization_failures_total), accepting either
    a `nodes` array of objects or per-node fields in `brokers`. Raises ClusterError when absent."""
    found = {}
    for key in ("nodes", "brokers"):
        for n in doc.get(key) or []:
            if isinstance(n, dict) and name in n:
                nid = n.get("node", n.get("node_id", n.get("id")))
                found[int(nid)] = n[name]
    if not found and name in doc:
        v = doc[name]
        if isinstance(v, dict):
            found = {int(k): x for k, x in v.items()}
    if not found:
        raise ClusterError(f"cluster status reports no `{name}` per node (looked in `nodes`, "
                           f"`brokers` and the top level); top-level keys: {sorted(doc)}; "
                           f"brokers: {json.dumps(doc.get('brokers'))[:800]}")
    return found


# --- formation (shared by the test and the soak script) ---------------------------------------------
def formation_check(cluster, topic, partitions, idle_seconds, leader_timeout=10.0, log=print):
    """Expects `topic` just created with `partitions` partitions at RF 3 on a fresh cluster, and every
    group already led. Sits idle for `idle_seconds`, then returns (stats over the whole run, stats of
    the idle window, problems found)."""
    mark = cluster.log_marks()
    t_idle = time.monotonic()
    step, next_note = 10, 60
    while time.monotonic() - t_idle < idle_seconds:
        time.sleep(min(step, max(0.0, idle_seconds - (time.monotonic() - t_idle))))
        cluster.check_alive()
        waited = time.monotonic() - t_idle
        if waited >= next_note and waited < idle_seconds:
            so_far = election_stats(cluster, since=mark)
            log(f"idle {waited:.0f}/{idle_seconds:.0f} s: {sum(so_far.started.values())} elections "
                f"started, {sum(so_far.won.values())} won so far")
            next_note += 60
    idle = election_stats(cluster, since=mark)
    whole = election_stats(cluster)
    groups = [META] + [f"{topic}/{p}" for p in range(partitions)]
    problems = []
    for g in groups:
        if whole.won[g] != 1:
            problems.append(f"{g}: {whole.won[g]} elections won (want exactly 1)")
    max_term = whole.overall_max_term(groups)
    if max_term > 2:
        problems.append(f"max term {max_term} > 2")
    busy = {g: idle.started[g] + idle.candidacies[g] + idle.won[g] for g in idle.groups() if
            idle.started[g] or idle.candidacies[g] or idle.won[g]}
    if busy:
        problems.append(f"elections during the {idle_seconds:.0f} s idle window: {busy}")
    lines = cluster.grep(r"starting a new election|became (pre-)?candidate|became leader",
                         since=mark)
    if lines:
        problems.append("election log lines in the idle window:\n" +
                        "\n".join(f"  node {i}: {l[:220]}" for i, l in lines[:30]))
    log(f"elections per group (whole run), max term {max_term}:\n{whole.table(groups)}")
    return whole, idle, problems


# --- Metadata v1 straight to one node (no client-side caching or broker hopping) --------------------
class TopicMeta:
    def __init__(self, name, error, partitions):
        self.name, self.error, self.partitions = name, error, partitions  # {p: PartitionMeta}

    def leaders(self):
        return {p: pm.leader for p, pm in self.partitions.items()}

    def all_led(self, count=None):
        return (self.error == 0 and (count is None or len(self.partitions) == count)
                and all(pm.error == 0 and pm.leader >= 0 for pm in self.partitions.values()))

    def __repr__(self):
        return (f"TopicMeta({self.name}, error={self.error}, "
                + ", ".join(f"{p}: leader {pm.leader} replicas {pm.replicas} isr {pm.isr} err {pm.error}"
                            for p, pm in sorted(self.partitions.items())) + ")")


class PartitionMeta:
    def __init__(self, error, leader, replicas, isr):
        self.error, self.leader, self.replicas, self.isr = error, leader, replicas, isr


def metadata(bootstrap, topics=None, timeout=5.0):
    """Metadata v1 sent to exactly `bootstrap` -> (brokers {id: (host, port)}, controller id,
    {topic: TopicMeta}). topics=None asks for all topics.
    v1 request: topics [string] (null = all). v1 response: brokers [node_id i32, host string,
    port i32, rack nullable string], controller_id i32, topics [error i16, name string,
    is_internal i8, partitions [error i16, index i32, leader i32, replicas [i32], isr [i32]]]."""
    w = kafka_wire
    body = w.i32(-1) if topics is None else w.array([w.string(t) for t in topics])
    r = w.Reader(w.roundtrip(bootstrap, 3, 1, body, timeout=timeout))
    brokers = {}
    for _ in range(r.i32()):
        nid, host, port = r.i32(), r.string(), r.i32()
        r.string()  # rack
        brokers[nid] = (host, port)
    controller = r.i32()
    out = {}
    for _ in range(r.i32()):
        err, name = r.i16(), r.string()
        r.pos += 1  # is_internal
        parts = {}
        for _ in range(r.i32()):
            perr, idx, leader = r.i16(), r.i32(), r.i32()
            replicas = [r.i32() for _ in range(r.i32())]
            isr = [r.i32() for _ in range(r.i32())]
            parts[idx] = PartitionMeta(perr, leader, replicas, isr)
        out[name] = TopicMeta(name, err, parts)
    return brokers, controller, out


def wait_led(bootstrap, topic, partitions, timeout, poll=0.1):
    """Poll Metadata on one node until `topic` has `partitions` partitions, each with a leader.
    Returns (seconds waited, TopicMeta); raises ClusterError with the last answer at the deadline."""
    t0 = time.monotonic()
    last = None
    while True:
        try:
            _, _, topics = metadata(bootstrap, [topic], timeout=min(5.0, timeout))
            last = topics.get(topic)
            if last is not None and last.all_led(partitions):
                return time.monotonic() - t0, last
        except (OSError, AssertionError, ValueError, IndexError) as e:
            last = repr(e)
        if time.monotonic() - t0 >= timeout:
            raise ClusterError(f"{topic}: not all {partitions} partitions led through {bootstrap} "
                               f"after {timeout}s; last answer: {last}")
        time.sleep(poll)


# --- metrics, runtime faults and process figures (test_stability.py, scripts/soak-stability.sh) ----
# Each node serves Prometheus text at http://ADMIN/metrics: every node has its own admin port
# (its --admin-listen).
_SAMPLE_RX = re.compile(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)\s*$")
_LABEL_RX = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def enable_metrics(cluster):
    """Kept for the callers: every node already serves /metrics on its own admin port."""
    return cluster


class Metrics:
    """One scrape of one node's /metrics: `samples` is a list of (name, {label: value}, float)."""

    def __init__(self, node_id, text, at=None):
        self.node = node_id
        self.text = text
        self.at = time.monotonic() if at is None else at
        self.samples = []
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = _SAMPLE_RX.match(line)
            if not m:
                continue
            labels = dict(_LABEL_RX.findall(m.group(2) or ""))
            try:
                value = float(m.group(3))
            except ValueError:
                continue
            self.samples.append((m.group(1), labels, value))

    def series(self, name, **match):
        """[(labels, value)] of metric `name` whose labels include every `match` item."""
        want = {k: str(v) for k, v in match.items()}
        return [(l, v) for n, l, v in self.samples
                if n == name and all(l.get(k) == x for k, x in want.items())]

    def by(self, name, key, **match):
        """{labels[key]: value} of metric `name` (filtered by `match`)."""
        return {l.get(key): v for l, v in self.series(name, **match)}

    def total(self, name, **match):
        return sum(v for _, v in self.series(name, **match))

    def groups(self):
        """{group: {term, leader (0/1), role, started, won, leader_changes, apply_lag}} of this node
        (computed once per scrape)."""
        if getattr(self, "_groups", None) is None:
            self._groups = self._parse_groups()
        return self._groups

    def _parse_groups(self):
        out = defaultdict(dict)
        for key, name in (("term", "chronik_raft_term"), ("started", "chronik_raft_elections_started_total"),
                          ("won", "chronik_raft_elections_won_total"),
                          ("leader_changes", "chronik_raft_leader_changes_total"),
                          ("apply_lag", "chronik_apply_lag_entries")):
            for l, v in self.series(name, node=self.node):
                out[l.get("group")][key] = int(v)
        for l, v in self.series("chronik_raft_is_leader", node=self.node):
            out[l.get("group")]["leader"] = int(v)
            out[l.get("group")]["role"] = l.get("role")
        return dict(out)

    def peers(self):
        """{peer id: {frames, bytes, heartbeat_frames, dropped, p50, p99, max (seconds), count, sum}}
        of this node's links. The heartbeat quantiles cover the last 4096 to 8192 heartbeat frames."""
        out = defaultdict(dict)
        for key, name in (("frames", "chronik_peer_frames_total"), ("bytes", "chronik_peer_bytes_total"),
                          ("heartbeat_frames", "chronik_peer_heartbeat_frames_total"),
                          ("dropped", "chronik_peer_dropped_messages_total"),
                          ("count", "chronik_heartbeat_interval_seconds_count"),
                          ("sum", "chronik_heartbeat_interval_seconds_sum")):
            for l, v in self.series(name, node=self.node):
                out[int(l["peer"])][key] = v
        for l, v in self.series("chronik_heartbeat_interval_seconds", node=self.node):
            q = {"0.5": "p50", "0.99": "p99", "1": "max", "1.0": "max"}.get(l.get("quantile"))
            if q:
                out[int(l["peer"])][q] = v
        return dict(out)

    def gaps(self):
        """{peer id: {upper bound in s (inf for +Inf): intervals at or below it}} of this node's
        links, from the chronik_heartbeat_gap_seconds histogram (cumulative counts since start)."""
        out = defaultdict(dict)
        for l, v in self.series("chronik_heartbeat_gap_seconds_bucket", node=self.node):
            out[int(l["peer"])][float(l["le"])] = v
        return dict(out)


def scrape(node, timeout=5.0):
    """GET /metrics from one node's admin API. Raises ClusterError."""
    import urllib.request
    url = f"http://{node.admin}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            text = r.read().decode("utf-8", "replace")
    except OSError as e:
        raise ClusterError(f"node {node.id}: GET {url} failed: {e!r}")
    return Metrics(node.id, text)


def scrape_all(cluster, ids=None, timeout=5.0):
    """{node id: Metrics} of the running nodes (or of `ids`)."""
    ids = [i for i in (ids or cluster.nodes) if cluster.nodes[i].alive()]
    return {i: scrape(cluster.nodes[i], timeout=timeout) for i in ids}


def wait_new_leaders(cluster, survivors, lost, old_term, t0, until):
    """After a kill at `t0` (time.monotonic()): {group: (survivor, seconds since t0)} for every
    group in `lost` that a survivor says it leads at a term above `old_term[group]`, polled from
    the survivors' metrics until all have one or `until` passes."""
    recovered = {}
    while len(recovered) < len(lost) and time.monotonic() < until:
        try:
            s = scrape_all(cluster, survivors, timeout=2)
        except (AssertionError, ClusterError, OSError):
            time.sleep(0.1)
            continue
        now = time.monotonic()
        for g in lost:
            if g in recovered:
                continue
            for i in survivors:
                f = s[i].groups().get(g, {})
                if f.get("leader") and f.get("term", 0) > old_term[g]:
                    recovered[g] = (i, now - t0)
        time.sleep(0.1)
    return recovered


def wait_metrics(cluster, timeout=20.0):
    """Bounded wait until every running node's metrics endpoint answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return scrape_all(cluster)
        except ClusterError as e:
            if time.monotonic() > deadline:
                raise ClusterError(f"metrics endpoints not answering after {timeout}s: {e}")
        time.sleep(0.2)


def election_counters(scrapes, groups=None):
    """{(node, group): (elections started, elections won, leader changes, term)} from scrapes."""
    out = {}
    for i, m in scrapes.items():
        for g, f in m.groups().items():
            if groups is None or g in groups:
                out[(i, g)] = (f.get("started", 0), f.get("won", 0), f.get("leader_changes", 0),
                               f.get("term", 0))
    return out


def counter_changes(before, after):
    """[(node, group, field, before, after)] where an election counter or the term moved. Groups
    absent from `before` count from 0 (a group created in between)."""
    fields = ("elections_started", "elections_won", "leader_changes", "term")
    out = []
    for key, vals in sorted(after.items()):
        old = before.get(key)
        if old is None:
            continue
        for f, a, b in zip(fields, old, vals):
            if a != b:
                out.append((key[0], key[1], f, a, b))
    return out


def leaders_from_metrics(scrapes, topic=None):
    """{group: [node ids reporting themselves leader]} from chronik_raft_is_leader."""
    out = defaultdict(list)
    for i, m in scrapes.items():
        for g, f in m.groups().items():
            if topic is not None and not g.startswith(topic + "/"):
                continue
            if f.get("leader"):
                out[g].append(i)
    return dict(out)


def heartbeat_table(scrapes):
    """Text table of heartbeat send intervals (ms) and frames per link; also returns the rows
    [(node, peer, figures)]."""
    rows = []
    for i, m in sorted(scrapes.items()):
        for p, f in sorted(m.peers().items()):
            rows.append((i, p, f))
    lines = [f"{'link':<8} {'hb p50':>8} {'hb p99':>8} {'hb max':>8} {'samples':>8} {'frames':>9} "
             f"{'hb frames':>10} {'MB':>8} {'dropped':>8}"]
    ms = lambda f, k: f"{f[k] * 1000:.1f}" if k in f else "-"
    for i, p, f in rows:
        lines.append(f"{i}->{p:<5} {ms(f, 'p50'):>8} {ms(f, 'p99'):>8} {ms(f, 'max'):>8} "
                     f"{int(f.get('count', 0)):>8} {int(f.get('frames', 0)):>9} "
                     f"{int(f.get('heartbeat_frames', 0)):>10} {f.get('bytes', 0) / 1e6:>8.1f} "
                     f"{int(f.get('dropped', 0)):>8}")
    return "\n".join(lines), rows


def run_faults(node, cut=(), heal=(), delay_ms=None, delay_to=(), timeout=20):
    """`chronik-server cluster faults --admin NODE_ADMIN ...` (the node needs
    CHRONIK_FAULTS__RUNTIME=true). Raises ClusterError on failure."""
    cmd = [str(chronik_bin()), "cluster", "faults", "--admin", node.admin]
    if cut:
        cmd += ["--cut", ",".join(map(str, cut))]
    if heal:
        cmd += ["--heal", ",".join(map(str, heal))]
    if delay_ms is not None:
        cmd += ["--delay-ms", str(delay_ms), "--delay-to", ",".join(map(str, delay_to))]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_cli_env())
    except subprocess.TimeoutExpired:
        raise ClusterError(f"`{' '.join(cmd)}` timed out after {timeout}s")
    if p.returncode != 0:
        raise ClusterError(f"`{' '.join(cmd)}` exited {p.returncode}\nstdout: {p.stdout[-2000:]}\n"
                           f"stderr: {p.stderr[-2000:]}")
    return p


def isolate(cluster, node_id, heal=False):
    """Cuts node `node_id` off from every other node in both directions, on both sides (the node
    drops frames to and from the others, and they drop frames to and from it); heal=True undoes it."""
    others = [i for i in cluster.nodes if i != node_id]
    key = "heal" if heal else "cut"
    run_faults(cluster.nodes[node_id], **{key: others})
    for i in others:
        run_faults(cluster.nodes[i], **{key: [node_id]})


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_figures(node):
    """(CPU seconds used so far = utime + stime, RSS bytes) of a running node, from /proc."""
    return pid_figures(node.proc.pid)


def pid_figures(pid):
    """(CPU seconds used so far = utime + stime, RSS bytes) of process `pid`, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()  # fields from `state` (field 3) on
    cpu = (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime (14), stime (15)
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return cpu, rss


def converged(rows):
    """`cluster status` rows of one partition, one per node (3): every replica applied what
    the one leader committed."""
    leaders = [r for r in rows if str(r.get("role", "")).lower() == "leader"]
    if len(rows) != 3 or len(leaders) != 1:
        return False
    lc = leaders[0].get("commit")
    return all(r.get("commit") == lc and r.get("applied") == lc for r in rows)


def status_by_group(doc, topic=None):
    """{(topic, partition): {node: row}} from a cluster status document."""
    out = defaultdict(dict)
    for r in status_groups(doc, topic):
        out[(r.get("topic"), r.get("partition"))][r.get("node")] = r
    return dict(out)
