//! Disk faults on a standalone node (issue 7, part 2), through real restarts of an in-process
//! node: a torn tail is cut back to the last whole batch; a flipped byte in a sealed segment is
//! found by its CRC and only that batch's offsets fail (KAFKA_STORAGE_ERROR) while the rest is
//! served; a full disk makes produce fail with KAFKA_STORAGE_ERROR and the partition serves again
//! once space is freed, without a restart (on a tmpfs this test mounts, when run as root); a full
//! disk under `__meta` fails metadata proposals with KAFKA_STORAGE_ERROR and `__meta` reopens
//! from disk, with every acknowledged topic, once space is freed.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use chronik::config::Config;
use chronik::log::batch::{build_batch, BatchHeader};
use common::{spawn_node_logged, test_config, CapturedLog, Client, TestNode};

const STORAGE_ERROR: i16 = 56;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn start(config: &Config) -> (TestNode, CapturedLog) {
    let log = CapturedLog::default();
    (spawn_node_logged(config.clone(), Some(log.clone())).wait(), log)
}

fn create_topic(c: &mut Client, topic: &str, segment_bytes: Option<&str>) {
    let mut t = create_topics_request::CreatableTopic::default()
        .with_name(name(topic))
        .with_num_partitions(1)
        .with_replication_factor(1);
    if let Some(b) = segment_bytes {
        t = t.with_configs(vec![create_topics_request::CreatableTopicConfig::default()
            .with_name(StrBytes::from_static_str("internal.segment.bytes"))
            .with_value(Some(StrBytes::from_string(b.to_string())))]);
    }
    let req = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![t]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
}

/// Produces one batch of `n` records of `size` bytes (value `tag-i-xxxx`); returns (error, base offset).
fn produce(c: &mut Client, topic: &str, tag: &str, n: usize, size: usize) -> (i16, i64) {
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("{tag}-{i}-{}", "x".repeat(size)).into_bytes()).collect();
    let kvs: Vec<_> = values.iter().map(|v| (None, Some(&v[..]))).collect();
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(name(topic)).with_partition_data(vec![
            produce_request::PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(build_batch(0, -1, -1, -1, 1, &kvs)))),
        ]),
    ]);
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &req);
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// One Fetch at `offset`: (error, high watermark, base offsets of the batches returned).
fn fetch(c: &mut Client, topic: &str, offset: i64) -> (i16, i64, Vec<i64>) {
    let (err, hw, batches) = fetch_batches(c, topic, offset);
    (err, hw, batches.iter().map(|(b, _)| *b).collect())
}

/// One Fetch at `offset`: (error, high watermark, (base offset, next offset) of each batch).
fn fetch_batches(c: &mut Client, topic: &str, offset: i64) -> (i16, i64, Vec<(i64, i64)>) {
    let req = FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1 << 20).with_topics(vec![
        fetch_request::FetchTopic::default().with_topic(name(topic)).with_partitions(vec![
            fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20),
        ]),
    ]);
    let r: FetchResponse = c.call(ApiKey::Fetch, 11, &req);
    let p = &r.responses[0].partitions[0];
    let mut bases = Vec::new();
    let mut rest: &[u8] = p.records.as_deref().unwrap_or(&[]);
    while !rest.is_empty() {
        let h = BatchHeader::parse(rest).unwrap();
        bases.push((h.base_offset, h.next_offset()));
        rest = &rest[h.total_len()..];
    }
    (p.error_code, p.high_watermark, bases)
}

/// Every batch from `from` on, following the batches (panics on a fetch error).
fn read_all(c: &mut Client, topic: &str, from: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let (err, hw, batches) = fetch_batches(c, topic, offset);
        assert_eq!(err, 0, "fetch at {offset}");
        let Some(&(_, next)) = batches.last() else {
            assert_eq!(offset, hw);
            return out;
        };
        offset = next;
        out.extend(batches.iter().map(|(b, _)| *b));
    }
}

/// Waits (at most 10 s) until the restarted partition has replayed its log and leads again:
/// a fetch answers without error and with the high watermark `hw`.
fn wait_high_watermark(c: &mut Client, topic: &str, hw: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (err, now, _) = fetch_batches(c, topic, 0);
        if err == 0 && now == hw {
            return;
        }
        assert!(Instant::now() < deadline, "{topic}: error {err}, high watermark {now}, want {hw}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The partition directory of the first topic created on a node (group 1).
fn group_dir(data: &Path) -> PathBuf {
    data.join("groups").join("1")
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

#[test]
fn restart_over_a_torn_tail_cuts_back_to_the_last_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let (node, _) = start(&config);
    let mut c = Client::connect(node.addr);
    create_topic(&mut c, "torn", None);
    for i in 0..5 {
        assert_eq!(produce(&mut c, "torn", &format!("b{i}"), 2, 20), (0, 2 * i));
    }
    drop(c);
    drop(node);
    // A crash in the middle of writing a frame: the start of a frame lands, the rest does not.
    let active = segments(&group_dir(dir.path())).pop().unwrap();
    let raw = std::fs::read(&active).unwrap();
    let mut torn = raw.clone();
    torn.extend_from_slice(&raw[..raw.len().min(60)]);
    std::fs::write(&active, &torn).unwrap();

    let (node, log) = start(&config);
    let line = log.wait_for(&["truncating torn tail of the active segment"], Duration::from_secs(5));
    assert!(line.contains("bytes_dropped: 60"), "{line}");
    let now = std::fs::read(&active).unwrap();
    assert_eq!(&now[..raw.len()], &raw[..], "the whole frames are kept");
    assert_ne!(&now[raw.len()..now.len().min(raw.len() + 60)], &raw[..60], "the torn frame is gone");
    let mut c = Client::connect(node.addr);
    wait_high_watermark(&mut c, "torn", 10);
    assert_eq!(read_all(&mut c, "torn", 0), vec![0, 2, 4, 6, 8], "every acknowledged batch is there");
    assert_eq!(produce(&mut c, "torn", "after", 1, 5), (0, 10), "the log goes on after the cut");
}

#[test]
fn restart_over_a_flipped_byte_in_a_sealed_segment_fails_only_that_range() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let (node, _) = start(&config);
    let mut c = Client::connect(node.addr);
    create_topic(&mut c, "rot", Some("1024"));
    for i in 0..12 {
        assert_eq!(produce(&mut c, "rot", &format!("b{i}"), 3, 60), (0, 3 * i));
    }
    drop(c);
    drop(node);
    // Flip one byte inside the last batch of the first sealed segment.
    let gdir = group_dir(dir.path());
    let segs = segments(&gdir);
    assert!(segs.len() >= 3, "small segments: {segs:?}");
    let sealed = &segs[0];
    let mut raw = std::fs::read(sealed).unwrap();
    let at = raw.len() - 20;
    raw[at] ^= 0x20;
    std::fs::write(sealed, &raw).unwrap();

    let (node, log) = start(&config);
    let line = log.wait_for(&["corrupt entry in the partition log"], Duration::from_secs(10));
    assert!(line.contains(&sealed.display().to_string()), "names the segment: {line}");
    let start = |k: &str| line.split(&format!("{k}: ")).nth(1).unwrap().split(',').next().unwrap().parse::<i64>();
    let (bad_start, bad_end) = (start("offset_start").unwrap(), start("offset_end").unwrap());
    assert_eq!(bad_end - bad_start, 3);
    let mut c = Client::connect(node.addr);
    // Before the bad batch: served, and the read stops before it.
    let (err, hw, before) = fetch(&mut c, "rot", 0);
    assert_eq!((err, hw), (0, 36));
    assert_eq!(before.last().map(|b| b + 3), Some(bad_start), "served up to the damaged batch");
    // The bad range: KAFKA_STORAGE_ERROR, for every offset in it.
    for o in bad_start..bad_end {
        assert_eq!(fetch(&mut c, "rot", o).0, STORAGE_ERROR, "offset {o}");
    }
    // After it: served.
    assert_eq!(read_all(&mut c, "rot", bad_end), (bad_end..36).step_by(3).collect::<Vec<_>>());
    // The partition takes new data.
    assert_eq!(produce(&mut c, "rot", "new", 1, 5), (0, 36));
    assert_eq!(read_all(&mut c, "rot", 36), vec![36]);
    let lines = log.lines_with(&["corrupt entry in the partition log"]);
    assert_eq!(lines.len(), 1, "logged once: {lines:?}");
}

/// A tmpfs of `mb` MiB mounted at `dir` for the life of this value.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mb: u32) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Fills the filesystem of `dir` with a file, leaving about `leave` bytes free.
fn fill(dir: &Path, leave: u64) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xAAu8; 64 * 1024];
    loop {
        let free = free_bytes(dir);
        if free <= leave {
            break;
        }
        let n = ((free - leave) as usize).min(chunk.len());
        if f.write_all(&chunk[..n]).is_err() {
            break;
        }
    }
    f.sync_all().unwrap();
    path
}

fn free_bytes(dir: &Path) -> u64 {
    let out = std::process::Command::new("df").args(["-B1", "--output=avail"]).arg(dir).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn full_disk_fails_produce_with_storage_error_and_recovers_once_space_is_freed() {
    let base = tempfile::tempdir().unwrap();
    let mnt = base.path().join("tmpfs");
    let Some(fs) = Tmpfs::mount(&mnt, 8) else {
        eprintln!("!!!! SKIPPING full_disk test: cannot mount a tmpfs (needs root)");
        return;
    };
    let data = mnt.join("data");
    let config = test_config(&data);
    let (node, log) = start(&config);
    let mut c = Client::connect(node.addr);
    create_topic(&mut c, "full", None);
    let mut acked = Vec::new();
    for i in 0..5 {
        let (err, base) = produce(&mut c, "full", &format!("a{i}"), 10, 100);
        assert_eq!(err, 0);
        acked.push(base);
    }
    let filler = fill(&mnt, 16 * 1024);
    // Produce until the disk is full: every answer is either success or KAFKA_STORAGE_ERROR.
    let mut storage_errors = 0;
    for i in 0..200 {
        match produce(&mut c, "full", &format!("f{i}"), 20, 200) {
            (0, base) => acked.push(base),
            (STORAGE_ERROR, _) => {
                storage_errors += 1;
                if storage_errors >= 3 {
                    break;
                }
            }
            other => panic!("produce on a full disk answered {other:?}"),
        }
    }
    assert!(storage_errors >= 3, "the disk never filled up");
    log.wait_for(&["partition storage failed"], Duration::from_secs(5));
    // The operator is told that the disk is full, and where.
    let full = log.wait_for(&["disk full: no space left"], Duration::from_secs(5));
    assert!(full.contains(&mnt.join("data").display().to_string()), "names the path: {full}");
    assert!(chronik::metrics::registry().render().contains("kind=\"no_space\""));
    // The broker is up: metadata and reads of what was acknowledged still work.
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None));
    assert_eq!(r.topics.iter().filter(|t| !t.is_internal).count(), 1, "one topic besides __consumer_offsets");
    // Free the space: a later produce succeeds without a restart.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        match produce(&mut c, "full", "after", 1, 10) {
            (0, base) => break base,
            (STORAGE_ERROR, _) | (6, _) | (5, _) => {}
            other => panic!("produce after freeing space answered {other:?}"),
        }
        assert!(Instant::now() < deadline, "no recovery within 20 s of freeing space");
        std::thread::sleep(Duration::from_millis(200));
    };
    log.wait_for(&["partition storage reopened after a failure"], Duration::from_secs(5));
    acked.push(after);
    // Every acknowledged batch is there, exactly once, in order, and nothing else.
    assert_eq!(read_all(&mut c, "full", 0), acked);
    drop(c);
    drop(node);
    drop(fs);
}

/// Produces one batch through whichever node leads partition 0 (tries each node in turn).
fn produce_anywhere(clients: &mut [Client], topic: &str, tag: &str, deadline: Instant) -> i64 {
    loop {
        for c in clients.iter_mut() {
            match produce(c, topic, tag, 5, 100) {
                (0, base) => return base,
                (6 | 5 | STORAGE_ERROR | 7 | 19, _) => {}
                other => panic!("produce answered {other:?}"),
            }
        }
        assert!(Instant::now() < deadline, "no node took a produce");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn full_disk_on_one_cluster_node_leaves_the_others_serving_and_the_node_catches_up() {
    let base = tempfile::tempdir().unwrap();
    let configs = common::cluster_configs(base.path(), 3);
    // Node 1's partition groups live on a small tmpfs; its __meta log stays on the real disk.
    let groups = configs[0].data_dir.join("groups");
    let Some(fs) = Tmpfs::mount(&groups, 8) else {
        eprintln!("!!!! SKIPPING cluster full_disk test: cannot mount a tmpfs (needs root)");
        return;
    };
    let logs: Vec<CapturedLog> = (0..3).map(|_| CapturedLog::default()).collect();
    let starting: Vec<_> =
        configs.iter().zip(&logs).map(|(c, l)| spawn_node_logged(c.clone(), Some(l.clone()))).collect();
    let nodes: Vec<TestNode> = starting.into_iter().map(|s| s.wait()).collect();
    common::wait_brokers(&nodes, 3);
    let mut clients: Vec<Client> = nodes.iter().map(|n| Client::connect(n.addr)).collect();
    let req = CreateTopicsRequest::default().with_timeout_ms(20_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name("cfull"))
            .with_num_partitions(1)
            .with_replication_factor(3),
    ]);
    let r: CreateTopicsResponse = clients[0].call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut acked = Vec::new();
    for i in 0..5 {
        acked.push(produce_anywhere(&mut clients, "cfull", &format!("a{i}"), deadline));
    }
    let filler = fill(&groups, 16 * 1024);
    // Node 1's group fails as soon as it writes; the other two keep the partition available.
    for i in 0..60 {
        acked.push(produce_anywhere(&mut clients, "cfull", &format!("f{i}"), deadline));
    }
    logs[0].wait_for(&["partition storage failed"], Duration::from_secs(10));
    let r: MetadataResponse = clients[0].call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None));
    assert_eq!(r.topics.iter().filter(|t| !t.is_internal).count(), 1, "node 1 stays up and answers");
    // Space is back: node 1 reopens its group and catches up with the others, without a restart.
    std::fs::remove_file(&filler).unwrap();
    logs[0].wait_for(&["partition storage reopened after a failure"], Duration::from_secs(20));
    for i in 0..5 {
        acked.push(produce_anywhere(&mut clients, "cfull", &format!("b{i}"), deadline));
    }
    let want = acked.len() as i64 * 5;
    loop {
        let status = chronik::admin::cluster_status(&nodes[1].admin.to_string(), true).unwrap();
        let copies: Vec<(String, i64)> = status["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["topic"] == "cfull")
            .map(|g| (g["checksum"].as_str().unwrap().to_string(), g["high_watermark"].as_i64().unwrap()))
            .collect();
        if copies.len() == 3 && copies.iter().all(|c| *c == copies[0] && c.1 == want) {
            break;
        }
        assert!(Instant::now() < deadline, "replicas did not converge after the disk was freed: {copies:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every acknowledged batch is there once, in order (read through the current leader).
    let mut acked_sorted = acked.clone();
    acked_sorted.sort();
    assert_eq!(acked, acked_sorted, "acknowledged offsets only grow");
    let leader_reads = clients.iter_mut().find_map(|c| {
        let (err, _, _) = fetch(c, "cfull", 0);
        (err == 0).then(|| read_all(c, "cfull", 0))
    });
    assert_eq!(leader_reads.unwrap(), acked);
    drop(clients);
    drop(nodes);
    drop(fs);
}

/// Creates topic `topic` (one partition); returns the error code.
fn try_create(c: &mut Client, topic: &str) -> i16 {
    let req = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    r.topics[0].error_code
}

fn topic_names(c: &mut Client) -> Vec<String> {
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None));
    let mut names: Vec<String> =
        r.topics.iter().filter(|t| !t.is_internal).filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect();
    names.sort();
    names
}

#[test]
fn full_disk_under_meta_fails_its_proposals_and_meta_reopens_once_space_is_freed() {
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("data");
    // Only the __meta log lives on the small tmpfs; partition groups stay on the real disk.
    let meta = data.join("meta");
    let Some(fs) = Tmpfs::mount(&meta, 4) else {
        eprintln!("!!!! SKIPPING __meta full_disk test: cannot mount a tmpfs (needs root)");
        return;
    };
    let config = test_config(&data);
    let (node, log) = start(&config);
    let mut c = Client::connect(node.addr);
    create_topic(&mut c, "before", None);
    assert_eq!(produce(&mut c, "before", "b", 2, 20), (0, 0));
    let filler = fill(&meta, 0);
    // Create topics until __meta cannot write: each answer is success or KAFKA_STORAGE_ERROR.
    let mut created = vec!["before".to_string()];
    let mut failed = None;
    for i in 0..2000 {
        let topic = format!("t{i:04}");
        match try_create(&mut c, &topic) {
            0 => created.push(topic),
            STORAGE_ERROR => {
                failed = Some(topic);
                break;
            }
            other => panic!("CreateTopics on a full __meta disk answered {other}"),
        }
    }
    let failed = failed.expect("the __meta disk never filled up");
    log.wait_for(&["__meta storage failed"], Duration::from_secs(5));
    let full = log.wait_for(&["disk full: no space left"], Duration::from_secs(5));
    assert!(full.contains(&meta.display().to_string()), "names the __meta path: {full}");
    // The node answers from the image it had; the partitions keep serving.
    created.sort();
    assert_eq!(topic_names(&mut c), created, "the image of acknowledged topics is kept");
    assert_eq!(produce(&mut c, "before", "c", 1, 10), (0, 2));
    // While failed, proposals fail at once.
    assert_eq!(try_create(&mut c, "during"), STORAGE_ERROR);
    std::fs::remove_file(&filler).unwrap();
    log.wait_for(&["__meta storage reopened after a failure"], Duration::from_secs(20));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match try_create(&mut c, "after") {
            0 => break,
            STORAGE_ERROR | 7 | 5 => assert!(Instant::now() < deadline, "no topic created after the reopen"),
            other => panic!("CreateTopics after the reopen answered {other}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    created.push("after".to_string());
    created.sort();
    let names = topic_names(&mut c);
    // A topic whose creation failed may or may not have been written before the failure (it was
    // never acknowledged); every acknowledged one is there.
    let unacked: Vec<&String> = names.iter().filter(|n| !created.contains(n)).collect();
    assert!(unacked.iter().all(|n| **n == failed), "only the failed creation may appear: {unacked:?}");
    assert!(created.iter().all(|t| names.contains(t)), "acknowledged topics lost: {created:?} vs {names:?}");
    // The rebuilt metadata serves: the new topic takes data, the old one keeps its offsets.
    let deadline = Instant::now() + Duration::from_secs(20);
    while produce(&mut c, "after", "a", 1, 10) != (0, 0) {
        assert!(Instant::now() < deadline, "the topic created after the reopen never took a produce");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(produce(&mut c, "before", "d", 1, 10), (0, 3));
    assert_eq!(read_all(&mut c, "before", 0), vec![0, 2, 3]);
    drop(c);
    drop(node);
    drop(fs);
}
