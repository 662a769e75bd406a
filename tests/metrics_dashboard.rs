//! The Grafana dashboard (`docs/grafana/chronik-dashboard.json`) references only series that
//! `/metrics` exports: a 3-node in-process cluster takes acks=all produce traffic, node 1's
//! `/metrics` endpoint is scraped over HTTP on 127.0.0.1, the text is parsed with a Prometheus
//! text parser (so it is valid exposition), and every metric name and label name in the
//! dashboard's PromQL expressions must appear in it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use chronik::log::batch::build_batch;
use common::{cluster_configs, start_cluster, Client};

/// PromQL functions, aggregations and keywords used by the dashboard (anything else that looks
/// like an identifier outside braces and ranges is a metric name).
const PROMQL_WORDS: &[&str] = &[
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "topk",
    "bottomk",
    "rate",
    "irate",
    "increase",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "histogram_quantile",
    "label_values",
];

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Every `expr` of the dashboard's panels.
fn dashboard_exprs() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana/chronik-dashboard.json");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for panel in doc["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().map(Vec::as_slice).unwrap_or_default() {
            out.push(t["expr"].as_str().expect("a target has an expr").to_string());
        }
    }
    out
}

/// The metric names of one PromQL expression, each with the label names its selector matches
/// on and those it aggregates `by`.
fn referenced(expr: &str) -> Vec<(String, BTreeSet<String>)> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out: Vec<(String, BTreeSet<String>)> = Vec::new();
    let mut by_labels = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '[' {
            i = chars[i..].iter().position(|&c| c == ']').map(|p| i + p + 1).expect("closed range");
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if word == "by" || word == "without" {
                let open = i + chars[i..].iter().position(|&c| c == '(').unwrap();
                let close = open + chars[open..].iter().position(|&c| c == ')').unwrap();
                let inner: String = chars[open + 1..close].iter().collect();
                by_labels.extend(inner.split(',').map(|l| l.trim().to_string()).filter(|l| !l.is_empty()));
                i = close + 1;
            } else if !PROMQL_WORDS.contains(&word.as_str()) {
                let mut labels = BTreeSet::new();
                if chars.get(i) == Some(&'{') {
                    let close = i + chars[i..].iter().position(|&c| c == '}').unwrap();
                    let inner: String = chars[i + 1..close].iter().collect();
                    for m in inner.split(',') {
                        let l: String = m.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                        labels.insert(l.trim().to_string());
                    }
                    i = close + 1;
                }
                out.push((word, labels));
            }
        } else if c == '"' {
            i += 1 + chars[i + 1..].iter().position(|&c| c == '"').unwrap() + 1;
        } else {
            i += 1;
        }
    }
    for (_, labels) in &mut out {
        labels.extend(by_labels.iter().cloned());
    }
    out
}

fn scrape(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.to_string()
}

/// {metric name: label names seen} of an exposition (summaries under their own name and with
/// the `quantile` label, as PromQL sees them).
fn exported(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid exposition");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in &scrape.samples {
        let labels = out.entry(s.metric.clone()).or_default();
        labels.extend(s.labels.keys().cloned());
        if matches!(s.value, prometheus_parse::Value::Summary(_)) {
            labels.insert("quantile".into());
        }
    }
    out
}

#[test]
fn every_series_of_the_dashboard_is_exported() {
    let exprs = dashboard_exprs();
    let wanted: Vec<(String, BTreeSet<String>)> = exprs.iter().flat_map(|e| referenced(e)).collect();
    let names: BTreeSet<&str> = wanted.iter().map(|(n, _)| n.as_str()).collect();
    // The parser must find the dashboard's main series (a parser that finds nothing proves nothing).
    for must in [
        "chronik_raft_elections_started_total",
        "chronik_raft_term",
        "chronik_heartbeat_interval_seconds",
        "chronik_produce_seconds",
        "chronik_fsync_seconds_count",
        "chronik_apply_lag_entries",
        "chronik_requests_total",
        "disk_errors_total",
    ] {
        assert!(names.contains(must), "the dashboard has no {must}: {names:?}");
    }

    let dir = tempfile::tempdir().unwrap();
    let configs = cluster_configs(dir.path(), 3);
    let nodes = start_cluster(configs);
    // Node 1's admin API serves /metrics (tests/common gives every node its own admin port).
    let metrics_addr = nodes[0].admin.to_string();
    let mut c = Client::connect(nodes[0].addr);
    let req = CreateTopicsRequest::default().with_timeout_ms(30_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name("dash"))
            .with_num_partitions(3)
            .with_replication_factor(3),
    ]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0);

    // acks=all produce to every partition until each succeeds (leaders may still be electing).
    let deadline = Instant::now() + Duration::from_secs(30);
    for p in 0..3 {
        loop {
            let recs: Vec<chronik::log::batch::KeyValue> = (0..5).map(|_| (None, Some(&b"dash"[..]))).collect();
            let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
                produce_request::TopicProduceData::default().with_name(name("dash")).with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(p)
                        .with_records(Some(Bytes::from(build_batch(0, -1, -1, -1, 0, &recs)))),
                ]),
            ]);
            let mut ok = false;
            for n in &nodes {
                let r: ProduceResponse = Client::connect(n.addr).call(ApiKey::Produce, 9, &req);
                ok |= r.responses[0].partition_responses[0].error_code == 0;
            }
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "partition {p} took no acks=all produce");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let fetch = FetchRequest::default().with_max_wait_ms(0).with_topics(vec![fetch_request::FetchTopic::default()
        .with_topic(name("dash"))
        .with_partitions(vec![fetch_request::FetchPartition::default()
            .with_partition(0)
            .with_partition_max_bytes(1 << 20)])]);
    let _: FetchResponse = c.call(ApiKey::Fetch, 11, &fetch);

    // No disk fails in this test, and the storage layer's calls of `disk_error` are not wired
    // yet: count one through the registry's public method so `disk_errors_total` exists.
    chronik::metrics::registry().disk_error(1, "fsync", "eio");

    // Heartbeat intervals need two heartbeat frames on a link; wait for quantiles to appear.
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = scrape(&metrics_addr);
        if text.contains("chronik_heartbeat_interval_seconds{") && text.contains("chronik_fsync_seconds_count") {
            break text;
        }
        assert!(Instant::now() < deadline, "no heartbeat interval quantiles after 20 s:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(text, text.trim_end().to_string() + "\n", "the exposition ends with one newline");
    let have = exported(&text);
    let mut missing = Vec::new();
    for (metric, labels) in &wanted {
        match have.get(metric) {
            None => missing.push(format!("{metric}: not exported")),
            Some(got) => {
                for l in labels.difference(got) {
                    missing.push(format!("{metric}: no label {l} (has {got:?})"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "dashboard series not in /metrics:\n{}\n\n{text}", missing.join("\n"));
    // The values are real: produce was counted and timed on the leaders.
    let produced: f64 = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap()
        .samples
        .iter()
        .filter(|s| s.metric == "chronik_produce_seconds_count")
        .map(|s| match s.value {
            prometheus_parse::Value::Untyped(v) | prometheus_parse::Value::Counter(v) => v,
            _ => 0.0,
        })
        .sum();
    assert!(produced >= 3.0, "produce latency samples: {produced}");
}

#[test]
fn the_promql_scanner_finds_names_and_labels() {
    let got = referenced(
        r#"sum by (node, op) (increase(disk_errors_total{node=~"$node",kind="eio"}[5m])) / rate(x_sum[1m])"#,
    );
    let labels = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<String>>();
    assert_eq!(
        got,
        vec![
            ("disk_errors_total".to_string(), labels(&["kind", "node", "op"])),
            ("x_sum".to_string(), labels(&["node", "op"])),
        ]
    );
}
