//! In-process stability checks (one test per binary, because metrics are process-wide): a
//! three-node cluster with many groups elects each group once, coalesces heartbeats into at most
//! two frames per node pair (both directions) per heartbeat interval, keeps heartbeat intervals regular, and holds
//! its leaders while every committed batch is applied slowly.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use chronik::log::batch::build_batch;
use chronik::metrics::registry;
use common::{cluster_configs, elections_won, start_cluster, Client};

const PARTITIONS: i32 = 30;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

#[test]
fn groups_elect_once_heartbeats_coalesce_and_slow_apply_costs_no_election() {
    let dir = tempfile::tempdir().unwrap();
    let mut configs = cluster_configs(dir.path(), 3);
    for c in &mut configs {
        c.faults.apply_delay = Duration::from_millis(100);
    }
    let heartbeat = configs[0].raft.heartbeat_interval;
    let nodes = start_cluster(configs);
    let mut c = Client::connect(nodes[0].addr);
    let req = CreateTopicsRequest::default().with_timeout_ms(30_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name("many"))
            .with_num_partitions(PARTITIONS)
            .with_replication_factor(3),
    ]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0);
    let mut groups: Vec<String> = (0..PARTITIONS).map(|p| format!("many/{p}")).collect();
    groups.push("__meta".into());
    let deadline = Instant::now() + Duration::from_secs(20);
    while elections_won(&groups) < groups.len() as u64 {
        assert!(Instant::now() < deadline, "not every group elected a leader");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Idle: count heartbeat-carrying frames and all frames per node pair over a window.
    let frames =
        |a: u64, b: u64| registry().peer_figures(a, b).map(|p| (p.frames, p.heartbeat_frames)).unwrap_or((0, 0));
    std::thread::sleep(Duration::from_secs(2));
    let before: Vec<_> = [(1, 2), (2, 1), (1, 3), (3, 1), (2, 3), (3, 2)].iter().map(|(a, b)| frames(*a, *b)).collect();
    let window = Duration::from_secs(3);
    std::thread::sleep(window);
    let intervals = window.as_secs_f64() / heartbeat.as_secs_f64();
    let mut per_link = Vec::new();
    for (i, (a, b)) in [(1u64, 2u64), (2, 1), (1, 3), (3, 1), (2, 3), (3, 2)].iter().enumerate() {
        let after = frames(*a, *b);
        let per_interval = (after.0 - before[i].0) as f64 / intervals;
        per_link.push(per_interval);
        let p = registry().peer_figures(*a, *b).unwrap();
        let p99 = p.heartbeat_interval.quantile(0.99).unwrap();
        let p50 = p.heartbeat_interval.quantile(0.5).unwrap();
        let target = heartbeat.as_secs_f64();
        assert!((p50 - target).abs() <= 0.010, "node {a} -> {b}: heartbeat p50 {p50:.4}s, target {target}s");
        eprintln!("node {a} -> {b}: {per_interval:.2} frames/interval, heartbeat p50 {p50:.4}s p99 {p99:.4}s");
    }
    // Both directions of a node pair together: one frame each way per interval (heartbeats with
    // the responses to the other side's), plus at most one frame at each edge of the window.
    let edge = 2.0 * 2.0 / intervals;
    for (k, pair) in ["1<->2", "1<->3", "2<->3"].iter().enumerate() {
        let both = per_link[2 * k] + per_link[2 * k + 1];
        eprintln!("node pair {pair}: {both:.2} frames per heartbeat interval");
        assert!(both <= 2.0 + edge, "node pair {pair}: {both:.2} frames per heartbeat interval");
    }

    // Load while every committed batch takes 100 ms to apply: no group loses its leader.
    let leaders_before = elections_won(&groups);
    let mut clients: Vec<Client> = nodes.iter().map(|n| Client::connect(n.addr)).collect();
    let md: MetadataResponse = c.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default()
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(name("many")))])),
    );
    for round in 0..2 {
        for p in &md.topics[0].partitions {
            let leader = p.leader_id.0 as usize;
            let recs: Vec<chronik::log::batch::KeyValue> = (0..10).map(|_| (None, Some(&b"slow"[..]))).collect();
            let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![
                produce_request::TopicProduceData::default().with_name(name("many")).with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(p.partition_index)
                        .with_records(Some(Bytes::from(build_batch(0, -1, -1, -1, round, &recs)))),
                ]),
            ]);
            clients[leader - 1].send(ApiKey::Produce, 9, &req);
        }
        for p in &md.topics[0].partitions {
            let (_, r): (i32, ProduceResponse) = clients[p.leader_id.0 as usize - 1].recv(ApiKey::Produce, 9);
            assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(elections_won(&groups), leaders_before, "a slow apply cost an election");
    for (a, b) in [(1u64, 2u64), (2, 1)] {
        let p = registry().peer_figures(a, b).unwrap();
        eprintln!(
            "after slow apply, node {a} -> {b}: heartbeat p99 {:.4}s max {:.4}s",
            p.heartbeat_interval.quantile(0.99).unwrap(),
            p.heartbeat_interval.quantile(1.0).unwrap()
        );
    }
}
