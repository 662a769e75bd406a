//! Criterion micro-benchmarks of chronik's data path (issue 6).
//!
//! | group | what one iteration does |
//! | --- | --- |
//! | `protocol` | decode / encode a Produce request (6 partitions x one 16 KB batch), a Fetch request (6 partitions), a Fetch response (6 partitions x 16 KB) with `kafka-protocol` |
//! | `batch` | validate one 16 KB record batch (16 records of 1 KB): framing, CRC-32C, record structure |
//! | `log_append` | append one 16 KB batch to each of P partition logs, then one group-commit round of the syncer (fsync) — and the same without fsync (page cache) |
//! | `raft` | propose 16 batches of 16 KB to an in-process 3-replica partition group (three `PartitionCore`s, messages delivered in memory) and drive until every replica applied them; fsync inline (the three replicas fsync in parallel) or page cache |
//!
//! `cargo bench --bench micro` runs them (a few seconds each); `cargo bench -- --test` runs each
//! once as a smoke test (CI). Only throughput of this machine is reported; nothing is asserted.

use std::sync::mpsc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProduceRequest, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use raft::eraftpb::{Entry, Message};
use slog::Logger;

use chronik::log::batch::{build_batch, stamp_base_offset, validate_batches, BatchHeader, KeyValue};
use chronik::log::{LogKind, LogOptions, PartitionLog};
use chronik::partition::core::{ApplyState, PartitionCore};
use chronik::raft::core::Durability;
use chronik::raft::syncer::{SyncRequest, Syncer};
use chronik::raft::GroupSettings;

const RECORD: usize = 1024;
const RECORDS_PER_BATCH: usize = 16;
const PARTITIONS: i32 = 6;
const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 12;

fn logger() -> Logger {
    Logger::root(slog::Discard, slog::o!())
}

/// An idempotent-producer batch of `RECORDS_PER_BATCH` records of `RECORD` bytes (about 16 KB).
fn batch_16k(base_offset: i64) -> Vec<u8> {
    let value = vec![0x5au8; RECORD];
    let recs: Vec<KeyValue<'_>> = (0..RECORDS_PER_BATCH).map(|_| (None, Some(&value[..]))).collect();
    build_batch(base_offset, -1, -1, -1, 1_700_000_000_000, &recs)
}

fn topic() -> TopicName {
    TopicName(StrBytes::from_static_str("bench-topic"))
}

fn encode<T: Encodable>(msg: &T, version: i16) -> Bytes {
    let mut buf = BytesMut::with_capacity(msg.compute_size(version).unwrap());
    msg.encode(&mut buf, version).unwrap();
    buf.freeze()
}

fn bench_protocol(c: &mut Criterion) {
    let batch = Bytes::from(batch_16k(0));
    let produce = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![
        TopicProduceData::default().with_name(topic()).with_partition_data(
            (0..PARTITIONS)
                .map(|i| PartitionProduceData::default().with_index(i).with_records(Some(batch.clone())))
                .collect(),
        ),
    ]);
    let fetch =
        FetchRequest::default().with_max_wait_ms(500).with_min_bytes(1).with_max_bytes(50 << 20).with_topics(vec![
            FetchTopic::default().with_topic(topic()).with_partitions(
                (0..PARTITIONS)
                    .map(|i| {
                        FetchPartition::default()
                            .with_partition(i)
                            .with_fetch_offset(1000)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            ),
        ]);
    let fetch_resp = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(topic())
        .with_partitions(
            (0..PARTITIONS)
                .map(|i| {
                    PartitionData::default()
                        .with_partition_index(i)
                        .with_high_watermark(2000)
                        .with_records(Some(batch.clone()))
                })
                .collect(),
        )]);
    let produce_bytes = encode(&produce, PRODUCE_VERSION);
    let fetch_bytes = encode(&fetch, FETCH_VERSION);
    let fetch_resp_bytes = encode(&fetch_resp, FETCH_VERSION);

    let mut g = c.benchmark_group("protocol");
    g.throughput(Throughput::Bytes(produce_bytes.len() as u64));
    g.bench_function("produce_request_decode_v9_6x16KB", |b| {
        b.iter(|| ProduceRequest::decode(&mut produce_bytes.clone(), PRODUCE_VERSION).unwrap())
    });
    g.bench_function("produce_request_encode_v9_6x16KB", |b| b.iter(|| encode(&produce, PRODUCE_VERSION)));
    g.throughput(Throughput::Elements(1));
    g.bench_function("fetch_request_decode_v12_6p", |b| {
        b.iter(|| FetchRequest::decode(&mut fetch_bytes.clone(), FETCH_VERSION).unwrap())
    });
    g.bench_function("fetch_request_encode_v12_6p", |b| b.iter(|| encode(&fetch, FETCH_VERSION)));
    g.throughput(Throughput::Bytes(fetch_resp_bytes.len() as u64));
    g.bench_function("fetch_response_encode_v12_6x16KB", |b| b.iter(|| encode(&fetch_resp, FETCH_VERSION)));
    g.bench_function("fetch_response_decode_v12_6x16KB", |b| {
        b.iter(|| FetchResponse::decode(&mut fetch_resp_bytes.clone(), FETCH_VERSION).unwrap())
    });
    g.finish();
}

fn bench_batch(c: &mut Criterion) {
    let batch = batch_16k(0);
    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Bytes(batch.len() as u64));
    g.bench_function("validate_16KB", |b| b.iter(|| validate_batches(&batch, 1 << 20).unwrap()));
    g.bench_function("crc32c_16KB", |b| b.iter(|| chronik::log::batch::crc32c_of(&batch)));
    g.finish();
}

/// P partition logs fed 16 KB batches, deleting old segments so the disk use stays bounded.
struct Logs {
    logs: Vec<PartitionLog>,
    next_index: u64,
    template: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl Logs {
    fn new(partitions: usize) -> Logs {
        let dir = tempfile::tempdir().unwrap();
        let opts = LogOptions { segment_bytes: 32 << 20, index_interval_bytes: 4096, kind: LogKind::KafkaBatches };
        let logs = (0..partitions)
            .map(|p| {
                let d = dir.path().join(format!("p{p}"));
                std::fs::create_dir_all(&d).unwrap();
                PartitionLog::open(&d, opts.clone(), &logger()).unwrap().0
            })
            .collect();
        Logs { logs, next_index: 1, template: batch_16k(0), _dir: dir }
    }

    /// Appends one batch to every log (page cache only).
    fn append_one(&mut self) {
        let index = self.next_index;
        self.next_index += 1;
        let mut data = self.template.clone();
        stamp_base_offset(&mut data, (index as i64 - 1) * RECORDS_PER_BATCH as i64);
        let entry = Entry { index, term: 1, data: Bytes::from(data), ..Default::default() };
        for log in &mut self.logs {
            log.append(std::slice::from_ref(&entry)).unwrap();
        }
        if index % 1024 == 0 {
            for log in &mut self.logs {
                log.apply_retention(0, None, Some(0), index).unwrap();
            }
        }
    }

    /// One group-commit round: every log hands its dirty files to the syncer; waits for all.
    fn group_commit(&mut self, syncer: &Syncer) {
        let (tx, rx) = mpsc::channel();
        for log in &mut self.logs {
            let (files, _) = log.take_dirty();
            let tx = tx.clone();
            syncer.sync(SyncRequest::new(files, Box::new(move |r| tx.send(r).unwrap())));
        }
        for _ in 0..self.logs.len() {
            rx.recv().unwrap().unwrap();
        }
    }
}

fn bench_log_append(c: &mut Criterion) {
    let syncer = Syncer::start(0, logger());
    let mut g = c.benchmark_group("log_append");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    for partitions in [1usize, 6] {
        g.throughput(Throughput::Bytes((batch_16k(0).len() * partitions) as u64));
        let mut logs = Logs::new(partitions);
        g.bench_with_input(BenchmarkId::new("16KB_group_commit_fsync", partitions), &partitions, |b, _| {
            b.iter(|| {
                logs.append_one();
                logs.group_commit(&syncer);
            })
        });
        let mut logs = Logs::new(partitions);
        g.bench_with_input(BenchmarkId::new("16KB_page_cache", partitions), &partitions, |b, _| {
            b.iter(|| {
                logs.append_one();
                for log in &mut logs.logs {
                    drop(log.take_dirty());
                }
            })
        });
    }
    g.finish();
}

/// Three replicas of one partition group in this process; messages are delivered in memory.
struct Group {
    cores: Vec<PartitionCore>,
    applies: Vec<ApplyState>,
    template: Vec<u8>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Group {
    fn new(durability: Durability) -> Group {
        let mut cores = Vec::new();
        let mut dirs = Vec::new();
        for id in 1..=3u64 {
            let dir = tempfile::tempdir().unwrap();
            let settings = GroupSettings {
                node_id: id,
                durability,
                segment_bytes: 32 << 20,
                max_message_bytes: 1 << 20,
                ..GroupSettings::for_tests()
            };
            cores.push(PartitionCore::open(dir.path(), 7, &[1, 2, 3], id == 1, &settings, logger()).unwrap());
            dirs.push(dir);
        }
        let applies = cores.iter().map(|c| ApplyState::new(c.high_watermark(), logger())).collect();
        let mut g = Group { cores, applies, template: batch_16k(0), _dirs: dirs };
        for _ in 0..1000 {
            let busy = g.pump();
            if g.cores[0].raft.is_leader() && !busy {
                return g;
            }
        }
        panic!("no leader elected");
    }

    /// One round: every replica handles its Ready (fsyncing in parallel when asked), applies,
    /// and the messages it produced are stepped into their destinations. Returns whether
    /// anything happened.
    fn pump(&mut self) -> bool {
        let mut outs = Vec::new();
        let mut busy = false;
        for (core, apply) in self.cores.iter_mut().zip(&mut self.applies) {
            let out = core.handle_ready().unwrap();
            for item in core.take_apply_items() {
                apply.apply(&item);
                core.set_applied(apply.applied, apply.high_watermark);
            }
            busy |= out.applied.is_some() || !out.messages.is_empty() || out.write.is_some();
            outs.push(out);
        }
        // Each replica would fsync on its own machine: do the three fsyncs at the same time.
        std::thread::scope(|s| {
            for out in &outs {
                if let Some(job) = &out.write {
                    s.spawn(move || job.run_now().unwrap());
                }
            }
        });
        let mut inbox: Vec<Message> = Vec::new();
        for (core, out) in self.cores.iter_mut().zip(outs) {
            inbox.extend(out.messages);
            if let Some(job) = out.write {
                // The writer sends a leader's held appends once the job is written, and the
                // persisted messages once it is done.
                inbox.extend(job.held);
                inbox.extend(job.persisted);
                core.raft.on_synced(job.number);
            }
        }
        busy |= !inbox.is_empty();
        for m in inbox {
            let to = m.to as usize - 1;
            let _ = self.cores[to].raft.step(m);
        }
        busy
    }

    /// Proposes `n` batches at the leader and drives until every replica has applied them.
    fn propose_and_commit(&mut self, n: usize) {
        for _ in 0..n {
            let data = BytesMut::from(&self.template[..]);
            let h = BatchHeader::parse(&data).unwrap();
            self.cores[0].produce(data, h).unwrap();
        }
        let target = self.cores[0].raft.last_index();
        while self.cores.iter().any(|c| c.confirmed_applied() < target) {
            assert!(self.pump() || self.cores.iter().all(|c| c.confirmed_applied() >= target), "group stalled");
        }
        if target % 512 < n as u64 {
            for c in &mut self.cores {
                c.apply_retention(0, None, Some(0)).unwrap();
            }
        }
    }
}

fn bench_raft(c: &mut Criterion) {
    const WINDOW: usize = 16;
    let mut g = c.benchmark_group("raft");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Bytes((batch_16k(0).len() * WINDOW) as u64));
    for (name, durability) in [("fsync", Durability::Fsync), ("page_cache", Durability::PageCache)] {
        let mut group = Group::new(durability);
        g.bench_function(BenchmarkId::new("3_replicas_propose_to_commit_16x16KB", name), |b| {
            b.iter(|| group.propose_and_commit(WINDOW))
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_protocol, bench_batch, bench_log_append, bench_raft
}
criterion_main!(benches);
