//! `__meta` snapshots in an in-process three-node cluster: with many offset commits the nodes
//! snapshot their metadata and compact the `__meta` log; a node that was stopped meanwhile
//! comes back behind the leader's log start, is sent the snapshot, installs it and ends with the
//! same committed offsets; a restarted node starts from its own snapshot.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use common::{cluster_configs, spawn_node_logged, start_cluster, CapturedLog, Client, TestNode};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A standalone commit (no member, generation -1); the error code of each partition.
fn commit(c: &mut Client, group: &str, topic: &str, partition: i32, offset: i64) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(s(""))
        .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(vec![offset_commit_request::OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(-1)])]);
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &req);
    r.topics[0].partitions[0].error_code
}

/// Empty when this node is not the coordinator.
fn fetch(c: &mut Client, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let req = OffsetFetchRequest::default().with_groups(vec![offset_fetch_request::OffsetFetchRequestGroup::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(vec![offset_fetch_request::OffsetFetchRequestTopics::default()
            .with_name(TopicName(s(topic)))
            .with_partition_indexes((0..partitions).collect())]))]);
    let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 8, &req);
    if r.groups[0].error_code != 0 {
        return Vec::new();
    }
    r.groups[0].topics[0].partitions.iter().map(|p| p.committed_offset).collect()
}

/// The snapshot files of a node's `__meta` directory and its log's first segment base index.
fn meta_dir_state(data: &Path) -> (Vec<u64>, u64) {
    let mut snaps = Vec::new();
    let mut first = u64::MAX;
    for de in std::fs::read_dir(data.join("meta")).unwrap() {
        let name = de.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(i) = name.strip_prefix("meta-snapshot-").and_then(|n| n.parse().ok()) {
            snaps.push(i);
        }
        if let Some(b) = name.strip_suffix(".log").and_then(|n| n.parse::<u64>().ok()) {
            first = first.min(b);
        }
    }
    (snaps, first)
}

/// Commits through whichever node accepts them (the `__meta` leader coordinates groups).
fn commit_anywhere(nodes: &[Option<TestNode>], group: &str, topic: &str, p: i32, offset: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for n in nodes.iter().flatten() {
            if commit(&mut Client::connect(n.addr), group, topic, p, offset) == 0 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "no node took the commit of {offset}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_node_behind_the_meta_log_start_catches_up_by_snapshot_and_a_restart_loads_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut configs = cluster_configs(dir.path(), 3);
    for c in &mut configs {
        c.meta.snapshot_entries = 50;
        c.meta.segment_bytes = 4096;
    }
    let data: Vec<_> = configs.iter().map(|c| c.data_dir.clone()).collect();
    let nodes = start_cluster(configs.clone());
    let mut nodes: Vec<Option<TestNode>> = nodes.into_iter().map(Some).collect();
    common::create_topic(&mut Client::connect(nodes[0].as_ref().unwrap().addr), "t", 4, 2, &[]);

    // Node 3 stops; the others go on committing (one __meta entry per commit).
    drop(nodes[2].take());
    let commits = 600;
    for i in 0..commits {
        commit_anywhere(&nodes, "g", "t", i % 4, i64::from(i));
    }
    let want: Vec<i64> = (0..4).map(|p| i64::from(commits - 4 + p)).collect();
    // Both running nodes snapshot and compact their __meta log.
    for d in &data[..2] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (snaps, first) = meta_dir_state(d);
            if !snaps.is_empty() && first > 1 {
                assert!(snaps.len() <= 2, "old snapshot files are deleted: {snaps:?}");
                break;
            }
            assert!(Instant::now() < deadline, "{}: no snapshot / compaction: {snaps:?} first {first}", d.display());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // The metrics say so too.
    let metrics = chronik::metrics::render_node(1);
    let line = metrics.lines().find(|l| l.starts_with("chronik_meta_snapshot_index{")).expect("snapshot metric");
    assert!(line.split_whitespace().last().unwrap().parse::<f64>().unwrap() >= 50.0, "{line}");
    let (_, node3_first) = meta_dir_state(&data[2]);
    assert_eq!(node3_first, 1, "the stopped node still has its whole (short) log");

    // Node 3 comes back: it is behind the leader's log start, so it gets the snapshot.
    let log3 = CapturedLog::default();
    let n3 = spawn_node_logged(configs[2].clone(), Some(log3.clone())).wait();
    log3.wait_for(&["installed a __meta snapshot from the leader"], Duration::from_secs(30));
    nodes[2] = Some(n3);
    wait_same_meta(&nodes);
    let (snaps, first) = meta_dir_state(&data[2]);
    assert!(!snaps.is_empty() && first > 1, "node 3 stored the snapshot and restarted its log: {snaps:?} {first}");

    // A restarted node starts from its own snapshot and replays only the log after it.
    drop(nodes[0].take());
    let log1 = CapturedLog::default();
    let n1 = spawn_node_logged(configs[0].clone(), Some(log1.clone())).wait();
    log1.wait_for(&["loaded the __meta snapshot"], Duration::from_secs(10));
    nodes[0] = Some(n1);
    wait_same_meta(&nodes);
    // The coordinator (whichever node it is) answers the offsets, and the cluster takes commits.
    assert_eq!(fetch_anywhere(&nodes, "g", "t", 4), want);
    commit_anywhere(&nodes, "g", "t", 0, 10_000);
    assert_eq!(fetch_anywhere(&nodes, "g", "t", 1), vec![10_000]);
    wait_same_meta(&nodes);
}

/// The coordinator's answer (other nodes refuse with NOT_COORDINATOR).
fn fetch_anywhere(nodes: &[Option<TestNode>], group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for n in nodes.iter().flatten() {
            let got = fetch(&mut Client::connect(n.addr), group, topic, partitions);
            if !got.is_empty() {
                return got;
            }
        }
        assert!(Instant::now() < deadline, "no coordinator answered OffsetFetch");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until every node has applied the same `__meta` index with the same state digest.
fn wait_same_meta(nodes: &[Option<TestNode>]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen: Vec<(u64, u64)> = nodes
            .iter()
            .flatten()
            .map(|n| {
                let s = chronik::admin::fetch_status(&n.admin.to_string()).unwrap();
                (s["meta"]["applied"].as_u64().unwrap(), s["meta_digest"].as_u64().unwrap())
            })
            .collect();
        if seen.windows(2).all(|w| w[0] == w[1]) {
            return;
        }
        assert!(Instant::now() < deadline, "nodes differ in (applied, digest): {seen:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
