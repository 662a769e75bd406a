//! Shared helpers for chronik's in-process tests: start a standalone node inside the test
//! process on a free loopback port, and a minimal blocking Kafka client that encodes requests
//! and decodes responses with the `kafka-protocol` crate.

#![allow(dead_code)]

pub mod partition0;
pub mod peer_tls;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use chronik::config::Config;

/// A node running on its own thread with its own actix System.
pub struct TestNode {
    pub addr: SocketAddr,
    /// The admin API's bound address.
    pub admin: SocketAddr,
    pub faults: std::sync::Arc<chronik::peer::Faults>,
    /// The node's transaction coordinator (tests replace its marker sink).
    pub txn: actix::Addr<chronik::txn::TxnCoordinator>,
    /// The node's running partitions.
    pub partitions: Partitions,
    system: actix::System,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.system.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A free loopback port, never one this process was given before.
pub fn free_port() -> u16 {
    // Ports come from below the kernel's ephemeral range (32768-60999 by default), never from
    // `bind(:0)`: an ephemeral port handed back out can become the local port of another node's
    // outgoing connection before the node it was given to listens on it ("Address already in
    // use", seen once in CI). Each port is given once per process, from a start that differs
    // between processes.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let base = std::process::id() % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = (LOW + (base + n) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {LOW}..{}", LOW + SPAN);
}

/// Configuration of a test node storing its data in `dir`.
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config { data_dir: dir.to_path_buf(), ..Default::default() };
    config.kafka.listen = format!("127.0.0.1:{}", free_port());
    // Many test nodes run at once: the admin listener takes a free port, never the default 9300.
    config.admin.listen = "127.0.0.1:0".to_string();
    config.raft.threads = test_raft_threads();
    config.validate().expect("test config is valid");
    config
}

type Started = Result<
    (
        SocketAddr,
        SocketAddr,
        actix::System,
        std::sync::Arc<chronik::peer::Faults>,
        actix::Addr<chronik::txn::TxnCoordinator>,
        Partitions,
    ),
    String,
>;

/// The node's table of running partitions (their handles: leader, offsets, poller thread).
pub type Partitions = tokio::sync::watch::Receiver<std::sync::Arc<chronik::broker::PartitionTable>>;

/// The poller threads of test nodes (`raft.threads`): `CHRONIK_TEST_RAFT_THREADS`, else 2, so
/// the groups of a node run on more than one thread even on a one-core machine.
pub fn test_raft_threads() -> u32 {
    match std::env::var("CHRONIK_TEST_RAFT_THREADS") {
        Ok(v) => v.parse().expect("CHRONIK_TEST_RAFT_THREADS is a number"),
        Err(_) => 2,
    }
}

/// A node whose start is in progress (cluster nodes wait for each other to form `__meta`).
pub struct StartingNode {
    rx: mpsc::Receiver<Started>,
    thread: std::thread::JoinHandle<()>,
}

impl StartingNode {
    /// Waits until the node serves Kafka clients.
    pub fn wait(self) -> TestNode {
        let (addr, admin, system, faults, txn, partitions) =
            self.rx.recv_timeout(Duration::from_secs(60)).expect("node start").expect("node started");
        TestNode { addr, admin, faults, txn, partitions, system, thread: Some(self.thread) }
    }

    /// Waits until the node's start fails: why (panics if it started).
    pub fn failure(self) -> String {
        match self.rx.recv_timeout(Duration::from_secs(60)).expect("node start") {
            Err(e) => e,
            Ok(_) => panic!("the node started"),
        }
    }
}

/// Log lines captured from a node (`spawn_node_logged`): message and key-values, one string each.
#[derive(Clone, Default)]
pub struct CapturedLog(pub std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl CapturedLog {
    /// Lines containing every one of `parts`.
    pub fn lines_with(&self, parts: &[&str]) -> Vec<String> {
        self.0.lock().unwrap().iter().filter(|l| parts.iter().all(|p| l.contains(p))).cloned().collect()
    }

    /// Waits up to `timeout` for a line containing every one of `parts`.
    pub fn wait_for(&self, parts: &[&str], timeout: Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(l) = self.lines_with(parts).into_iter().next() {
                return l;
            }
            assert!(std::time::Instant::now() < deadline, "no log line with {parts:?} within {timeout:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

struct KvLine(String);

impl slog::Serializer for KvLine {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments) -> slog::Result {
        use std::fmt::Write;
        let _ = write!(self.0, ", {key}: {val}");
        Ok(())
    }
}

impl slog::Drain for CapturedLog {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, record: &slog::Record, values: &slog::OwnedKVList) -> Result<(), slog::Never> {
        use slog::KV;
        let mut line = KvLine(format!("{} {}", record.level().as_short_str(), record.msg()));
        let _ = record.kv().serialize(record, &mut line);
        let _ = values.serialize(record, &mut line);
        self.0.lock().unwrap().push(line.0);
        Ok(())
    }
}

/// Starts a node with `config` on its own thread, without waiting.
pub fn spawn_node(config: Config) -> StartingNode {
    spawn_node_logged(config, None)
}

/// Starts a node whose log lines (info and above) go to `capture`.
pub fn spawn_node_logged(config: Config, capture: Option<CapturedLog>) -> StartingNode {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let system = actix::System::new();
        let logger = if let Some(c) = capture {
            let drain = slog::LevelFilter::new(c, slog::Level::Info);
            slog::Logger::root(slog::Drain::fuse(drain), slog::o!("node" => config.node_id))
        } else if std::env::var_os("CHRONIK_TEST_LOG").is_some() {
            chronik::logging::terminal("debug").new(slog::o!("node" => config.node_id))
        } else {
            chronik::logging::discard()
        };
        let started = system.block_on(chronik::node::start(config, logger));
        match started {
            Ok(handle) => {
                let admin = handle.admin_addr.expect("test nodes serve the admin API");
                let txn = handle.ctx.txn.clone();
                let partitions = handle.ctx.partitions.clone();
                tx.send(Ok((
                    handle.kafka_addr,
                    admin,
                    actix::System::current(),
                    handle.faults.clone(),
                    txn,
                    partitions,
                )))
                .unwrap();
                let _keep = handle;
                system.run().unwrap();
            }
            Err(e) => tx.send(Err(e.to_string())).unwrap(),
        }
    });
    StartingNode { rx, thread }
}

/// Starts a standalone node with `config`.
pub fn start_node(config: Config) -> TestNode {
    spawn_node(config).wait()
}

/// Configurations of an `n`-node cluster on loopback, with data under `dir`, and short Raft
/// timings (tick 20 ms, heartbeat 100 ms, election timeout 1 s) so tests form quickly. With
/// `CHRONIK_TEST_PEER_TLS=1` the nodes talk mutual TLS (certificates made under `dir`).
pub fn cluster_configs(dir: &Path, n: u64) -> Vec<Config> {
    let raft_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let mut configs: Vec<Config> = (1..=n)
        .map(|id| {
            let mut c = Config { node_id: id, data_dir: dir.join(format!("node{id}")), ..Default::default() };
            c.kafka.listen = format!("127.0.0.1:{}", free_port());
            c.raft.listen = format!("127.0.0.1:{}", raft_ports[(id - 1) as usize]);
            c.admin.listen = "127.0.0.1:0".to_string();
            c.raft.tick_interval = Duration::from_millis(20);
            c.raft.heartbeat_interval = Duration::from_millis(100);
            c.raft.election_timeout = Duration::from_secs(1);
            c.raft.threads = test_raft_threads();
            c.raft.peers = (1..=n)
                .filter(|p| *p != id)
                .map(|p| chronik::config::PeerConfig {
                    id: p,
                    addr: format!("127.0.0.1:{}", raft_ports[(p - 1) as usize]),
                })
                .collect();
            c.topics.default_replication_factor = n.min(3) as u16;
            c.validate().expect("cluster test config is valid");
            c
        })
        .collect();
    if peer_tls::enabled_by_env() {
        let certs = dir.join("peer-tls");
        peer_tls::make_node_certs(&certs, n);
        peer_tls::with_tls(&mut configs, &certs, |id| id);
    }
    configs
}

/// `n` nodes' configs with idle groups hibernating (`raft.hibernate`) and the leader balancer
/// off, so each group keeps the leader it elected first.
pub fn hibernating_configs(dir: &Path, n: u64) -> Vec<Config> {
    let mut configs = cluster_configs(dir, n);
    for c in &mut configs {
        c.raft.hibernate = true;
        c.leaders.auto_rebalance_enable = false;
    }
    configs
}

/// Starts every node of a cluster and waits until all serve clients and every node's metadata
/// lists every broker.
/// With peer mTLS configured, it first proves each node's raft listener speaks mutual TLS.
pub fn start_cluster(configs: Vec<Config>) -> Vec<TestNode> {
    let n = configs.len();
    let tls_checks: Vec<(Config, Config)> = configs
        .iter()
        .filter(|c| c.raft.tls_cert_file.is_some())
        .map(|c| (configs.iter().find(|o| o.node_id != c.node_id).unwrap_or(c).clone(), c.clone()))
        .collect();
    let starting: Vec<StartingNode> = configs.into_iter().map(spawn_node).collect();
    let nodes: Vec<TestNode> = starting.into_iter().map(StartingNode::wait).collect();
    for (from, target) in &tls_checks {
        peer_tls::assert_peer_listener_is_tls(from, target);
    }
    wait_brokers(&nodes, n);
    nodes
}

/// Waits (at most 30 s) until every node's metadata lists `n` brokers: a topic created with
/// replication factor `n` before that gets INVALID_REPLICATION_FACTOR.
pub fn wait_brokers(nodes: &[TestNode], n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for node in nodes {
        let mut c = Client::connect(node.addr);
        loop {
            let r: kafka_protocol::messages::MetadataResponse =
                c.call(ApiKey::Metadata, 12, &kafka_protocol::messages::MetadataRequest::default());
            if r.brokers.len() == n {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "node {} sees {} of {n} brokers", node.addr, r.brokers.len());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A blocking Kafka client for tests.
pub struct Client {
    pub stream: TcpStream,
    next_correlation: i32,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Client { stream, next_correlation: 1 }
    }

    /// Encodes and sends a request; returns its correlation id.
    pub fn send<R: Encodable>(&mut self, key: ApiKey, version: i16, req: &R) -> i32 {
        let correlation = self.next_correlation;
        self.next_correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(StrBytes::from_static_str("chronik-test")));
        let mut body = BytesMut::new();
        header.encode(&mut body, key.request_header_version(version)).unwrap();
        req.encode(&mut body, version).unwrap();
        self.send_raw(&body);
        correlation
    }

    /// Sends a frame body with its size prefix.
    pub fn send_raw(&mut self, body: &[u8]) {
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        self.stream.write_all(&frame).unwrap();
    }

    /// Reads one response frame body (after the size prefix), or None if the broker closed.
    pub fn recv_raw(&mut self) -> Option<BytesMut> {
        let mut len = [0u8; 4];
        if self.stream.read_exact(&mut len).is_err() {
            return None;
        }
        let mut buf = BytesMut::zeroed(i32::from_be_bytes(len) as usize);
        self.stream.read_exact(&mut buf).ok()?;
        Some(buf)
    }

    /// Reads and decodes one response.
    pub fn recv<R: Decodable>(&mut self, key: ApiKey, version: i16) -> (i32, R) {
        let mut buf = self.recv_raw().expect("response");
        let header = ResponseHeader::decode(&mut buf, key.response_header_version(version)).unwrap();
        let resp = R::decode(&mut buf, version).unwrap_or_else(|e| panic!("decode {key:?} v{version}: {e}"));
        assert_eq!(buf.remaining(), 0, "{key:?} v{version}: trailing bytes");
        (header.correlation_id, resp)
    }

    /// Sends a request and waits for its response.
    pub fn call<Req: Encodable, Resp: Decodable>(&mut self, key: ApiKey, version: i16, req: &Req) -> Resp {
        let c = self.send(key, version, req);
        let (got, resp) = self.recv(key, version);
        assert_eq!(got, c, "correlation id");
        resp
    }

    /// True once the broker has closed the connection (reads EOF within the timeout).
    pub fn closed_by_broker(&mut self) -> bool {
        self.stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0) | Err(_))
    }
}

/// The leader of partition 0 of `topic` as `node`'s Metadata tells it (waits up to 20 s for one).
pub fn leader_of(node: &TestNode, topic: &str) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut c = Client::connect(node.addr);
    let topic_name = kafka_protocol::messages::TopicName(StrBytes::from_string(topic.to_string()));
    let request = kafka_protocol::messages::MetadataRequest::default().with_topics(Some(vec![
        kafka_protocol::messages::metadata_request::MetadataRequestTopic::default().with_name(Some(topic_name)),
    ]));
    loop {
        let r: kafka_protocol::messages::MetadataResponse = c.call(ApiKey::Metadata, 12, &request);
        if let Some(p) = r.topics.first().and_then(|t| t.partitions.first()).filter(|p| p.leader_id.0 > 0) {
            return p.leader_id.0 as u64;
        }
        assert!(std::time::Instant::now() < deadline, "no leader for {topic}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Creates `topic` (CreateTopics v7, `configs` as name/value pairs) and asserts it was created.
pub fn create_topic(c: &mut Client, topic: &str, partitions: i32, replication: i16, configs: &[(&str, &str)]) {
    use kafka_protocol::messages::{create_topics_request, CreateTopicsRequest, CreateTopicsResponse, TopicName};
    let configs = configs
        .iter()
        .map(|(k, v)| {
            create_topics_request::CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.to_string()))
                .with_value(Some(StrBytes::from_string(v.to_string())))
        })
        .collect();
    let req = CreateTopicsRequest::default().with_timeout_ms(60_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_num_partitions(partitions)
            .with_replication_factor(replication)
            .with_configs(configs),
    ]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
}

/// (node, the two named integer fields, checksum) of every replica of `topic`, from `cluster
/// status`, sorted by node; e.g. `["log_start", "high_watermark"]`.
pub fn replica_status(node: &TestNode, topic: &str, fields: [&str; 2]) -> Vec<(u64, i64, i64, String)> {
    let status = chronik::admin::cluster_status(&node.admin.to_string(), true).unwrap();
    let mut v: Vec<_> = status["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["topic"] == topic)
        .map(|g| {
            let n = |f: &str| g[f].as_i64().unwrap_or_else(|| panic!("no {f} in {g}"));
            (g["node"].as_u64().unwrap(), n(fields[0]), n(fields[1]), g["checksum"].as_str().unwrap().to_string())
        })
        .collect();
    v.sort();
    v
}

/// Bounded wait until `topic`'s replicas, as `node`'s `cluster status` shows them, are exactly on
/// `on` and byte-identical (same high watermark and checksum). Returns the high watermark.
pub fn wait_identical(node: &TestNode, topic: &str, on: &[u64], timeout: std::time::Duration) -> i64 {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let r = replica_status(node, topic, ["high_watermark", "applied"]);
        let nodes: Vec<u64> = r.iter().map(|x| x.0).collect();
        if nodes == on && r.windows(2).all(|w| (w[0].1, &w[0].3) == (w[1].1, &w[1].3)) {
            return r[0].1;
        }
        assert!(std::time::Instant::now() < deadline, "replicas of {topic} differ or are not on {on:?}: {r:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Elections won in `groups` on nodes 1..=3, from the process-wide metrics registry.
pub fn elections_won(groups: &[String]) -> u64 {
    let mut won = 0;
    for node in 1..=3 {
        for g in groups {
            won += chronik::metrics::registry().group_figures(node, g).map(|f| f.elections_won).unwrap_or(0);
        }
    }
    won
}

/// Cuts node `id` off from the others (both directions) or heals it (in-process transport faults).
#[allow(dead_code)]
pub fn cut(nodes: &[TestNode], id: u64, on: bool) {
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

/// IncrementalAlterConfigs (v1) of one resource (`kind`: 2 topic, 4 broker) with `ops` as
/// (name, operation, value): the resource's (error code, error message).
#[allow(dead_code)]
pub fn incremental_alter(c: &mut Client, kind: i8, resource: &str, ops: &[(&str, i8, Option<&str>)]) -> (i16, String) {
    use kafka_protocol::messages::{incremental_alter_configs_request as req, IncrementalAlterConfigsRequest};
    let s = |v: &str| StrBytes::from_string(v.to_string());
    let configs = ops
        .iter()
        .map(|(k, op, v)| {
            req::AlterableConfig::default().with_name(s(k)).with_config_operation(*op).with_value(v.map(s))
        })
        .collect();
    let r: kafka_protocol::messages::IncrementalAlterConfigsResponse = c.call(
        ApiKey::IncrementalAlterConfigs,
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![req::AlterConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(s(resource))
            .with_configs(configs)]),
    );
    let x = &r.responses[0];
    (x.error_code, x.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default())
}
