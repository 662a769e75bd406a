//! The fuzz corpus on stable: every committed seed (`fuzz/corpus/<target>/`) and every input that
//! once crashed a target (`fuzz/regressions/<target>/`) runs through the same harness as the
//! cargo-fuzz target (`chronik::fuzzing`). A regression input that panics again fails here.
//!
//! The seeds are written by `write_seed_corpus` (ignored by default):
//!     cargo test --test fuzz_corpus -- --ignored write_seed_corpus

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

use chronik::broker::routes::ROUTES;
use chronik::fuzzing::{self, TARGETS};
use chronik::log::batch::{build_batch, finish_batch};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

fn run_dir(target: &str, dir: &Path) -> usize {
    let inputs = files(dir);
    for path in &inputs {
        let data = std::fs::read(path).unwrap();
        let result = std::panic::catch_unwind(|| fuzzing::run(target, &data));
        assert!(result.is_ok(), "{target}: {} panics", path.display());
    }
    inputs.len()
}

#[test]
fn seed_corpus_runs_clean() {
    for t in TARGETS {
        let n = run_dir(t, &fuzz_dir().join("corpus").join(t));
        assert!(n > 0, "no seed corpus for {t}: run write_seed_corpus");
    }
}

#[test]
fn saved_crash_inputs_stay_fixed() {
    let mut total = 0;
    for t in TARGETS {
        total += run_dir(t, &fuzz_dir().join("regressions").join(t));
    }
    assert!(total > 0, "the crash inputs found so far are kept in fuzz/regressions");
}

#[test]
fn every_target_has_a_cargo_fuzz_binary() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for t in TARGETS {
        assert!(manifest.contains(&format!("name = \"{t}\"")), "fuzz/Cargo.toml lacks {t}");
        assert!(fuzz_dir().join("fuzz_targets").join(format!("{t}.rs")).is_file());
    }
    // ... and CI fuzzes each of them: scripts/fuzz.sh's default list names every target.
    let script = std::fs::read_to_string(fuzz_dir().join("../scripts/fuzz.sh")).unwrap();
    let list = script
        .lines()
        .find(|l| l.trim_start().starts_with("TARGETS=(") && !l.contains("$@"))
        .expect("the default TARGETS=(...) in fuzz.sh");
    for t in TARGETS {
        assert!(list.split(['(', ')', ' ']).any(|w| w == *t), "scripts/fuzz.sh does not fuzz {t}: {list}");
    }
}

// --- seeds -----------------------------------------------------------------------------------------

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn sample_batch() -> Bytes {
    Bytes::from(build_batch(0, 7, 0, 0, 1_700_000_000_000, &[(Some(b"k"), Some(b"v")), (None, Some(b"w"))]))
}

/// A request with some content for the APIs where the default is empty.
fn encode_body(key: ApiKey, version: i16, rich: bool) -> Option<BytesMut> {
    let mut b = BytesMut::new();
    macro_rules! enc {
        ($v:expr) => {
            $v.encode(&mut b, version).ok().map(|_| b)
        };
    }
    match (key, rich) {
        (ApiKey::Produce, true) => {
            enc!(ProduceRequest::default().with_acks(-1).with_timeout_ms(1000).with_topic_data(vec![
                produce_request::TopicProduceData::default().with_name(name("t")).with_partition_data(vec![
                    produce_request::PartitionProduceData::default().with_index(0).with_records(Some(sample_batch())),
                ])
            ]))
        }
        (ApiKey::Fetch, true) => {
            enc!(FetchRequest::default().with_max_wait_ms(10).with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic(name("t"))
                .with_partitions(vec![fetch_request::FetchPartition::default().with_fetch_offset(3)])]))
        }
        (ApiKey::Metadata, true) => enc!(MetadataRequest::default()
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(name("t")))]))),
        (ApiKey::CreateTopics, true) => {
            enc!(CreateTopicsRequest::default().with_topics(vec![create_topics_request::CreatableTopic::default()
                .with_name(name("t"))
                .with_num_partitions(3)
                .with_replication_factor(1)
                .with_configs(vec![create_topics_request::CreatableTopicConfig::default()
                    .with_name(StrBytes::from_static_str("retention.ms"))
                    .with_value(Some(StrBytes::from_static_str("1000")))])]))
        }
        (ApiKey::ListOffsets, true) => {
            enc!(ListOffsetsRequest::default().with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(name("t"))
                .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1)])]))
        }
        (ApiKey::Produce, false) => enc!(ProduceRequest::default()),
        (ApiKey::Fetch, false) => enc!(FetchRequest::default()),
        (ApiKey::ListOffsets, false) => enc!(ListOffsetsRequest::default()),
        (ApiKey::Metadata, false) => enc!(MetadataRequest::default()),
        (ApiKey::ApiVersions, false) => enc!(ApiVersionsRequest::default()),
        (ApiKey::CreateTopics, false) => enc!(CreateTopicsRequest::default()),
        (ApiKey::DeleteTopics, false) => enc!(DeleteTopicsRequest::default()),
        (ApiKey::InitProducerId, false) => enc!(InitProducerIdRequest::default()),
        (ApiKey::DescribeConfigs, false) => enc!(DescribeConfigsRequest::default()),
        (ApiKey::AlterConfigs, false) => enc!(AlterConfigsRequest::default()),
        (ApiKey::CreatePartitions, false) => enc!(CreatePartitionsRequest::default()),
        (ApiKey::IncrementalAlterConfigs, false) => enc!(IncrementalAlterConfigsRequest::default()),
        (ApiKey::DescribeCluster, false) => enc!(DescribeClusterRequest::default()),
        _ => None,
    }
}

fn write(dir: &Path, file: &str, data: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(file), data).unwrap();
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand after changing the routes or the formats"]
fn write_seed_corpus() {
    let corpus = fuzz_dir().join("corpus");
    // kafka_request and request_body: every route at every served version.
    for (ri, r) in ROUTES.iter().enumerate() {
        for v in r.min..=r.max {
            for rich in [false, true] {
                let Some(body) = encode_body(r.key, v, rich) else {
                    continue;
                };
                let header = RequestHeader::default()
                    .with_request_api_key(r.key as i16)
                    .with_request_api_version(v)
                    .with_correlation_id(1)
                    .with_client_id(Some(StrBytes::from_static_str("seed")));
                let mut frame = BytesMut::new();
                header.encode(&mut frame, r.key.request_header_version(v)).unwrap();
                frame.extend_from_slice(&body);
                let tag = format!("{:?}-v{v}{}", r.key, if rich { "-rich" } else { "" });
                write(&corpus.join("kafka_request"), &tag, &frame);
                let mut sel = vec![ri as u8, (v - r.min) as u8];
                sel.extend_from_slice(&body);
                write(&corpus.join("request_body"), &tag, &sel);
            }
        }
    }
    // record_batch: plain, idempotent, two batches, headers-free nulls, a compressed header.
    let dir = corpus.join("record_batch");
    write(&dir, "plain", &build_batch(0, -1, -1, -1, 5, &[(None, Some(b"x"))]));
    write(&dir, "idempotent", &sample_batch());
    write(&dir, "two-batches", &[sample_batch().to_vec(), build_batch(0, 7, 0, 2, 6, &[(Some(b"a"), None)])].concat());
    let mut gz = build_batch(0, -1, -1, -1, 5, &[(None, Some(b"y"))]);
    gz[22] = 1;
    gz.truncate(61);
    gz.extend_from_slice(b"\x1f\x8b\x08\x00opaque");
    finish_batch(&mut gz);
    write(&dir, "gzip-header", &gz);
    // peer_frame: a heartbeat and an append with entries, from node 2 to node 1.
    let dir = corpus.join("peer_frame");
    let mut hb = raft::eraftpb::Message::default();
    hb.set_msg_type(raft::eraftpb::MessageType::MsgHeartbeat);
    (hb.from, hb.to, hb.term, hb.commit) = (2, 1, 3, 9);
    write(&dir, "heartbeats", &chronik::peer::frame::encode(2, 1, &[(0, hb.clone()), (5, hb)]));
    let mut app = raft::eraftpb::Message::default();
    app.set_msg_type(raft::eraftpb::MessageType::MsgAppend);
    (app.from, app.to, app.term, app.index, app.log_term, app.commit) = (2, 1, 3, 10, 3, 10);
    app.entries = vec![raft::eraftpb::Entry { index: 11, term: 3, data: sample_batch(), ..Default::default() }].into();
    write(&dir, "append", &chronik::peer::frame::encode(2, 1, &[(4, app)]));
    // meta_command: register brokers, create, grow, alter, delete, allocate ids, report a leader.
    use chronik::meta::command::*;
    let cmds = [
        Cmd::RegisterBroker(RegisterBroker {
            node_id: 1,
            host: "h".into(),
            port: 9092,
            cluster_id: "c".into(),
            admin: None,
            listeners: Default::default(),
            rack: None,
        }),
        Cmd::RegisterBroker(RegisterBroker {
            node_id: 2,
            host: "h".into(),
            port: 9093,
            cluster_id: "c".into(),
            admin: None,
            listeners: Default::default(),
            rack: None,
        }),
        Cmd::CreateTopic(CreateTopic {
            name: "t".into(),
            topic_id: vec![1; 16],
            partitions: 3,
            replication_factor: 2,
            configs: [("retention.ms".to_string(), "5".to_string())].into(),
            assignment: Vec::new(),
            placement: 0,
        }),
        Cmd::CreatePartitions(CreatePartitions { name: "t".into(), total: 5, assignment: Vec::new(), placement: 0 }),
        Cmd::AlterTopicConfigs(AlterTopicConfigs {
            name: "t".into(),
            set: Default::default(),
            delete: vec!["retention.ms".into()],
            replace_all: false,
        }),
        Cmd::SetLeader(SetLeader { group: 1, leader: 2, term: 4 }),
        Cmd::AllocateProducerIds(AllocateProducerIds { count: 10 }),
        Cmd::DeleteTopic(DeleteTopic { name: "t".into() }),
    ];
    let mut all = Vec::new();
    for (i, c) in cmds.into_iter().enumerate() {
        let data = MetaCommand::new(c).encode_to_vec();
        let ctx = ProposalId { node: 1, seq: i as u64 }.encode();
        let mut entry = vec![ctx.len() as u8];
        entry.extend_from_slice(&ctx);
        entry.push(data.len() as u8);
        entry.extend_from_slice(&data);
        write(&corpus.join("meta_command"), &format!("cmd-{i}"), &entry);
        all.extend_from_slice(&entry);
    }
    write(&corpus.join("meta_command"), "all", &all);
}

/// A `meta_command` input: entries without proposal ids.
fn meta_input(cmds: Vec<chronik::meta::command::Cmd>) -> Vec<u8> {
    let mut out = Vec::new();
    for c in cmds {
        let data = chronik::meta::command::MetaCommand::new(c).encode_to_vec();
        out.push(0);
        out.push(data.len() as u8);
        out.extend_from_slice(&data);
    }
    out
}

#[test]
#[ignore = "writes fuzz/regressions; the files are committed"]
fn write_meta_regressions() {
    use chronik::meta::command::*;
    let dir = fuzz_dir().join("regressions").join("meta_command");
    let broker = Cmd::RegisterBroker(RegisterBroker {
        node_id: 1,
        host: "h".into(),
        port: 1,
        cluster_id: "c".into(),
        admin: None,
        listeners: Default::default(),
        rack: None,
    });
    let huge = |partitions| {
        Cmd::CreateTopic(CreateTopic {
            name: "t".into(),
            topic_id: vec![1; 16],
            partitions,
            replication_factor: 1,
            configs: Default::default(),
            assignment: Vec::new(),
            placement: 0,
        })
    };
    write(&dir, "oom-create-topic-u32max-partitions", &meta_input(vec![broker.clone(), huge(u32::MAX)]));
    let grow = Cmd::CreatePartitions(CreatePartitions {
        name: "t".into(),
        total: u32::MAX,
        assignment: Vec::new(),
        placement: 0,
    });
    write(&dir, "oom-create-partitions-u32max", &meta_input(vec![broker, huge(1), grow]));
}
