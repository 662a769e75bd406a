//! In-process check of creating many partitions at once (issue 15's 10,000-partition row, scaled
//! down): one CreateTopics of 300 partitions at RF 3 on three nodes with hibernation on. The new
//! replicas are created in batches (`partition::create`), the preferred replica of each group
//! campaigns once it holds one of its node's first-campaign slots (`raft::first_campaign`) and the
//! other replicas wait asleep for it (`raft::hibernate::starts_quiet`). So every group is led by
//! its preferred replica after exactly one election at term 1: no leader stepped down, no second
//! campaign won, and every group then goes quiet on every node.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use chronik::metrics::{hibernation, registry};
use common::{create_topic, elections_won, hibernating_configs, start_cluster, Client};

const PARTITIONS: i32 = 300;
const TOPIC: &str = "many";

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

#[test]
fn many_new_partitions_elect_their_preferred_leader_once_and_sleep() {
    let dir = tempfile::tempdir().unwrap();
    let configs = hibernating_configs(dir.path(), 3);
    let nodes = start_cluster(configs);
    let mut c = Client::connect(nodes[0].addr);
    create_topic(&mut c, TOPIC, PARTITIONS, 3, &[]);
    let groups: Vec<String> = (0..PARTITIONS).map(|p| format!("{TOPIC}/{p}")).collect();

    // Every group elects a leader; then, a while later, still exactly one election each.
    let deadline = Instant::now() + Duration::from_secs(60);
    while elections_won(&groups) < PARTITIONS as u64 {
        assert!(Instant::now() < deadline, "{} of {PARTITIONS} groups elected", elections_won(&groups));
        std::thread::sleep(Duration::from_millis(50));
    }
    let quiet = |n: u64| hibernation(n).map(|(q, _)| q).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while (1..=3).any(|n| quiet(n) < PARTITIONS as u64) {
        assert!(Instant::now() < deadline, "quiet groups per node: {:?}", (1..=3).map(quiet).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(elections_won(&groups), PARTITIONS as u64, "a group elected more than once");

    // Each group's leader, at term 1, is its preferred replica (the first of its replica list).
    let md: MetadataResponse = c.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default()
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(name(TOPIC)))])),
    );
    let preferred: BTreeMap<i32, u64> =
        md.topics[0].partitions.iter().map(|p| (p.partition_index, p.replica_nodes[0].0 as u64)).collect();
    assert_eq!(preferred.len(), PARTITIONS as usize);
    let mut led = BTreeMap::<u64, usize>::new();
    for (p, want) in &preferred {
        let g = format!("{TOPIC}/{p}");
        let figures: Vec<(u64, String, u64)> =
            (1..=3).filter_map(|n| registry().group_figures(n, &g).map(|f| (n, f.role.to_string(), f.term))).collect();
        let leaders: Vec<u64> = figures.iter().filter(|(_, role, _)| role == "Leader").map(|(n, _, _)| *n).collect();
        assert_eq!(leaders, vec![*want], "{g}: leaders {figures:?}, preferred {want}");
        assert!(figures.iter().all(|(_, _, t)| *t == 1), "{g}: a term past the first election: {figures:?}");
        *led.entry(*want).or_default() += 1;
    }
    eprintln!("{PARTITIONS} partitions led by their preferred replicas: {led:?}");
    drop(nodes);
}
