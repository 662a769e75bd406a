//! Mutual TLS between nodes (`raft.tls-*`): a 3-node cluster whose nodes hold certificates for
//! `node-1`..`node-3` (made at run time with openssl, signed by a throw-away CA) forms, creates a
//! replicated topic and acknowledges an acks=all produce; a node that presents another node's
//! certificate has its frames refused, and the refusal is logged.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use chronik::log::batch::build_batch;
use common::{cluster_configs, spawn_node, spawn_node_logged, start_cluster, CapturedLog, Client};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl CLI");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA and certificates `node-1.pem`.. with CN and DNS SAN `node-N`.
fn make_node_certs(dir: &Path, n: u64) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &["-days", "2", "-subj", "/CN=chronik-test-ca", "-keyout", "ca-key.pem", "-out", "ca.pem"],
        ]
        .concat(),
    );
    for id in 1..=n {
        let name = format!("node-{id}");
        std::fs::write(dir.join(format!("{name}.ext")), format!("subjectAltName=DNS:{name}\n")).unwrap();
        let (key, csr, pem, ext) =
            (format!("{name}-key.pem"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
        let subj = format!("/CN={name}");
        openssl(dir, &[&["req"][..], &ec, &["-subj", &subj, "-keyout", &key, "-out", &csr]].concat());
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &pem,
            ],
        );
    }
}

fn with_tls(configs: &mut [chronik::config::Config], dir: &Path, cert_of: impl Fn(u64) -> u64) {
    for c in configs.iter_mut() {
        let n = cert_of(c.node_id);
        c.raft.tls_cert_file = Some(dir.join(format!("node-{n}.pem")));
        c.raft.tls_key_file = Some(dir.join(format!("node-{n}-key.pem")));
        c.raft.tls_ca_file = Some(dir.join("ca.pem"));
        c.validate().unwrap();
    }
}

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
