//! In-process tests of cluster membership (`meta::members`, `peer::join`, the `cluster
//! add-node|remove-node|decommission` admin routes): node 4 joins a three-node cluster with
//! `raft.join`, becomes a `__meta` learner, shows in Metadata's brokers, and receives a replica
//! by reassignment while a producer writes (every acknowledged record is read back); it
//! restarts as the same member; a second join of its id is idempotent, another address for it
//! and an unreachable member are refused. Decommission of node 1 moves its replicas under load,
//! removes it from `__meta` and promotes the learner; remove-node replaces a dead node's
//! replicas; refusals (unknown node, no quorum left, a partition's last replica) change nothing.
//! All along, every node's view is sampled: never two leaders in one term.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::*;

use chronik::config::Config;
use common::partition0::{create_on, name, partition, produce_one, read_bases};
use common::{cluster_configs, spawn_node, start_cluster, Client, TestNode};

/// Seeds 1..=n (each other's peers) and node n+1 configured to join through node 1.
fn configs(dir: &std::path::Path, n: u64) -> (Vec<Config>, Config) {
    let mut all = cluster_configs(dir, n + 1);
    let mut joiner = all.pop().unwrap();
    for c in &mut all {
        c.raft.peers.retain(|p| p.id != n + 1);
    }
    joiner.raft.peers.clear();
    joiner.raft.join = Some(all[0].raft.listen.clone());
    (all, joiner)
}

fn brokers(c: &mut Client) -> Vec<i32> {
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &MetadataRequest::default());
    r.brokers.iter().map(|b| b.node_id.0).collect()
}

fn alter(c: &mut Client, topic: &str, replicas: &[i32]) -> i16 {
    let p = alter_partition_reassignments_request::ReassignablePartition::default()
        .with_partition_index(0)
        .with_replicas(Some(replicas.iter().map(|b| BrokerId(*b)).collect()));
    let req = AlterPartitionReassignmentsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        alter_partition_reassignments_request::ReassignableTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![p]),
    ]);
    let r: AlterPartitionReassignmentsResponse = c.call(ApiKey::AlterPartitionReassignments, 0, &req);
    r.responses[0].partitions[0].error_code
}

/// Waits until `c`'s node shows partition 0 of `topic` on exactly `replicas` with a leader.
fn wait_moved(c: &mut Client, topic: &str, replicas: &[i32], timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    loop {
        let (leader, now) = partition(c, topic);
        if now == replicas && leader > 0 {
            return leader;
        }
        assert!(Instant::now() < deadline, "not moved to {replicas:?}: replicas {now:?}, leader {leader}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `__meta`'s (voters, learners) as node `admin` reports them.
fn meta_conf(admin: &str) -> (Vec<u64>, Vec<u64>) {
    let s = chronik::admin::fetch_status(admin).unwrap();
    let ids = |k: &str| s["meta"][k].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    (ids("voters"), ids("learners"))
}

fn wait_meta_conf(admin: &str, voters: &[u64], learners: &[u64]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (mut v, mut l) = meta_conf(admin);
        v.sort_unstable();
        l.sort_unstable();
        if v == voters && l == learners {
            return;
        }
        assert!(Instant::now() < deadline, "__meta voters {v:?} learners {l:?}, want {voters:?} {learners:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Samples every node's status in the background: the (group, term, leader) triples each node
/// reported itself leading, `__meta` as group "__meta".
struct LeaderWatch {
    seen: Arc<Mutex<BTreeSet<(String, u64, u64)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LeaderWatch {
    fn start(admins: Vec<String>) -> LeaderWatch {
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                for a in &admins {
                    let Ok(status) = chronik::admin::fetch_status(a) else { continue };
                    let meta = &status["meta"];
                    if meta["role"] == "Leader" {
                        s.lock().unwrap().insert((
                            "__meta".into(),
                            meta["term"].as_u64().unwrap(),
                            status["node"].as_u64().unwrap(),
                        ));
                    }
                    for g in status["groups"].as_array().into_iter().flatten() {
                        if g["role"] == "Leader" {
                            let group = format!("{}-{}", g["topic"], g["partition"]);
                            s.lock().unwrap().insert((group, g["term"].as_u64().unwrap(), g["node"].as_u64().unwrap()));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        });
        LeaderWatch { seen, stop, thread: Some(thread) }
    }

    /// Stops sampling and asserts one leader per term of every group.
    fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        let seen = self.seen.lock().unwrap().clone();
        let mut by_term: BTreeMap<(String, u64), BTreeSet<u64>> = BTreeMap::new();
        for (g, t, n) in &seen {
            by_term.entry((g.clone(), *t)).or_default().insert(*n);
        }
        assert!(by_term.values().all(|n| n.len() == 1), "two leaders in one term: {by_term:?}");
        assert!(seen.iter().any(|(g, _, _)| g == "__meta"), "no __meta leader was ever observed");
    }
}

/// A producer writing acks=all records to partition 0 of `topic`, following the leader that
/// node 2 names, until stopped: the acknowledged base offsets.
fn producer(
    addrs: Vec<std::net::SocketAddr>,
    topic: &'static str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<i64>> {
    let via = addrs[1];
    common::partition0::producer(addrs, via, topic, stop)
}

/// Every acknowledged base offset is in `topic`'s partition 0, read from its leader.
fn assert_all_readable(nodes: &[Option<TestNode>], c: &mut Client, topic: &str, acked: &[i64]) {
    let (leader, _) = partition(c, topic);
    let mut lc = Client::connect(nodes[(leader - 1) as usize].as_ref().unwrap().addr);
    let bases: BTreeSet<i64> = read_bases(&mut lc, topic).into_iter().collect();
    let lost: Vec<&i64> = acked.iter().filter(|b| !bases.contains(b)).collect();
    assert!(lost.is_empty(), "acknowledged records lost: {lost:?}");
}

/// A join request for node `id`, sent with `from`'s peer TLS (its join connector) if it has any.
fn ask_join(seed: &str, id: u64, raft_addr: &str, from: &Config) -> Result<chronik::peer::frame::JoinReply, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let req = chronik::peer::frame::JoinRequest { node_id: id, raft_addr: raft_addr.into(), kafka_addr: String::new() };
    let tls = chronik::security::peer_tls::peer_tls(&from.raft, &chronik::logging::discard()).unwrap();
    rt.block_on(chronik::peer::join::ask(seed, req, tls.as_ref().map(|t| &t.join))).map_err(|e| e.message)
}

/// Starts node 4 (`joiner`, which joins through a seed) and waits until every node's `__meta`
/// has it as a learner and it knows all four brokers. Returns the admin addresses, a leader
/// watch over them and a client of node 4.
fn start_node_4(nodes: &mut Vec<Option<TestNode>>, joiner: &Config) -> (Vec<String>, LeaderWatch, Client) {
    nodes.push(Some(spawn_node(joiner.clone()).wait()));
    let admins: Vec<String> = nodes.iter().map(|n| n.as_ref().unwrap().admin.to_string()).collect();
    let watch = LeaderWatch::start(admins.clone());
    for a in &admins {
        wait_meta_conf(a, &[1, 2, 3], &[4]);
    }
    let mut c4 = Client::connect(nodes[3].as_ref().unwrap().addr);
    assert_eq!(brokers(&mut c4), vec![1, 2, 3, 4]);
    (admins, watch, c4)
}

/// Partition 0 of `topic` moves to [2, 3, 4] while a producer writes to it; every acknowledged
/// record is readable afterwards.
fn move_to_node_4_under_load(nodes: &[Option<TestNode>], c: &mut Client, topic: &'static str) {
    let stop = Arc::new(AtomicBool::new(false));
    let addrs: Vec<_> = nodes.iter().map(|n| n.as_ref().unwrap().addr).collect();
    let prod = producer(addrs, topic, stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(alter(c, topic, &[2, 3, 4]), 0);
    wait_moved(c, topic, &[2, 3, 4], Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let acked = prod.join().unwrap();
    assert!(acked.len() > 20, "the producer got acknowledgements: {}", acked.len());
    assert_all_readable(nodes, c, topic, &acked);
}

#[test]
fn a_node_joins_gets_a_replica_under_load_and_rejoins_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (seeds, joiner) = configs(dir.path(), 3);
    let seed_addr = seeds[0].raft.listen.clone();
    let mut nodes: Vec<Option<TestNode>> = start_cluster(seeds).into_iter().map(Some).collect();
    let mut c = Client::connect(nodes[1].as_ref().unwrap().addr);
    create_on(&mut c, "mv", &[1, 2, 3]);
    let admin1 = nodes[0].as_ref().unwrap().admin.to_string();
    wait_meta_conf(&admin1, &[1, 2, 3], &[]);

    // Bad input: an unreachable member; nothing starts.
    let mut bad = joiner.clone();
    bad.data_dir = dir.path().join("bad");
    bad.raft.join = Some(format!("127.0.0.1:{}", common::free_port()));
    let err = spawn_node(bad).failure();
    assert!(err.contains("cannot join the cluster") && err.contains("cannot reach"), "{err}");

    // Node 4 joins through node 1: a learner of `__meta`, a broker everywhere.
    let (_, watch, mut c4) = start_node_4(&mut nodes, &joiner);
    assert_eq!(brokers(&mut c), vec![1, 2, 3, 4]);
    assert_eq!(partition(&mut c4, "mv").1, vec![1, 2, 3], "node 4 caught up __meta");

    // Its id is idempotent at the same address, refused at another; nothing changes.
    assert!(ask_join(&seed_addr, 4, &joiner.raft.listen, &joiner).is_ok());
    let e = ask_join(&seed_addr, 4, "127.0.0.1:1", &joiner).unwrap_err();
    assert!(e.contains("already"), "{e}");
    // (Under peer TLS, with node 2's certificate: the member refuses a join for another node.)
    let mut as_node2 = joiner.clone();
    if let Some(dir) = joiner.raft.tls_ca_file.as_ref().and_then(|f| f.parent()) {
        common::peer_tls::with_tls(std::slice::from_mut(&mut as_node2), dir, |_| 2);
    }
    let e = ask_join(&seed_addr, 2, "127.0.0.1:1", &as_node2).unwrap_err();
    assert!(e.contains("already"), "{e}");
    wait_meta_conf(&admin1, &[1, 2, 3], &[4]);

    // A replica moves to node 4 while a producer writes.
    move_to_node_4_under_load(&nodes, &mut c, "mv");

    // A restart without --join: the same member, from its data directory alone.
    drop(nodes[3].take());
    let mut again = joiner.clone();
    again.raft.join = None;
    nodes[3] = Some(spawn_node(again).wait());
    for n in nodes.iter().flatten() {
        let deadline = Instant::now() + Duration::from_secs(30);
        while brokers(&mut Client::connect(n.addr)).len() != 4 {
            assert!(Instant::now() < deadline, "node {} does not list 4 brokers", n.addr);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    wait_meta_conf(&admin1, &[1, 2, 3], &[4]);
    wait_moved(&mut Client::connect(nodes[3].as_ref().unwrap().addr), "mv", &[2, 3, 4], Duration::from_secs(30));
    watch.finish();
}

/// A membership change through the admin API of `admin` (following the leader); retried while
/// `__meta` has no leader. `Err` is the refusal's body.
fn change(admin: &str, path: &str, body: Option<serde_json::Value>) -> Result<serde_json::Value, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match chronik::admin::member_change(admin, path, body.as_ref(), Duration::from_secs(120)) {
            Ok(v) => return Ok(v),
            Err(chronik::admin::AdminError::Status { status: 409, body, .. }) => return Err(body),
            Err(e) => {
                assert!(Instant::now() < deadline, "{path}: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn delete_topic(c: &mut Client, topic: &str) {
    let req = DeleteTopicsRequest::default().with_timeout_ms(20_000).with_topic_names(vec![name(topic)]);
    let r: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 4, &req);
    assert_eq!(r.responses[0].error_code, 0);
}

#[test]
fn decommission_moves_every_replica_then_the_node_leaves_meta_and_a_learner_is_promoted() {
    let dir = tempfile::tempdir().unwrap();
    let (seeds, joiner) = configs(dir.path(), 3);
    let mut nodes: Vec<Option<TestNode>> = start_cluster(seeds).into_iter().map(Some).collect();
    nodes.push(Some(spawn_node(joiner).wait()));
    let admins: Vec<String> = nodes.iter().map(|n| n.as_ref().unwrap().admin.to_string()).collect();
    wait_meta_conf(&admins[1], &[1, 2, 3], &[4]);
    let watch = LeaderWatch::start(admins.clone());
    let mut c = Client::connect(nodes[1].as_ref().unwrap().addr);
    create_on(&mut c, "dc", &[1, 2, 3]);
    create_on(&mut c, "dd", &[3, 1, 4]);

    let stop = Arc::new(AtomicBool::new(false));
    let addrs: Vec<_> = nodes.iter().map(|n| n.as_ref().unwrap().addr).collect();
    let prod = producer(addrs, "dc", stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    // Through node 1's own admin API: it is redirected to the `__meta` leader if need be.
    let answer = change(&admins[0], "/v1/members/1/decommission?timeout_ms=60000", None).unwrap();
    assert_eq!(answer["reassigned"], 2, "{answer}");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let acked = prod.join().unwrap();
    assert!(acked.len() > 20, "the producer got acknowledgements: {}", acked.len());

    for t in ["dc", "dd"] {
        let (_, replicas) = partition(&mut c, t);
        assert_eq!(replicas.len(), 3, "{t}: {replicas:?}");
        assert!(!replicas.contains(&1), "{t}: {replicas:?}");
    }
    wait_meta_conf(&admins[1], &[2, 3, 4], &[]);
    assert_eq!(brokers(&mut c), vec![2, 3, 4]);
    assert_all_readable(&nodes, &mut c, "dc", &acked);
    // The removed node may not come back under its id.
    let e = change(&admins[1], "/v1/members", Some(serde_json::json!({"node": 1, "raft_addr": "127.0.0.1:1"})));
    assert!(e.unwrap_err().contains("was removed"));
    watch.finish();
}

#[test]
fn remove_node_replaces_a_dead_nodes_replicas_and_refusals_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (seeds, joiner) = configs(dir.path(), 3);
    let mut nodes: Vec<Option<TestNode>> = start_cluster(seeds).into_iter().map(Some).collect();
    let admins: Vec<String> = nodes.iter().map(|n| n.as_ref().unwrap().admin.to_string()).collect();
    let mut c = Client::connect(nodes[0].as_ref().unwrap().addr);
    create_on(&mut c, "rm", &[1, 2, 3]);
    create_on(&mut c, "solo", &[3]);
    wait_moved(&mut c, "rm", &[1, 2, 3], Duration::from_secs(20));
    let mut p = Client::connect(nodes[0].as_ref().unwrap().addr);
    let (leader, _) = partition(&mut p, "rm");
    let mut lc = Client::connect(nodes[(leader - 1) as usize].as_ref().unwrap().addr);
    let acked: Vec<i64> = (0..100).filter_map(|i| produce_one(&mut lc, "rm", i)).collect();
    assert_eq!(acked.len(), 100);

    // Node 3 dies; its `__meta` replica counts as dead once not heard from for two election
    // timeouts (2 s here).
    drop(nodes[2].take());
    std::thread::sleep(Duration::from_millis(3000));
    let e = change(&admins[0], "/v1/members/9/remove", None).unwrap_err();
    assert!(e.contains("not a member"), "{e}");
    let e = change(&admins[0], "/v1/members/1/remove", None).unwrap_err();
    assert!(e.contains("no quorum"), "{e}");
    let e = change(&admins[0], "/v1/members/1/decommission", None).unwrap_err();
    assert!(e.contains("no quorum"), "{e}");
    let e = change(&admins[0], "/v1/members/3/remove", None).unwrap_err();
    assert!(e.contains("solo-0") && e.contains("no live replica"), "{e}");
    // Add-node of a known id at another address is refused too.
    let e = change(&admins[0], "/v1/members", Some(serde_json::json!({"node": 2, "raft_addr": "127.0.0.1:1"})));
    assert!(e.is_err());
    // Nothing changed.
    assert_eq!(brokers(&mut c), vec![1, 2, 3]);
    wait_meta_conf(&admins[0], &[1, 2, 3], &[]);
    assert_eq!(partition(&mut c, "rm").1, vec![1, 2, 3]);

    // With the lone partition gone and node 4 joined, node 3 is removed and replaced.
    delete_topic(&mut c, "solo");
    nodes.push(Some(spawn_node(joiner).wait()));
    wait_meta_conf(&admins[0], &[1, 2, 3], &[4]);
    // `__meta`'s configuration names node 4 before its leader has heard from it: until it has,
    // node 4 is not a live broker to move to, and the removal is refused (nothing changed).
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        match change(&admins[0], "/v1/members/3/remove", None) {
            Err(e) if e.contains("no live broker outside") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200))
            }
            other => break other.unwrap(),
        }
    };
    assert_eq!(answer["reassigned"], 1, "{answer}");
    let leader = wait_moved(&mut c, "rm", &[1, 2, 4], Duration::from_secs(30));
    wait_meta_conf(&admins[0], &[1, 2, 4], &[]);
    assert_eq!(brokers(&mut c), vec![1, 2, 4]);
    let mut lc = Client::connect(nodes[(leader - 1) as usize].as_ref().unwrap().addr);
    let bases: BTreeSet<i64> = read_bases(&mut lc, "rm").into_iter().collect();
    assert!(acked.iter().all(|b| bases.contains(b)), "acknowledged records lost");

    // add-node pre-registers node 5 (a `__meta` learner before it ever starts); removing it
    // removes the learner.
    let unused = format!("127.0.0.1:{}", common::free_port());
    change(&admins[0], "/v1/members", Some(serde_json::json!({"node": 5, "raft_addr": unused}))).unwrap();
    wait_meta_conf(&admins[0], &[1, 2, 4], &[5]);
    change(&admins[0], "/v1/members/5/remove", None).unwrap();
    wait_meta_conf(&admins[0], &[1, 2, 4], &[]);
}

/// Joining a cluster whose nodes speak mutual TLS (whatever `CHRONIK_TEST_PEER_TLS` says): a
/// joiner with a certificate from another CA, one without peer TLS, and one presenting another
/// node's certificate are refused with a clear message and nothing changes; node 4 with the
/// cluster's CA joins, becomes a `__meta` learner and receives a replica over mTLS.
#[test]
fn a_node_joins_a_mutual_tls_cluster_and_a_joiner_without_the_clusters_ca_is_refused() {
    use common::peer_tls::{make_node_certs, with_tls};
    let dir = tempfile::tempdir().unwrap();
    let (mut seeds, mut joiner) = configs(dir.path(), 3);
    let (certs, foreign) = (dir.path().join("join-tls"), dir.path().join("foreign-ca"));
    make_node_certs(&certs, 4);
    make_node_certs(&foreign, 4);
    with_tls(&mut seeds, &certs, |id| id);
    with_tls(std::slice::from_mut(&mut joiner), &certs, |id| id);
    let seed_addr = seeds[0].raft.listen.clone();
    let seed1 = seeds[0].clone();
    let mut nodes: Vec<Option<TestNode>> = start_cluster(seeds).into_iter().map(Some).collect();
    let admin1 = nodes[0].as_ref().unwrap().admin.to_string();
    wait_meta_conf(&admin1, &[1, 2, 3], &[]);
    let mut c = Client::connect(nodes[1].as_ref().unwrap().addr);
    create_on(&mut c, "tj", &[1, 2, 3]);

    // Another CA: the handshake fails, the node does not start.
    let mut stranger = joiner.clone();
    stranger.data_dir = dir.path().join("stranger");
    with_tls(std::slice::from_mut(&mut stranger), &foreign, |id| id);
    let err = spawn_node(stranger.clone()).failure();
    assert!(err.contains("cannot join the cluster") && err.contains("TLS handshake failed"), "{err}");
    // No peer TLS at all: the member closes the connection.
    let mut plain = joiner.clone();
    plain.data_dir = dir.path().join("plain");
    (plain.raft.tls_cert_file, plain.raft.tls_key_file, plain.raft.tls_ca_file) = (None, None, None);
    let err = spawn_node(plain).failure();
    assert!(err.contains("cannot join the cluster") && err.contains("peer TLS"), "{err}");
    // The cluster's CA, but node 2's certificate for node 4's join: refused by the member.
    let mut imposter = joiner.clone();
    with_tls(std::slice::from_mut(&mut imposter), &certs, |_| 2);
    let e = ask_join(&seed_addr, 4, &joiner.raft.listen, &imposter).unwrap_err();
    assert!(e.contains("closed the connection"), "{e}");
    // Nothing changed.
    wait_meta_conf(&admin1, &[1, 2, 3], &[]);
    assert_eq!(brokers(&mut c), vec![1, 2, 3]);

    // Node 4 with the cluster's CA joins over mTLS.
    let (_, watch, _) = start_node_4(&mut nodes, &joiner);
    common::peer_tls::assert_peer_listener_is_tls(&seed1, &joiner);

    // A replica moves onto node 4 while a producer writes: Raft over mTLS both ways.
    move_to_node_4_under_load(&nodes, &mut c, "tj");
    // Node 4's replica is byte-identical to the others'.
    common::wait_identical(nodes[1].as_ref().unwrap(), "tj", &[2, 3, 4], Duration::from_secs(20));
    watch.finish();
}
