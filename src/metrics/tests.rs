//! Unit tests of the registry's rendering: names, labels and values of every series, checked by
//! parsing the text with a Prometheus text parser.

use super::*;

fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid exposition")
}

fn value(s: &prometheus_parse::Sample) -> f64 {
    match s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        ref other => panic!("{} is not a single value: {other:?}", s.metric),
    }
}

fn find<'a>(scrape: &'a prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> &'a prometheus_parse::Sample {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no {name} {labels:?}"))
}

#[test]
fn dump_shows_hex_and_ascii() {
    let d = hex_dump(b"AB\x00", 64);
    assert!(d.starts_with("0000  41 42 00"));
    assert!(d.trim_end().ends_with("AB."));
}

#[test]
fn quantiles_and_render() {
    let r = Registry::default();
    r.peer(9, 2, |p| {
        for ms in [149.0, 150.0, 151.0, 150.0, 171.0] {
            p.heartbeat_interval.record(ms / 1000.0);
            p.heartbeat_gaps.record(ms / 1000.0);
        }
        p.frames = 4;
    });
    r.group(9, "t/0", |g| {
        g.role = "Leader".into();
        g.elections_won = 1;
        g.term = 3;
    });
    let text = r.render();
    assert!(text.contains("chronik_peer_frames_total{node=\"9\",peer=\"2\"} 4"), "{text}");
    assert!(text.contains("chronik_raft_elections_won_total{node=\"9\",group=\"t/0\"} 1"), "{text}");
    assert!(text.contains("chronik_raft_is_leader{node=\"9\",group=\"t/0\",role=\"Leader\"} 1"), "{text}");
    let scrape = parse(&text);
    let hb = find(&scrape, "chronik_heartbeat_interval_seconds", &[("node", "9"), ("peer", "2")]);
    let prometheus_parse::Value::Summary(qs) = &hb.value else { panic!("not a summary: {hb:?}") };
    let q = |want: f64| qs.iter().find(|q| q.quantile == want).map(|q| q.count).unwrap();
    assert!((q(0.5) - 0.150).abs() < 0.0002, "p50 {}", q(0.5));
    assert!((q(1.0) - 0.171).abs() < 0.0002, "max {}", q(1.0));
    assert!(text.contains("chronik_heartbeat_interval_seconds_count{node=\"9\",peer=\"2\"} 5"), "{text}");
    let sum = find(&scrape, "chronik_heartbeat_interval_seconds_sum", &[("node", "9"), ("peer", "2")]);
    assert!((value(sum) - 0.771).abs() < 1e-9, "{sum:?}");
    // The histogram: 4 intervals within 150 +- 10 ms, the fifth between 170 and 180 ms.
    for (le, n) in [("0.14", 0), ("0.16", 4), ("0.17", 4), ("0.18", 5), ("+Inf", 5)] {
        let line = format!("chronik_heartbeat_gap_seconds_bucket{{node=\"9\",peer=\"2\",le=\"{le}\"}} {n}\n");
        assert!(text.contains(&line), "{line} not in {text}");
    }
    assert_eq!(value(find(&scrape, "chronik_raft_term", &[("node", "9"), ("group", "t/0")])), 3.0);
}

#[test]
fn every_series_keeps_its_name_and_labels() {
    let r = Registry::default();
    r.group(1, "__meta", |g| {
        g.role = "Follower".into();
        g.snapshot = Some((10_000, 80_000, 4_000_000));
    });
    r.group(1, "t/0", |g| g.lso_lag = Some(3));
    r.peer(1, 2, |p| p.heartbeat_interval.record(0.1));
    r.request(1, 0, Some(6));
    r.error(1, 1, 3);
    r.fsync(1, Duration::from_millis(2));
    r.produce(1, Duration::from_millis(5));
    r.disk_error(1, "fsync", "eio");
    r.disk_error(1, "fsync", "eio");
    r.fetch_bytes(1, 4096, 0);
    let scrape = parse(&r.render());
    let mut seen: Vec<(String, Vec<String>)> = scrape
        .samples
        .iter()
        .map(|s| {
            let mut labels: Vec<String> = s.labels.keys().cloned().collect();
            labels.sort();
            (s.metric.clone(), labels)
        })
        .collect();
    seen.sort();
    seen.dedup();
    let want: &[(&str, &[&str])] = &[
        ("chronik_apply_lag_entries", &["group", "node"]),
        ("chronik_fetch_record_bytes_total", &["node", "sent"]),
        ("chronik_fsync_seconds", &["node"]),
        ("chronik_fsync_seconds_count", &["node"]),
        ("chronik_fsync_seconds_sum", &["node"]),
        ("chronik_heartbeat_gap_seconds", &["node", "peer"]),
        ("chronik_heartbeat_gap_seconds_count", &["node", "peer"]),
        ("chronik_heartbeat_gap_seconds_sum", &["node", "peer"]),
        ("chronik_heartbeat_interval_seconds", &["node", "peer"]),
        ("chronik_heartbeat_interval_seconds_count", &["node", "peer"]),
        ("chronik_heartbeat_interval_seconds_sum", &["node", "peer"]),
        ("chronik_meta_log_bytes", &["node"]),
        ("chronik_meta_snapshot_bytes", &["node"]),
        ("chronik_meta_snapshot_index", &["node"]),
        ("chronik_partition_lso_lag_offsets", &["group", "node"]),
        ("chronik_peer_bytes_total", &["node", "peer"]),
        ("chronik_peer_dropped_messages_total", &["node", "peer"]),
        ("chronik_peer_frames_total", &["node", "peer"]),
        ("chronik_peer_heartbeat_frames_total", &["node", "peer"]),
        ("chronik_peer_queue_entry_bytes", &["node", "peer"]),
        ("chronik_peer_queue_messages", &["node", "peer"]),
        ("chronik_produce_seconds", &["node"]),
        ("chronik_produce_seconds_count", &["node"]),
        ("chronik_produce_seconds_sum", &["node"]),
        ("chronik_raft_elections_started_total", &["group", "node"]),
        ("chronik_raft_elections_won_total", &["group", "node"]),
        ("chronik_raft_is_leader", &["group", "node", "role"]),
        ("chronik_raft_leader_changes_total", &["group", "node"]),
        ("chronik_raft_term", &["group", "node"]),
        ("chronik_request_errors_total", &["api_key", "error_code", "node"]),
        ("chronik_requests_total", &["api_key", "node"]),
        ("deserialization_failures_total", &["node"]),
        ("disk_errors_total", &["kind", "node", "op"]),
    ];
    let want: Vec<(String, Vec<String>)> =
        want.iter().map(|(n, l)| (n.to_string(), l.iter().map(|s| s.to_string()).collect())).collect();
    assert_eq!(seen, want);
    assert_eq!(value(find(&scrape, "chronik_meta_snapshot_index", &[("node", "1")])), 10_000.0);
    assert_eq!(value(find(&scrape, "disk_errors_total", &[("node", "1"), ("op", "fsync"), ("kind", "eio")])), 2.0);
    assert_eq!(value(find(&scrape, "chronik_request_errors_total", &[("api_key", "0"), ("error_code", "6")])), 1.0);
    assert_eq!(value(find(&scrape, "chronik_request_errors_total", &[("api_key", "1"), ("error_code", "3")])), 1.0);
    assert_eq!(value(find(&scrape, "chronik_requests_total", &[("api_key", "0")])), 1.0);
    assert_eq!(value(find(&scrape, "chronik_fetch_record_bytes_total", &[("sent", "sendfile")])), 4096.0);
    assert!(scrape.samples.iter().all(|s| s.labels.get("sent").is_none_or(|v| v != "copied")), "0 bytes: no series");
}

#[test]
fn render_only_keeps_one_nodes_series() {
    let r = Registry::default();
    r.group(1, "t/0", |g| g.term = 1);
    r.group(2, "t/0", |g| g.term = 2);
    r.peer(2, 1, |p| p.frames = 7);
    let one = parse(&r.render_only(Some(1)));
    assert!(one.samples.iter().all(|s| s.labels.get("node") == Some("1")), "{:?}", one.samples);
    assert!(!one.samples.iter().any(|s| s.metric == "chronik_peer_frames_total"));
    let all = parse(&r.render());
    assert_eq!(value(find(&all, "chronik_raft_term", &[("node", "2")])), 2.0);
    assert_eq!(value(find(&all, "chronik_peer_frames_total", &[("node", "2"), ("peer", "1")])), 7.0);
}

#[test]
fn a_label_value_with_quotes_is_escaped() {
    let r = Registry::default();
    r.disk_error(1, "open \"x\"", "other");
    let text = r.render();
    assert!(text.contains(r#"op="open \"x\"""#), "{text}");
    // (prometheus-parse does not unescape label values, so only the escaped text is compared.)
    let parsed = parse(&text);
    assert_eq!(find(&parsed, "disk_errors_total", &[("kind", "other")]).labels.get("node"), Some("1"));
}
