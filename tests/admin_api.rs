//! The admin HTTP API, driven over HTTP as an operator or a load balancer would: node and
//! cluster status, partition status, liveness, readiness before and after `__meta` has a
//! quorum, `/metrics` parsed as Prometheus text, fault injection refused unless
//! `faults.runtime = true`; and the Kafka port, which no longer answers chronik's old private
//! status key.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use serde_json::Value;

/// One HTTP call: status code and JSON body (`Value::Null` if the body is not JSON).
fn call(method: &str, addr: SocketAddr, path: &str, body: Option<&str>) -> (u16, String) {
    let req = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build()
        .request(method, &format!("http://{addr}{path}"));
    let res = match body {
        Some(b) => req.set("content-type", "application/json").send_string(b),
        None => req.call(),
    };
    match res {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("{method} {path} at {addr}: {e}"),
    }
}

fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let (code, text) = call("GET", addr, path, None);
    (code, serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {text}")))
}

/// Polls `GET path` until it answers `want`, at most `within`.
fn wait_for(addr: SocketAddr, path: &str, want: u16, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (code, v) = get(addr, path);
        if code == want {
            return v;
        }
        assert!(Instant::now() < deadline, "{path} still answers {code} after {within:?}: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn create_topic(addr: SocketAddr, topic: &str, partitions: i32, replication: i16) {
    let mut c = Client::connect(addr);
    let req = CreateTopicsRequest::default().with_timeout_ms(20_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_num_partitions(partitions)
            .with_replication_factor(replication),
    ]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
}

#[test]
fn standalone_node_serves_status_health_metrics_and_refuses_faults() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    assert!(node.admin.ip().is_loopback());
    assert_ne!(node.admin.port(), node.addr.port());
    create_topic(node.addr, "orders", 2, 1);

    let (code, live) = get(node.admin, "/health/live");
    assert_eq!((code, live["status"].as_str(), live["node"].as_u64()), (200, Some("live"), Some(1)));
    let ready = wait_for(node.admin, "/health/ready", 200, Duration::from_secs(20));
    assert_eq!(ready["status"], "ready");

    // The cluster view: this broker with its admin address, reachable, with __meta and both
    // partitions led by node 1.
    let (code, cluster) = get(node.admin, "/v1/cluster");
    assert_eq!(code, 200, "{cluster}");
    let brokers = cluster["brokers"].as_array().unwrap();
    assert_eq!(brokers.len(), 1);
    assert_eq!(brokers[0]["port"].as_u64(), Some(u64::from(node.addr.port())));
    assert_eq!(brokers[0]["admin"].as_str(), Some(node.admin.to_string().as_str()));
    assert_eq!(cluster["nodes"][0]["reachable"], true);
    let groups = cluster["groups"].as_array().unwrap();
    let names: Vec<String> = groups.iter().map(|g| format!("{}/{}", g["topic"], g["partition"])).collect();
    assert_eq!(names, vec!["\"__meta\"/0", "\"orders\"/0", "\"orders\"/1"]);
    assert!(groups.iter().all(|g| g["leader"] == 1 && g["node"] == 1), "{cluster}");

    // One partition; unknown ones are 404 with a JSON error.
    let (code, p) = get(node.admin, "/v1/partitions/orders/1");
    assert_eq!(code, 200, "{p}");
    assert_eq!(
        (p["topic"].as_str(), p["partition"].as_i64(), p["leader"].as_u64()),
        (Some("orders"), Some(1), Some(1))
    );
    assert_eq!(p["high_watermark"], 0);
    for path in ["/v1/partitions/orders/2", "/v1/partitions/nope/0"] {
        let (code, e) = get(node.admin, path);
        assert_eq!(code, 404, "{path}: {e}");
        assert!(e["error"].as_str().unwrap().contains("is not hosted"), "{e}");
    }
    let (code, e) = get(node.admin, "/v1/partitions/orders/x");
    assert_eq!(code, 400, "{e}");
    let (code, e) = get(node.admin, "/v1/nothing");
    assert_eq!(code, 404);
    assert!(e["error"].is_string());

    // /metrics is Prometheus text that a parser reads, with this node's Raft series.
    let (code, text) = call("GET", node.admin, "/metrics", None);
    assert_eq!(code, 200);
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("/metrics parses");
    let terms: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "chronik_raft_term" && s.labels.get("node") == Some("1"))
        .collect();
    assert!(terms.len() >= 3, "a term per group (__meta, orders/0, orders/1): {terms:?}");
    // The registry is process-wide and the other tests of this file run nodes with id 1 too (a
    // follower's group can be at term 0 for a moment), so the term check is on this test's groups.
    let terms: Vec<_> =
        terms.into_iter().filter(|s| s.labels.get("group").is_some_and(|g| g.starts_with("orders/"))).collect();
    assert_eq!(terms.len(), 2, "orders/0 and orders/1: {terms:?}");
    assert!(terms.iter().all(|s| matches!(s.value, prometheus_parse::Value::Gauge(v) if v >= 1.0)));
    assert!(scrape.samples.iter().any(|s| s.metric == "deserialization_failures_total"));

    // Fault injection is refused: faults.runtime is off.
    let (code, text) = call("POST", node.admin, "/v1/faults", Some(r#"{"cut": [2]}"#));
    assert_eq!(code, 403, "{text}");
    let e: Value = serde_json::from_str(&text).unwrap();
    assert!(e["error"].as_str().unwrap().contains("faults.runtime is off"), "{e}");
    assert!(!node.faults.dropping_to(2));
    // Changes are POST only.
    let (code, _) = call("GET", node.admin, "/v1/faults", None);
    assert_eq!(code, 404);
}

#[test]
fn faults_are_accepted_when_runtime_faults_are_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.faults.runtime = true;
    let node = start_node(config);
    let (code, text) = call("POST", node.admin, "/v1/faults", Some(r#"{"cut": [2], "delay_ms": 30, "delay_to": [3]}"#));
    assert_eq!(code, 200, "{text}");
    assert!(node.faults.dropping_to(2) && node.faults.dropping_from(2));
    let (code, _) = call("POST", node.admin, "/v1/faults", Some(r#"{"heal": [2]}"#));
    assert_eq!(code, 200);
    assert!(!node.faults.dropping_to(2) && !node.faults.dropping_from(2));
    let (code, text) = call("POST", node.admin, "/v1/faults", Some("not json"));
    assert_eq!(code, 400, "{text}");
}

#[test]
fn kafka_port_answers_the_old_status_key_with_an_error_not_status() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    for key in [32000i16, 32001] {
        let mut c = Client::connect(node.addr);
        // key, version 0, correlation id 1, null client id: the old status/faults request.
        let mut req = key.to_be_bytes().to_vec();
        req.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0xff, 0xff]);
        c.send_raw(&req);
        assert_eq!(c.recv_raw(), None, "key {key}: the broker closes the connection, as Kafka does");
    }
    // The port still serves Kafka clients.
    let mut c = Client::connect(node.addr);
    let r: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(r.error_code, 0);
    assert!(r.api_keys.iter().all(|k| k.api_key < 32000));
}

#[test]
fn readiness_follows_the_meta_quorum_and_the_cluster_view_spans_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let mut configs = cluster_configs(dir.path(), 3);
    // Node 1's admin address is known before it starts: it cannot finish starting alone.
    let admin1: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    configs[0].admin.listen = admin1.to_string();
    let mut rest = configs.split_off(1);
    let first = spawn_node(configs.remove(0));

    // Alone, node 1 is live but not ready: __meta has no quorum, for longer than an election.
    let until = Instant::now() + Duration::from_millis(2500);
    let mut seen = 0;
    while Instant::now() < until {
        let Ok(r) = ureq::get(&format!("http://{admin1}/health/live")).call() else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        assert_eq!(r.status(), 200);
        let (code, v) = get(admin1, "/health/ready");
        assert_eq!(code, 503, "{v}");
        assert_eq!(v["status"], "not ready");
        assert!(v["reasons"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().contains("__meta")), "{v}");
        seen += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen >= 10, "the admin API answered only {seen} times before quorum");

    let others: Vec<StartingNode> = rest.drain(..).map(spawn_node).collect();
    let mut nodes = vec![first.wait()];
    nodes.extend(others.into_iter().map(StartingNode::wait));
    create_topic(nodes[0].addr, "spread", 1, 3);
    for n in &nodes {
        let v = wait_for(n.admin, "/health/ready", 200, Duration::from_secs(30));
        assert_eq!(v["status"], "ready");
    }

    // Any node gives the whole cluster: every broker's admin address, every node's __meta.
    let (code, cluster) = get(nodes[1].admin, "/v1/cluster");
    assert_eq!(code, 200, "{cluster}");
    let admins: Vec<Option<&str>> =
        cluster["brokers"].as_array().unwrap().iter().map(|b| b["admin"].as_str()).collect();
    let want: Vec<String> = nodes.iter().map(|n| n.admin.to_string()).collect();
    assert_eq!(admins, want.iter().map(|s| Some(s.as_str())).collect::<Vec<_>>());
    assert!(cluster["nodes"].as_array().unwrap().iter().all(|n| n["reachable"] == true), "{cluster}");
    let metas = cluster["groups"].as_array().unwrap().iter().filter(|g| g["topic"] == "__meta").count();
    let spread = cluster["groups"].as_array().unwrap().iter().filter(|g| g["topic"] == "spread").count();
    assert_eq!((metas, spread), (3, 3), "{cluster}");

    // A stopped node is marked unreachable; the others still answer.
    drop(nodes.pop());
    let (code, cluster) = get(nodes[0].admin, "/v1/cluster");
    assert_eq!(code, 200, "{cluster}");
    let node3 = cluster["nodes"].as_array().unwrap().iter().find(|n| n["node"] == 3).cloned().unwrap();
    assert_eq!(node3["reachable"], false, "{cluster}");
    assert!(node3["error"].is_string());
    assert_eq!(cluster["groups"].as_array().unwrap().iter().filter(|g| g["topic"] == "__meta").count(), 2);
}
