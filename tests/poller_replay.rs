//! In-process: a partition replaying a large log at open holds up no other group on its poller
//! (issue 15). A three-node cluster with one poller thread per node; node 3 restarts while
//! its replica of `big` replays a long log (`faults.replay-delay` stands in for a slow disk
//! under a large log). Meanwhile a group on the same poller of node 3 takes over its
//! leadership by a leader transfer and sends heartbeats on time, and no group led elsewhere
//! holds an election. Once `big` has started its replica has the same data as the others.
//! One test per binary: metrics are process-wide.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use chronik::log::batch::build_batch;
use chronik::metrics::registry;
use common::{
    cluster_configs, create_topic, elections_won, spawn_node_logged, start_cluster, CapturedLog, Client, TestNode,
};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// (partition, leader, preferred replica) of every partition of `topic`, once all have leaders.
fn leaders(node: &TestNode, topic: &str, partitions: usize) -> Vec<(i32, i32, i32)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut c = Client::connect(node.addr);
    let req = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(name(topic)))]));
    loop {
        let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &req);
        let t = &r.topics[0];
        if t.partitions.len() == partitions && t.partitions.iter().all(|p| p.leader_id.0 > 0) {
            let mut v: Vec<_> =
                t.partitions.iter().map(|p| (p.partition_index, p.leader_id.0, p.replica_nodes[0].0)).collect();
            v.sort();
            return v;
        }
        assert!(Instant::now() < deadline, "no leaders for {topic}: {r:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_partition_replaying_a_large_log_holds_up_no_other_group_on_its_poller() {
    let dir = tempfile::tempdir().unwrap();
    let mut configs = cluster_configs(dir.path(), 3);
    for c in &mut configs {
        c.raft.threads = 1;
    }
    let heartbeat = configs[0].raft.heartbeat_interval;
    let mut restart = configs[2].clone();
    restart.faults.replay_delay = Duration::from_secs(3);
    let mut nodes = start_cluster(configs);
    let mut c = Client::connect(nodes[0].addr);
    create_topic(&mut c, "big", 1, 3, &[]);
    create_topic(&mut c, "small", 3, 3, &[]);

    // 8 MiB in `big` (64 KiB batches), acknowledged by all three replicas' quorum.
    let big_leader = leaders(&nodes[0], "big", 1)[0].1 as usize;
    let mut p = Client::connect(nodes[big_leader - 1].addr);
    let value = vec![7u8; 64 * 1024];
    for round in 0..128 {
        let recs: Vec<chronik::log::batch::KeyValue> = vec![(None, Some(&value[..]))];
        let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![
            produce_request::TopicProduceData::default().with_name(name("big")).with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from(build_batch(0, -1, -1, -1, round, &recs)))),
            ]),
        ]);
        let r: ProduceResponse = p.call(ApiKey::Produce, 9, &req);
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }

    // Node 3 stops; the groups it led elect leaders on nodes 1 and 2.
    drop(nodes.remove(2));
    let deadline = Instant::now() + Duration::from_secs(20);
    let (small, _big) = loop {
        let (small, big) = (leaders(&nodes[0], "small", 3), leaders(&nodes[0], "big", 1));
        if small.iter().chain(&big).all(|(_, l, _)| *l != 3) {
            break (small, big);
        }
        assert!(Instant::now() < deadline, "node 3 still leads: {small:?} {big:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let (moved, _, _) = *small.iter().find(|(_, _, preferred)| *preferred == 3).expect("node 3 is preferred for one");
    let elsewhere: Vec<String> = std::iter::once("big/0".to_string())
        .chain(small.iter().filter(|(p, _, _)| *p != moved).map(|(p, _, _)| format!("small/{p}")))
        .chain(std::iter::once("__meta".to_string()))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let elections_before = elections_won(&elsewhere);

    // Node 3 restarts: its `small` replicas open at once, `big` replays for seconds.
    let log = CapturedLog::default();
    let starting = spawn_node_logged(restart, Some(log.clone()));
    for p in 0..3 {
        log.wait_for(&["partition started", "topic: small", &format!("partition: {p}")], Duration::from_secs(20));
    }
    assert!(log.lines_with(&["partition started", "topic: big"]).is_empty(), "big has not replayed yet");

    // A leader transfer to node 3 of the partition it is preferred for: that group, on the
    // poller `big` will run on, steps the transfer's messages and campaigns, then leads.
    let r: ElectLeadersResponse = c.call(
        ApiKey::ElectLeaders,
        2,
        &ElectLeadersRequest::default().with_timeout_ms(20_000).with_election_type(0).with_topic_partitions(Some(
            vec![elect_leaders_request::TopicPartitions::default()
                .with_topic(name("small"))
                .with_partitions(vec![moved])],
        )),
    );
    assert_eq!(r.error_code, 0, "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while leaders(&nodes[0], "small", 3)[moved as usize].1 != 3 {
        assert!(Instant::now() < deadline, "node 3 did not take over small/{moved}");
        std::thread::sleep(Duration::from_millis(20));
    }

    // While `big` still replays, node 3's heartbeats leave on time: one frame per heartbeat
    // interval on each link (heartbeats of all its groups share a frame).
    let frames = |to: u64| registry().peer_figures(3, to).map(|p| p.heartbeat_frames).unwrap_or(0);
    let before = (frames(1), frames(2));
    let window = Duration::from_secs(1);
    std::thread::sleep(window);
    let sent = (frames(1) - before.0, frames(2) - before.1);
    assert!(log.lines_with(&["partition started", "topic: big"]).is_empty(), "big was still replaying");
    let expected = window.as_secs_f64() / heartbeat.as_secs_f64();
    for (to, n) in [(1, sent.0), (2, sent.1)] {
        eprintln!("node 3 -> {to}: {n} heartbeat frames in {window:?} ({expected:.0} heartbeat intervals)");
        assert!(n as f64 >= expected * 0.7, "node 3 -> {to}: {n} heartbeat frames in {window:?}");
    }

    // `big` starts once replayed, with the same data as the other replicas; no group led
    // elsewhere held an election meanwhile.
    let node3 = starting.wait();
    let line = log.wait_for(&["replayed the committed log"], Duration::from_secs(1));
    eprintln!("{line}");
    nodes.push(node3);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = common::replica_status(&nodes[0], "big", ["log_start", "high_watermark"]);
        let same = status.len() == 3 && status.iter().all(|s| s.2 == 128 && s.3 == status[0].3);
        if same {
            break;
        }
        assert!(Instant::now() < deadline, "replicas of big differ: {status:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(elections_won(&elsewhere), elections_before, "a group led elsewhere held an election");
}
