//! Transactions, partition side, on an in-process three-node cluster: transactional batches,
//! COMMIT/ABORT markers written through WriteTxnMarkers (the broker hands each to the partition's
//! group as `PartitionMsg::WriteTxnMarker`), the last stable offset and the aborted list of a
//! read_committed Fetch, the same on a new leader after the old one is killed and on every
//! replica, and Kafka's errors for bad markers, client-sent control batches and transactional
//! records without a transactional id; on a standalone node, the cleaner removing an aborted
//! transaction's records while an open one survives it and a restart, and the segments'
//! `.txnindex` files (written, checked and rebuilt on a restart, deleted with their segments).

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use chronik::log::batch::{build_batch, finish_batch, BatchHeader};
use common::{cluster_configs, leader_of, start_cluster, Client, TestNode};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// These tests drive the partition side alone (producer ids of their own, markers written by
/// hand), as Kafka's partition tests do: without KIP-890 verification, which asks the
/// coordinator (`transaction.partition.verification.enable`; it is tested in
/// `tests/txn_coordinator.rs`).
fn partition_side_only(mut configs: Vec<chronik::config::Config>) -> Vec<chronik::config::Config> {
    for c in &mut configs {
        c.transactions.partition_verification = false;
    }
    configs
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A batch of `n` records; transactional when `pid >= 0`.
fn batch(pid: i64, seq: i32, n: usize) -> Vec<u8> {
    let recs: Vec<chronik::log::batch::KeyValue> = (0..n).map(|_| (None, Some(&b"record"[..]))).collect();
    let (epoch, seq) = if pid >= 0 { (0, seq) } else { (-1, -1) };
    let mut b = build_batch(0, pid, epoch, seq, now_ms(), &recs);
    if pid >= 0 {
        b[21..23].copy_from_slice(&0x10i16.to_be_bytes());
        finish_batch(&mut b);
    }
    b
}

/// Produce (acks=all) of one batch, with a transactional id: (error, base offset).
fn produce(c: &mut Client, topic: &str, records: Vec<u8>) -> (i16, i64) {
    produce_as(c, topic, records, Some("txn-test"))
}

fn produce_as(c: &mut Client, topic: &str, records: Vec<u8>, transactional_id: Option<&str>) -> (i16, i64) {
    let id = transactional_id.map(|t| TransactionalId(StrBytes::from_string(t.to_string())));
    let req =
        ProduceRequest::default().with_transactional_id(id).with_acks(-1).with_timeout_ms(10_000).with_topic_data(
            vec![produce_request::TopicProduceData::default().with_name(name(topic)).with_partition_data(vec![
                produce_request::PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(records))),
            ])],
        );
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &req);
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// WriteTxnMarkers for one producer on `topic` partition `partition`: the partition's error.
fn marker(c: &mut Client, topic: &str, partition: i32, pid: i64, epoch: i16, commit: bool, coordinator: i32) -> i16 {
    let m = write_txn_markers_request::WritableTxnMarker::default()
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_transaction_result(commit)
        .with_coordinator_epoch(coordinator)
        .with_topics(vec![write_txn_markers_request::WritableTxnMarkerTopic::default()
            .with_name(name(topic))
            .with_partition_indexes(vec![partition])]);
    let r: WriteTxnMarkersResponse =
        c.call(ApiKey::WriteTxnMarkers, 1, &WriteTxnMarkersRequest::default().with_markers(vec![m]));
    r.markers[0].topics[0].partitions[0].error_code
}

/// What a Fetch of partition 0 from `offset` returned.
#[derive(Debug)]
struct Fetched {
    error: i16,
    high_watermark: i64,
    last_stable_offset: i64,
    /// (base offset, last offset, is control) of every batch.
    batches: Vec<(i64, i64, bool)>,
    /// (producer id, first offset).
    aborted: Vec<(i64, i64)>,
}

fn fetch(c: &mut Client, topic: &str, offset: i64, isolation: i8) -> Fetched {
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_isolation_level(isolation)
        .with_topics(vec![fetch_request::FetchTopic::default().with_topic(name(topic)).with_partitions(vec![
            fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20),
        ])]);
    let r: FetchResponse = c.call(ApiKey::Fetch, 11, &req);
    let p = &r.responses[0].partitions[0];
    let data = p.records.clone().unwrap_or_default();
    let mut batches = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let h = BatchHeader::parse(&data[pos..]).unwrap();
        batches.push((h.base_offset, h.last_offset(), h.is_control()));
        pos += h.total_len();
    }
    let aborted = p.aborted_transactions.iter().flatten().map(|a| (a.producer_id.0, a.first_offset)).collect();
    let f = Fetched {
        error: p.error_code,
        high_watermark: p.high_watermark,
        last_stable_offset: p.last_stable_offset,
        batches,
        aborted,
    };
    if isolation == 1 {
        assert!(f.batches.iter().all(|b| b.1 < f.last_stable_offset), "read_committed past the LSO: {f:?}");
    }
    f
}

fn latest(c: &mut Client, topic: &str, isolation: i8) -> i64 {
    let req =
        ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_isolation_level(isolation).with_topics(vec![
            list_offsets_request::ListOffsetsTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1)]),
        ]);
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 7, &req);
    r.topics[0].partitions[0].offset
}

/// (node, high watermark, last stable offset, checksum) of the replicas of `topic`.
fn replicas(node: &TestNode, topic: &str) -> Vec<(u64, i64, i64, String)> {
    common::replica_status(node, topic, ["high_watermark", "last_stable_offset"])
}

/// Waits until `count` replicas report `hw` and `lso` with equal checksums.
fn wait_replicas(node: &TestNode, topic: &str, count: usize, hw: i64, lso: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = replicas(node, topic);
        if r.len() == count && r.iter().all(|x| x.1 == hw && x.2 == lso && x.3 == r[0].3) {
            return;
        }
        assert!(Instant::now() < deadline, "replicas never agreed on hw {hw}, lso {lso}: {r:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Fetches (read_committed) until the leader's high watermark reaches `hw` (a new leader first
/// commits an entry of its own term).
fn fetch_at_hw(c: &mut Client, topic: &str, hw: i64) -> Fetched {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let f = fetch(c, topic, 0, 1);
        if f.error == 0 && f.high_watermark == hw {
            return f;
        }
        assert!(Instant::now() < deadline, "high watermark never reached {hw}: {f:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn markers_move_the_lso_and_a_new_leader_has_the_same_lso_and_aborted_list() {
    let dir = tempfile::tempdir().unwrap();
    let configs = partition_side_only(cluster_configs(dir.path(), 3));
    let mut nodes: Vec<Option<TestNode>> = start_cluster(configs.clone()).into_iter().map(Some).collect();
    let addr = |nodes: &[Option<TestNode>], id: u64| nodes[(id - 1) as usize].as_ref().unwrap().addr;
    let mut c1 = Client::connect(addr(&nodes, 1));
    common::create_topic(&mut c1, "tx", 1, 3, &[]);
    let leader = leader_of(nodes[0].as_ref().unwrap(), "tx");
    let mut lc = Client::connect(addr(&nodes, leader));

    assert_eq!(produce(&mut lc, "tx", batch(-1, 0, 2)), (0, 0)); // 0..=1 plain
    assert_eq!(produce(&mut lc, "tx", batch(1000, 0, 2)), (0, 2)); // 2..=3 txn of 1000
    assert_eq!(produce(&mut lc, "tx", batch(1001, 0, 1)), (0, 4)); // 4 txn of 1001
    assert_eq!(produce(&mut lc, "tx", batch(-1, 0, 1)), (0, 5)); // 5 plain
    let f = fetch(&mut lc, "tx", 0, 1);
    assert_eq!((f.error, f.high_watermark, f.last_stable_offset), (0, 6, 2));
    assert_eq!(f.batches, vec![(0, 1, false)], "read_committed stops at the first open transaction");
    assert_eq!(fetch(&mut lc, "tx", 0, 0).batches.len(), 4, "read_uncommitted sees everything");
    assert_eq!((latest(&mut lc, "tx", 1), latest(&mut lc, "tx", 0)), (2, 6));

    // Bad input: an unknown partition, a client-sent control batch (nothing is written).
    assert_eq!(marker(&mut lc, "tx", 7, 1000, 0, false, 1), 3, "UNKNOWN_TOPIC_OR_PARTITION");
    let follower = leader % 3 + 1;
    let mut fc = Client::connect(addr(&nodes, follower));
    assert_eq!(marker(&mut fc, "tx", 0, 1000, 0, false, 1), 6, "NOT_LEADER_OR_FOLLOWER");
    let mut control = batch(1000, 2, 1);
    control[21..23].copy_from_slice(&0x30i16.to_be_bytes());
    finish_batch(&mut control);
    assert_eq!(produce(&mut lc, "tx", control).0, 87, "INVALID_RECORD: clients never write markers");
    let no_id = produce_as(&mut lc, "tx", batch(1000, 2, 1), None).0;
    assert_eq!(no_id, 53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED: transactional records need the id");

    // 1000 aborts: LSO moves to 1001's transaction.
    assert_eq!(marker(&mut lc, "tx", 0, 1000, 0, false, 1), 0);
    let f = fetch(&mut lc, "tx", 0, 1);
    assert_eq!((f.high_watermark, f.last_stable_offset), (7, 4));
    assert_eq!(f.aborted, vec![(1000, 2)]);
    assert_eq!(f.batches.iter().map(|b| b.0).collect::<Vec<_>>(), vec![0, 2]);
    wait_replicas(nodes[0].as_ref().unwrap(), "tx", 3, 7, 4);

    // Kill the leader in the middle of 1001's transaction: the new leader agrees.
    drop(nodes[(leader - 1) as usize].take());
    let alive = nodes.iter().flatten().next().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_leader = loop {
        let l = leader_of(alive, "tx");
        if l != leader {
            break l;
        }
        assert!(Instant::now() < deadline, "no new leader");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut nc = Client::connect(addr(&nodes, new_leader));
    let f = fetch_at_hw(&mut nc, "tx", 7);
    assert_eq!((f.last_stable_offset, f.aborted.clone()), (4, vec![(1000, 2)]), "{f:?}");
    // Stale markers are refused: an older coordinator epoch, then an older producer epoch.
    // (1000's coordinator epoch 1 came from its marker, rebuilt by the new leader from the log.)
    assert_eq!(marker(&mut nc, "tx", 0, 1000, 0, false, 0), 52, "TRANSACTION_COORDINATOR_FENCED");
    // 1001 commits; a transactional batch of 1001 after it opens a new transaction.
    assert_eq!(marker(&mut nc, "tx", 0, 1001, 0, true, 1), 0);
    let f = fetch(&mut nc, "tx", 0, 1);
    assert_eq!((f.high_watermark, f.last_stable_offset), (8, 8));
    assert_eq!(
        f.batches.iter().map(|b| (b.0, b.2)).collect::<Vec<_>>(),
        [(0, false), (2, false), (4, false), (5, false), (6, true), (7, true)]
    );
    assert_eq!(f.aborted, vec![(1000, 2)]);
    assert!(fetch(&mut nc, "tx", 7, 1).aborted.is_empty(), "the abort ended before offset 7");
    // A new producer epoch (a coordinator's InitProducerId) fences the old one's markers.
    assert_eq!(marker(&mut nc, "tx", 0, 1001, 1, false, 1), 0);
    assert_eq!(marker(&mut nc, "tx", 0, 1001, 0, false, 1), 47, "INVALID_PRODUCER_EPOCH");

    // The killed node comes back and agrees, with every replica.
    let id = leader as usize - 1;
    nodes[id] = Some(common::spawn_node(configs[id].clone()).wait());
    wait_replicas(nodes[id].as_ref().unwrap(), "tx", 3, 9, 9);
}

/// Partition 0 of `topic` fetched from offset 0 (v11) with the isolation level (0 = read
/// uncommitted, 1 = read committed).
fn fetch_from_zero(c: &mut Client, topic: &str, isolation: i8) -> fetch_response::PartitionData {
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 24)
        .with_isolation_level(isolation)
        .with_topics(vec![fetch_request::FetchTopic::default().with_topic(name(topic)).with_partitions(vec![
            fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 24),
        ])]);
    let r: FetchResponse = c.call(ApiKey::Fetch, 11, &req);
    r.responses[0].partitions[0].clone()
}

/// Every (offset, value) a read_uncommitted Fetch serves from offset 0, markers left out.
fn served_values(c: &mut Client, topic: &str) -> Vec<(i64, String)> {
    let data = fetch_from_zero(c, topic, 0).records.unwrap_or_default();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let h = BatchHeader::parse(&data[pos..]).unwrap();
        let b = &data[pos..pos + h.total_len()];
        if !h.is_control() {
            for (i, r) in chronik::log::batch::records(b).unwrap().iter().enumerate() {
                let v = String::from_utf8(r.value.unwrap_or_default().to_vec()).unwrap();
                out.push((h.base_offset + i as i64, v));
            }
        }
        pos += h.total_len();
    }
    out
}

fn keyed(pid: i64, seq: i32, key: &str, value: &str) -> Vec<u8> {
    let mut b = build_batch(
        0,
        pid,
        if pid >= 0 { 0 } else { -1 },
        seq,
        now_ms(),
        &[(Some(key.as_bytes()), Some(value.as_bytes()))],
    );
    if pid >= 0 {
        b[21..23].copy_from_slice(&0x10i16.to_be_bytes());
        finish_batch(&mut b);
    }
    b
}

#[test]
fn the_cleaner_removes_aborted_records_and_a_restart_keeps_the_same_lso() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = partition_side_only(vec![common::test_config(dir.path())]).remove(0);
    config.cleaner.backoff = Duration::from_millis(100);
    let node = common::start_node(config.clone());
    let mut c = Client::connect(node.addr);
    let compacted =
        [("cleanup.policy", "compact"), ("internal.segment.bytes", "1024"), ("min.cleanable.dirty.ratio", "0.01")];
    common::create_topic(&mut c, "txc", 1, 1, &compacted);
    assert_eq!(produce(&mut c, "txc", keyed(-1, -1, "j", "keep")).0, 0); // 0
    assert_eq!(produce(&mut c, "txc", keyed(9, 0, "j", "aborted")).0, 0); // 1
    assert_eq!(marker(&mut c, "txc", 0, 9, 0, false, 0), 0); // 2
    assert_eq!(produce(&mut c, "txc", keyed(8, 0, "o", "open")).0, 0); // 3: stays open
    for i in 0..40 {
        assert_eq!(produce(&mut c, "txc", keyed(-1, -1, &format!("f{}", i % 4), &format!("filler{i}"))).0, 0);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let served = served_values(&mut c, "txc");
        if !served.iter().any(|(_, v)| v == "aborted") {
            assert!(served.contains(&(0, "keep".to_string())), "the aborted record never shadows: {served:?}");
            assert!(served.contains(&(3, "open".to_string())), "an open transaction is kept: {served:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the aborted record was never cleaned: {served:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = fetch(&mut c, "txc", 0, 1);
    // Batch 1 stays as an empty batch: the last of producer 9 (its sequence state survives).
    let offsets: Vec<i64> = before.batches.iter().map(|b| b.0).collect();
    assert_eq!((before.last_stable_offset, offsets), (3, vec![0, 1, 2]));
    drop(c);
    drop(node);
    let node = common::start_node(config);
    let mut c = Client::connect(node.addr);
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let f = fetch(&mut c, "txc", 0, 1);
        if f.error == 0 && f.high_watermark == before.high_watermark {
            break f;
        }
        assert!(Instant::now() < deadline, "no leader after the restart: {f:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!((after.last_stable_offset, after.batches.clone()), (before.last_stable_offset, before.batches.clone()));
    // 8's transaction is still open after the replay of the cleaned log: it commits now.
    assert_eq!(marker(&mut c, "txc", 0, 8, 0, true, 0), 0);
    let f = fetch(&mut c, "txc", 0, 1);
    assert_eq!(f.last_stable_offset, f.high_watermark);
}

/// A non-transactional idempotent batch of one record from `pid`.
fn idempotent(pid: i64, seq: i32, key: &str, value: &str) -> Vec<u8> {
    let mut b = build_batch(0, pid, 0, seq, now_ms(), &[(Some(key.as_bytes()), Some(value.as_bytes()))]);
    finish_batch(&mut b);
    b
}

/// What a read_committed consumer gets from offset 0, filtering aborted transactions as Kafka's
/// consumer does (`CompletedFetch`: a producer's transactional batches are skipped from the first
/// offset of an aborted transaction of its to that producer's ABORT marker): (offset, value),
/// and the offsets of the control batches served.
fn committed_view(c: &mut Client, topic: &str) -> (Vec<(i64, String)>, Vec<i64>) {
    let p = &fetch_from_zero(c, topic, 1);
    assert_eq!(p.error_code, 0);
    let data = p.records.clone().unwrap_or_default();
    let mut aborted: Vec<(i64, i64)> =
        p.aborted_transactions.iter().flatten().map(|a| (a.first_offset, a.producer_id.0)).collect();
    aborted.sort();
    let mut aborted = std::collections::VecDeque::from(aborted);
    let mut skipping = std::collections::HashSet::new();
    let (mut out, mut controls, mut pos) = (Vec::new(), Vec::new(), 0);
    while pos < data.len() {
        let h = BatchHeader::parse(&data[pos..]).unwrap();
        let b = &data[pos..pos + h.total_len()];
        pos += h.total_len();
        while aborted.front().is_some_and(|a| a.0 <= h.last_offset()) {
            skipping.insert(aborted.pop_front().unwrap().1);
        }
        let recs = chronik::log::batch::records(b).unwrap();
        if h.is_control() {
            controls.push(h.base_offset);
            let abort = recs.first().and_then(|r| r.key).is_some_and(|k| k.len() >= 4 && k[2..4] == [0, 0]);
            if abort {
                skipping.remove(&h.producer_id);
            }
            continue;
        }
        if h.is_transactional() && skipping.contains(&h.producer_id) {
            continue;
        }
        for r in &recs {
            let v = String::from_utf8(r.value.unwrap_or_default().to_vec()).unwrap();
            out.push((h.base_offset + i64::from(r.offset_delta), v));
        }
    }
    (out, controls)
}

#[test]
fn the_cleaner_removes_markers_of_emptied_transactions_after_delete_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = partition_side_only(vec![common::test_config(dir.path())]).remove(0);
    config.cleaner.backoff = Duration::from_millis(100);
    let node = common::start_node(config);
    let mut c = Client::connect(node.addr);
    let compacted = [
        ("cleanup.policy", "compact"),
        ("internal.segment.bytes", "1024"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("delete.retention.ms", "3000"),
    ];
    common::create_topic(&mut c, "txm", 1, 1, &compacted);
    assert_eq!(produce(&mut c, "txm", keyed(-1, -1, "j", "keep")).0, 0); // 0
    assert_eq!(produce(&mut c, "txm", keyed(9, 0, "j", "aborted")).0, 0); // 1
    assert_eq!(marker(&mut c, "txm", 0, 9, 0, false, 0), 0); // 2: ABORT 9
    assert_eq!(produce(&mut c, "txm", keyed(8, 0, "c", "committed-old")).0, 0); // 3
    assert_eq!(marker(&mut c, "txm", 0, 8, 0, true, 0), 0); // 4: COMMIT 8
                                                            // The producers' last batches come later, so their transactions' batches can go whole.
    assert_eq!(produce_as(&mut c, "txm", idempotent(9, 1, "p9", "p9"), None).0, 0); // 5
    assert_eq!(produce_as(&mut c, "txm", idempotent(8, 1, "p8", "p8"), None).0, 0); // 6
    assert_eq!(produce(&mut c, "txm", keyed(-1, -1, "c", "newer")).0, 0); // 7
    let (uncleaned, controls) = committed_view(&mut c, "txm");
    assert_eq!(controls, vec![2, 4]);
    assert!(!uncleaned.iter().any(|r| r.1 == "aborted") && uncleaned.contains(&(3, "committed-old".into())));
    for i in 0..40 {
        assert_eq!(produce(&mut c, "txm", keyed(-1, -1, &format!("f{}", i % 4), &format!("filler{i}"))).0, 0);
    }
    // First cleaning: the transactions' records go, their markers stay (their batches were in the
    // log when the run started, and delete.retention.ms has not passed).
    let deadline = Instant::now() + Duration::from_secs(30);
    let (first, controls) = loop {
        let (view, controls) = committed_view(&mut c, "txm");
        if !view.iter().any(|(o, _)| *o == 3) {
            break (view, controls);
        }
        assert!(Instant::now() < deadline, "never cleaned: {view:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(controls, vec![2, 4], "markers kept at first");
    // The first segment's `.txnindex` lists producer 9's abort (first offset 1, marker 2).
    let gdir = partition_dir(dir.path());
    let first_base = segment_bases(&gdir)[0];
    wait_txn_index_of(&gdir, first_base, &[(9, 1, 2)]);
    // The records of the transactions' keys and producers (offsets below 8), and the latest
    // filler of each of its 4 keys (older fillers go as later runs clean the later segments).
    let latest =
        |v: &[(i64, String)]| v.iter().filter(|r| r.0 < 8 || (44..48).contains(&r.0)).cloned().collect::<Vec<_>>();
    assert!(first.contains(&(0, "keep".into())) && first.contains(&(7, "newer".into())), "{first:?}");
    // Every record served after cleaning was served before, at the same offset.
    assert!(latest(&first)[..4].iter().all(|r| uncleaned.contains(r)), "{first:?}");
    assert_eq!(latest(&first).len(), 8, "{first:?}");
    // Dirty the log with new keys (nothing older is shadowed) until a run after the horizon.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut i = 0;
    let after = loop {
        let (view, controls) = committed_view(&mut c, "txm");
        if controls.is_empty() {
            break view;
        }
        assert!(Instant::now() < deadline, "markers never removed: {controls:?}");
        assert_eq!(produce(&mut c, "txm", keyed(-1, -1, &format!("g{i}"), "g")).0, 0);
        i += 1;
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(latest(&after), latest(&first), "a read_committed fetch returns the same records");
    // The swap that removed the ABORT deleted the segment's index; it is written again from the
    // list, which no longer has the abort.
    wait_txn_index_of(&gdir, first_base, &[]);
    // Producer 9's next transaction commits: the aborted list no longer names the removed ABORT,
    // so a read_committed consumer does not skip it.
    let (_, off) = produce(&mut c, "txm", keyed(9, 2, "z", "later-committed"));
    assert_eq!(marker(&mut c, "txm", 0, 9, 0, true, 0), 0);
    let (view, _) = committed_view(&mut c, "txm");
    assert!(view.contains(&(off, "later-committed".into())), "{view:?}");
}

/// The segment bases (`X.log`) in `dir`, oldest first.
fn segment_bases(dir: &std::path::Path) -> Vec<u64> {
    let mut v: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".log")?.parse().ok())
        .collect();
    v.sort();
    v
}

/// The `.txnindex` files of every sealed segment of `dir`, once all are written (bounded wait):
/// (base, bytes), oldest first.
fn wait_txn_indexes(dir: &std::path::Path) -> Vec<(u64, Vec<u8>)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let bases = segment_bases(dir);
        let sealed = &bases[..bases.len() - 1];
        let files: Vec<(u64, Vec<u8>)> = sealed
            .iter()
            .filter_map(|b| Some((*b, std::fs::read(chronik::log::txn_index::path(dir, *b)).ok()?)))
            .collect();
        if files.len() == sealed.len() {
            return files;
        }
        assert!(Instant::now() < deadline, "sealed segments {sealed:?}, index files of {files:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The directory of the one partition with more than two segments under `data`.
fn partition_dir(data: &std::path::Path) -> std::path::PathBuf {
    let groups = data.join("groups");
    let dirs = std::fs::read_dir(&groups).unwrap().map(|e| e.unwrap().path());
    dirs.filter(|p| segment_bases(p).len() > 2).collect::<Vec<_>>().pop().expect("the partition's directory")
}

/// Waits (bounded) until segment `base`'s `.txnindex` in `dir` is there and holds exactly
/// `want`: (producer id, first offset, last offset) of each entry.
fn wait_txn_index_of(dir: &std::path::Path, base: u64, want: &[(i64, i64, i64)]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = std::fs::read(chronik::log::txn_index::path(dir, base)).ok().map(|b| {
            let entries = chronik::log::txn_index::decode(&b, 0, i64::MAX).expect("a valid file");
            entries.iter().map(|e| (e.producer_id, e.first_offset, e.last_offset)).collect::<Vec<_>>()
        });
        if got.as_deref() == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "segment {base}'s index: {got:?}, want {want:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn aborted_index_files_are_written_checked_on_restart_rebuilt_and_go_with_their_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = partition_side_only(vec![common::test_config(dir.path())]).remove(0);
    config.storage.retention_check_interval = Duration::from_millis(100);
    let node = common::start_node(config.clone());
    let mut c = Client::connect(node.addr);
    common::create_topic(&mut c, "txi", 1, 1, &[("internal.segment.bytes", "1024")]);
    // 24 transactions of two producers, by six: aborted, committed, aborted, committed.
    for round in 0..24i32 {
        let pid = 20 + i64::from(round % 2);
        assert_eq!(produce(&mut c, "txi", batch(pid, (round / 2) * 3, 3)).0, 0);
        assert_eq!(marker(&mut c, "txi", 0, pid, 0, (round / 6) % 2 == 1, 0), 0);
    }
    let gdir = partition_dir(dir.path());
    let files = wait_txn_indexes(&gdir);
    assert!(files.len() >= 4, "small segments: {files:?}");
    let with_aborts: Vec<usize> = (0..files.len()).filter(|i| !files[*i].1.is_empty()).collect();
    assert!(with_aborts.len() >= 2, "aborts in several segments: {files:?}");
    assert!(files.iter().any(|f| f.1.is_empty()), "an empty file for a segment without aborts");
    let before = fetch(&mut c, "txi", 0, 1);
    assert_eq!(before.aborted.len(), 12, "{before:?}");
    let middle = fetch(&mut c, "txi", before.batches[before.batches.len() / 2].0, 1);
    drop(c);
    drop(node);
    // One file deleted, one cut in the middle of an entry.
    let (gone, cut) = (files[with_aborts[0]].0, files[with_aborts[1]].0);
    std::fs::remove_file(chronik::log::txn_index::path(&gdir, gone)).unwrap();
    let cut_bytes = &files[with_aborts[1]].1;
    std::fs::write(chronik::log::txn_index::path(&gdir, cut), &cut_bytes[..cut_bytes.len() - 5]).unwrap();

    let log = common::CapturedLog::default();
    let node = common::spawn_node_logged(config, Some(log.clone())).wait();
    let mut c = Client::connect(node.addr);
    let after = fetch_at_hw(&mut c, "txi", before.high_watermark);
    assert_eq!(
        (after.last_stable_offset, &after.batches, &after.aborted),
        (before.last_stable_offset, &before.batches, &before.aborted)
    );
    let m = fetch(&mut c, "txi", middle.batches[0].0, 1);
    assert_eq!((&m.batches, &m.aborted), (&middle.batches, &middle.aborted));
    // Both are written again, the same bytes as before, and valid.
    let deadline = Instant::now() + Duration::from_secs(20);
    let now = loop {
        let now = wait_txn_indexes(&gdir);
        if now[..files.len()] == files[..] {
            break now;
        }
        assert!(Instant::now() < deadline, "not rebuilt: {now:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let refused = log.wait_for(&["aborted index file is damaged; rebuilt from the log"], Duration::from_secs(5));
    assert!(refused.contains(&format!("segment: {cut}")), "{refused}");
    for (base, bytes) in &now {
        let entries = chronik::log::txn_index::decode(bytes, 0, i64::MAX).expect("valid");
        assert!(entries.iter().all(|e| e.producer_id == 20 || e.producer_id == 21), "segment {base}");
    }
    // DeleteRecords past the first two segments: retention deletes them with their files.
    let req = DeleteRecordsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        delete_records_request::DeleteRecordsTopic::default().with_name(name("txi")).with_partitions(vec![
            delete_records_request::DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(before.high_watermark / 2),
        ]),
    ]);
    let r: DeleteRecordsResponse = c.call(ApiKey::DeleteRecords, 2, &req);
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let first = files[0].0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while segment_bases(&gdir).first() == Some(&first) {
        assert!(Instant::now() < deadline, "segments below the new start never deleted");
        std::thread::sleep(Duration::from_millis(50));
    }
    let remaining = segment_bases(&gdir);
    for (base, _) in &files {
        let index = chronik::log::txn_index::path(&gdir, *base);
        assert_eq!(index.exists(), remaining.contains(base), "segment {base}'s index goes with it");
    }
    assert!(!remaining.contains(&first) && remaining.len() >= 2);
}
