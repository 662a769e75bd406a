//! In-process cluster tests of log compaction: replicas that compact at different times (each
//! node's cleaner decides alone) hold the same latest value of every key and only records the
//! producer wrote at their offsets; a follower that was down while the leader compacted is
//! behind the leader's raft start and catches up through a snapshot of the compacted segment
//! files, pulled in chunks (also when the link is cut mid-transfer, the follower killed, or the
//! chunks paced by the leader's replication throttle for longer than the follower's patience),
//! then serves byte for byte what the leader serves at every offset. What a replica serves is read with the same `PartitionLog::read` Fetch uses,
//! from its data directory once the nodes are stopped.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use chronik::config::Config;
use chronik::log::batch::{build_batch, records, BatchHeader};
use chronik::log::{LogKind, LogOptions, PartitionLog};
use common::{cluster_configs, leader_of, spawn_node_logged, CapturedLog, Client, TestNode};

/// The configs of the compacted test topic: small segments, an eager cleaner.
const COMPACTED: &[(&str, &str)] =
    &[("cleanup.policy", "compact"), ("internal.segment.bytes", "2048"), ("min.cleanable.dirty.ratio", "0.01")];

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Produces `rounds` updates of keys `k0..k{keys}` (one record per batch, value `r{round}-k{key}`).
fn produce_updates(c: &mut Client, topic: &str, rounds: usize, keys: usize, first_round: usize) {
    for round in first_round..first_round + rounds {
        for k in 0..keys {
            let (key, value) = (format!("k{k}"), format!("r{round}-k{k}"));
            let batch =
                build_batch(0, -1, -1, -1, 1_700_000_000_000, &[(Some(key.as_bytes()), Some(value.as_bytes()))]);
            let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
                produce_request::TopicProduceData::default().with_name(name(topic)).with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(Bytes::from(batch))),
                ]),
            ]);
            let r: ProduceResponse = c.call(ApiKey::Produce, 9, &req);
            assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
        }
    }
}

/// What a replica's log serves from offset 0: the raw bytes, and (offset, key, value) records.
fn served(data_dir: &Path) -> (Bytes, Vec<(i64, String, String)>, usize) {
    let groups = data_dir.join("groups");
    let gdir: PathBuf = std::fs::read_dir(&groups).unwrap().next().unwrap().unwrap().path();
    let opts = LogOptions { segment_bytes: 2048, index_interval_bytes: 4096, kind: LogKind::KafkaBatches };
    let (log, _) = PartitionLog::open(&gdir, opts, &chronik::logging::discard()).unwrap();
    let raw = log.read(0, usize::MAX, i64::MAX).unwrap();
    let mut recs = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        let h = BatchHeader::parse(&raw[pos..]).unwrap();
        let b = &raw[pos..pos + h.total_len()];
        for (i, r) in records(b).unwrap().iter().enumerate() {
            let _ = i;
            let s = |x: Option<&[u8]>| String::from_utf8(x.unwrap().to_vec()).unwrap();
            recs.push((h.base_offset + i64::from(r.offset_delta), s(r.key), s(r.value)));
        }
        pos += h.total_len();
    }
    let compacted_entries = log
        .entries(log.first_index(), log.last_index() + 1, None)
        .unwrap()
        .iter()
        .filter(|e| chronik::log::compacted_end(&e.data, &e.context).is_some())
        .count();
    (raw, recs, compacted_entries)
}

/// Every record a replica serves is the one the producer wrote at that offset (offset `o` holds
/// round `o / keys`, key `o % keys`), offsets increase, and the latest value of every key is there.
fn check_replica(recs: &[(i64, String, String)], keys: usize, rounds: usize) {
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    let mut last = -1;
    for (o, k, v) in recs {
        assert!(*o > last, "offsets increase");
        last = *o;
        let (round, key) = (*o as usize / keys, *o as usize % keys);
        assert_eq!((k.as_str(), v.as_str()), (format!("k{key}").as_str(), format!("r{round}-k{key}").as_str()));
        latest.insert(k.clone(), v.clone());
    }
    for k in 0..keys {
        assert_eq!(latest.get(&format!("k{k}")), Some(&format!("r{}-k{k}", rounds - 1)), "latest of k{k}");
    }
}

/// Starts the nodes and waits until every node's metadata lists every broker.
fn start(configs: &[Config], logs: &[CapturedLog]) -> Vec<TestNode> {
    let starting: Vec<_> =
        configs.iter().zip(logs).map(|(c, l)| spawn_node_logged(c.clone(), Some(l.clone()))).collect();
    let nodes: Vec<TestNode> = starting.into_iter().map(|s| s.wait()).collect();
    common::wait_brokers(&nodes, configs.len());
    nodes
}

#[test]
fn replicas_compacting_at_different_times_keep_the_same_latest_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut configs = cluster_configs(dir.path(), 3);
    // Each node's cleaner decides alone, at its own pace.
    for (c, ms) in configs.iter_mut().zip([100u64, 700, 1500]) {
        c.cleaner.backoff = Duration::from_millis(ms);
    }
    let logs: Vec<CapturedLog> = (0..3).map(|_| CapturedLog::default()).collect();
    let nodes = start(&configs, &logs);
    let mut c = Client::connect(nodes[0].addr);
    common::create_topic(&mut c, "kv", 1, 3, COMPACTED);
    let leader = leader_of(&nodes[0], "kv");
    let mut lc = Client::connect(nodes[(leader - 1) as usize].addr);
    let (keys, rounds) = (10, 30);
    produce_updates(&mut lc, "kv", rounds / 2, keys, 0);
    // Every node cleans at least once, at different moments, while updates keep coming.
    for l in &logs {
        l.wait_for(&["cleaned partition", "kv/0"], Duration::from_secs(30));
    }
    produce_updates(&mut lc, "kv", rounds - rounds / 2, keys, rounds / 2);
    std::thread::sleep(Duration::from_millis(2000));
    drop(lc);
    drop(c);
    drop(nodes);
    let mut counts = Vec::new();
    for config in &configs {
        let (_, recs, _) = served(&config.data_dir);
        check_replica(&recs, keys, rounds);
        counts.push(recs.len());
    }
    assert!(counts.iter().all(|n| *n < keys * rounds / 2), "every replica compacted: {counts:?}");
}

/// What happens to the follower while the snapshot's files travel.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Disruption {
    None,
    /// The link between leader and follower is cut for a while mid-transfer.
    CutLink,
    /// The follower is killed mid-transfer and started again.
    KillFollower,
    /// The leader's replication throttle (`leader.replication.throttled.rate` = 1 byte/s, the
    /// topic's `leader.replication.throttled.replicas` = `*`) paces the chunks for longer than
    /// the follower's give-up time, then is deleted.
    Throttled,
}

/// What a replica serves from every offset `0..hw` (one Fetch-sized read from each).
fn reads_at_every_offset(data_dir: &Path, hw: i64) -> Vec<Bytes> {
    let groups = data_dir.join("groups");
    let gdir: PathBuf = std::fs::read_dir(&groups).unwrap().next().unwrap().unwrap().path();
    let opts = LogOptions { segment_bytes: 2048, index_interval_bytes: 4096, kind: LogKind::KafkaBatches };
    let (log, _) = PartitionLog::open(&gdir, opts, &chronik::logging::discard()).unwrap();
    let start = log.log_start_offset();
    (0..hw).map(|o| if o < start { Bytes::new() } else { log.read(o, 300, i64::MAX).unwrap() }).collect()
}

/// A follower down while the leader compacted comes back behind the compacted prefix: it
/// receives that prefix as a snapshot (the segment files, in chunks of 128 bytes), then the log,
/// and ends serving byte for byte what the leader serves at every offset.
fn catch_up_through_a_snapshot(disruption: Disruption) {
    let dir = tempfile::tempdir().unwrap();
    let mut configs = cluster_configs(dir.path(), 3);
    for c in &mut configs {
        c.cleaner.backoff = Duration::from_millis(100);
        // Small chunks: most files take several.
        c.raft.snapshot_chunk_bytes = 128;
    }
    let logs: Vec<CapturedLog> = (0..3).map(|_| CapturedLog::default()).collect();
    let mut nodes: Vec<Option<TestNode>> = start(&configs, &logs).into_iter().map(Some).collect();
    let mut c = Client::connect(nodes[0].as_ref().unwrap().addr);
    common::create_topic(&mut c, "kv", 1, 3, COMPACTED);
    let leader = leader_of(nodes[0].as_ref().unwrap(), "kv");
    let follower = leader % 3 + 1;
    let other = 6 - leader - follower;
    let (li, fi) = ((leader - 1) as usize, (follower - 1) as usize);
    // The follower stops before anything is written; its own cleaner stays off after the
    // restart, so all it holds is what the leader sent.
    drop(nodes[fi].take());
    configs[fi].cleaner.enabled = false;
    let mut lc = Client::connect(nodes[li].as_ref().unwrap().addr);
    let (keys, rounds) = (8, 40);
    produce_updates(&mut lc, "kv", rounds, keys, 0);
    logs[li].wait_for(&["cleaned partition", "kv/0"], Duration::from_secs(30));
    // The leader has compacted: let it finish every run it started, then bring the follower back.
    std::thread::sleep(Duration::from_millis(1000));
    let sent_before = chronik::metrics::snapshot_figures(leader).chunks_sent;
    let faults = nodes[li].as_ref().unwrap().faults.clone();
    if disruption == Disruption::Throttled {
        let replicas = [("leader.replication.throttled.replicas", 0, Some("*"))];
        assert_eq!(common::incremental_alter(&mut c, 2, "kv", &replicas).0, 0);
        let rate = [("leader.replication.throttled.rate", 0, Some("1"))];
        assert_eq!(common::incremental_alter(&mut c, 4, "", &rate).0, 0);
        // Every node's throttle takes the configuration from its `__meta` image.
        std::thread::sleep(Duration::from_millis(500));
    } else if disruption != Disruption::None {
        // Slow chunks down, so that the transfer is still going when it is disrupted.
        faults.delay_to(follower, Some(Duration::from_millis(40)));
    }
    nodes[fi] = Some(spawn_node_logged(configs[fi].clone(), Some(logs[fi].clone())).wait());
    logs[fi].wait_for(&["snapshot transfer started"], Duration::from_secs(30));
    match disruption {
        Disruption::None => {}
        Disruption::CutLink => {
            std::thread::sleep(Duration::from_millis(150));
            faults.partition(follower, true);
            logs[fi].wait_for(&["asking again for a snapshot chunk"], Duration::from_secs(30));
            // Shorter than the follower's give-up time (two election timeouts): it resumes.
            std::thread::sleep(Duration::from_millis(300));
            faults.partition(follower, false);
        }
        Disruption::KillFollower => {
            std::thread::sleep(Duration::from_millis(150));
            assert!(logs[fi].lines_with(&["installed a snapshot's segments"]).is_empty(), "killed mid-transfer");
            drop(nodes[fi].take());
            nodes[fi] = Some(spawn_node_logged(configs[fi].clone(), Some(logs[fi].clone())).wait());
        }
        Disruption::Throttled => {
            // One 128-byte chunk fits the quota's first ten seconds at 1 byte/s; after it the
            // leader answers "throttled" and the follower asks again, for 3 s, longer than its
            // give-up time of two election timeouts (2 s): the transfer is paced, not abandoned.
            logs[fi].wait_for(&["asking again for a snapshot chunk"], Duration::from_secs(30));
            std::thread::sleep(Duration::from_secs(3));
            let asked = logs[fi].lines_with(&["asking again for a snapshot chunk"]).len();
            assert!(asked >= 3, "the paced follower asked again {asked} times");
            assert!(logs[fi].lines_with(&["installed a snapshot's segments"]).is_empty(), "paced, not done");
            let clear = [("leader.replication.throttled.rate", 1, None)];
            assert_eq!(common::incremental_alter(&mut c, 4, "", &clear).0, 0);
        }
    }
    faults.delay_to(follower, None);
    let admin = |i: u64| nodes[(i - 1) as usize].as_ref().unwrap().admin.to_string();
    let pick = |s: serde_json::Value| s["groups"].as_array().unwrap().iter().find(|g| g["topic"] == "kv").cloned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let l = pick(chronik::admin::fetch_status(&admin(leader)).unwrap());
        let f = pick(chronik::admin::fetch_status(&admin(follower)).unwrap());
        if let (Some(l), Some(f)) = (&l, &f) {
            if f["applied"] == l["applied"] && f["high_watermark"] == l["high_watermark"] {
                assert_eq!(l["high_watermark"], (keys * rounds) as i64);
                break;
            }
        }
        assert!(Instant::now() < deadline, "the follower did not catch up: leader {l:?} follower {f:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The snapshot path was used: the leader served chunks, the follower installed segments.
    logs[fi].wait_for(&["installed a snapshot's segments"], Duration::from_secs(5));
    assert!(chronik::metrics::snapshot_figures(follower).installed >= 1);
    assert!(chronik::metrics::snapshot_figures(leader).chunks_sent > sent_before);
    if matches!(disruption, Disruption::CutLink | Disruption::Throttled) {
        assert!(!logs[fi].lines_with(&["asking again for a snapshot chunk"]).is_empty());
        let gave_up = logs[fi].lines_with(&["snapshot transfer abandoned", "no chunk from"]);
        assert!(gave_up.is_empty(), "the transfer resumed where it was cut: {gave_up:?}");
    }
    eprintln!(
        "{disruption:?}: {:?}; leader chunks sent {}",
        logs[fi].lines_with(&["snapshot transfer started"]),
        chronik::metrics::snapshot_figures(leader).chunks_sent - sent_before
    );
    // The other nodes' cleaners are idle by now (nothing new is written): stop everything.
    std::thread::sleep(Duration::from_millis(500));
    drop(lc);
    drop(c);
    drop(nodes);
    let (lraw, lrecs, _) = served(&configs[li].data_dir);
    let (fraw, frecs, fcompacted) = served(&configs[fi].data_dir);
    check_replica(&lrecs, keys, rounds);
    check_replica(&frecs, keys, rounds);
    assert!(fcompacted > 0, "the follower holds the entries the leader had compacted");
    assert!(lrecs.len() < keys * rounds / 2, "the leader compacted: {} records", lrecs.len());
    assert_eq!(fraw, lraw, "the follower serves byte for byte what the leader serves");
    let hw = (keys * rounds) as i64;
    let (lr, fr) = (reads_at_every_offset(&configs[li].data_dir, hw), reads_at_every_offset(&configs[fi].data_dir, hw));
    for o in 0..hw as usize {
        assert_eq!(fr[o], lr[o], "what the follower serves from offset {o}");
    }
    let (_, orecs, _) = served(&configs[(other - 1) as usize].data_dir);
    check_replica(&orecs, keys, rounds);
}

#[test]
fn a_follower_down_while_the_leader_compacted_catches_up_and_serves_the_same_bytes() {
    catch_up_through_a_snapshot(Disruption::None);
}

#[test]
fn a_snapshot_transfer_cut_mid_way_resumes_and_completes() {
    catch_up_through_a_snapshot(Disruption::CutLink);
}

#[test]
fn a_follower_killed_mid_transfer_restarts_and_catches_up() {
    catch_up_through_a_snapshot(Disruption::KillFollower);
}

#[test]
fn snapshot_chunks_are_paced_by_the_leader_replication_throttle_without_restarting_the_transfer() {
    catch_up_through_a_snapshot(Disruption::Throttled);
}
