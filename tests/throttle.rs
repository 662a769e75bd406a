//! In-process three-node test of Kafka's replication throttles (`peer::throttle`): with
//! `leader.replication.throttled.rate` and `follower.replication.throttled.rate` set on every
//! broker and `*` as the topic's throttled replicas, a follower that was cut off while 8 MiB were
//! written catches up no faster than the quota allows (Kafka's window lets ten seconds' worth
//! through at first, plus one message in flight), while produce to the in-sync pair is never
//! held. Deleting the rates lets it finish, and every replica ends byte-identical. Leaders
//! stay put: one leader per term, and the cut-off follower never became one.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use chronik::log::batch::build_batch;
use common::{cluster_configs, create_topic, cut, incremental_alter, leader_of, replica_status, start_cluster, Client};

const RATE: u64 = 64 * 1024;
const BATCHES: usize = 128;
const BATCH_BYTES: usize = 64 * 1024;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn produce(c: &mut Client, topic: &str, i: usize) -> i16 {
    let value = vec![(i % 251) as u8; BATCH_BYTES];
    let recs: Vec<chronik::log::batch::KeyValue> = vec![(None, Some(value.as_slice()))];
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(TopicName(s(topic))).with_partition_data(vec![
            produce_request::PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(build_batch(0, -1, -1, -1, 1, &recs)))),
        ]),
    ]);
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &req);
    r.responses[0].partition_responses[0].error_code
}

/// The applied index of `topic`'s replica on node `id`, from `cluster status` (all nodes).
fn applied(node: &common::TestNode, topic: &str, id: u64) -> i64 {
    let all = replica_status(node, topic, ["applied", "term"]);
    all.iter().find(|r| r.0 == id).unwrap_or_else(|| panic!("no replica on node {id}: {all:?}")).1
}

#[test]
fn a_throttled_follower_catches_up_within_the_quota_and_in_sync_produce_is_never_held() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(cluster_configs(dir.path(), 3));
    let mut c = Client::connect(nodes[0].addr);
    let topic = "throttled";
    create_topic(
        &mut c,
        topic,
        1,
        3,
        &[("leader.replication.throttled.replicas", "*"), ("follower.replication.throttled.replicas", "*")],
    );
    let leader = leader_of(&nodes[0], topic);
    // Cut off a follower: the other two commit without it.
    let lagging = (1..=3).find(|n| *n != leader).unwrap();
    cut(&nodes, lagging, true);
    // The rates are set before the writes: the in-sync follower is never held (produce with
    // acks=all would stall at 64 KiB/s otherwise: 8 MiB would take two minutes).
    let rate = RATE.to_string();
    let rates = [
        ("leader.replication.throttled.rate", 0, Some(rate.as_str())),
        ("follower.replication.throttled.rate", 0, Some(rate.as_str())),
    ];
    assert_eq!(incremental_alter(&mut c, 4, "", &rates).0, 0);
    let mut lc = Client::connect(nodes[leader as usize - 1].addr);
    let started = Instant::now();
    for i in 0..BATCHES {
        assert_eq!(produce(&mut lc, topic, i), 0, "batch {i}");
    }
    let wrote = started.elapsed();
    let target = applied(&nodes[0], topic, leader);
    let before = applied(&nodes[0], topic, lagging);
    assert!(target - before >= BATCHES as i64, "the cut-off follower missed every batch: {before} of {target}");

    // Heal: the follower catches up through the throttle for a while.
    cut(&nodes, lagging, false);
    let watched = Duration::from_secs(4);
    std::thread::sleep(watched);
    let during = applied(&nodes[0], topic, lagging);
    // The quota: ten seconds' worth at first (Kafka's window), plus the one append that was
    // admitted under the limit (raft-rs packs up to 1 MiB into one), on each side.
    let allowed_bytes = RATE * 10 + (1 << 20) + RATE * watched.as_secs();
    let allowed_entries = (allowed_bytes / BATCH_BYTES as u64) as i64 + 2;
    assert!(
        during - before <= allowed_entries,
        "the follower applied {} entries in {watched:?}, the quota allows {allowed_entries} (the writes took {wrote:?})",
        during - before
    );
    assert!(during < target, "still behind while throttled");
    assert!(during > before, "but moving: the quota lets traffic through, it does not stop it");

    // Deleting the rates lets it finish.
    let clear = [("leader.replication.throttled.rate", 1, None), ("follower.replication.throttled.rate", 1, None)];
    assert_eq!(incremental_alter(&mut c, 4, "", &clear).0, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = replica_status(&nodes[0], topic, ["applied", "high_watermark"]);
        let sums: std::collections::BTreeSet<_> = all.iter().map(|r| r.3.clone()).collect();
        if all.len() == 3 && all.iter().all(|r| r.1 >= target) && sums.len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no catch-up after the throttle was removed: {all:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(leader_of(&nodes[0], topic), leader, "the leader stayed");
}
