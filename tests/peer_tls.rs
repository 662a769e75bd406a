//! Mutual TLS between nodes (`raft.tls-*`): a 3-node cluster whose nodes hold certificates for
//! `node-1`..`node-3` (made at run time with openssl, signed by a throw-away CA) forms, creates a
//! replicated topic and acknowledges an acks=all produce; a node that presents another node's
//! certificate has its frames refused, and the refusal is logged. The certificate making and the
//! mTLS probe live in `tests/common/peer_tls.rs`, shared with `cluster_configs`.

mod common;

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use chronik::log::batch::build_batch;
use common::peer_tls::{assert_peer_listener_is_tls, make_node_certs, with_tls};
use common::{cluster_configs, spawn_node, spawn_node_logged, start_cluster, CapturedLog, Client};

#[test]
fn a_cluster_replicates_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    make_node_certs(dir.path(), 3);
    let mut configs = cluster_configs(dir.path(), 3);
    with_tls(&mut configs, dir.path(), |id| id);
    let nodes = start_cluster(configs);
    let mut c = Client::connect(nodes[0].addr);
    let req = CreateTopicsRequest::default().with_timeout_ms(20_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("tls")))
            .with_num_partitions(1)
            .with_replication_factor(3),
    ]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
    // acks=all needs the followers over TLS; retried until the partition has a leader.
    let recs: Vec<chronik::log::batch::KeyValue> = vec![(None, Some(&b"over tls"[..]))];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let meta: MetadataResponse = c.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None));
        let leader = meta
            .topics
            .iter()
            .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some("tls"))
            .map(|t| t.partitions[0].leader_id.0);
        if let Some(l) = leader.filter(|l| *l > 0) {
            let mut lc = Client::connect(nodes[(l - 1) as usize].addr);
            let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
                produce_request::TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_static_str("tls")))
                    .with_partition_data(vec![produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(Bytes::from(build_batch(0, -1, -1, -1, 1, &recs))))]),
            ]);
            let r: ProduceResponse = lc.call(ApiKey::Produce, 9, &req);
            let code = r.responses[0].partition_responses[0].error_code;
            if code == 0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no acks=all produce over TLS: leader {l}, error {code}");
        } else {
            assert!(std::time::Instant::now() < deadline, "no leader over TLS: {:?}", meta.topics);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_peer_with_another_nodes_certificate_is_refused_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    make_node_certs(dir.path(), 3);
    let mut configs = cluster_configs(dir.path(), 3);
    // Node 3 presents node 2's certificate.
    with_tls(&mut configs, dir.path(), |id| if id == 3 { 2 } else { id });
    let log = CapturedLog::default();
    let mut it = configs.into_iter();
    let (c1, c2, c3) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    let n1 = spawn_node_logged(c1, Some(log.clone()));
    let n2 = spawn_node(c2);
    let _n3 = spawn_node(c3);
    let line = log.wait_for(
        &["closing peer connection", "certificate names node-2, its frame claims node 3"],
        Duration::from_secs(30),
    );
    assert!(line.contains("refusing peer"), "{line}");
    // Nodes 1 and 2 are a quorum and serve on.
    let (n1, _n2) = (n1.wait(), n2.wait());
    let mut c = Client::connect(n1.addr);
    let _: MetadataResponse = c.call(ApiKey::Metadata, 12, &MetadataRequest::default());
}

/// The probe `start_cluster` runs under `CHRONIK_TEST_PEER_TLS` is not vacuous: it fails against
/// a node whose raft listener is plaintext.
#[test]
fn the_tls_probe_fails_against_a_plaintext_peer_listener() {
    let dir = tempfile::tempdir().unwrap();
    make_node_certs(&dir.path().join("certs"), 3);
    let mut configs = cluster_configs(dir.path(), 3);
    with_tls(&mut configs, &dir.path().join("certs"), |id| id);
    let mut plain = configs[1].clone();
    (plain.raft.tls_cert_file, plain.raft.tls_key_file, plain.raft.tls_ca_file) = (None, None, None);
    // Node 2 alone, plaintext: it has no quorum, but its raft listener accepts connections.
    let _starting = spawn_node(plain.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&plain.raft.listen).is_err() {
        assert!(std::time::Instant::now() < deadline, "node 2's raft listener never bound");
        std::thread::sleep(Duration::from_millis(20));
    }
    let from = configs[0].clone();
    let probe = std::panic::catch_unwind(move || assert_peer_listener_is_tls(&from, &plain));
    assert!(probe.is_err(), "the probe accepted a plaintext raft listener");
}
