//! In-process four-node cluster tests of partition reassignment (AlterPartitionReassignments,
//! ListPartitionReassignments): a partition on nodes 1, 2, 3 moves to 2, 3, 4 by Raft membership
//! changes while a producer writes to it (every acknowledged record is in the moved partition,
//! node 4's replica matches, node 1's files are gone); the move survives its leader dying while
//! the new replica catches up, and the new replica being cut off mid-catch-up; a cancel reverts;
//! bad input gets Kafka's codes. All along, every node's view is sampled: never two leaders in
//! one term. The new voters survive a restart of every node (the persisted conf state). A
//! dropped peer connection is reported to every group (raft-rs `report_unreachable`),
//! and the follower behind it catches up when it returns. Held in the joint configuration
//! (`Faults::hold_joint`) under produce load, a move survives its leader's node, the new
//! replica's or the old replica's being cut off there.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::*;

use common::partition0::{create_on, name, partition, produce_one, producer, read_bases};
use common::{cluster_configs, spawn_node, spawn_node_logged, start_cluster, CapturedLog, Client, TestNode};

/// AlterPartitionReassignments of partition 0 (`None`: cancel): (error code, message).
fn alter(c: &mut Client, version: i16, topic: &str, replicas: Option<&[i32]>) -> (i16, Option<String>) {
    let p = alter_partition_reassignments_request::ReassignablePartition::default()
        .with_partition_index(0)
        .with_replicas(replicas.map(|r| r.iter().map(|b| BrokerId(*b)).collect()));
    let req = AlterPartitionReassignmentsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        alter_partition_reassignments_request::ReassignableTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![p]),
    ]);
    let r: AlterPartitionReassignmentsResponse = c.call(ApiKey::AlterPartitionReassignments, version, &req);
    assert_eq!(r.error_code, 0);
    let p = &r.responses[0].partitions[0];
    (p.error_code, p.error_message.as_ref().map(|m| m.to_string()))
}

/// One listed reassignment: (topic, partition, replicas, adding, removing).
type Listed = (String, i32, Vec<i32>, Vec<i32>, Vec<i32>);

/// The partitions ListPartitionReassignments names.
fn listed(c: &mut Client) -> Vec<Listed> {
    let r: ListPartitionReassignmentsResponse = c.call(
        ApiKey::ListPartitionReassignments,
        0,
        &ListPartitionReassignmentsRequest::default().with_timeout_ms(1000),
    );
    assert_eq!(r.error_code, 0);
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    r.topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    ids(&p.replicas),
                    ids(&p.adding_replicas),
                    ids(&p.removing_replicas),
                )
            })
        })
        .collect()
}

/// Samples every node's `cluster status` for the leaders of `topic`, in the background: the
/// (term, leader) pairs each node reported itself leading.
struct LeaderWatch {
    seen: Arc<Mutex<BTreeSet<(u64, u64)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LeaderWatch {
    fn start(admins: Vec<String>, topic: &'static str) -> LeaderWatch {
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                for a in &admins {
                    let Ok(status) = chronik::admin::fetch_status(a) else { continue };
                    for g in status["groups"].as_array().into_iter().flatten().filter(|g| g["topic"] == topic) {
                        if g["role"] == "Leader" {
                            s.lock().unwrap().insert((g["term"].as_u64().unwrap(), g["node"].as_u64().unwrap()));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        LeaderWatch { seen, stop, thread: Some(thread) }
    }

    /// Stops sampling and asserts one leader per term; returns the observations.
    fn finish(mut self) -> BTreeSet<(u64, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        let seen = self.seen.lock().unwrap().clone();
        let mut by_term: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
        for (t, n) in &seen {
            by_term.entry(*t).or_default().insert(*n);
        }
        assert!(by_term.values().all(|n| n.len() == 1), "two leaders in one term: {by_term:?}");
        assert!(!seen.is_empty(), "no leader was ever observed");
        seen
    }
}

/// Waits until `c`'s node shows partition 0 of `topic` on exactly `replicas` with a leader and no
/// reassignment listed.
fn wait_moved(c: &mut Client, topic: &str, replicas: &[i32], timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    loop {
        let (leader, now) = partition(c, topic);
        if now == replicas && leader > 0 && listed(c).is_empty() {
            return leader;
        }
        assert!(Instant::now() < deadline, "not moved to {replicas:?}: replicas {now:?}, leader {leader}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn group_dirs(dir: &std::path::Path, node: u64) -> usize {
    std::fs::read_dir(dir.join(format!("node{node}")).join("groups")).map(|d| d.count()).unwrap_or(0)
}

/// The (high watermark, checksum) of each replica of `topic` from `cluster status`.
fn replicas(node: &TestNode, topic: &str) -> Vec<(u64, i64, i64, String)> {
    common::replica_status(node, topic, ["high_watermark", "applied"])
}

#[test]
fn a_partition_moves_to_a_new_node_under_load_and_the_old_replica_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(cluster_configs(dir.path(), 4));
    let watch = LeaderWatch::start(nodes.iter().map(|n| n.admin.to_string()).collect(), "mv");
    let mut c = Client::connect(nodes[1].addr);
    create_on(&mut c, "mv", &[1, 2, 3]);
    assert_eq!(group_dirs(dir.path(), 4), 0);

    // Bad input first: nothing changes.
    assert_eq!(alter(&mut c, 1, "mv", Some(&[1, 9, 2])).0, 39);
    assert_eq!(alter(&mut c, 0, "mv", Some(&[1, 1, 2])).0, 39);
    assert_eq!(alter(&mut c, 0, "mv", Some(&[])).0, 39);
    assert_eq!(alter(&mut c, 0, "mv", None), (85, Some("No partition reassignment is in progress.".into())));
    assert_eq!(alter(&mut c, 0, "nope", Some(&[1, 2, 3])).0, 3);
    assert!(listed(&mut c).is_empty());

    // A producer writes all along (bounded), following the leader.
    let stop = Arc::new(AtomicBool::new(false));
    let addrs: Vec<_> = nodes.iter().map(|n| n.addr).collect();
    let producer = producer(addrs.clone(), addrs[1], "mv", stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(alter(&mut c, 1, "mv", Some(&[2, 3, 4])), (0, None));
    let leader = wait_moved(&mut c, "mv", &[2, 3, 4], Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let acked = producer.join().unwrap();
    assert!(acked.len() > 20, "the producer got acknowledgements: {}", acked.len());

    // Every acknowledged record is in the moved partition; the replicas 2, 3, 4 are identical.
    let mut lc = Client::connect(nodes[(leader - 1) as usize].addr);
    let bases: BTreeSet<i64> = read_bases(&mut lc, "mv").into_iter().collect();
    let lost: Vec<&i64> = acked.iter().filter(|b| !bases.contains(b)).collect();
    assert!(lost.is_empty(), "acknowledged records lost: {lost:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = replicas(&nodes[1], "mv");
        let on: Vec<u64> = r.iter().map(|x| x.0).collect();
        let same = r.windows(2).all(|w| (w[0].1, &w[0].3) == (w[1].1, &w[1].3));
        if on == [2, 3, 4] && same && group_dirs(dir.path(), 1) == 0 {
            assert!(r[0].1 >= acked.len() as i64);
            break;
        }
        assert!(Instant::now() < deadline, "replicas {r:?}, node 1 dirs {}", group_dirs(dir.path(), 1));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(group_dirs(dir.path(), 4), 1, "node 4 holds the moved replica");

    // A cancel reverts to the original replicas: node 1 is cut off, so the move back waits.
    let cut = |on: bool| {
        (2..=4).for_each(|p| nodes[0].faults.partition(p, on));
        nodes[1..].iter().for_each(|n| n.faults.partition(1, on));
    };
    cut(true);
    assert_eq!(alter(&mut c, 0, "mv", Some(&[1, 2, 3])), (0, None));
    assert_eq!(listed(&mut c), vec![("mv".into(), 0, vec![1, 2, 3, 4], vec![1], vec![4])]);
    assert_eq!(alter(&mut c, 0, "mv", None), (0, None), "cancelled while in progress");
    assert!(listed(&mut c).is_empty(), "a cancelled reassignment is not listed");
    wait_moved(&mut c, "mv", &[2, 3, 4], Duration::from_secs(30));
    cut(false);
    assert_eq!(alter(&mut c, 0, "mv", None).0, 85);
    watch.finish();
}

#[test]
fn a_move_survives_its_leader_dying_and_the_new_replica_cut_off_mid_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let configs = cluster_configs(dir.path(), 4);
    let mut nodes: Vec<Option<TestNode>> = start_cluster(configs.clone()).into_iter().map(Some).collect();
    let admins: Vec<String> = nodes.iter().map(|n| n.as_ref().unwrap().admin.to_string()).collect();
    let watch = LeaderWatch::start(admins, "fp");
    let mut c = Client::connect(nodes[1].as_ref().unwrap().addr);
    create_on(&mut c, "fp", &[1, 2, 3]);
    let (leader, _) = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let p = partition(&mut c, "fp");
            if p.0 > 0 {
                break p;
            }
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut lc = Client::connect(nodes[(leader - 1) as usize].as_ref().unwrap().addr);
    let mut acked: Vec<i64> = (0..200).filter_map(|i| produce_one(&mut lc, "fp", i)).collect();
    assert_eq!(acked.len(), 200);

    // Node 4 is cut off: it is added as a learner but cannot catch up.
    let cut = |nodes: &[Option<TestNode>], on: bool| {
        for (i, n) in nodes.iter().enumerate() {
            let Some(n) = n else { continue };
            if i == 3 {
                (1..=3).for_each(|p| n.faults.partition(p, on));
            } else {
                n.faults.partition(4, on);
            }
        }
    };
    cut(&nodes, true);
    // The leader's replica stays (target 2, 3, 4 keeps 2 and 3; the leader may be 1, 2 or 3).
    assert_eq!(alter(&mut c, 0, "fp", Some(&[2, 3, 4])), (0, None));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(listed(&mut c), vec![("fp".into(), 0, vec![2, 3, 4, 1], vec![4], vec![1])]);

    // The partition leader dies mid-catch-up; another takes over the move.
    let stopped = leader as usize - 1;
    nodes[stopped] = None;
    let survivor = (0..3).find(|i| *i != stopped).unwrap();
    let mut c = Client::connect(nodes[survivor].as_ref().unwrap().addr);
    let deadline = Instant::now() + Duration::from_secs(20);
    let new_leader = loop {
        let (l, _) = partition(&mut c, "fp");
        if l > 0 && l != leader {
            break l;
        }
        assert!(Instant::now() < deadline, "no new leader after the old one died");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut nl = Client::connect(nodes[(new_leader - 1) as usize].as_ref().unwrap().addr);
    acked.extend((200..300).filter_map(|i| produce_one(&mut nl, "fp", i)));
    cut(&nodes, false);
    // The old leader comes back while the move completes (if it was node 1 it leaves the group).
    nodes[stopped] = Some(spawn_node(configs[stopped].clone()).wait());
    let leader = wait_moved(&mut c, "fp", &[2, 3, 4], Duration::from_secs(40));
    let mut lc = Client::connect(nodes[(leader - 1) as usize].as_ref().unwrap().addr);
    let bases: BTreeSet<i64> = read_bases(&mut lc, "fp").into_iter().collect();
    assert!(acked.len() >= 300 && acked.iter().all(|b| bases.contains(b)), "an acknowledged record was lost");
    common::wait_identical(nodes[1].as_ref().unwrap(), "fp", &[2, 3, 4], Duration::from_secs(20));
    watch.finish();
}

#[test]
fn a_dropped_peer_connection_is_reported_to_the_groups_and_the_follower_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let configs = cluster_configs(dir.path(), 3);
    let log = CapturedLog::default();
    let starting: Vec<_> = configs
        .iter()
        .map(|c| if c.node_id == 1 { spawn_node_logged(c.clone(), Some(log.clone())) } else { spawn_node(c.clone()) })
        .collect();
    let started: Vec<TestNode> = starting.into_iter().map(|s| s.wait()).collect();
    common::wait_brokers(&started, 3);
    let mut nodes: Vec<Option<TestNode>> = started.into_iter().map(Some).collect();
    let mut c = Client::connect(nodes[0].as_ref().unwrap().addr);
    create_on(&mut c, "un", &[1, 2, 3]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while partition(&mut c, "un").0 != 1 {
        assert!(Instant::now() < deadline, "node 1 does not lead");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!((0..50).all(|i| produce_one(&mut c, "un", i).is_some()));
    // Node 3 goes away: node 1's link to it drops, and its groups are told.
    nodes[2] = None;
    let line =
        log.wait_for(&["peer connection lost: reported unreachable to the groups", "peer: 3"], Duration::from_secs(20));
    assert!(!line.contains("groups: 0"), "{line}");
    assert!((50..300).all(|i| produce_one(&mut c, "un", i).is_some()), "two of three replicas acknowledge");
    nodes[2] = Some(spawn_node(configs[2].clone()).wait());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = replicas(nodes[0].as_ref().unwrap(), "un");
        if r.len() == 3 && r.iter().all(|x| x.1 == 300 && x.3 == r[0].3) {
            break;
        }
        assert!(Instant::now() < deadline, "node 3 did not catch up: {r:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_new_voters_survive_a_restart_of_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let configs = cluster_configs(dir.path(), 4);
    let nodes = start_cluster(configs.clone());
    let mut c = Client::connect(nodes[1].addr);
    create_on(&mut c, "rs", &[1, 2, 3]);
    let leader = wait_moved(&mut c, "rs", &[1, 2, 3], Duration::from_secs(20));
    let mut lc = Client::connect(nodes[(leader - 1) as usize].addr);
    let mut acked: Vec<i64> = (0..100).filter_map(|i| produce_one(&mut lc, "rs", i)).collect();
    assert_eq!(alter(&mut c, 0, "rs", Some(&[2, 3, 4])), (0, None));
    wait_moved(&mut c, "rs", &[2, 3, 4], Duration::from_secs(30));
    drop(lc);
    drop(c);
    drop(nodes);
    // Every node restarts from its files: the group's voters come from the persisted conf state
    // (the log's conf changes are not applied again). Then node 2 stays down: 3 and 4 are a
    // quorum only if 4 is a voter.
    let starting: Vec<_> = configs.iter().filter(|c| c.node_id != 2).map(|c| spawn_node(c.clone())).collect();
    let nodes: Vec<TestNode> = starting.into_iter().map(|s| s.wait()).collect();
    let mut c = Client::connect(nodes[1].addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        let (l, r) = partition(&mut c, "rs");
        if r == [2, 3, 4] && (l == 3 || l == 4) {
            break l;
        }
        assert!(Instant::now() < deadline, "no leader among 3 and 4: {l} {r:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    // `nodes` holds nodes 1, 3 and 4.
    let mut lc = Client::connect(nodes[(leader - 2) as usize].addr);
    let after: Vec<i64> = (100..150).filter_map(|i| produce_one(&mut lc, "rs", i)).collect();
    assert_eq!(after.len(), 50, "nodes 3 and 4 acknowledge as a quorum of the new voters");
    acked.extend(after);
    let bases: BTreeSet<i64> = read_bases(&mut lc, "rs").into_iter().collect();
    assert!(acked.iter().all(|b| bases.contains(b)), "an acknowledged record was lost");
}

/// Which replica's node is cut off while the group is held in the joint configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
enum JointVictim {
    /// The partition leader (an incoming and outgoing voter).
    Leader,
    /// The replica the move adds (an incoming voter only).
    Incoming,
    /// The replica the move removes (an outgoing voter only).
    Outgoing,
}

/// Partition 0 of "jf" on nodes 1, 2, 3 moves one replica (not the leader's) to node 4 under
/// produce load. Every node holds its partition leaders in the joint configuration
/// (`Faults::hold_joint`) until the leader has applied the ConfChangeV2 entering it; then the
/// `victim`'s node is cut off and the hold released. The move completes (the leave proposed by
/// whoever leads then), one leader per term, every acknowledged record reads back, and once the
/// node is healed the target replicas are byte-identical.
fn a_move_survives_a_node_cut_off_in_the_joint_configuration(victim: JointVictim) {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(cluster_configs(dir.path(), 4));
    let admins: Vec<String> = nodes.iter().map(|n| n.admin.to_string()).collect();
    nodes.iter().for_each(|n| n.faults.hold_joint(true));
    let mut c = Client::connect(nodes[3].addr);
    create_on(&mut c, "jf", &[1, 2, 3]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let leader = loop {
        let (l, _) = partition(&mut c, "jf");
        if l > 0 {
            break l as u64;
        }
        assert!(Instant::now() < deadline, "no leader");
        std::thread::sleep(Duration::from_millis(50));
    };
    let watch = LeaderWatch::start(admins.clone(), "jf");
    // The old replica: the highest of 1, 2, 3 that does not lead; the third one stays reachable.
    let old = (1..=3u64).rev().find(|n| *n != leader).unwrap();
    let third = (1..=3u64).find(|n| *n != leader && *n != old).unwrap();
    let target: Vec<i32> = [1, 2, 3].iter().map(|n| if *n == old as i32 { 4 } else { *n }).collect();
    let cut_node = match victim {
        JointVictim::Leader => leader,
        JointVictim::Incoming => 4,
        JointVictim::Outgoing => old,
    };

    let stop = Arc::new(AtomicBool::new(false));
    let addrs: Vec<_> = nodes.iter().map(|n| n.addr).collect();
    let via = addrs[third as usize - 1];
    let prod = producer(addrs, via, "jf", stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(alter(&mut c, 0, "jf", Some(&target)), (0, None));

    // The leader applied the entry entering the joint configuration, and holds it.
    let (mut incoming, mut outgoing) = (target.iter().map(|n| *n as u64).collect::<Vec<_>>(), vec![1, 2, 3]);
    incoming.sort_unstable();
    outgoing.sort_unstable();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = chronik::admin::fetch_status(&admins[leader as usize - 1]).unwrap();
        let ids = |g: &serde_json::Value, k: &str| {
            let mut v: Vec<u64> = g[k].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
            v.sort_unstable();
            v
        };
        let joint = s["groups"].as_array().unwrap().iter().any(|g| {
            g["topic"] == "jf"
                && g["role"] == "Leader"
                && ids(g, "voters") == incoming
                && ids(g, "voters_outgoing") == outgoing
        });
        if joint {
            break;
        }
        assert!(Instant::now() < deadline, "node {leader} never showed the joint configuration: {s}");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(listed(&mut c).len(), 1, "the move is still in progress while held");

    // The victim's node is cut off; the others resume.
    common::cut(&nodes, cut_node, true);
    nodes.iter().enumerate().filter(|(i, _)| *i as u64 + 1 != cut_node).for_each(|(_, n)| n.faults.hold_joint(false));
    let mut c = Client::connect(via);
    let new_leader = wait_moved(&mut c, "jf", &target, Duration::from_secs(40));
    if victim == JointVictim::Leader {
        assert_ne!(new_leader as u64, leader, "the cut-off leader still leads");
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let acked = prod.join().unwrap();
    assert!(acked.len() > 20, "the producer got acknowledgements: {}", acked.len());

    // Healed: every acknowledged record is in the partition, the target replicas are identical.
    common::cut(&nodes, cut_node, false);
    nodes[cut_node as usize - 1].faults.hold_joint(false);
    let now_leading = wait_moved(&mut c, "jf", &target, Duration::from_secs(30));
    let mut lc = Client::connect(nodes[(now_leading - 1) as usize].addr);
    let bases: BTreeSet<i64> = read_bases(&mut lc, "jf").into_iter().collect();
    let lost: Vec<&i64> = acked.iter().filter(|b| !bases.contains(b)).collect();
    assert!(lost.is_empty(), "acknowledged records lost: {lost:?}");
    let hw = common::wait_identical(&nodes[third as usize - 1], "jf", &incoming, Duration::from_secs(30));
    assert!(hw >= acked.len() as i64);
    let seen = watch.finish();
    if victim == JointVictim::Leader {
        let first = seen.iter().find(|(_, n)| *n == leader).map(|(t, _)| *t).unwrap();
        assert!(seen.iter().any(|(t, n)| *n != leader && *t > first), "no new leader after the cut: {seen:?}");
    }
}

#[test]
fn a_move_survives_its_leader_cut_off_in_the_joint_configuration() {
    a_move_survives_a_node_cut_off_in_the_joint_configuration(JointVictim::Leader);
}

#[test]
fn a_move_survives_the_new_replica_cut_off_in_the_joint_configuration() {
    a_move_survives_a_node_cut_off_in_the_joint_configuration(JointVictim::Incoming);
}

#[test]
fn a_move_survives_the_old_replica_cut_off_in_the_joint_configuration() {
    a_move_survives_a_node_cut_off_in_the_joint_configuration(JointVictim::Outgoing);
}
