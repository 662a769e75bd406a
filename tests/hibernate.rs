//! In-process hibernation checks (`raft.hibernate`; one test per binary, because metrics are
//! process-wide): on a three-node cluster, idle groups go quiet on every node and get no ticks;
//! a produce to a quiet group wakes it and commits with acks=all; when the node leading some
//! groups is cut off, each of them elects a new leader within 2 election timeouts with one leader
//! per term, and healing costs no election; a follower cut off and back while quiet disrupts no
//! leader.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use chronik::log::batch::build_batch;
use chronik::metrics::{hibernation, registry};
use common::{create_topic, cut, elections_won, hibernating_configs, start_cluster, Client};

const PARTITIONS: i32 = 12;
const TOPIC: &str = "quiet";

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn groups() -> Vec<String> {
    (0..PARTITIONS).map(|p| format!("{TOPIC}/{p}")).collect()
}

/// Per group: the (node, term) of every node that says it leads it.
fn leaders(groups: &[String]) -> BTreeMap<String, Vec<(u64, u64)>> {
    let mut out = BTreeMap::new();
    for g in groups {
        let mut v = Vec::new();
        for node in 1..=3 {
            if let Some(f) = registry().group_figures(node, g).filter(|f| f.role == "Leader") {
                v.push((node, f.term));
            }
        }
        out.insert(g.clone(), v);
    }
    out
}

fn quiet(node: u64) -> u64 {
    hibernation(node).map(|(q, _)| q).unwrap_or(0)
}

fn ticks(node: u64) -> u64 {
    hibernation(node).map(|(_, t)| t).unwrap_or(0)
}

/// Waits until every node has every partition group quiet.
fn wait_all_quiet(what: &str) -> Duration {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(20);
    while (1..=3).any(|n| quiet(n) < PARTITIONS as u64) {
        assert!(
            Instant::now() < deadline,
            "{what}: not every group went quiet: {:?}",
            (1..=3).map(quiet).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

fn max_terms(groups: &[String]) -> Vec<u64> {
    groups
        .iter()
        .map(|g| (1..=3).filter_map(|n| registry().group_figures(n, g)).map(|f| f.term).max().unwrap_or(0))
        .collect()
}

fn produce(c: &mut Client, partition: i32, value: &[u8]) -> i16 {
    let recs: Vec<chronik::log::batch::KeyValue> = vec![(None, Some(value))];
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(name(TOPIC)).with_partition_data(vec![
            produce_request::PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(Bytes::from(build_batch(0, -1, -1, -1, 1, &recs)))),
        ]),
    ]);
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &req);
    r.responses[0].partition_responses[0].error_code
}

/// The record bytes of partition `p` from offset 0 (its leader answers).
fn fetch(c: &mut Client, partition: i32) -> (i16, Bytes) {
    let req = FetchRequest::default().with_max_wait_ms(0).with_min_bytes(1).with_max_bytes(1 << 20).with_topics(vec![
        fetch_request::FetchTopic::default().with_topic(name(TOPIC)).with_partitions(vec![
            fetch_request::FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20),
        ]),
    ]);
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &req);
    let p = &r.responses[0].partitions[0];
    (p.error_code, p.records.clone().unwrap_or_default())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn idle_groups_sleep_wake_on_produce_and_elect_in_time_when_the_leader_node_goes() {
    let dir = tempfile::tempdir().unwrap();
    let configs = hibernating_configs(dir.path(), 3);
    let election = configs[0].raft.election_timeout;
    let tick = configs[0].raft.tick_interval;
    let nodes = start_cluster(configs);
    let mut c = Client::connect(nodes[0].addr);
    create_topic(&mut c, TOPIC, PARTITIONS, 3, &[]);
    let groups = groups();
    let mut all = groups.clone();
    all.push("__meta".into());
    let deadline = Instant::now() + Duration::from_secs(20);
    while elections_won(&all) < all.len() as u64 {
        assert!(Instant::now() < deadline, "not every group elected a leader");
        std::thread::sleep(Duration::from_millis(50));
    }

    // 1. Idle: every group goes quiet on every node, and the ticker ticks only `__meta`.
    let took = wait_all_quiet("idle");
    eprintln!("all {PARTITIONS} groups quiet on 3 nodes {took:?} after formation");
    let won = elections_won(&all);
    let before: Vec<u64> = (1..=3).map(ticks).collect();
    let window = Duration::from_secs(2);
    std::thread::sleep(window);
    let per_tick_period = window.as_secs_f64() / tick.as_secs_f64();
    for n in 1..=3u64 {
        let delivered = ticks(n) - before[n as usize - 1];
        eprintln!("node {n}: {delivered} ticks delivered in {window:?} ({per_tick_period:.0} tick periods)");
        // `__meta` alone gets one per period; 13 groups awake would get 13 per period.
        assert!(
            (delivered as f64) <= 1.5 * per_tick_period,
            "node {n}: {delivered} ticks in {per_tick_period:.0} periods: quiet groups are ticked"
        );
        assert_eq!(quiet(n), PARTITIONS as u64, "node {n}: a group woke while idle");
    }
    assert_eq!(elections_won(&all), won, "an election while quiet");

    // 2. A produce to a quiet group wakes it, commits with acks=all and reads back.
    let md: MetadataResponse = c.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default()
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(name(TOPIC)))])),
    );
    let leader_of: BTreeMap<i32, u64> =
        md.topics[0].partitions.iter().map(|p| (p.partition_index, p.leader_id.0 as u64)).collect();
    let mut clients: Vec<Client> = nodes.iter().map(|n| Client::connect(n.addr)).collect();
    for p in 0..PARTITIONS {
        let l = leader_of[&p] as usize;
        let value = format!("woken-{p}");
        assert_eq!(produce(&mut clients[l - 1], p, value.as_bytes()), 0, "produce to quiet partition {p}");
        let (err, records) = fetch(&mut clients[l - 1], p);
        assert_eq!(err, 0);
        assert!(contains(&records, value.as_bytes()), "partition {p}: the record is not read back");
    }
    assert_eq!(elections_won(&all), won, "waking cost an election");
    wait_all_quiet("after produce");

    // 3. The node leading the most groups is cut off: each group it led elects a new leader
    //    within 2 election timeouts, one leader per term.
    let mut led = [0usize; 4];
    for l in leader_of.values() {
        led[*l as usize] += 1;
    }
    let gone = (1..=3u64).max_by_key(|n| led[*n as usize]).unwrap();
    let its: Vec<String> = leader_of.iter().filter(|(_, l)| **l == gone).map(|(p, _)| format!("{TOPIC}/{p}")).collect();
    assert!(!its.is_empty());
    let terms_before: BTreeMap<String, u64> = leaders(&its).into_iter().map(|(g, v)| (g, v[0].1)).collect();
    let cut_at = Instant::now();
    cut(&nodes, gone, true);
    let mut elected: BTreeMap<String, Duration> = BTreeMap::new();
    let deadline = cut_at + 4 * election;
    while elected.len() < its.len() && Instant::now() < deadline {
        for (g, v) in leaders(&its) {
            if !elected.contains_key(&g) && v.iter().any(|(n, t)| *n != gone && *t > terms_before[&g]) {
                elected.insert(g, cut_at.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("node {gone} cut off; new leaders after {elected:?} (election timeout {election:?})");
    assert_eq!(elected.len(), its.len(), "groups without a new leader: {:?}", leaders(&its));
    // 2 election timeouts, plus a poll period and one tick of the liveness check.
    let bound = 2 * election + tick + Duration::from_millis(20);
    for (g, t) in &elected {
        assert!(*t <= bound, "{g}: new leader {t:?} after the cut, more than {bound:?}");
    }
    for (g, v) in leaders(&groups) {
        let mut terms: Vec<u64> = v.iter().map(|(_, t)| *t).collect();
        terms.sort_unstable();
        terms.dedup();
        assert_eq!(terms.len(), v.len(), "{g}: two leaders in one term: {v:?}");
    }

    // Heal: no election anywhere afterwards.
    std::thread::sleep(election);
    cut(&nodes, gone, false);
    std::thread::sleep(Duration::from_millis(500));
    let (won_healed, terms_healed) = (elections_won(&all), max_terms(&groups));
    std::thread::sleep(3 * election);
    assert_eq!(elections_won(&all), won_healed, "an election after healing");
    assert_eq!(max_terms(&groups), terms_healed, "a term moved after healing");

    // 4. A follower cut off and back while quiet disrupts no leader: the node that now leads
    //    nothing (neither a partition nor `__meta`).
    wait_all_quiet("after heal");
    let now_leading = leaders(&all);
    let follower = (1..=3u64)
        .find(|n| now_leading.values().all(|v| v.iter().all(|(l, _)| l != n)))
        .expect("a node that leads nothing");
    let (won_before, terms) = (elections_won(&all), max_terms(&groups));
    cut(&nodes, follower, true);
    std::thread::sleep(2 * election);
    cut(&nodes, follower, false);
    std::thread::sleep(3 * election);
    assert_eq!(elections_won(&all), won_before, "the follower's return cost an election");
    assert_eq!(max_terms(&groups), terms, "the follower's return moved a term");
    assert_eq!(leaders(&all), now_leading, "the follower's return moved a leader");
    for p in 0..PARTITIONS {
        let l = now_leading[&format!("{TOPIC}/{p}")][0].0 as usize;
        assert_eq!(produce(&mut clients[l - 1], p, b"after"), 0, "produce after the follower returned");
    }
    drop(nodes);
}
