"""Hibernation of idle groups (`raft.hibernate`, issue 15) on three real chronik processes on
127.0.0.1, heartbeat 150 ms and election timeout 3 s as in test_stability.py:

    60 partitions at RF 3, a few acks=all records in each, then idle until every node reports all
    60 groups quiet (`chronik_hibernating_groups`) and the ticker ticks only `__meta`
    (`chronik_group_ticks_total`); kill -9 the node leading the most partitions: every partition it
    led has a new leader on a survivor, at a higher term, within 2 x the election timeout measured
    from the kill (one leader per group among the survivors), and every record produced before the
    kill is read back from the survivors.
"""
import time

import pytest

from cluster import leaders_from_metrics, scrape_all, wait_new_leaders
from helpers import need_module, report, unique_topic
from test_stability import ELECTION_TIMEOUT, create_topic, groups_of, make_cluster, wait_formed  # noqa: F401

pytestmark = pytest.mark.chronik_only

PARTITIONS = 60
PER_PARTITION = 5
TICK = 0.050  # s, raft.tick-interval (default)


def quiet_counts(scrapes):
    return {i: int(m.total("chronik_hibernating_groups", node=i)) for i, m in scrapes.items()}


def test_idle_groups_hibernate_and_reelect_within_two_election_timeouts_after_kill9(make_cluster):
    ck = need_module("confluent_kafka")
    c = make_cluster("hibernate")
    topic = unique_topic("hib")
    groups = groups_of(topic, PARTITIONS)
    create_topic(c, topic, PARTITIONS)
    wait_formed(c, groups)

    # A few records in every partition, acks=all.
    p = ck.Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 5,
                     "enable.idempotence": False, "message.timeout.ms": 30000})
    acked, errors = [], []
    for part in range(PARTITIONS):
        for k in range(PER_PARTITION):
            p.produce(topic, value=f"hib-{part}-{k}".encode(), partition=part,
                      on_delivery=lambda e, m: errors.append(str(e)) if e else acked.append(m.value()))
    assert p.flush(40) == 0 and not errors, f"produce: {errors[:5]}"
    assert len(acked) == PARTITIONS * PER_PARTITION

    # Idle until every node has every partition group quiet.
    t0 = time.monotonic()
    while True:
        counts = quiet_counts(scrape_all(c))
        if all(n == PARTITIONS for n in counts.values()):
            break
        assert time.monotonic() - t0 < 30, f"not every group went quiet in 30 s: {counts}"
        time.sleep(0.5)
    report(f"hibernate: all {PARTITIONS} groups quiet on 3 nodes {time.monotonic() - t0:.1f} s after "
           f"the last produce")
    s1 = scrape_all(c)
    time.sleep(3.0)
    s2 = scrape_all(c)
    for i in c.nodes:
        ticks = s2[i].total("chronik_group_ticks_total", node=i) - s1[i].total("chronik_group_ticks_total", node=i)
        periods = (s2[i].at - s1[i].at) / TICK
        report(f"hibernate: node {i} delivered {ticks:.0f} ticks in {periods:.0f} tick periods")
        # `__meta` alone: one per period; 61 groups awake would take 61 per period.
        assert ticks <= 2 * periods, f"node {i}: quiet groups are ticked ({ticks} in {periods:.0f} periods)"
    assert quiet_counts(s2) == {i: PARTITIONS for i in c.nodes}

    # kill -9 the node leading the most partitions.
    leaders = leaders_from_metrics(s2, topic)
    led = {i: sorted(g for g, ls in leaders.items() if ls == [i]) for i in c.nodes}
    victim = max(c.nodes, key=lambda i: (len(led[i]), -i))
    lost = led[victim]
    assert lost, f"node {victim} leads nothing: {led}"
    old_term = {g: s2[victim].groups()[g]["term"] for g in lost}
    survivors = [i for i in c.nodes if i != victim]
    t_kill = time.monotonic()
    c[victim].kill9()
    recovered = wait_new_leaders(c, survivors, lost, old_term, t_kill, t_kill + 4 * ELECTION_TIMEOUT + 10)
    recovery = max((t for _, t in recovered.values()), default=float("inf"))
    first = min((t for _, t in recovered.values()), default=float("nan"))
    report(f"hibernate: killed node {victim} (led {len(lost)} of {PARTITIONS} quiet partitions); new leaders "
           f"{first:.2f} .. {recovery:.2f} s after the kill (limit {2 * ELECTION_TIMEOUT:.0f} s)")
    assert set(recovered) == set(lost), f"no new leader for {sorted(set(lost) - set(recovered))}"
    assert recovery <= 2 * ELECTION_TIMEOUT, f"re-led {recovery:.2f} s after the kill > 2 x election timeout"
    s = scrape_all(c, survivors)
    for g, ls in leaders_from_metrics(s, topic).items():
        assert len(ls) == 1, f"{g}: {ls} lead at once"

    # Every record produced before the kill is read back from the survivors.
    cons = ck.Consumer({"bootstrap.servers": ",".join(c[i].bootstrap for i in survivors),
                        "group.id": f"hib-{topic}", "auto.offset.reset": "earliest",
                        "enable.auto.commit": False})
    cons.assign([ck.TopicPartition(topic, part, 0) for part in range(PARTITIONS)])
    seen = set()
    t_read = time.monotonic()
    while len(seen) < len(acked) and time.monotonic() - t_read < 60:
        for m in cons.consume(500, timeout=1.0):
            if m.error() is None:
                seen.add(m.value())
    cons.close()
    missing = set(acked) - seen
    report(f"hibernate: read back {len(seen)} of {len(acked)} acked records from the survivors")
    assert not missing, f"{len(missing)} acked records not read back: {sorted(missing)[:10]}"
