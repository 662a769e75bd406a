//! In-process three-node cluster tests of the leaders: ElectLeaders PREFERRED moves the
//! leadership back to each partition's preferred replica (the first of its replica list) with a
//! Raft leader transfer, answers ELECTION_NOT_NEEDED when nothing needs to move (and moves
//! nothing), and answers bad input (unknown topic, missing partition, UNCLEAN on a led partition)
//! with Kafka's codes.

mod common;

use std::time::{Duration, Instant};

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use common::{cluster_configs, create_topic, start_cluster, Client, TestNode};

const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;
const ELECTION_NOT_NEEDED: i16 = 84;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// (leader, preferred replica) of each partition of `topic`, in partition order, once every
/// partition has a leader.
fn leaders(node: &TestNode, topic: &str, partitions: usize) -> Vec<(i32, i32)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut c = Client::connect(node.addr);
    let req = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(name(topic)))]));
    loop {
        let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &req);
        let t = &r.topics[0];
        if t.partitions.len() == partitions && t.partitions.iter().all(|p| p.leader_id.0 > 0) {
            let mut ps = t.partitions.clone();
            ps.sort_by_key(|p| p.partition_index);
            return ps.iter().map(|p| (p.leader_id.0, p.replica_nodes[0].0)).collect();
        }
        assert!(Instant::now() < deadline, "no leaders for {topic}: {r:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn elect(c: &mut Client, version: i16, kind: i8, partitions: Option<&[(&str, &[i32])]>) -> ElectLeadersResponse {
    let tps = partitions.map(|ps| {
        ps.iter()
            .map(|(t, p)| {
                elect_leaders_request::TopicPartitions::default().with_topic(name(t)).with_partitions(p.to_vec())
            })
            .collect()
    });
    let mut req = ElectLeadersRequest::default().with_timeout_ms(20_000).with_topic_partitions(tps);
    if version >= 1 {
        req = req.with_election_type(kind);
    }
    c.call(ApiKey::ElectLeaders, version, &req)
}

/// (topic, partition, error code) of every answered partition, sorted.
fn results(r: &ElectLeadersResponse) -> Vec<(String, i32, i16)> {
    let mut v: Vec<_> = r
        .replica_election_results
        .iter()
        .flat_map(|t| t.partition_result.iter().map(|p| (t.topic.0.to_string(), p.partition_id, p.error_code)))
        .collect();
    v.sort();
    v
}

/// Cuts node `id` off from the others (both directions) or heals it.
fn cut(nodes: &[TestNode], id: u64, on: bool) {
    for (i, n) in nodes.iter().enumerate() {
        let me = i as u64 + 1;
        if me == id {
            for peer in (1..=nodes.len() as u64).filter(|p| *p != id) {
                n.faults.partition(peer, on);
            }
        } else {
            n.faults.partition(id, on);
        }
    }
}

#[test]
fn preferred_election_moves_leaders_back_and_nothing_when_balanced() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(cluster_configs(dir.path(), 3));
    let mut c = Client::connect(nodes[0].addr);
    create_topic(&mut c, "el", 6, 3, &[]);
    let start = leaders(&nodes[0], "el", 6);
    assert!(start.iter().all(|(l, p)| l == p), "a new topic's first leaders are the preferred replicas: {start:?}");

    // Balanced: nothing to do, nothing moves (v0 has no election type: PREFERRED).
    for v in 0..=2 {
        let r = elect(&mut c, v, PREFERRED, Some(&[("el", &[0, 1, 2, 3, 4, 5])]));
        assert!(results(&r).iter().all(|(_, _, e)| *e == ELECTION_NOT_NEEDED), "v{v}: {r:?}");
        let r = elect(&mut c, v, PREFERRED, None);
        assert!(results(&r).is_empty(), "v{v}, all partitions: the led ones are left out: {r:?}");
    }
    assert_eq!(leaders(&nodes[0], "el", 6), start, "no leader moved while balanced");

    // Node 3 is cut off: the others take its partitions over; then it comes back as a follower.
    cut(&nodes, 3, true);
    let deadline = Instant::now() + Duration::from_secs(30);
    while leaders(&nodes[0], "el", 6).iter().any(|(l, _)| *l == 3) {
        assert!(Instant::now() < deadline, "node 3 still leads after being cut off");
        std::thread::sleep(Duration::from_millis(100));
    }
    cut(&nodes, 3, false);
    let moved: Vec<i32> = start.iter().enumerate().filter(|(_, (_, p))| *p == 3).map(|(i, _)| i as i32).collect();
    assert!(!moved.is_empty(), "node 3 was the preferred replica of some partitions: {start:?}");

    // ElectLeaders for every partition (null) on node 2: those moved answer NONE once node 3
    // leads them again; the others are left out.
    let mut c2 = Client::connect(nodes[1].addr);
    let r = elect(&mut c2, 2, PREFERRED, None);
    assert_eq!(r.error_code, 0);
    let expected: Vec<_> = moved.iter().map(|p| ("el".to_string(), *p, 0i16)).collect();
    assert_eq!(results(&r), expected, "{r:?}");
    let after = leaders(&nodes[0], "el", 6);
    assert!(after.iter().all(|(l, p)| l == p), "every preferred replica leads again: {after:?}");
    assert!(chronik::metrics::leader_transfers_requested(3) >= moved.len() as u64);

    // Bad input: an unknown topic, a partition that does not exist, UNCLEAN on a led partition.
    let r = elect(&mut c, 2, PREFERRED, Some(&[("nope", &[0]), ("el", &[99])]));
    assert_eq!(
        results(&r),
        vec![("el".into(), 99, UNKNOWN_TOPIC_OR_PARTITION), ("nope".into(), 0, UNKNOWN_TOPIC_OR_PARTITION)]
    );
    let r = elect(&mut c, 1, UNCLEAN, Some(&[("el", &[0])]));
    assert_eq!(results(&r), vec![("el".into(), 0, ELECTION_NOT_NEEDED)]);
    assert_eq!(leaders(&nodes[0], "el", 6), after, "bad input moved no leader");
}

#[test]
fn controller_id_is_the_meta_leader() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(cluster_configs(dir.path(), 3));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = chronik::admin::cluster_status(&nodes[0].admin.to_string()).unwrap();
        let meta_leaders: Vec<u64> = status["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["topic"] == "__meta")
            .map(|g| g["leader"].as_u64().unwrap_or(0))
            .collect();
        let leader = meta_leaders[0];
        let controllers: Vec<i32> = nodes
            .iter()
            .map(|n| {
                let r: MetadataResponse =
                    Client::connect(n.addr).call(ApiKey::Metadata, 12, &MetadataRequest::default());
                let d: DescribeClusterResponse =
                    Client::connect(n.addr).call(ApiKey::DescribeCluster, 1, &DescribeClusterRequest::default());
                assert_eq!(r.controller_id, d.controller_id, "Metadata and DescribeCluster agree");
                r.controller_id.0
            })
            .collect();
        if leader != 0 && meta_leaders.iter().all(|l| *l == leader) && controllers.iter().all(|c| *c as u64 == leader) {
            break;
        }
        assert!(Instant::now() < deadline, "__meta leaders {meta_leaders:?}, controllers {controllers:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
