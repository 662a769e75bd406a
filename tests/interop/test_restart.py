"""Restarts that disturb no one (issue 15).

test_restart_with_retained_log... ("How it is shown"): one node of three, holding
RESTART_LOG_MB (default 2,048) MB of retained log across RESTART_PARTITIONS (200) partitions at
RF 3, is stopped and started again. A restarted replica replays its whole retained log before it
serves (off the poller threads, `RaftCore::replay_round`). While it does:

  - no group led by another node holds an election: on the other nodes no election counter,
    leader or term moves, and the restarted node itself starts no election in those groups and
    comes back at their terms;
  - the heartbeat intervals on the links between the other nodes, sent from the stop until the
    restarted node has caught up (the chronik_heartbeat_gap_seconds histogram): every one within
    150 ms +- 10 ms, as the issue asks. The band is widened only by a stall of the whole machine
    that the scheduler canary (a sleeping thread of the test process) saw in the same window,
    rounded out to the histogram's bounds; the widening is printed;
  - the restarted node catches up (applied == the leaders' commit in every group), and every
    partition's end offset is what was produced.

The log is written by Kafka's own ProducerPerformance (acks=1, 10 KB records, as fast as it goes);
the time the restart takes to serve and to catch up is printed, never asserted.

test_controlled_shutdown...: SIGTERM to the node leading the most of 6 partitions (and maybe
__meta) while an idempotent acks=all producer runs: the node hands every group it leads to a
live voter (its log says so: none kept), exits 0, the survivors lead those groups, the producer
never waited an election timeout for an ack on them (the hand-over is a leader transfer, not an
election after a timeout), and every acked record reads back exactly once, in order.
"""
import os
import time

import pytest

from cluster import (cluster_status, counter_changes, election_counters, heartbeat_table, leaders_from_metrics,
                     scrape_all, status_by_group)
from helpers import report, unique_topic
from test_stability import (ELECTION_TIMEOUT, HEARTBEAT, Canary, catch_up, change_lines, check_exactly_once,
                            check_heartbeat_window, create_topic, end_offsets, groups_of, make_cluster,
                            producer_performance, producing, wait_formed)

pytestmark = pytest.mark.chronik_only

LOG_MB = int(os.environ.get("RESTART_LOG_MB", "2048"))
PARTITIONS = int(os.environ.get("RESTART_PARTITIONS", "200"))
RECORD_SIZE = 10_240
FILL_PROPS = ("batch.size=262144", "linger.ms=20", "buffer.memory=134217728", "compression.type=none")

assert make_cluster  # the fixture, used by name below


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def test_restart_with_retained_log_elects_nothing_elsewhere_and_keeps_heartbeats(make_cluster):
    c = make_cluster("restart")
    topic = unique_topic("restart")
    groups = groups_of(topic, PARTITIONS)
    create_topic(c, topic, PARTITIONS, timeout=180)
    wait_formed(c, groups, timeout=120)

    records = LOG_MB * 1_000_000 // RECORD_SIZE
    fill = producer_performance(c.bootstrap, topic, records, -1, RECORD_SIZE, timeout=900,
                                props=FILL_PROPS)
    offsets = end_offsets(c[1].bootstrap, topic, PARTITIONS)
    assert sum(offsets.values()) == records, f"end offsets sum {sum(offsets.values())} != {records}"
    victim = 3
    others = [i for i in c.nodes if i != victim]
    catch_up(c, victim, topic, timeout=180)
    held = dir_bytes(c[victim].data_dir)
    report(f"restart: {records} x {RECORD_SIZE} B into {PARTITIONS} partitions at {fill['mb']:.1f} MB/s; "
           f"node {victim} holds {held / 1e6:.0f} MB; partitions hold "
           f"{min(offsets.values())}..{max(offsets.values())} records each")
    assert held >= 0.95 * LOG_MB * 1e6, f"node {victim} holds only {held / 1e6:.0f} MB of log"

    before = scrape_all(c)
    leaders = leaders_from_metrics(before)
    elsewhere = sorted(g for g in groups if leaders.get(g) and leaders[g] != [victim])
    assert all(len(leaders.get(g, [])) == 1 for g in groups), f"not one leader per group: {leaders}"
    terms = {g: before[others[0]].groups()[g]["term"] for g in elsewhere}

    window = scrape_all(c)
    canary = Canary()
    canary.start()
    try:
        t_stop = time.monotonic()
        c[victim].stop()
        stopped = time.monotonic() - t_stop
        # The three nodes share two cores here; on their own machines the restarting node's
        # replay (2 GB read and checked) takes no CPU from the others. A lower CPU priority for
        # the restarted process stands in for that: the check is of chronik's nodes 1 and 2,
        # not of the OS scheduler sharing two cores between three brokers.
        c[victim].start(nice=10)
        c.wait_serving([victim], timeout=300)
        serving = time.monotonic() - t_stop
        caught = catch_up(c, victim, topic, timeout=300)
        time.sleep(2 * HEARTBEAT * 10)  # a few more heartbeat intervals after the catch-up
    finally:
        canary.stop()
    after = scrape_all(c)
    c.check_alive()

    report(f"restart: node {victim} stopped in {stopped:.1f} s, serving {serving:.1f} s after the stop, "
           f"applied == the leaders' commit {caught:.1f} s later; {len(elsewhere)} groups led elsewhere")
    keys = lambda s: {k: v for k, v in election_counters(s, elsewhere).items() if k[0] in others}
    moved = counter_changes(keys(before), keys(after))
    vf = after[victim].groups()
    started = {g: vf[g].get("started") for g in elsewhere if vf.get(g, {}).get("started")}
    vterms = {g: vf.get(g, {}).get("term") for g in elsewhere}
    lost = {g: (leaders[g], leaders_from_metrics(after).get(g)) for g in elsewhere
            if leaders_from_metrics(after).get(g) != leaders[g]}
    report(f"restart: in the groups led elsewhere: {len(moved)} election counter change(s) on nodes "
           f"{others}; the restarted node started {len(started)} election(s)")
    assert not moved, f"elections in groups led elsewhere:\n{change_lines(moved)}"
    assert not started, f"the restarted node campaigned in groups led elsewhere: {started}"
    assert not lost, f"leaders moved in groups led elsewhere (before, after): {lost}"
    differ = {g: (terms[g], vterms[g]) for g in elsewhere if vterms[g] != terms[g]}
    assert not differ, f"the restarted node's terms differ (theirs, mine): {differ}"

    # The links between the nodes that stayed up, over the restart only.
    table, _ = heartbeat_table(after)
    report(f"restart: heartbeat send intervals (ms) per link, whole life:\n{table}\n{canary.summary()}")
    # Every interval within 150 +- 10 ms (widened only by a machine stall the canary saw too).
    report("restart: " + check_heartbeat_window(window, after, "restart", canary, among=others, strict=True))

    offsets_after = end_offsets(c[victim].bootstrap, topic, PARTITIONS)
    assert offsets_after == offsets, "end offsets changed across the restart"
    # After the window: every replica of every partition byte-identical (one checksum pass).
    by = status_by_group(cluster_status(c[1].admin, timeout=120), topic)
    differ = {k: {n: r.get("checksum") for n, r in rows.items()} for k, rows in by.items()
              if len(rows) != 3 or len({r.get("checksum") for r in rows.values()}) != 1}
    assert len(by) == PARTITIONS and not differ, f"replicas differ: {list(differ.items())[:10]}"


def test_controlled_shutdown_hands_leadership_over_before_the_node_stops(make_cluster):
    c = make_cluster("shutdown")
    partitions = 6
    topic, groups, prod = producing(c, "shutdown", partitions)
    try:
        leaders = leaders_from_metrics(scrape_all(c))
        victim = max(c.nodes, key=lambda i: (sum(leaders.get(g) == [i] for g in groups), -i))
        led = sorted(g for g in groups if leaders.get(g) == [victim])
        mark = c[victim].log_size()
        t_stop = time.monotonic()
        c[victim].proc.terminate()
        code = c[victim].proc.wait(timeout=30)
        stopped = time.monotonic() - t_stop
        c[victim].killed_on_purpose = True
        survivors = [i for i in c.nodes if i != victim]
        time.sleep(2.0)
        after = leaders_from_metrics(scrape_all(c, survivors))
        time.sleep(1.0)
    finally:
        left = prod.stop()
    log = c[victim].log_text(mark)
    handed = [l for l in log.splitlines() if "controlled shutdown: leadership handed over" in l]
    moved = [int(g.rsplit("/", 1)[1]) for g in led if "/" in g]
    gaps = {}
    for p in moved:
        ts = [t for t in prod.acked_at[p] if t >= t_stop - 5]
        gaps[p] = max((b - a for a, b in zip(ts, ts[1:])), default=float("inf"))
    report(f"controlled shutdown: node {victim} led {led}; exit code {code} {stopped:.2f} s after SIGTERM; "
           f"{handed[-1].strip() if handed else 'no hand-over line'}; new leaders "
           + ", ".join(f"{g} -> {after.get(g)}" for g in led)
           + "; longest wait for an ack on its partitions: "
           + ", ".join(f"p{p} {gap:.2f} s" for p, gap in sorted(gaps.items())))
    assert code == 0, f"node {victim} exited {code} after SIGTERM"
    assert handed, f"node {victim} logged no hand-over:\n{log[-3000:]}"
    assert "kept: none," in handed[-1], f"groups kept on the stopping node: {handed[-1]}"
    assert all(len(after.get(g, [])) == 1 and after[g][0] in survivors for g in led), (
        f"groups the stopped node led are not led by one survivor: {after}")
    assert moved, f"node {victim} led no partition (leaders {leaders})"
    assert all(g < ELECTION_TIMEOUT for g in gaps.values()), (
        f"acks on the handed-over partitions waited an election timeout or more: {gaps}")
    assert not prod.fatal and not prod.failed, f"producer errors: {prod.fatal} {prod.failed[:10]}"
    assert left == 0, f"{left} records neither acked nor failed after flush"
    total, problems = check_exactly_once(c.bootstrap, topic, partitions, prod)
    assert not problems, "\n".join(problems[:30])
    report(f"controlled shutdown: read back {total} records: every acked record exactly once, in order")
