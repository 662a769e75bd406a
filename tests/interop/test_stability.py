"""Stability under load and faults, on three real chronik processes on 127.0.0.1 (issue 5, "How it
is checked"). Every test starts its own cluster with a metrics endpoint per node and reads Raft
figures from `/metrics` (cluster.scrape()):

    1 load         3 partitions RF 3, ProducerPerformance 100,000 x 1 KiB at 10,000 msg/s acks=all:
                   no election, no leader change, no term change during the run; heartbeat send
                   intervals p50 and p99 within 150 ms +- 10 ms on every link (msg/s and latency
                   are printed, never asserted)
    2 slow apply   the same with every committed batch applied 500 ms late (10,000 at 1,000 msg/s in
                   large batches, see SLOW_PROPS): the producer completes without errors, no
                   election, heartbeats still +- 10 ms
    3 many groups  1,000 partitions at RF 3, idle STABILITY_IDLE_SECONDS (CI 45 s, issue: 120 s):
                   no election; at most 2 frames per node pair (both directions) per heartbeat
                   interval; idle
                   CPU and RSS per node printed
                   Heartbeat figures are printed next to a control: a sleeping thread of the test
                   process on the same 150 ms schedule (Canary), which shows how late this machine
                   wakes any thread in the same window.
    4 leader loss  kill -9 the node leading the most groups under an idempotent acks=all producer:
                   every group it led has a new leader within 2 x the election timeout, the producer
                   keeps getting acks, every acked record is read back exactly once and in order;
                   the node restarts, catches up (applied == leader's commit) and deposes nobody
    5 isolation    cut the node leading the most groups off for STABILITY_ISOLATION_SECONDS (CI 15 s,
                   issue: 30 s): its terms do not rise (PreVote), it steps down (CheckQuorum; within
                   the election timeout, the time is printed), the majority
                   re-elects and serves acks=all produce; after healing no election anywhere

scripts/soak-stability.sh runs test 1 for 30 minutes (STABILITY_LOAD_RECORDS / _RATE).

Settings used by every cluster: heartbeat 150 ms, election timeout 3 s (raft-rs randomizes it in
[3 s, 6 s)), tick 50 ms (default), PreVote and CheckQuorum on (chronik's defaults).

What the counters mean (chronik's metrics): `chronik_raft_elections_started_total` counts every
move from follower to pre-candidate or candidate (a failed pre-vote counts too);
`chronik_raft_leader_changes_total` counts every time a node learns a new leader id (the first one
included). "No election" below means none of started / won / leader changes / term moved on any
node for any group between two scrapes.
"""
import os
import re
import threading
import time
from collections import defaultdict

import pytest

import kafka_wire
from cluster import (META, Cluster, ClusterError, cluster_status, counter_changes, election_counters,
                     enable_metrics, heartbeat_table, isolate, leaders_from_metrics, proc_figures,
                     scrape_all, status_by_group, wait_led, wait_metrics, wait_new_leaders)
from helpers import PRODUCER_PERFORMANCE, java_tool, kcat, need_module, report, unique_topic

pytestmark = pytest.mark.chronik_only

HEARTBEAT = 0.150           # s, raft.heartbeat-interval
HB_TOLERANCE = 0.010        # s: heartbeat intervals p50 and p99 within HEARTBEAT +- this
ELECTION_TIMEOUT = 3.0      # s, raft.election-timeout (base; randomized in [T, 2T))
RAFT_ENV = {"CHRONIK_RAFT__HEARTBEAT_INTERVAL": "150ms", "CHRONIK_RAFT__ELECTION_TIMEOUT": "3s"}

LOAD_RECORDS = int(os.environ.get("STABILITY_LOAD_RECORDS", "100000"))
LOAD_RATE = int(os.environ.get("STABILITY_LOAD_RATE", "10000"))
RECORD_SIZE = int(os.environ.get("STABILITY_RECORD_SIZE", "1024"))
SLOW_APPLY = "500ms"
SLOW_RECORDS = int(os.environ.get("STABILITY_SLOW_RECORDS", "10000"))
SLOW_RATE = int(os.environ.get("STABILITY_SLOW_RATE", "1000"))
# chronik sleeps apply-delay before applying each committed record batch, on the node's one apply
# thread, and an acks=all answer waits for the leader's apply: a node applies 2 batches a second,
# whatever the partition. The producer therefore sends few, large batches (up to ~850 records of
# 1 KiB each) and waits long enough for them.
SLOW_PROPS = ("linger.ms=1000", "batch.size=900000", "request.timeout.ms=120000",
              "delivery.timeout.ms=300000")
MANY_PARTITIONS = int(os.environ.get("STABILITY_MANY_PARTITIONS", "1000"))
IDLE_SECONDS = float(os.environ.get("STABILITY_IDLE_SECONDS", "45"))
ISOLATION_SECONDS = float(os.environ.get("STABILITY_ISOLATION_SECONDS", "15"))
MAX_FRAMES_PER_INTERVAL = 2.0  # per node pair, both directions (chronik_peer_frames_total is per direction)
STEP_DOWN_SLACK = 1.0          # s, see test 5

PERF_LINE = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")
CLIENT_TROUBLE = re.compile(r"(^|\s)(ERROR|FATAL)(\s|$)|Exception\b|^\s+at [\w$.]+\(|"
                            r"NOT_LEADER|NotLeader|LEADER_NOT_AVAILABLE|LeaderNotAvailable", re.M)


# --- clusters --------------------------------------------------------------------------------------
@pytest.fixture
def make_cluster(request, tmp_path):
    """make_cluster(label, env) -> a started 3-node cluster with metrics; stopped at teardown, with
    the node logs' tails and ERROR lines printed when the test failed or a node died."""
    made = []

    def make(label, env=None, start_timeout=60):
        c = enable_metrics(Cluster(tmp_path / label, env={**RAFT_ENV, **(env or {})}))
        made.append((label, c))
        t0 = time.monotonic()
        c.start(timeout=start_timeout)
        wait_metrics(c)
        c.serving_after = time.monotonic() - t0
        return c

    yield make
    failed = any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False)
                 for w in ("setup", "call"))
    for label, c in made:
        dead = c.dead_nodes()
        c.stop()
        if dead or failed:
            print(f"\n===== {label}: node logs (tails) =====\n{c.log_tails(60)}")
            errs = c.grep(r"\b(ERRO|CRIT)\b")
            if errs:
                print(f"===== {label}: ERROR lines =====\n"
                      + "\n".join(f"node {i}: {l[:300]}" for i, l in errs[:40]))
        if dead and not failed:
            pytest.fail(f"{label}: node(s) {dead} exited unexpectedly", pytrace=False)


def create_topic(c, topic, partitions, via=1, timeout=120):
    """CreateTopics v2 at RF 3 straight to one node, then every node's Metadata shows a leader for
    every partition. Returns seconds from the request to all led."""
    t0 = time.monotonic()
    body = kafka_wire.roundtrip(c[via].bootstrap, kafka_wire.CREATE_TOPICS, 2,
                                kafka_wire.create_topics_v2_body(topic, partitions, 3,
                                                                 timeout_ms=int(timeout * 1000)),
                                timeout=timeout + 10)
    err, msg = kafka_wire.decode_create_topics_v2(body)[topic]
    assert err == 0, f"CreateTopics {topic} x {partitions} RF 3: error {err} {msg!r}"
    for n in c.nodes.values():
        wait_led(n.bootstrap, topic, partitions, timeout=max(1.0, timeout - (time.monotonic() - t0)),
                 poll=0.25)
    return time.monotonic() - t0


def groups_of(topic, partitions):
    return [META] + [f"{topic}/{p}" for p in range(partitions)]


def wait_formed(c, groups, timeout=60, ids=None):
    """Bounded wait until, in the metrics of the running nodes (or `ids`), every group has exactly
    one node saying it leads, every node hosts it at the same term and has learnt a leader.
    Returns (seconds waited, scrapes)."""
    t0 = time.monotonic()
    ids = ids or [i for i, n in c.nodes.items() if n.alive()]
    last = None
    while True:
        c.check_alive()
        s = scrape_all(c, ids)
        bad = {}
        for g in groups:
            rows = {i: s[i].groups().get(g) for i in ids}
            if any(r is None for r in rows.values()):
                bad[g] = f"not hosted on {[i for i, r in rows.items() if r is None]}"
            elif sum(r.get("leader", 0) for r in rows.values()) != 1:
                bad[g] = f"leaders {[i for i, r in rows.items() if r.get('leader')]}"
            elif len({r.get("term") for r in rows.values()}) != 1:
                bad[g] = f"terms {[(i, r.get('term')) for i, r in rows.items()]}"
            elif any(r.get("leader_changes", 0) < 1 for r in rows.values()):
                bad[g] = "a node knows no leader yet"
        if not bad:
            return time.monotonic() - t0, s
        last = bad
        if time.monotonic() - t0 > timeout:
            raise ClusterError(f"groups not formed after {timeout}s ({len(bad)} of {len(groups)}): "
                               + "; ".join(f"{g}: {w}" for g, w in list(last.items())[:20]))
        time.sleep(0.5)


def change_lines(changes, limit=40):
    return "\n".join(f"  node {n} {g}: {f} {a} -> {b}" for n, g, f, a, b in changes[:limit]) + (
        f"\n  ... {len(changes) - limit} more" if len(changes) > limit else "")


def max_term(scrapes, groups=None):
    return max((f.get("term", 0) for m in scrapes.values() for g, f in m.groups().items()
                if groups is None or g in groups), default=0)


def elections_table(scrapes, groups):
    """Per group: elections started / won summed over nodes, leader changes per node, max term."""
    rows = [f"{'group':<30} {'started':>8} {'won':>4} {'leader changes (per node)':>26} {'term':>5}"]
    for g in groups:
        fs = {i: m.groups().get(g, {}) for i, m in sorted(scrapes.items())}
        rows.append(f"{g:<30} {sum(f.get('started', 0) for f in fs.values()):>8} "
                    f"{sum(f.get('won', 0) for f in fs.values()):>4} "
                    f"{' '.join(str(f.get('leader_changes', '-')) for f in fs.values()):>26} "
                    f"{max((f.get('term', 0) for f in fs.values()), default=0):>5}")
    return "\n".join(rows)


class Sampler(threading.Thread):
    """Scrapes every node once a second while a load runs: the highest apply lag seen per node, and
    (for long runs) a progress line per minute. Bounded by stop()."""

    def __init__(self, c, label, progress_every=60.0):
        super().__init__(daemon=True)
        self.c, self.label, self.progress_every = c, label, progress_every
        self.stop_evt = threading.Event()
        self.max_apply_lag = defaultdict(int)
        self.first = None
        self.errors = []

    def run(self):
        t0 = time.monotonic()
        next_note = self.progress_every
        while not self.stop_evt.wait(1.0):
            try:
                s = scrape_all(self.c, timeout=5)
            except ClusterError as e:
                self.errors.append(str(e))
                continue
            if self.first is None:
                self.first = election_counters(s)
            for i, m in s.items():
                for f in m.groups().values():
                    self.max_apply_lag[i] = max(self.max_apply_lag[i], f.get("apply_lag", 0))
            if time.monotonic() - t0 >= next_note:
                moved = counter_changes(self.first, election_counters(s))
                print(f"{self.label}: {time.monotonic() - t0:.0f} s, max term {max_term(s)}, "
                      f"{len(moved)} election counter change(s) since the start", flush=True)
                next_note += self.progress_every

    def stop(self):
        self.stop_evt.set()
        self.join(timeout=15)


class Canary(threading.Thread):
    """A control for the heartbeat figures: a thread of the test process that sleeps until the next
    multiple of HEARTBEAT (an absolute schedule, like chronik's ticker) and records the intervals
    between its wake-ups. Its tail is how late the machine wakes a plain sleeping thread during
    the same window; printed with the heartbeat figures, never asserted."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop_evt = threading.Event()
        self.intervals = []

    def run(self):
        t0 = time.monotonic()
        last, k = t0, 0
        while not self.stop_evt.is_set() and k < 100_000:
            k += 1
            time.sleep(max(0.0, t0 + k * HEARTBEAT - time.monotonic()))
            now = time.monotonic()
            self.intervals.append(now - last)
            last = now

    def stop(self):
        self.stop_evt.set()
        self.join(timeout=5)
        return self

    def summary(self):
        v = sorted(self.intervals)
        if not v:
            return "scheduler canary: no samples"
        q = lambda x: v[min(len(v) - 1, round((len(v) - 1) * x))] * 1000
        return (f"scheduler canary (a sleeping thread of the test process, {HEARTBEAT * 1000:.0f} ms "
                f"schedule, {len(v)} wake-ups): p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms, max "
                f"{v[-1] * 1000:.1f} ms; {cpu_pressure()}")


def machine_stall(canary):
    """How late and how early (seconds) the canary's wake-ups came against its HEARTBEAT schedule
    in the window, each counted only when beyond HB_TOLERANCE (a stall the machine could not have
    kept a heartbeat through): (0, 0) without a canary."""
    if canary is None or not canary.intervals:
        return 0.0, 0.0
    late, early = max(canary.intervals) - HEARTBEAT, HEARTBEAT - min(canary.intervals)
    return (late if late > HB_TOLERANCE else 0.0), (early if early > HB_TOLERANCE else 0.0)


def cpu_pressure():
    """The machine's CPU pressure (Linux PSI) and load average, for the record."""
    try:
        with open("/proc/pressure/cpu") as f:
            some = f.readline().split()
        psi = "CPU pressure " + " ".join(some[1:3])
    except OSError:
        psi = "CPU pressure n/a"
    return f"{psi}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def producer_performance(bootstrap, topic, records, rate, size, timeout, props=()):
    r = java_tool(PRODUCER_PERFORMANCE, "--topic", topic, "--num-records", records, "--record-size",
                  size, "--throughput", rate, "--producer-props", f"bootstrap.servers={bootstrap}",
                  "acks=all", *props, timeout=timeout, check=False)
    final = [m for m in PERF_LINE.finditer(r.out) if int(m.group(1)) == records]
    assert r.returncode == 0 and final, f"ProducerPerformance did not complete\n{r.describe()}"
    trouble = CLIENT_TROUBLE.search(r.out + r.err)
    assert not trouble, f"ProducerPerformance output contains {trouble.group(0)!r}\n{r.describe()}"
    m = final[-1]
    return {"msgs": float(m.group(2)), "mb": float(m.group(3)), "avg": float(m.group(4)),
            "max": float(m.group(5)), "p50": int(m.group(6)), "p95": int(m.group(7)),
            "p99": int(m.group(8)), "p999": int(m.group(9)), "seconds": r.seconds}


def end_offsets(bootstrap, topic, partitions):
    args = []
    for p in range(partitions):
        args += ["-t", f"{topic}:{p}:-1"]
    r = kcat("-b", bootstrap, "-Q", *args, timeout=60)
    out = {int(m.group(1)): int(m.group(2)) for m in
           re.finditer(rf"^{re.escape(topic)} \[(\d+)\] offset (-?\d+)\s*$", r.out, re.M)}
    assert len(out) == partitions, f"kcat -Q: {r.describe()}"
    return out


def window_means(before, after):
    """Mean heartbeat send interval per link between two scrapes (from the summaries' _sum and
    _count), as text: the quantiles cover the last 4096 to 8192 intervals, this only the window."""
    out = []
    for i in sorted(after):
        b, a = before[i].peers(), after[i].peers()
        for p in sorted(a):
            n = a[p].get("count", 0) - b.get(p, {}).get("count", 0)
            if n > 0:
                mean = (a[p].get("sum", 0) - b.get(p, {}).get("sum", 0)) / n * 1000
                out.append(f"{i}->{p} {mean:.1f} ms ({n:.0f})")
    return "mean heartbeat interval in the window: " + (", ".join(out) or "no samples")


def check_heartbeats(scrapes, what, canary=None, among=None):
    """Asserts p50 and p99 of every link's heartbeat send intervals within HEARTBEAT +- HB_TOLERANCE
    (links of nodes that lead nothing have no samples and are skipped, but some link must have
    them); with `among` (node ids), only the links between those nodes. The p99 bound allows, on top, however late the machine woke the canary (a plain
    sleeping thread on the same schedule) at its own p99 in the same window: what the OS
    scheduler delays is not chronik's doing. The allowance is printed whenever it is used."""
    table, rows = heartbeat_table(scrapes)
    sampled = [(i, p, f) for i, p, f in rows
               if "p99" in f and (among is None or (i in among and p in among))]
    assert sampled, f"{what}: no link reports heartbeat intervals\n{table}"
    machine_late = 0.0
    if canary is not None and canary.intervals:
        v = sorted(canary.intervals)
        machine_late = max(0.0, v[min(len(v) - 1, round((len(v) - 1) * 0.99))] - HEARTBEAT)
    if machine_late > 0.001:
        print(f"!!! {what}: the machine woke the canary {machine_late * 1000:.1f} ms late at p99; "
              f"the p99 bound is {HB_TOLERANCE * 1000:.0f} ms + that")
    bound = {"p50": HB_TOLERANCE, "p99": HB_TOLERANCE + machine_late}
    off = [f"{i}->{p} {q} {f[q] * 1000:.1f} ms" for i, p, f in sampled for q in ("p50", "p99")
           if abs(f[q] - HEARTBEAT) > bound[q]]
    assert not off, (f"{what}: heartbeat intervals outside {HEARTBEAT * 1000:.0f} +- "
                     f"{HB_TOLERANCE * 1000:.0f} ms (p99: + {machine_late * 1000:.1f} ms machine "
                     f"lateness): {off}\n{table}\n"
                     + (canary.summary() if canary else cpu_pressure()))


def check_heartbeat_window(before, after, what, canary=None, among=None, cap=None, strict=False):
    """Like check_heartbeats, over exactly the heartbeat intervals sent between two scrapes (from
    the chronik_heartbeat_gap_seconds histogram): on every link (between `among` nodes), the median
    within HEARTBEAT +- HB_TOLERANCE and at most 1 % of the intervals above HEARTBEAT +
    HB_TOLERANCE + the canary's p99 lateness (rounded up to the histogram's next bound). With
    `cap` (seconds, a histogram bound), the tail is checked only against it: no interval over
    `cap`. With `strict`, every interval: none under HEARTBEAT - HB_TOLERANCE or over HEARTBEAT +
    HB_TOLERANCE. Only when the canary itself, a sleeping thread, was woken more than HB_TOLERANCE
    late (or early) in the same window, so that the machine could not have kept the band, is that
    bound widened by what the canary saw (rounded out to the histogram's bounds); the widening is
    printed. Returns the window's figures as text."""
    machine_late = 0.0
    if canary is not None and canary.intervals:
        v = sorted(canary.intervals)
        machine_late = max(0.0, v[min(len(v) - 1, round((len(v) - 1) * 0.99))] - HEARTBEAT)
    late_s, early_s = machine_stall(canary)
    lines, off = [], []
    for i in sorted(after):
        if among is not None and i not in among:
            continue
        b, a = before[i].gaps(), after[i].gaps()
        for p in sorted(a):
            if among is not None and p not in among:
                continue
            d = {le: n - b.get(p, {}).get(le, 0) for le, n in a[p].items()}
            n = d.get(float("inf"), 0)
            if n <= 0:
                continue
            edge = min(le for le in d if le >= HEARTBEAT + HB_TOLERANCE + machine_late - 1e-9)
            low = d[max(le for le in d if le <= HEARTBEAT - HB_TOLERANCE + 1e-9)]
            high = n - d[min(le for le in d if le >= HEARTBEAT + HB_TOLERANCE - 1e-9)]
            late = n - d[edge]
            lines.append(f"{i}->{p}: {n:.0f} intervals, {low:.0f} under {(HEARTBEAT - HB_TOLERANCE) * 1000:.0f} "
                         f"ms, {high:.0f} over {(HEARTBEAT + HB_TOLERANCE) * 1000:.0f} ms, {late:.0f} over "
                         f"{edge * 1000:.0f} ms")
            over_cap = cap is not None and n - d[min(le for le in d if le >= cap - 1e-9)] > 0
            if low >= n / 2 or high >= n / 2 or (over_cap if cap is not None else late > n // 100):
                off.append(lines[-1])
            if strict:
                hi = min(le for le in d if le >= HEARTBEAT + HB_TOLERANCE + late_s - 1e-9)
                lo = max(le for le in d if le <= HEARTBEAT - HB_TOLERANCE - early_s + 1e-9)
                outside = d[lo] + n - d[hi]
                lines[-1] += (f", {outside:.0f} outside {lo * 1000:.0f}..{hi * 1000:.0f} ms (+-"
                              f"{HB_TOLERANCE * 1000:.0f} ms, widened by a machine stall the canary saw: "
                              f"{late_s * 1000:.0f} ms late, {early_s * 1000:.0f} ms early)")
                if outside > 0:
                    off.append(lines[-1])
    text = "heartbeat intervals in the window: " + ("; ".join(lines) or "none")
    assert lines, f"{what}: no link sent heartbeats in the window"
    assert not off, (f"{what}: heartbeat intervals outside {HEARTBEAT * 1000:.0f} +- "
                     f"{HB_TOLERANCE * 1000:.0f} ms (median), or over 1 % late: {off}\n{text}\n"
                     + (canary.summary() if canary else cpu_pressure()))
    return text


def load_run(c, label, records, rate, size, props=()):
    """3 partitions at RF 3, formation, then ProducerPerformance; asserts no election and regular
    heartbeats. Shared by tests 1 and 2 and the soak."""
    topic = unique_topic(label)
    groups = groups_of(topic, 3)
    led = create_topic(c, topic, 3)
    formed, _ = wait_formed(c, groups)
    time.sleep(1.0)  # let the first heartbeats after formation go out
    before = scrape_all(c)
    cpu0 = {i: proc_figures(n)[0] for i, n in c.nodes.items()}
    sampler, canary = Sampler(c, label), Canary()
    sampler.start()
    canary.start()
    try:
        perf = producer_performance(c.bootstrap, topic, records, rate, size,
                                    timeout=int(records / max(rate, 1)) + 240, props=props)
    finally:
        sampler.stop()
        canary.stop()
    after = scrape_all(c)  # right after the run: the heartbeat summaries hold the last 4096 to 8192 samples
    cpu = {i: proc_figures(n)[0] - cpu0[i] for i, n in c.nodes.items()}
    c.check_alive()
    report(f"{label}: {records} x {size} B acks=all {' '.join(props)} at --throughput {rate}: "
           f"{perf['msgs']:.0f} msg/s "
           f"({perf['mb']:.2f} MB/s), latency avg {perf['avg']:.1f} ms, p50 {perf['p50']} ms, p95 "
           f"{perf['p95']} ms, p99 {perf['p99']} ms, max {perf['max']:.0f} ms; {perf['seconds']:.1f} s "
           f"with the JVM; topic led {led:.1f} s after CreateTopics, formed {formed:.1f} s later")
    report(f"{label}: CPU seconds per node during the run {({i: round(v, 1) for i, v in cpu.items()})}, "
           f"highest apply lag (entries) per node {dict(sampler.max_apply_lag)}")
    changes = counter_changes(election_counters(before), election_counters(after))
    report(f"{label}: elections per group (started / won summed over nodes, whole life):\n"
           + elections_table(after, groups) + f"\nmax term {max_term(after, groups)}; "
           f"{len(changes)} election counter change(s) during the run")
    table, _ = heartbeat_table(after)
    report(f"{label}: heartbeat send intervals per link right after the run (ms; the last 4096 to 8192 "
           f"per link):\n{table}\n{window_means(before, after)}\n{canary.summary()}")
    offs = end_offsets(c[1].bootstrap, topic, 3)
    assert sum(offs.values()) == records, f"{label}: end offsets {offs}, sum != {records}"
    assert not changes, (f"{label}: elections / leader changes / term changes during the load:\n"
                         f"{change_lines(changes)}\n{canary.summary()}")
    check_heartbeats(after, label, canary)
    return perf, after


# --- 1. the seed's Test 3 ------------------------------------------------------------------------
def test_1_load_10k_msgs_no_election_heartbeats_regular(make_cluster):
    c = make_cluster("load")
    load_run(c, "load", LOAD_RECORDS, LOAD_RATE, RECORD_SIZE)


# --- 2. slow apply ---------------------------------------------------------------------------------
def test_2_slow_apply_500ms_no_election_heartbeats_regular(make_cluster):
    c = make_cluster("slowapply", env={"CHRONIK_FAULTS__APPLY_DELAY": SLOW_APPLY})
    load_run(c, "slow-apply", SLOW_RECORDS, SLOW_RATE, RECORD_SIZE, props=SLOW_PROPS)


# --- 3. many groups --------------------------------------------------------------------------------
def wait_meta_settled(c, quiet=3.0, timeout=60.0):
    """Formation ends when `__meta` has applied the leader reports of every new group: waits until
    the `__meta` commit index has not moved for `quiet` seconds (bounded), returns the seconds."""
    t0 = time.monotonic()
    last, since = None, time.monotonic()
    while time.monotonic() - t0 < timeout:
        doc = cluster_status(next(iter(c.nodes.values())).admin)
        commits = tuple(sorted((g["node"], g["commit"]) for g in doc["groups"] if g.get("topic") == META))
        if commits != last:
            last, since = commits, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return time.monotonic() - t0
        time.sleep(0.5)
    raise AssertionError(f"__meta commit still moving after {timeout:.0f} s: {last}")


def test_3_many_groups_idle_no_election_coalesced_frames(make_cluster):
    c = make_cluster("many")
    topic = unique_topic("many")
    groups = groups_of(topic, MANY_PARTITIONS)
    led = create_topic(c, topic, MANY_PARTITIONS, timeout=180)
    formed, _ = wait_formed(c, groups, timeout=120)
    report(f"many groups: {MANY_PARTITIONS} partitions at RF 3 led on every node {led:.1f} s after "
           f"CreateTopics; metrics show every group formed {formed:.1f} s later")
    settled = wait_meta_settled(c)
    report(f"many groups: __meta settled (leader reports of {MANY_PARTITIONS} groups applied, commit "
           f"unchanged for 3 s) {settled:.1f} s later; the idle window starts now")
    before = scrape_all(c)
    cpu0 = {i: proc_figures(n)[0] for i, n in c.nodes.items()}
    canary = Canary()
    canary.start()
    t0 = time.monotonic()
    deadline = t0 + IDLE_SECONDS
    try:
        while time.monotonic() < deadline:  # bounded idle window; fail early if a node dies
            time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
            c.check_alive()
    finally:
        canary.stop()
    window = time.monotonic() - t0
    after = scrape_all(c)
    figs = {i: proc_figures(n) for i, n in c.nodes.items()}
    window_all = time.monotonic() - t0

    cpu = {i: (figs[i][0] - cpu0[i]) / window_all * 100 for i in c.nodes}
    rss = {i: figs[i][1] / 2 ** 20 for i in c.nodes}
    report(f"many groups: idle {window:.0f} s: CPU per node " + ", ".join(
        f"node {i} {cpu[i]:.1f}%" for i in c.nodes) + " (of one core); RSS " +
           ", ".join(f"node {i} {rss[i]:.0f} MiB" for i in c.nodes))
    intervals = window / HEARTBEAT
    per_link, lines = {}, []
    for i in c.nodes:
        b, a = before[i].peers(), after[i].peers()
        for p in sorted(a):
            d = {k: a[p].get(k, 0) - b.get(p, {}).get(k, 0) for k in ("frames", "bytes", "heartbeat_frames")}
            per_link[(i, p)] = d["frames"] / intervals
            per_hb = d["frames"] / d["heartbeat_frames"] if d["heartbeat_frames"] else float("nan")
            lines.append(f"  {i}->{p}: {d['frames']:.0f} frames ({per_link[(i, p)]:.3f} per heartbeat "
                         f"interval), {d['heartbeat_frames']:.0f} carrying heartbeats ({per_hb:.2f} "
                         f"frames per heartbeat frame), {d['bytes'] / window / 1024:.1f} KiB/s")
    pairs = {}
    for (i, p), v in per_link.items():
        pairs[tuple(sorted((i, p)))] = pairs.get(tuple(sorted((i, p))), 0) + v
    report(f"many groups: frames per link over the idle window ({intervals:.0f} heartbeat intervals):\n"
           + "\n".join(lines) + "\n  both directions per node pair: "
           + ", ".join(f"{a}<->{b} {v:.2f}" for (a, b), v in sorted(pairs.items())))
    table, _ = heartbeat_table(after)
    report(f"many groups: heartbeat send intervals at {MANY_PARTITIONS + 1} groups (ms; the whole "
           f"life of the cluster):\n{table}\n{window_means(before, after)}\n{canary.summary()}")
    leaders = leaders_from_metrics(after)
    per_node = {i: sum(1 for g in groups if leaders.get(g) == [i]) for i in c.nodes}
    report(f"many groups: groups led per node {per_node}, max term {max_term(after, groups)}")

    changes = counter_changes(election_counters(before), election_counters(after))
    assert not changes, (f"many groups: {len(changes)} election counter change(s) in the idle "
                         f"window:\n{change_lines(changes)}\n{canary.summary()}")
    assert len(per_link) == 6, f"expected 6 node->peer links, metrics show {sorted(per_link)}"
    # Scrapes land mid-interval, so each direction's window can hold one frame of the intervals
    # at each edge.
    edge = 2 * 2.0 / intervals
    over = {k: round(v, 3) for k, v in pairs.items() if v > MAX_FRAMES_PER_INTERVAL + edge}
    assert not over, (f"more than {MAX_FRAMES_PER_INTERVAL:.0f} frames per heartbeat interval on "
                      f"node pairs {over}\n" + "\n".join(lines) + f"\n{canary.summary()}")


# --- 4. leader loss --------------------------------------------------------------------------------
class SeqProducer(threading.Thread):
    """An idempotent acks=all confluent-kafka producer writing `P:SEQ` values, SEQ counting per
    partition, round robin over the partitions at about `rate` records/s until stop()."""

    def __init__(self, bootstrap, topic, partitions, rate=300, max_seconds=240):
        super().__init__(daemon=True)
        ck = need_module("confluent_kafka")
        self.topic, self.partitions, self.rate, self.max_seconds = topic, partitions, rate, max_seconds
        self.fatal = []
        self.p = ck.Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                              "linger.ms": 5, "message.timeout.ms": 60000, "retry.backoff.ms": 100,
                              "socket.timeout.ms": 10000, "error_cb": self._error})
        self.acked = defaultdict(list)    # partition -> [(seq, offset)] in delivery order
        self.acked_at = defaultdict(list)  # partition -> [time.monotonic() of each ack]
        self.failed = []                  # (partition, seq, error)
        self.ack_times = []               # time.monotonic() of each ack
        self.sent = 0
        self.lock = threading.Lock()
        self.stop_evt = threading.Event()

    def _error(self, err):
        if err.fatal():
            self.fatal.append(str(err))

    def _cb(self, part, seq):
        def cb(err, msg):
            with self.lock:
                if err is not None:
                    self.failed.append((part, seq, str(err)))
                else:
                    now = time.monotonic()
                    self.acked[part].append((seq, msg.offset()))
                    self.acked_at[part].append(now)
                    self.ack_times.append(now)
        return cb

    def acks(self):
        with self.lock:
            return len(self.ack_times)

    def acks_after(self, t, partitions=None):
        with self.lock:
            if partitions is None:
                return sum(1 for x in self.ack_times if x > t)
            return sum(1 for p in partitions for x in self.acked_at[p] if x > t)

    def first_ack_after(self, t, partition):
        with self.lock:
            return min((x for x in self.acked_at[partition] if x > t), default=None)

    def run(self):
        seq = [0] * self.partitions
        t0 = time.monotonic()
        i = 0
        while not self.stop_evt.is_set() and time.monotonic() - t0 < self.max_seconds:
            part = i % self.partitions
            try:
                self.p.produce(self.topic, value=f"{part}:{seq[part]}".encode(), partition=part,
                               on_delivery=self._cb(part, seq[part]))
            except BufferError:
                self.p.poll(0.1)
                continue
            seq[part] += 1
            i += 1
            self.sent += 1
            self.p.poll(0)
            ahead = t0 + i / self.rate - time.monotonic()
            if ahead > 0:
                self.p.poll(ahead)

    def stop(self, flush_timeout=90):
        self.stop_evt.set()
        self.join(timeout=30)
        left = self.p.flush(flush_timeout)
        self.p = None  # let librdkafka close its connections now
        return left


def read_partition(bootstrap, topic, partition, timeout=120):
    """[(offset, value)] of a partition from the beginning to its end, via kcat (no group)."""
    r = kcat("-b", bootstrap, "-C", "-t", topic, "-p", partition, "-o", "beginning", "-e", "-q",
             "-f", "%o %s\\n", timeout=timeout)
    out = []
    for line in r.out.splitlines():
        if line.strip():
            o, v = line.split(" ", 1)
            out.append((int(o), v))
    return out


def check_exactly_once(bootstrap, topic, partitions, prod):
    """Every acked record read back exactly once, at its acked offset, in sequence order."""
    problems = []
    total = 0
    for part in range(partitions):
        rows = read_partition(bootstrap, topic, part)
        total += len(rows)
        seqs = []
        for o, v in rows:
            pp, s = v.split(":")
            if int(pp) != part:
                problems.append(f"p{part}: offset {o} holds {v!r} of another partition")
            seqs.append(int(s))
        if seqs != sorted(seqs) or len(set(seqs)) != len(seqs):
            dup = sorted(s for s in set(seqs) if seqs.count(s) > 1)[:10]
            problems.append(f"p{part}: sequence out of order or duplicated (duplicates {dup})")
        at = {o: int(v.split(":")[1]) for o, v in rows}
        counts = defaultdict(int)
        for s in seqs:
            counts[s] += 1
        for s, o in prod.acked[part]:
            if counts.get(s, 0) != 1:
                problems.append(f"p{part}: acked seq {s} read {counts.get(s, 0)} times")
            elif at.get(o) != s:
                problems.append(f"p{part}: acked seq {s} at offset {o}, which holds seq {at.get(o)}")
            if len(problems) > 30:
                break
    return total, problems


def catch_up(c, node_id, topic, timeout=60):
    """Bounded wait until node `node_id` applied, in every group of `topic` and __meta, what the
    group's leader committed (cluster status). Returns seconds waited."""
    t0 = time.monotonic()
    last = None
    while True:
        try:
            by = status_by_group(cluster_status(c[node_id].admin, timeout=30, checksums=False))
            lag = {}
            for (t, p), rows in by.items():
                if t not in (topic, META):
                    continue
                lead = [r for r in rows.values() if str(r.get("role")).lower() == "leader"]
                mine = rows.get(node_id)
                if len(lead) != 1 or mine is None or (mine.get("applied") or 0) < lead[0]["commit"]:
                    lag[f"{t}/{p}"] = (mine and mine.get("applied"), lead and lead[0].get("commit"))
            if not lag and by:
                return time.monotonic() - t0
            last = lag
        except ClusterError as e:
            last = str(e)[:500]
        if time.monotonic() - t0 > timeout:
            raise ClusterError(f"node {node_id} did not catch up within {timeout}s: {last}")
        time.sleep(0.5)


def producing(c, label, partitions, first_acks=500):
    """A topic of `partitions` at RF 3, formed, and an idempotent acks=all SeqProducer on it that
    has had `first_acks` acks (bounded: 30 s). Returns (topic, groups, producer)."""
    topic = unique_topic(label)
    groups = groups_of(topic, partitions)
    create_topic(c, topic, partitions)
    wait_formed(c, groups)
    prod = SeqProducer(c.bootstrap, topic, partitions)
    prod.start()
    t_wait = time.monotonic()
    while prod.acks() < first_acks:
        trouble = (time.monotonic() - t_wait > 30 and f"only {prod.acks()} acks in 30 s") or (
            (prod.fatal or prod.failed) and f"errors: {prod.fatal} {prod.failed[:5]}")
        if trouble:
            prod.stop()
            raise AssertionError(f"producer: {trouble}")
        time.sleep(0.2)
    return topic, groups, prod


def test_4_leader_loss_kill9_new_leaders_producer_carries_on(make_cluster):
    c = make_cluster("leaderloss")
    partitions = 6
    topic, groups, prod = producing(c, "loss", partitions)
    try:
        s = scrape_all(c)
        leaders = leaders_from_metrics(s)
        led = {i: sorted(g for g in groups if leaders.get(g) == [i]) for i in c.nodes}
        victim = max(c.nodes, key=lambda i: (len(led[i]), -i))
        lost = led[victim]
        old_term = {g: s[victim].groups()[g]["term"] for g in lost}
        survivors = [i for i in c.nodes if i != victim]
        acks_at_kill = prod.acks()
        t_kill = time.monotonic()
        c[victim].kill9()

        # every group the victim led: a survivor says it leads, at a higher term
        recovered = wait_new_leaders(c, survivors, lost, old_term, t_kill, t_kill + 4 * ELECTION_TIMEOUT + 10)
        recovery = max((t for _, t in recovered.values()), default=float("inf"))
        report(f"leader loss: killed node {victim} (led {len(lost)} of {len(groups)} groups: {lost}); "
               f"new leaders: " + ", ".join(f"{g} -> node {i} after {t:.2f} s"
                                            for g, (i, t) in sorted(recovered.items()))
               + f"; all recovered {recovery:.2f} s after the kill (limit {2 * ELECTION_TIMEOUT:.0f} s)")
        assert set(recovered) == set(lost), f"no new leader for {sorted(set(lost) - set(recovered))}"
        assert recovery <= 2 * ELECTION_TIMEOUT, (
            f"groups re-led {recovery:.2f} s after the kill > 2 x election timeout")

        # the producer carries on: acks keep coming after the re-election, on the partitions the
        # killed node led too
        t_rec = t_kill + recovery
        lost_parts = [int(g.rsplit("/", 1)[1]) for g in lost if g != META]
        wait_acks = time.monotonic() + 30
        while ((prod.acks_after(t_rec) < 300 or prod.acks_after(t_rec, lost_parts) < 50 * len(lost_parts))
               and time.monotonic() < wait_acks):
            time.sleep(0.2)
        time.sleep(2.0)
    finally:
        left = prod.stop()
    n_acked = sum(len(v) for v in prod.acked.values())
    resumed = {p: prod.first_ack_after(t_kill, p) for p in lost_parts}
    report(f"leader loss: producer sent {prod.sent}, acked {n_acked} ({acks_at_kill} before the kill, "
           f"{prod.acks_after(t_rec)} after all groups were re-led, {prod.acks_after(t_rec, lost_parts)} "
           f"of them on the killed node's partitions); first ack after the kill on those partitions: "
           + ", ".join(f"p{p} {(t - t_kill) if t else float('nan'):.2f} s" for p, t in resumed.items())
           + f"; {len(prod.failed)} failed, {left} unflushed, fatal: {prod.fatal or 'none'}")
    assert not prod.fatal, f"producer fatal error: {prod.fatal}"
    assert prod.acks_after(t_rec) >= 300, (
        f"producer got only {prod.acks_after(t_rec)} acks after the groups were re-led")
    assert prod.acks_after(t_rec, lost_parts) >= 50 * len(lost_parts), (
        f"only {prod.acks_after(t_rec, lost_parts)} acks on the killed node's partitions "
        f"{lost_parts} after they were re-led")
    assert not prod.failed, f"{len(prod.failed)} records failed: {prod.failed[:10]}"
    assert left == 0, f"{left} records neither acked nor failed after flush"

    # restart the killed node: it catches up and deposes nobody
    before = scrape_all(c, survivors)
    leaders_before = leaders_from_metrics(before)
    t_restart = time.monotonic()
    c[victim].start()
    c.wait_serving([victim], timeout=60)
    serving = time.monotonic() - t_restart
    caught = catch_up(c, victim, topic, timeout=90)
    settle_until = time.monotonic() + 2 * ELECTION_TIMEOUT + 1
    while time.monotonic() < settle_until:
        time.sleep(1.0)
        c.check_alive()
    after = scrape_all(c)
    report(f"leader loss: node {victim} restarted: serving {serving:.1f} s after launch, applied == "
           f"leaders' commit in every group {caught:.1f} s later")
    changes = counter_changes(election_counters(before), election_counters(after))
    vf = after[victim].groups()
    won = {g: f.get("won") for g, f in vf.items() if f.get("won")}
    started = {g: f.get("started") for g, f in vf.items() if f.get("started")}
    report(f"leader loss: after the rejoin, survivors' election counters changed: {len(changes)}; "
           f"restarted node: elections started {started or 0}, won {won or 0}")
    assert not changes, f"the rejoin moved the survivors' counters:\n{change_lines(changes)}"
    assert not won, f"the restarted node won elections: {won}"
    assert leaders_from_metrics(after) == leaders_before, (
        f"leaders changed: {leaders_before} -> {leaders_from_metrics(after)}")
    sterm = {g: f["term"] for g, f in before[survivors[0]].groups().items()}
    behind = {g: (f.get("term"), sterm.get(g)) for g, f in vf.items()
              if g in groups and f.get("term") != sterm.get(g)}
    assert not behind, f"restarted node's terms differ from the survivors' (mine, theirs): {behind}"

    total, problems = check_exactly_once(c.bootstrap, topic, partitions, prod)
    report(f"leader loss: read back {total} records, {n_acked} acked: "
           f"{'every acked record exactly once, in order' if not problems else 'PROBLEMS'}")
    assert not problems, "\n".join(problems[:30])


# --- 5. isolation ----------------------------------------------------------------------------------
def produce_acks_all(bootstrap, topic, partitions, per_partition=50, timeout=30):
    """acks=all (non-idempotent) confluent-kafka produce to every partition through `bootstrap`.
    Returns (acked, errors, seconds)."""
    ck = need_module("confluent_kafka")
    p = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                     "message.timeout.ms": int(timeout * 1000), "enable.idempotence": False})
    res = {"ok": 0, "err": []}

    def cb(err, msg):
        if err is None:
            res["ok"] += 1
        else:
            res["err"].append(str(err))
    t0 = time.monotonic()
    for part in range(partitions):
        for k in range(per_partition):
            p.produce(topic, value=f"majority-{part}-{k}".encode(), partition=part, on_delivery=cb)
    left = p.flush(timeout + 10)
    return res["ok"], res["err"] + ([f"{left} unflushed"] if left else []), time.monotonic() - t0


def test_5_isolation_prevote_checkquorum_majority_serves_no_elections_after_heal(make_cluster):
    c = make_cluster("isolation", env={"CHRONIK_FAULTS__RUNTIME": "true"})
    partitions = 3
    topic = unique_topic("iso")
    groups = groups_of(topic, partitions)
    create_topic(c, topic, partitions)
    wait_formed(c, groups)
    time.sleep(1.0)
    s0 = scrape_all(c)
    leaders0 = leaders_from_metrics(s0)
    led = {i: sorted(g for g in groups if leaders0.get(g) == [i]) for i in c.nodes}
    victim = max(c.nodes, key=lambda i: (len(led[i]), -i))
    lost = led[victim]
    majority = [i for i in c.nodes if i != victim]
    terms0 = {g: f["term"] for g, f in s0[victim].groups().items() if g in groups}
    assert lost, f"node {victim} leads nothing: {led}"

    t_cut = time.monotonic()
    isolate(c, victim)
    stepped, relead = {}, {}
    deadline = t_cut + 4 * ELECTION_TIMEOUT + 10
    while (len(stepped) < len(lost) or len(relead) < len(lost)) and time.monotonic() < deadline:
        s = scrape_all(c, timeout=2)
        now = time.monotonic() - t_cut
        vg = s[victim].groups()
        for g in lost:
            if g not in stepped and not vg.get(g, {}).get("leader"):
                stepped[g] = now
            if g not in relead and any(s[i].groups().get(g, {}).get("leader") for i in majority):
                relead[g] = now
        time.sleep(0.1)
    report(f"isolation: node {victim} (led {lost}) cut off; it stepped down in "
           + ", ".join(f"{g} {t:.2f} s" for g, t in sorted(stepped.items()))
           + "; the majority re-led " + ", ".join(f"{g} {t:.2f} s" for g, t in sorted(relead.items()))
           + f" after the cut (election timeout {ELECTION_TIMEOUT:.0f} s; step-downs later than it: "
           + (", ".join(f"{g} {t:.2f} s" for g, t in sorted(stepped.items()) if t > ELECTION_TIMEOUT)
              or "none") + ")")
    assert set(stepped) == set(lost), f"node {victim} still leads {sorted(set(lost) - set(stepped))}"
    # An awake leader (__meta's) checks its quorum every half election timeout
    # (raft::quorum_check_tick), so a leader cut off at a random moment steps down between 0.5 and
    # 1 election timeouts later. The partition groups are quiet at the cut (a new group's first
    # leader sleeps after two heartbeats, `raft::hibernate::idle_limit`): a quiet leader is woken
    # once a follower's node has been silent for an election timeout, and its last frame came
    # before the cut; at the wake it counts inactive every follower whose node has been silent for
    # a check period (`raft::hibernate::silent_replicas`), so both followers, cut at the same
    # moment, and CheckQuorum steps it down on that tick: within an election timeout and a tick
    # of the cut too. (Counting inactive only followers silent for a whole election timeout, a
    # quiet leader whose other follower's last frame came a little later passed that check and
    # stepped down a check period later: 4.3 s.) STEP_DOWN_SLACK covers the tick, the 100 ms
    # polling, slow scrapes, and ticks the ticker drops when a busy machine stalls the process (a
    # dropped tick slows the Raft clock against the wall's).
    slow = {g: round(t, 2) for g, t in stepped.items() if t > ELECTION_TIMEOUT + STEP_DOWN_SLACK}
    assert not slow, (f"CheckQuorum step-down later than the election timeout "
                      f"(+{STEP_DOWN_SLACK} s): {slow}")
    assert set(relead) == set(lost), f"majority has no leader for {sorted(set(lost) - set(relead))}"

    ok, errs, took = produce_acks_all(",".join(c[i].bootstrap for i in majority), topic, partitions)
    report(f"isolation: majority side acked {ok} acks=all records to {partitions} partitions in "
           f"{took:.1f} s during the cut ({len(errs)} errors)")
    assert not errs and ok == 50 * partitions, f"majority produce: {ok} acked, errors {errs[:10]}"

    while time.monotonic() - t_cut < ISOLATION_SECONDS:
        time.sleep(min(1.0, max(0.0, ISOLATION_SECONDS - (time.monotonic() - t_cut))))
        c.check_alive()
    s_cut = scrape_all(c)
    cut_for = time.monotonic() - t_cut
    vterms = {g: f["term"] for g, f in s_cut[victim].groups().items() if g in groups}
    vstarted = {g: s_cut[victim].groups()[g].get("started", 0) - s0[victim].groups()[g].get("started", 0)
                for g in groups}
    report(f"isolation: after {cut_for:.0f} s cut off, node {victim}'s terms {vterms} (before the cut "
           f"{terms0}); its pre-vote attempts during the cut {vstarted}")
    rose = {g: (terms0[g], vterms.get(g)) for g in groups if vterms.get(g) != terms0[g]}
    assert not rose, f"the isolated node's term moved (before, after): {rose}"

    t_heal = time.monotonic()
    isolate(c, victim, heal=True)
    # back in contact: the node learns every group's leader and term
    joined, s_join = wait_formed(c, groups, timeout=30)
    settle_until = t_heal + 2 * ELECTION_TIMEOUT + 1
    while time.monotonic() < settle_until:
        time.sleep(0.5)
        c.check_alive()
    s_after = scrape_all(c)
    report(f"isolation: healed; node {victim} back at every group's term and leader {joined:.1f} s "
           f"after healing")
    before_heal = election_counters(s_cut, groups)
    after_heal = election_counters(s_after, groups)
    maj_changes = [ch for ch in counter_changes(before_heal, after_heal) if ch[0] in majority]
    vic_changes = [ch for ch in counter_changes(before_heal, after_heal)
                   if ch[0] == victim and ch[2] == "elections_won"]
    report(f"isolation: after healing, majority election counters changed: {len(maj_changes)}; "
           f"isolated node's counters: "
           + "; ".join(f"{g} {f} {a}->{b}" for n, g, f, a, b in counter_changes(before_heal, after_heal)
                       if n == victim) + f"; max term {max_term(s_after, groups)}")
    assert not maj_changes, f"elections on the majority after healing:\n{change_lines(maj_changes)}"
    assert not vic_changes, f"the isolated node won elections after healing: {vic_changes}"
    assert leaders_from_metrics(s_after) == leaders_from_metrics(s_cut), (
        f"leaders changed at heal: {leaders_from_metrics(s_cut)} -> {leaders_from_metrics(s_after)}")
    mterm = {g: s_cut[majority[0]].groups()[g]["term"] for g in groups}
    vterm = {g: s_after[victim].groups()[g]["term"] for g in groups}
    assert vterm == mterm, f"isolated node's terms after healing {vterm}, the majority's {mterm}"
