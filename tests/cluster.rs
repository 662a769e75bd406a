//! In-process three-node cluster tests: `__meta` formation, replicated partitions with leaders
//! spread over the nodes, NOT_LEADER_OR_FOLLOWER from followers, acks=-1 across replicas, and
//! leader failover when the transport cuts the leader off.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use chronik::log::batch::build_batch;
use common::{cluster_configs, start_cluster, Client, TestNode};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn metadata(c: &mut Client, topic: &str) -> MetadataResponse {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(name(topic)))]));
    c.call(ApiKey::Metadata, 12, &req)
}

/// Polls Metadata on `node` until every partition of `topic` has a leader; returns leaders.
fn wait_leaders(node: &TestNode, topic: &str, partitions: usize, timeout: Duration) -> Vec<i32> {
    let deadline = Instant::now() + timeout;
    let mut c = Client::connect(node.addr);
    loop {
        let r = metadata(&mut c, topic);
        let t = &r.topics[0];
        if t.error_code == 0 && t.partitions.len() == partitions && t.partitions.iter().all(|p| p.leader_id.0 > 0) {
            let mut ps = t.partitions.clone();
            ps.sort_by_key(|p| p.partition_index);
            return ps.iter().map(|p| p.leader_id.0).collect();
        }
        assert!(Instant::now() < deadline, "no leaders for {topic} in {timeout:?}: {r:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn produce(c: &mut Client, topic: &str, partition: i32, n: usize) -> ProduceResponse {
    let recs: Vec<chronik::log::batch::KeyValue> = (0..n).map(|_| (None, Some(&b"replicated"[..]))).collect();
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(name(topic)).with_partition_data(vec![
            produce_request::PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(Bytes::from(build_batch(0, -1, -1, -1, 1, &recs)))),
        ]),
    ]);
    c.call(ApiKey::Produce, 9, &req)
}

fn create(c: &mut Client, topic: &str, partitions: i32) {
    let req = CreateTopicsRequest::default().with_timeout_ms(20_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(3),
    ]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
}

#[test]
fn three_nodes_form_replicate_and_answer_not_leader() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(cluster_configs(dir.path(), 3));
    let mut c1 = Client::connect(nodes[0].addr);
    let r = metadata(&mut c1, "nothing-yet");
    assert_eq!(r.brokers.len(), 3, "every node registered in __meta");

    create(&mut c1, "rep", 6);
    // Every node sees the topic and the same leaders; leaders are spread over all three nodes.
    let leaders = wait_leaders(&nodes[0], "rep", 6, Duration::from_secs(20));
    for n in &nodes[1..] {
        assert_eq!(wait_leaders(n, "rep", 6, Duration::from_secs(20)).len(), 6);
    }
    let distinct: std::collections::BTreeSet<_> = leaders.iter().collect();
    assert_eq!(distinct.len(), 3, "leaders on every node: {leaders:?}");

    for (p, leader) in leaders.iter().enumerate() {
        let leader_node = &nodes[(*leader - 1) as usize];
        let follower_node = &nodes[(*leader % 3) as usize];
        let mut lc = Client::connect(leader_node.addr);
        let r = produce(&mut lc, "rep", p as i32, 5);
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0, "acks=-1 on the leader of partition {p}");
        let mut fc = Client::connect(follower_node.addr);
        let r = produce(&mut fc, "rep", p as i32, 5);
        assert_eq!(r.responses[0].partition_responses[0].error_code, 6, "NOT_LEADER_OR_FOLLOWER from a follower");
    }
    // The ISR of each partition lists all three replicas.
    let r = metadata(&mut c1, "rep");
    for p in &r.topics[0].partitions {
        assert_eq!(p.replica_nodes.len(), 3);
    }
    // Every replica of every partition holds byte-identical data once it has applied it all.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = chronik::admin::cluster_status(&nodes[0].admin.to_string(), true).unwrap();
        for n in status["nodes"].as_array().unwrap() {
            assert_eq!(n["deserialization_failures_total"], 0, "{n}");
        }
        let mut by_partition: std::collections::BTreeMap<i64, Vec<(String, i64)>> = Default::default();
        for g in status["groups"].as_array().unwrap().iter().filter(|g| g["topic"] == "rep") {
            by_partition
                .entry(g["partition"].as_i64().unwrap())
                .or_default()
                .push((g["checksum"].as_str().unwrap().to_string(), g["high_watermark"].as_i64().unwrap()));
        }
        let converged = by_partition.len() == 6
            && by_partition
                .values()
                .all(|copies| copies.len() == 3 && copies.iter().all(|c| *c == copies[0] && c.1 == 5));
        if converged {
            break;
        }
        assert!(Instant::now() < deadline, "replicas did not converge: {by_partition:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Without checksums (progress polls): the same progress, and no log is read for a checksum.
    let quick = chronik::admin::cluster_status(&nodes[0].admin.to_string(), false).unwrap();
    let rows: Vec<_> = quick["groups"].as_array().unwrap().iter().filter(|g| g["topic"] == "rep").collect();
    assert_eq!(rows.len(), 18, "6 partitions x 3 replicas: {quick}");
    for g in rows {
        assert_eq!(g["checksum"], "", "{g}");
        assert_eq!(g["high_watermark"], 5, "{g}");
    }
}

#[test]
fn a_leader_cut_off_is_replaced_and_the_majority_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(cluster_configs(dir.path(), 3));
    let mut c1 = Client::connect(nodes[0].addr);
    create(&mut c1, "fo", 1);
    let old = wait_leaders(&nodes[0], "fo", 1, Duration::from_secs(20))[0];
    let others: Vec<&TestNode> =
        nodes.iter().enumerate().filter(|(i, _)| *i as i32 + 1 != old).map(|(_, n)| n).collect();
    // Cut the leader off from both other nodes, in both directions.
    for (i, n) in nodes.iter().enumerate() {
        let id = i as u64 + 1;
        if id == old as u64 {
            for peer in 1..=3u64 {
                if peer != id {
                    n.faults.partition(peer, true);
                }
            }
        } else {
            n.faults.partition(old as u64, true);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let new_leader = loop {
        let mut c = Client::connect(others[0].addr);
        let r = metadata(&mut c, "fo");
        let l = r.topics[0].partitions[0].leader_id.0;
        if l > 0 && l != old {
            break l;
        }
        assert!(Instant::now() < deadline, "no new leader after cutting off node {old}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut lc = Client::connect(nodes[(new_leader - 1) as usize].addr);
    let r = produce(&mut lc, "fo", 0, 3);
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0, "the majority side keeps serving");
    for n in &nodes {
        for peer in 1..=3u64 {
            n.faults.partition(peer, false);
        }
    }
}

#[test]
fn a_follower_behind_retention_catches_up_from_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut configs = cluster_configs(dir.path(), 3);
    for c in &mut configs {
        c.storage.retention_check_interval = Duration::from_millis(100);
    }
    let nodes = start_cluster(configs);
    let mut c1 = Client::connect(nodes[0].addr);
    let req = CreateTopicsRequest::default().with_timeout_ms(20_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name("snap"))
            .with_num_partitions(1)
            .with_replication_factor(3)
            .with_configs(vec![
                create_topics_request::CreatableTopicConfig::default()
                    .with_name(StrBytes::from_static_str("internal.segment.bytes"))
                    .with_value(Some(StrBytes::from_static_str("4096"))),
                create_topics_request::CreatableTopicConfig::default()
                    .with_name(StrBytes::from_static_str("retention.bytes"))
                    .with_value(Some(StrBytes::from_static_str("8192"))),
            ]),
    ]);
    let r: CreateTopicsResponse = c1.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0);
    let leader = wait_leaders(&nodes[0], "snap", 1, Duration::from_secs(20))[0] as u64;
    let lagging = leader % 3 + 1;
    // Cut the lagging follower off, write enough to roll and delete segments on the others.
    for (i, n) in nodes.iter().enumerate() {
        let id = i as u64 + 1;
        if id == lagging {
            (1..=3).filter(|p| *p != id).for_each(|p| n.faults.partition(p, true));
        } else {
            n.faults.partition(lagging, true);
        }
    }
    let mut lc = Client::connect(nodes[(leader - 1) as usize].addr);
    for _ in 0..40 {
        let r = produce(&mut lc, "snap", 0, 20);
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    // Wait until the leader's log start has moved past what the follower has.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = chronik::admin::fetch_status(&nodes[(leader - 1) as usize].admin.to_string()).unwrap();
        let g = &status["groups"].as_array().unwrap().iter().find(|g| g["topic"] == "snap").unwrap().clone();
        if g["log_start"].as_i64().unwrap() > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "retention never moved the leader's log start: {g}");
        std::thread::sleep(Duration::from_millis(100));
    }
    for n in &nodes {
        (1..=3u64).for_each(|p| n.faults.partition(p, false));
    }
    // The follower is sent a snapshot and then the rest of the log.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lead = chronik::admin::fetch_status(&nodes[(leader - 1) as usize].admin.to_string()).unwrap();
        let lag = chronik::admin::fetch_status(&nodes[(lagging - 1) as usize].admin.to_string()).unwrap();
        let pick = |s: &serde_json::Value| {
            s["groups"].as_array().unwrap().iter().find(|g| g["topic"] == "snap").unwrap().clone()
        };
        let (l, f) = (pick(&lead), pick(&lag));
        if f["high_watermark"] == l["high_watermark"] && f["applied"] == l["applied"] {
            assert_eq!(l["high_watermark"], 800);
            break;
        }
        assert!(Instant::now() < deadline, "the lagging follower did not catch up: leader {l} follower {f}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_replica_repairs_a_damaged_entry_with_a_copy_from_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let configs = cluster_configs(dir.path(), 3);
    let mut nodes: Vec<Option<TestNode>> = start_cluster(configs.clone()).into_iter().map(Some).collect();
    let mut c1 = Client::connect(nodes[0].as_ref().unwrap().addr);
    let req = CreateTopicsRequest::default().with_timeout_ms(20_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name("rot"))
            .with_num_partitions(1)
            .with_replication_factor(3)
            .with_configs(vec![create_topics_request::CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str("internal.segment.bytes"))
                .with_value(Some(StrBytes::from_static_str("1024")))]),
    ]);
    let r: CreateTopicsResponse = c1.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0);
    let leader = wait_leaders(nodes[0].as_ref().unwrap(), "rot", 1, Duration::from_secs(20))[0] as u64;
    let mut lc = Client::connect(nodes[(leader - 1) as usize].as_ref().unwrap().addr);
    for _ in 0..12 {
        let r = produce(&mut lc, "rot", 0, 8);
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    // Stop a follower once it has everything, and flip a byte in a sealed segment of its copy.
    let follower = leader % 3 + 1;
    let checksums = |nodes: &[Option<TestNode>]| -> Vec<(String, i64)> {
        let status =
            chronik::admin::cluster_status(&nodes[(leader - 1) as usize].as_ref().unwrap().admin.to_string(), true);
        let status = status.unwrap();
        let mut v: Vec<(String, i64)> = status["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["topic"] == "rot")
            .map(|g| (g["checksum"].as_str().unwrap().to_string(), g["high_watermark"].as_i64().unwrap()))
            .collect();
        v.sort();
        v
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(checksums(&nodes).len() == 3 && checksums(&nodes).iter().all(|c| *c == checksums(&nodes)[0])) {
        assert!(Instant::now() < deadline, "replicas did not converge before the fault");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(nodes[(follower - 1) as usize].take());
    let gdir = configs[(follower - 1) as usize].data_dir.join("groups");
    let gdir = std::fs::read_dir(&gdir).unwrap().next().unwrap().unwrap().path();
    let mut logs: Vec<_> = std::fs::read_dir(&gdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    assert!(logs.len() >= 3, "{logs:?}");
    let original = std::fs::read(&logs[0]).unwrap();
    let mut bad = original.clone();
    let at = bad.len() - 10;
    bad[at] ^= 0x08;
    std::fs::write(&logs[0], &bad).unwrap();

    let log = common::CapturedLog::default();
    nodes[(follower - 1) as usize] =
        Some(common::spawn_node_logged(configs[(follower - 1) as usize].clone(), Some(log.clone())).wait());
    log.wait_for(&["corrupt entry in the partition log"], Duration::from_secs(20));
    log.wait_for(&["damaged entry repaired with a copy from another replica"], Duration::from_secs(20));
    assert_eq!(std::fs::read(&logs[0]).unwrap(), original, "the frame is byte for byte the leader's again");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = checksums(&nodes);
        if c.len() == 3 && c.iter().all(|x| *x == c[0] && x.1 == 96) {
            break;
        }
        assert!(Instant::now() < deadline, "replicas differ after the repair: {c:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
