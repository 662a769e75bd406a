//! In-process three-node cluster tests of the leaders: ElectLeaders PREFERRED moves the
//! leadership back to each partition's preferred replica (the first of its replica list) with a
//! Raft leader transfer, answers ELECTION_NOT_NEEDED when nothing needs to move (and moves
//! nothing), and answers bad input (unknown topic, missing partition, UNCLEAN on a led partition)
//! with Kafka's codes; the automatic balancer moves leaders back to their preferred replicas once a
//! node returns, then moves nothing more, and moves nothing when disabled. Manual replica
//! assignments (CreateTopics, CreatePartitions) place replicas and preferred leaders as given, and
//! bad ones are refused with Kafka's codes and messages; `rack` is registered and returned by
//! Metadata, and placement spreads replicas over racks.

mod common;

use std::time::{Duration, Instant};

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use common::{cluster_configs, create_topic, cut, start_cluster, Client, TestNode};

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
        let status = chronik::admin::cluster_status(&nodes[0].admin.to_string(), true).unwrap();
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

/// Partitions of `topic` each node leads, by node id 1..=3.
fn led_per_node(led: &[(i32, i32)]) -> [usize; 3] {
    let mut n = [0; 3];
    for (l, _) in led {
        n[(*l - 1) as usize] += 1;
    }
    n
}

/// Leader changes each node saw in the groups of `topic` (`chronik_raft_leader_changes_total`).
fn leader_changes(topic: &str, partitions: usize) -> Vec<u64> {
    let r = chronik::metrics::registry();
    (1..=3u64)
        .flat_map(|node| {
            (0..partitions).map(move |p| r.group_figures(node, &format!("{topic}/{p}")).map_or(0, |f| f.leader_changes))
        })
        .collect()
}

/// The leaders of `topic` once every node's Metadata shows the same ones and every replica's Raft
/// group has learnt its leader (so its leader change counter has moved). Metadata comes from
/// `__meta`, which may know a new leader before a replica that was cut off does: that replica
/// learns it from the leader's next message, and counts the change then.
fn agreed(nodes: &[TestNode], topic: &str, partitions: usize) -> Vec<(i32, i32)> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(30);
    let r = chronik::metrics::registry();
    loop {
        let views: Vec<_> = nodes.iter().map(|n| leaders(n, topic, partitions)).collect();
        let learnt = |p: usize, leader: i32| {
            (1..=nodes.len() as u64)
                .all(|node| r.group_figures(node, &format!("{topic}/{p}")).is_some_and(|f| f.leader == leader as u64))
        };
        if views.iter().all(|v| *v == views[0]) && views[0].iter().enumerate().all(|(p, (l, _))| learnt(p, *l)) {
            eprintln!("leaders agreed and learnt by every replica after {:?}", start.elapsed());
            return views[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the nodes disagree on the leaders, or a replica has not learnt its leader: {views:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Cuts node 3 off until the others lead all of `topic`'s partitions, then heals it.
fn take_leaders_from_node_3(nodes: &[TestNode], topic: &str, partitions: usize) {
    cut(nodes, 3, true);
    let deadline = Instant::now() + Duration::from_secs(30);
    while leaders(&nodes[0], topic, partitions).iter().any(|(l, _)| *l == 3) {
        assert!(Instant::now() < deadline, "node 3 still leads after being cut off");
        std::thread::sleep(Duration::from_millis(100));
    }
    cut(nodes, 3, false);
}

#[test]
fn the_balancer_moves_leaders_back_then_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let mut configs = cluster_configs(dir.path(), 3);
    for c in &mut configs {
        c.leaders.imbalance_check_interval = Duration::from_secs(1);
    }
    let nodes = start_cluster(configs);
    let mut c = Client::connect(nodes[0].addr);
    create_topic(&mut c, "bal", 9, 3, &[]);
    let start = leaders(&nodes[0], "bal", 9);
    assert!(start.iter().all(|(l, p)| l == p), "{start:?}");
    assert_eq!(led_per_node(&start), [3, 3, 3]);
    let elections_before: u64 = (1..=3).map(|n| chronik::metrics::balancer_figures(n).1).sum();

    take_leaders_from_node_3(&nodes, "bal", 9);
    // Node 3 is back: within a few intervals the balancer gives it its partitions back.
    let deadline = Instant::now() + Duration::from_secs(30);
    let balanced = loop {
        let now = leaders(&nodes[0], "bal", 9);
        if now.iter().all(|(l, p)| l == p) {
            break now;
        }
        assert!(Instant::now() < deadline, "the balancer did not move the leaders back: {now:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(led_per_node(&balanced).iter().all(|n| (2..=4).contains(n)), "within one of 3 each: {balanced:?}");
    let elections: u64 = (1..=3).map(|n| chronik::metrics::balancer_figures(n).1).sum();
    assert!(elections - elections_before >= 3, "the balancer asked for node 3's partitions: {elections}");

    // Balanced: over several intervals no leader moves (no leader change anywhere), while
    // rounds keep running.
    assert_eq!(agreed(&nodes, "bal", 9), balanced);
    let changes = leader_changes("bal", 9);
    let rounds: u64 = (1..=3).map(|n| chronik::metrics::balancer_figures(n).0).sum();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(leader_changes("bal", 9), changes, "no leader changed while balanced");
    assert_eq!(leaders(&nodes[0], "bal", 9), balanced);
    let rounds_after: u64 = (1..=3).map(|n| chronik::metrics::balancer_figures(n).0).sum();
    assert!(rounds_after >= rounds + 2, "rounds ran meanwhile: {rounds} then {rounds_after}");
    let elections_after: u64 = (1..=3).map(|n| chronik::metrics::balancer_figures(n).1).sum();
    assert_eq!(elections_after, elections, "and asked for nothing");
}

#[test]
fn a_disabled_balancer_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut configs = cluster_configs(dir.path(), 3);
    for c in &mut configs {
        c.leaders.auto_rebalance_enable = false;
        c.leaders.imbalance_check_interval = Duration::from_secs(1);
    }
    let nodes = start_cluster(configs);
    let mut c = Client::connect(nodes[0].addr);
    create_topic(&mut c, "off", 6, 3, &[]);
    take_leaders_from_node_3(&nodes, "off", 6);
    let moved = agreed(&nodes, "off", 6);
    let changes = leader_changes("off", 6);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(leaders(&nodes[0], "off", 6), moved, "nothing moved back");
    assert_eq!(led_per_node(&moved)[2], 0);
    assert_eq!(leader_changes("off", 6), changes);
}

/// CreateTopics with manual `assignments` (`np`/`rf` are the request's counts): (error code,
/// message, num_partitions, replication_factor).
fn create_assigned(c: &mut Client, topic: &str, np: i32, rf: i16, a: &[(i32, &[i32])]) -> (i16, String, i32, i16) {
    let assignments = a
        .iter()
        .map(|(p, b)| {
            create_topics_request::CreatableReplicaAssignment::default()
                .with_partition_index(*p)
                .with_broker_ids(b.iter().map(|id| BrokerId(*id)).collect())
        })
        .collect();
    let req = CreateTopicsRequest::default().with_timeout_ms(20_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(np)
            .with_replication_factor(rf)
            .with_assignments(assignments),
    ]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    let t = &r.topics[0];
    let msg = t.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
    (t.error_code, msg, t.num_partitions, t.replication_factor)
}

/// CreatePartitions to `count` with these replica lists (None: placed by chronik).
fn grow_assigned(c: &mut Client, topic: &str, count: i32, a: Option<&[&[i32]]>) -> (i16, String) {
    let assignments = a.map(|lists| {
        lists
            .iter()
            .map(|b| {
                create_partitions_request::CreatePartitionsAssignment::default()
                    .with_broker_ids(b.iter().map(|id| BrokerId(*id)).collect())
            })
            .collect()
    });
    let req = CreatePartitionsRequest::default().with_timeout_ms(20_000).with_topics(vec![
        create_partitions_request::CreatePartitionsTopic::default()
            .with_name(name(topic))
            .with_count(count)
            .with_assignments(assignments),
    ]);
    let r: CreatePartitionsResponse = c.call(ApiKey::CreatePartitions, 3, &req);
    let t = &r.results[0];
    (t.error_code, t.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default())
}

/// The replica lists of `topic` by partition, from Metadata (None: no such topic).
fn replica_lists(c: &mut Client, topic: &str) -> Option<Vec<Vec<i32>>> {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(name(topic)))]))
        .with_allow_auto_topic_creation(false);
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &req);
    let t = &r.topics[0];
    if t.error_code != 0 {
        return None;
    }
    let mut ps = t.partitions.clone();
    ps.sort_by_key(|p| p.partition_index);
    Some(ps.iter().map(|p| p.replica_nodes.iter().map(|b| b.0).collect()).collect())
}

/// A refused CreateTopics: topic, num_partitions, replication_factor, assignments, code, message.
type BadCreate<'a> = (&'a str, i32, i16, &'a [(i32, &'a [i32])], i16, &'a str);

#[test]
fn manual_replica_assignments_place_replicas_and_preferred_leaders() {
    const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    const INVALID_REQUEST: i16 = 42;
    let dir = tempfile::tempdir().unwrap();
    let mut configs = cluster_configs(dir.path(), 3);
    for c in &mut configs {
        c.rack = Some(if c.node_id == 3 { "b" } else { "a" }.to_string());
    }
    let nodes = start_cluster(configs);
    let mut c = Client::connect(nodes[0].addr);

    // broker.rack: registered, returned by Metadata and DescribeCluster, and placement spreads
    // each partition's replicas over both racks.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m: MetadataResponse = c.call(ApiKey::Metadata, 12, &MetadataRequest::default());
        let d: DescribeClusterResponse = c.call(ApiKey::DescribeCluster, 1, &DescribeClusterRequest::default());
        let racks: Vec<(i32, Option<String>)> =
            m.brokers.iter().map(|b| (b.node_id.0, b.rack.as_ref().map(|r| r.to_string()))).collect();
        let described: Vec<(i32, Option<String>)> =
            d.brokers.iter().map(|b| (b.broker_id.0, b.rack.as_ref().map(|r| r.to_string()))).collect();
        let want = vec![(1, Some("a".to_string())), (2, Some("a".to_string())), (3, Some("b".to_string()))];
        if racks == want && described == want {
            break;
        }
        assert!(Instant::now() < deadline, "racks {racks:?}, DescribeCluster {described:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    create_topic(&mut c, "racked", 6, 2, &[]);
    for replicas in replica_lists(&mut c, "racked").unwrap() {
        assert!(replicas.contains(&3), "each partition has a replica in rack b: {replicas:?}");
    }

    let r = create_assigned(&mut c, "man", -1, -1, &[(1, &[2, 3]), (0, &[1, 2]), (2, &[3, 1])]);
    assert_eq!(r, (0, String::new(), 3, 2));
    assert_eq!(replica_lists(&mut c, "man").unwrap(), vec![vec![1, 2], vec![2, 3], vec![3, 1]]);
    let led = leaders(&nodes[0], "man", 3);
    assert!(led.iter().all(|(l, p)| l == p), "the first replica leads: {led:?}");

    // Kafka's refusals: nothing is created.
    let bad: [BadCreate; 6] = [
        (
            "b1",
            -1,
            -1,
            &[(0, &[1, 9])],
            INVALID_REPLICA_ASSIGNMENT,
            "includes broker 9, but no such broker is registered",
        ),
        ("b2", -1, -1, &[(0, &[1, 1])], INVALID_REPLICA_ASSIGNMENT, "includes the broker 1 more than once"),
        (
            "b3",
            -1,
            -1,
            &[(0, &[1, 2]), (1, &[3])],
            INVALID_REPLICA_ASSIGNMENT,
            "not consistent with previous partitions",
        ),
        ("b4", -1, -1, &[(0, &[1]), (2, &[2])], INVALID_REPLICA_ASSIGNMENT, "consecutive 0-based"),
        ("b5", 2, -1, &[(0, &[1]), (1, &[2])], INVALID_REQUEST, "numPartitions was not set to -1"),
        ("b6", -1, 1, &[(0, &[1]), (1, &[2])], INVALID_REQUEST, "replication factor was not set to -1"),
    ];
    for (topic, np, rf, a, code, msg) in bad {
        let (got, m, _, _) = create_assigned(&mut c, topic, np, rf, a);
        assert_eq!(got, code, "{topic}: {m}");
        assert!(m.contains(msg), "{topic}: {m}");
        assert_eq!(replica_lists(&mut c, topic), None, "{topic} was not created");
    }

    // CreatePartitions: the new partitions only, with the topic's replication factor.
    for (lists, msg) in [
        (&[&[9, 1][..], &[1, 2]][..], "includes broker 9"),
        (&[&[2, 1][..]][..], "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."),
        (&[&[2, 1, 3][..], &[1, 3]][..], "with 3 replica(s), but this is not consistent"),
    ] {
        let (code, m) = grow_assigned(&mut c, "man", 5, Some(lists));
        assert_eq!(code, INVALID_REPLICA_ASSIGNMENT, "{m}");
        assert!(m.contains(msg), "{m}");
    }
    assert_eq!(replica_lists(&mut c, "man").unwrap().len(), 3, "nothing added");
    assert_eq!(grow_assigned(&mut c, "man", 5, Some(&[&[2, 1], &[1, 3]])), (0, String::new()));
    assert_eq!(replica_lists(&mut c, "man").unwrap()[3..], [vec![2, 1], vec![1, 3]]);
    let led = leaders(&nodes[0], "man", 5);
    assert_eq!(led[3..], [(2, 2), (1, 1)], "the new partitions' first replicas lead");
}
