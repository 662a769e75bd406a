//! Peer traffic is validated (issue 7, part 4): on a node's Raft port, garbage closes that
//! connection only, a frame from a node id that is not a configured peer is refused and the
//! connection closed, and messages for a group the node does not host are dropped; each with a
//! log line. The cluster keeps replicating throughout.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use raft::eraftpb::{Message, MessageType};

use chronik::log::batch::build_batch;
use common::{cluster_configs, spawn_node_logged, CapturedLog, Client, StartingNode};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// acks=all produce of one record to partition 0 of `topic`, through whichever node leads it.
fn produce_everywhere(clients: &mut [Client], topic: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        for c in clients.iter_mut() {
            let batch = build_batch(0, -1, -1, -1, 1, &[(None, Some(b"still replicating"))]);
            let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(5_000).with_topic_data(vec![
                produce_request::TopicProduceData::default().with_name(name(topic)).with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(Bytes::from(batch))),
                ]),
            ]);
            let r: ProduceResponse = c.call(ApiKey::Produce, 9, &req);
            if r.responses[0].partition_responses[0].error_code == 0 {
                return;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no node accepted an acks=all produce");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// True once the other end closed `s` (EOF or reset within 10 s).
fn closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b) {
            Ok(0) | Err(_) => return true,
            Ok(_) => continue,
        }
    }
}

fn heartbeat(from: u64, to: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(MessageType::MsgHeartbeat);
    (m.from, m.to, m.term) = (from, to, 1);
    m
}

#[test]
fn raft_port_rejects_garbage_strangers_and_unknown_groups() {
    let dir = tempfile::tempdir().unwrap();
    let configs = cluster_configs(dir.path(), 3);
    let raft_addr = configs[0].raft.listen.clone();
    let log = CapturedLog::default();
    let starting: Vec<StartingNode> =
        configs.into_iter().enumerate().map(|(i, c)| spawn_node_logged(c, (i == 0).then(|| log.clone()))).collect();
    let nodes: Vec<_> = starting.into_iter().map(StartingNode::wait).collect();
    let mut clients: Vec<Client> = nodes.iter().map(|n| Client::connect(n.addr)).collect();
    let req = CreateTopicsRequest::default().with_timeout_ms(20_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name("peers"))
            .with_num_partitions(1)
            .with_replication_factor(3),
    ]);
    let r: CreateTopicsResponse = clients[0].call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0);
    produce_everywhere(&mut clients, "peers");

    // Garbage: a plausible length prefix followed by bytes that are no protobuf frame.
    let mut s = TcpStream::connect(&raft_addr).unwrap();
    let mut junk = 40u32.to_be_bytes().to_vec();
    junk.extend((0..40u8).map(|i| i.wrapping_mul(37) | 0x80));
    s.write_all(&junk).unwrap();
    assert!(closed(&mut s), "garbage closes the connection");
    log.wait_for(&["closing peer connection", "undecodable"], Duration::from_secs(5));
    // An oversized length prefix.
    let mut s = TcpStream::connect(&raft_addr).unwrap();
    s.write_all(&[0xff, 0xff, 0xff, 0xf0, 1, 2, 3]).unwrap();
    assert!(closed(&mut s));
    log.wait_for(&["closing peer connection", "exceeds"], Duration::from_secs(5));

    // A well-formed frame from node 9, which is not a configured peer.
    let mut s = TcpStream::connect(&raft_addr).unwrap();
    s.write_all(&chronik::peer::frame::encode(9, 1, &[(0, heartbeat(9, 1))])).unwrap();
    assert!(closed(&mut s), "a stranger's frame closes the connection");
    log.wait_for(&["closing peer connection", "frame from node 9", "not a configured peer"], Duration::from_secs(5));
    // A configured sender, but a frame addressed to another node.
    let mut s = TcpStream::connect(&raft_addr).unwrap();
    s.write_all(&chronik::peer::frame::encode(2, 3, &[(0, heartbeat(2, 3))])).unwrap();
    assert!(closed(&mut s));
    log.wait_for(&["closing peer connection", "to node 3"], Duration::from_secs(5));
    // A message that claims another sender than its frame.
    let mut s = TcpStream::connect(&raft_addr).unwrap();
    s.write_all(&chronik::peer::frame::encode(2, 1, &[(0, heartbeat(3, 1))])).unwrap();
    assert!(closed(&mut s));
    log.wait_for(&["closing peer connection", "message of group 0 from 3"], Duration::from_secs(5));

    // A group node 1 does not host: dropped with a log line; the connection stays usable.
    let mut s = TcpStream::connect(&raft_addr).unwrap();
    s.write_all(&chronik::peer::frame::encode(2, 1, &[(424_242, heartbeat(2, 1))])).unwrap();
    log.wait_for(&["group this node does not host", "group: 424242", "from: 2"], Duration::from_secs(5));
    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut b = [0u8; 1];
    assert!(
        matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
        "the connection stays open"
    );
    drop(s);

    // Only those connections were closed: the cluster still replicates with acks=all.
    produce_everywhere(&mut clients, "peers");
    drop(clients);
    drop(nodes);
}
