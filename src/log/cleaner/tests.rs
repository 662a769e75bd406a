//! Log-level tests of compaction: a real partition log, cleaned and swapped as the cleaner and
//! the group actor do it, read back through the Kafka view and after reopening.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bytes::Bytes;
use raft::eraftpb::Entry;

use super::rewrite::tests::{compressed, kv_batch};
use super::rewrite::Decoded;
use super::*;
use crate::log::batch::{build_batch, finish_batch};
use crate::log::partition_log::tests::{logger, noop};
use crate::log::segment::file_name;
use crate::log::{LogKind, LogOptions, PartitionLog};

fn opts(segment_bytes: u64) -> LogOptions {
    LogOptions { segment_bytes, index_interval_bytes: 256, kind: LogKind::KafkaBatches }
}

/// A log of `n` one-record batches, key `k{i % keys}`, value `v{i}`, timestamp `1000 + i`,
/// every fifth batch gzip-compressed, with raft no-ops sprinkled in, rolled every 10 entries.
fn build(dir: &Path, n: i64, keys: i64) -> PartitionLog {
    let (mut log, _) = PartitionLog::open(dir, opts(1 << 20), &logger()).unwrap();
    let mut index = 1;
    for i in 0..n {
        if i % 13 == 0 {
            log.append(&[noop(index, 1)]).unwrap();
            index += 1;
        }
        let (k, v) = (format!("k{}", i % keys), format!("v{i}"));
        let mut b = kv_batch(i, &[(Some(k.as_bytes()), Some(v.as_bytes()))], 1000 + i);
        if i % 5 == 0 {
            b = compressed(&b, 1);
        }
        log.append(&[Entry { index, term: 1, data: Bytes::from(b), ..Default::default() }]).unwrap();
        index += 1;
        if index % 10 == 0 {
            log.roll().unwrap();
        }
    }
    log.roll().unwrap();
    log
}

fn job(log: &PartitionLog, now_ms: i64, settings: CompactionSettings) -> CleanJob {
    CleanJob {
        dir: log.dir.clone(),
        segments: log.cleanable_segments(u64::MAX),
        checkpoint: Checkpoint::load(&log.dir).unwrap(),
        producer_last: HashMap::new(),
        txns: Default::default(),
        settings,
        now_ms,
        index_interval_bytes: 256,
    }
}

/// Cleans and installs, as the cleaner thread and the group actor do.
fn run(log: &mut PartitionLog, now_ms: i64, settings: CompactionSettings, buffer: usize) -> CleanOutcome {
    let j = job(log, now_ms, settings);
    let out = clean(&j, buffer, &mut |_| {}).unwrap();
    out.checkpoint.store(&log.dir).unwrap();
    for (base, metas) in &out.cleaned {
        assert!(log.install_cleaned(*base, metas.clone()).unwrap());
    }
    out
}

/// Every record served from offset 0: (offset, key, value).
fn served(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
    let all = log.read(0, usize::MAX, i64::MAX).unwrap();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < all.len() {
        let h = crate::log::batch::BatchHeader::parse(&all[pos..]).unwrap();
        let b = &all[pos..pos + h.total_len()];
        assert_eq!(crate::log::batch::crc32c_of(b), h.crc, "every served batch has a valid crc");
        for r in Decoded::new(b).unwrap().records() {
            let k = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
            let v = (!r.tombstone).then(String::new);
            out.push((r.offset, k, v));
        }
        pos += h.total_len();
    }
    out
}

fn latest(n: i64, keys: i64) -> BTreeMap<String, i64> {
    (0..n).map(|i| (format!("k{}", i % keys), i)).collect()
}

#[test]
fn latest_value_per_key_survives_across_many_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = build(dir.path(), 200, 7);
    assert!(log.segment_count() > 10, "{} segments", log.segment_count());
    let (start, end) = (log.log_start_offset(), log.next_offset());
    let before: Vec<Entry> = log.entries(1, log.last_index() + 1, None).unwrap();
    let out = run(&mut log, 10_000, CompactionSettings::default(), 1 << 20);
    assert!(!out.cleaned.is_empty() && out.records_removed > 150, "{out:?}");
    let got = served(&log);
    let offsets: Vec<i64> = got.iter().map(|r| r.0).collect();
    let want: Vec<i64> =
        latest(200, 7).values().copied().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    assert_eq!(offsets, want, "exactly the latest offset of each key, in offset order");
    // Offsets, raft indexes and terms did not move.
    assert_eq!((log.log_start_offset(), log.next_offset()), (start, end));
    let after: Vec<Entry> = log.entries(1, log.last_index() + 1, None).unwrap();
    assert_eq!(after.len(), before.len());
    for (a, b) in after.iter().zip(&before) {
        assert_eq!((a.index, a.term, a.entry_type), (b.index, b.term, b.entry_type));
    }
    for i in 1..=log.last_index() {
        assert_eq!(
            log.offset_after_index(i),
            {
                let m = before
                    .iter()
                    .take_while(|e| e.index <= i)
                    .filter_map(|e| crate::log::batch::BatchHeader::parse(&e.data).ok())
                    .last();
                m.map_or(0, |h| h.next_offset())
            },
            "high watermark of index {i}"
        );
    }
    // Fetch from an offset whose batch was removed returns the next surviving batch.
    let first_kept = want[0];
    let h = crate::log::batch::BatchHeader::parse(&log.read(0, 1, i64::MAX).unwrap()).unwrap();
    assert_eq!(h.base_offset, first_kept);
    for gap in (0..200).filter(|o| !want.contains(o)) {
        let next = *want.iter().find(|w| **w > gap).unwrap();
        let got = log.read(gap, 1, i64::MAX).unwrap();
        assert_eq!(crate::log::batch::BatchHeader::parse(&got).unwrap().base_offset, next, "fetch at {gap}");
    }
    // The same after reopening (indexes trusted) and after rebuilding every index by scanning.
    drop(log);
    let (log, _) = PartitionLog::open(dir.path(), opts(1 << 20), &logger()).unwrap();
    assert_eq!(served(&log).iter().map(|r| r.0).collect::<Vec<_>>(), want);
    drop(log);
    for de in std::fs::read_dir(dir.path()).unwrap() {
        let p = de.unwrap().path();
        if p.extension().is_some_and(|e| e == "index") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let (log, rep) = PartitionLog::open(dir.path(), opts(1 << 20), &logger()).unwrap();
    assert!(rep.indexes_rebuilt > 10);
    assert_eq!(served(&log).iter().map(|r| r.0).collect::<Vec<_>>(), want);
    assert_eq!((log.log_start_offset(), log.next_offset()), (start, end));
    // A second run finds nothing dirty.
    let j = job(&log, 20_000, CompactionSettings::default());
    let (_, must, ratio, _) = plan(j.segments.clone(), j.checkpoint.cleaned_offset, &j.settings, 20_000);
    assert!(!must && ratio == 0.0, "ratio {ratio}");
}

#[test]
fn a_small_map_cleans_only_what_it_covers_then_the_rest_next_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = build(dir.path(), 120, 40);
    // Room for 9 keys (10 slots of 24 bytes at 0.9).
    let out = run(&mut log, 10_000, CompactionSettings::default(), 10 * offset_map::SLOT_BYTES);
    assert!(out.checkpoint.cleaned_offset > 0 && out.checkpoint.cleaned_offset < 120, "{:?}", out.checkpoint);
    let mut rounds = 1;
    while Checkpoint::load(dir.path()).unwrap().cleaned_offset < 120 {
        run(&mut log, 10_000, CompactionSettings::default(), 10 * offset_map::SLOT_BYTES);
        rounds += 1;
        assert!(rounds < 50, "bounded");
    }
    assert!(rounds > 3);
    let want: Vec<i64> =
        latest(120, 40).values().copied().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    assert_eq!(served(&log).iter().map(|r| r.0).collect::<Vec<_>>(), want);
}

#[test]
fn tombstones_disappear_after_delete_retention() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), opts(1 << 20), &logger()).unwrap();
    let recs: Vec<crate::log::batch::KeyValue<'_>> = vec![(Some(b"a"), Some(b"1")), (Some(b"b"), Some(b"2"))];
    log.append(&[Entry { index: 1, term: 1, data: kv_batch(0, &recs, 100).into(), ..Default::default() }]).unwrap();
    log.roll().unwrap();
    log.append(&[Entry {
        index: 2,
        term: 1,
        data: kv_batch(2, &[(Some(b"a"), None)], 200).into(),
        ..Default::default()
    }])
    .unwrap();
    log.roll().unwrap();
    let s = CompactionSettings { delete_retention_ms: 1000, ..Default::default() };
    run(&mut log, 10_000, s, 1 << 20);
    let keys = |log: &PartitionLog| served(log).into_iter().map(|(o, k, v)| (o, k, v.is_some())).collect::<Vec<_>>();
    assert_eq!(keys(&log), vec![(1, "b".into(), true), (2, "a".into(), false)], "the tombstone stays at first");
    // Dirty again so that a run happens; before the horizon the tombstone stays.
    log.append(&[Entry {
        index: 3,
        term: 1,
        data: kv_batch(3, &[(Some(b"c"), Some(b"3"))], 300).into(),
        ..Default::default()
    }])
    .unwrap();
    log.roll().unwrap();
    run(&mut log, 10_999, s, 1 << 20);
    assert_eq!(keys(&log).len(), 3);
    log.append(&[Entry {
        index: 4,
        term: 1,
        data: kv_batch(4, &[(Some(b"d"), Some(b"4"))], 400).into(),
        ..Default::default()
    }])
    .unwrap();
    log.roll().unwrap();
    run(&mut log, 11_000, s, 1 << 20);
    assert_eq!(keys(&log), vec![(1, "b".into(), true), (3, "c".into(), true), (4, "d".into(), true)]);
    assert_eq!(log.next_offset(), 5);
}

#[test]
fn the_last_batch_of_a_producer_is_kept_empty() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), opts(1 << 20), &logger()).unwrap();
    let mut b1 = build_batch(0, 7, 0, 0, 10, &[(Some(b"k"), Some(b"1"))]);
    finish_batch(&mut b1);
    let mut b2 = build_batch(1, 7, 0, 1, 11, &[(Some(b"k"), Some(b"2"))]);
    finish_batch(&mut b2);
    let b3 = kv_batch(2, &[(Some(b"k"), Some(b"3"))], 12);
    let ents: Vec<Entry> = [b1, b2, b3]
        .into_iter()
        .enumerate()
        .map(|(i, b)| Entry { index: i as u64 + 1, term: 1, data: b.into(), ..Default::default() })
        .collect();
    log.append(&ents).unwrap();
    log.roll().unwrap();
    let mut j = job(&log, 1000, CompactionSettings::default());
    j.producer_last.insert(7, 1);
    let out = clean(&j, 1 << 20, &mut |_| {}).unwrap();
    for (base, metas) in out.cleaned {
        assert!(log.install_cleaned(base, metas).unwrap());
    }
    let e = log.entries(1, 4, None).unwrap();
    assert!(e[0].data.is_empty() && crate::log::compacted_end(&e[0].data, &e[0].context) == Some(1));
    let h = crate::log::batch::BatchHeader::parse(&e[1].data).unwrap();
    assert_eq!((h.producer_id, h.base_sequence, h.record_count, h.base_offset), (7, 1, 0, 1), "empty batch kept");
    assert_eq!(served(&log).iter().map(|r| r.0).collect::<Vec<_>>(), vec![2]);
}

/// The files of segment `base` as (name → bytes).
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|d| d.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect()
}

#[test]
fn a_crash_at_every_step_of_a_swap_recovers_old_or_new() {
    // Reference: the old and the new content of the log.
    let ref_dir = tempfile::tempdir().unwrap();
    let log = build(ref_dir.path(), 40, 3);
    let old = served(&log);
    drop(log);
    let (mut log, _) = PartitionLog::open(ref_dir.path(), opts(1 << 20), &logger()).unwrap();
    run(&mut log, 10_000, CompactionSettings::default(), 1 << 20);
    let new = served(&log);
    assert_ne!(old, new);
    drop(log);
    // Steps of swapping segment `base`, each leaving the files as a crash right after it would.
    for step in 0..=7 {
        let dir = tempfile::tempdir().unwrap();
        let log = build(dir.path(), 40, 3);
        let j = job(&log, 10_000, CompactionSettings::default());
        drop(log);
        let base = j.segments[0].base_index;
        let d = dir.path();
        let name = |ext: &str, suffix: &str| d.join(format!("{}{suffix}", file_name(base, ext)));
        let out = clean(&j, 1 << 20, &mut |_| {}).unwrap();
        assert!(out.cleaned.iter().any(|(b, _)| *b == base));
        // The old segment's aborted index: it goes with the old segment (step 4 deletes it
        // first), never beside the new one.
        std::fs::write(name("txnindex", ""), b"old segment's").unwrap();
        // `clean` ends after step 3 (every .swap written). Undo back to the wanted step.
        let mv = |from: &Path, to: &Path| std::fs::rename(from, to).unwrap();
        match step {
            // 0: a partial .cleaned log only; 1: all .cleaned files; 2: index renamed to .swap.
            0..=2 => {
                for (ext, to_swap) in [("index", step >= 2), ("timeindex", false), ("log", false)] {
                    if !to_swap {
                        mv(&name(ext, ".swap"), &name(ext, ".cleaned"));
                    }
                }
                if step == 0 {
                    std::fs::remove_file(name("index", ".cleaned")).unwrap();
                    std::fs::remove_file(name("timeindex", ".cleaned")).unwrap();
                    let f = std::fs::OpenOptions::new().write(true).open(name("log", ".cleaned")).unwrap();
                    f.set_len(50).unwrap();
                }
            }
            // 3: every .swap in place (the commit point passed).
            3 => {}
            // 4, 5: the index, then the time index renamed over; 6: the log too; 7: installed.
            _ => {
                let exts: &[&str] = match step {
                    4 => &["index"],
                    5 => &["index", "timeindex"],
                    _ => &["index", "timeindex", "log"],
                };
                std::fs::remove_file(name("txnindex", "")).unwrap();
                for ext in exts {
                    mv(&name(ext, ".swap"), &name(ext, ""));
                }
            }
        }
        let (log, rep) = PartitionLog::open(d, opts(1 << 20), &logger()).unwrap();
        let got = served(&log);
        let left: Vec<String> =
            files(d).into_keys().filter(|n| n.ends_with(".swap") || n.ends_with(".cleaned")).collect();
        assert!(left.is_empty(), "step {step}: leftovers {left:?}");
        // Only segment `base` may be new: compare its batches' offsets with old and new.
        let seg_range = (j.segments[0].offset_start, j.segments[0].offset_end);
        let part = |v: &[(i64, String, Option<String>)]| {
            v.iter().filter(|r| r.0 >= seg_range.0 && r.0 < seg_range.1).cloned().collect::<Vec<_>>()
        };
        assert_eq!(name("txnindex", "").exists(), step <= 2, "step {step}: the .txnindex goes with the old segment");
        if step <= 2 {
            assert_eq!(part(&got), part(&old), "step {step}: the old segment");
        } else {
            assert_eq!(part(&got), part(&new), "step {step}: the new segment");
            assert!(rep.stale_files_removed > 0 || step >= 6);
        }
        assert_eq!(log.next_offset(), 40);
    }
}

#[test]
fn a_segment_deleted_meanwhile_is_not_installed() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = build(dir.path(), 60, 5);
    let j = job(&log, 10_000, CompactionSettings::default());
    let out = clean(&j, 1 << 20, &mut |_| {}).unwrap();
    // Retention removes the first segments before the result arrives.
    let n = log.apply_retention(0, None, Some(0), 25).unwrap();
    assert!(n > 0);
    let first = log.first_index();
    for (base, metas) in out.cleaned {
        let installed = log.install_cleaned(base, metas).unwrap();
        assert_eq!(installed, base >= first, "base {base}");
    }
    let left: Vec<String> = files(dir.path()).into_keys().filter(|n| n.ends_with(".swap")).collect();
    assert!(left.is_empty(), "{left:?}");
    drop(log);
    let (log, _) = PartitionLog::open(dir.path(), opts(1 << 20), &logger()).unwrap();
    assert_eq!(log.first_index(), first);
}

#[test]
fn min_compaction_lag_and_max_lag_and_ratio_decide() {
    let seg = |base: u64, start: i64, end: i64, ts: i64| SegmentSummary {
        base_index: base,
        entries: 1,
        size: 100,
        offset_start: start,
        offset_end: end,
        first_batch_ts: Some(ts),
        largest_ts: Some(ts),
    };
    let segs = vec![seg(1, 0, 10, 1000), seg(2, 10, 20, 2000), seg(3, 20, 30, 3000), seg(4, 30, 40, 9000)];
    let s = CompactionSettings { min_cleanable_ratio: 0.5, min_compaction_lag_ms: 5000, ..Default::default() };
    // Clean up to 20: dirty 3 of 4 segments... but segment 4 is younger than the lag.
    let (kept, must, ratio, lag) = plan(segs.clone(), 20, &s, 10_000);
    assert_eq!(kept.len(), 3);
    assert!((ratio - 1.0 / 3.0).abs() < 1e-9);
    assert!(!must);
    assert!((lag - 7.0).abs() < 1e-9, "oldest dirty batch at 3000");
    // max.compaction.lag.ms forces it.
    let s2 = CompactionSettings { max_compaction_lag_ms: Some(6000), ..s };
    assert!(plan(segs.clone(), 20, &s2, 10_000).1);
    // A lower ratio threshold too.
    let s3 = CompactionSettings { min_cleanable_ratio: 0.3, ..s };
    assert!(plan(segs.clone(), 20, &s3, 10_000).1);
    assert_eq!(dirty_ratio(&segs, 0), (0, 400, 1.0));
    assert_eq!(dirty_ratio(&segs, 40), (400, 0, 0.0));
}

#[test]
fn the_cleaner_thread_runs_a_job_stores_the_checkpoint_and_replies() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = build(dir.path(), 60, 4);
    let opts = CleanerOptions { threads: 2, io_max_bytes_per_second: None, dedupe_buffer_size: 1 << 20, nice: 0 };
    let cleaner = Cleaner::start(opts, crate::clock::SystemClock::shared(), logger());
    let (tx, rx) = std::sync::mpsc::channel();
    let j = job(&log, 10_000, CompactionSettings::default());
    let reply = Box::new(move |r: CleanReply| tx.send(r).unwrap());
    assert!(cleaner.send(CleanerMsg::Clean { node: 99, name: "t/0".into(), job: Box::new(j), reply }));
    let out = rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap().unwrap();
    assert_eq!(Checkpoint::load(dir.path()).unwrap(), out.checkpoint, "stored before the reply");
    assert!(crate::metrics::cleaner_bytes_read(99) >= out.bytes_read && out.bytes_read > 0);
    for (base, metas) in out.cleaned {
        assert!(log.install_cleaned(base, metas).unwrap());
    }
    assert_eq!(served(&log).len(), 4);
    // A job on a directory that is gone fails with an error reply, and nothing is left behind.
    let (tx, rx) = std::sync::mpsc::channel();
    let mut j = job(&log, 10_000, CompactionSettings::default());
    j.checkpoint.cleaned_offset = 0;
    j.dir = dir.path().join("gone");
    let reply = Box::new(move |r: CleanReply| tx.send(r).unwrap());
    assert!(cleaner.send(CleanerMsg::Clean { node: 99, name: "t/0".into(), job: Box::new(j), reply }));
    assert!(rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap().is_err());
}

#[test]
fn the_cleaner_threads_run_at_the_configured_niceness() {
    let dir = tempfile::tempdir().unwrap();
    let log = build(dir.path(), 20, 2);
    let base = rustix::process::getpriority_process(None).unwrap();
    let nice = (base + 7).min(19);
    let opts = CleanerOptions { threads: 1, io_max_bytes_per_second: None, dedupe_buffer_size: 1 << 20, nice };
    let cleaner = Cleaner::start(opts, crate::clock::SystemClock::shared(), logger());
    let (tx, rx) = std::sync::mpsc::channel();
    // The reply runs on the cleaner thread: it reads that thread's own niceness.
    let reply = Box::new(move |_: CleanReply| tx.send(rustix::process::getpriority_process(None).unwrap()).unwrap());
    let j = job(&log, 10_000, CompactionSettings::default());
    assert!(cleaner.send(CleanerMsg::Clean { node: 98, name: "t/0".into(), job: Box::new(j), reply }));
    assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap(), nice);
    // Only the cleaner's thread changed: this one keeps its priority.
    assert_eq!(rustix::process::getpriority_process(None).unwrap(), base);
}

/// A transactional batch of one record `key`=`value` from `pid` at `offset`.
fn txn_batch(pid: i64, offset: i64, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut b = build_batch(offset, pid, 0, offset as i32, 10 + offset, &[(Some(key), Some(value))]);
    b[21..23].copy_from_slice(&0x10i16.to_be_bytes());
    finish_batch(&mut b);
    b
}

fn marker_batch(pid: i64, commit: bool, offset: i64) -> Vec<u8> {
    let m = crate::partition::txn::Marker {
        producer_id: pid,
        producer_epoch: 0,
        coordinator_epoch: 0,
        commit,
        offset,
        timestamp: 10 + offset,
    };
    let mut b = m.to_batch();
    crate::log::batch::stamp_base_offset(&mut b, offset);
    b
}

#[test]
fn aborted_records_go_committed_ones_are_compacted_open_ones_and_markers_stay_at_first() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), opts(1 << 20), &logger()).unwrap();
    let batches = [
        kv_batch(0, &[(Some(b"k"), Some(b"old"))], 10), // 0: shadowed only by the committed txn
        kv_batch(1, &[(Some(b"j"), Some(b"keep"))], 11), // 1: shadowed only by the aborted txn
        txn_batch(9, 2, b"j", b"aborted"),              // 2: txn of 9, aborted at 4
        txn_batch(8, 3, b"k", b"committed"),            // 3: txn of 8, committed at 5
        marker_batch(9, false, 4),                      // 4
        marker_batch(8, true, 5),                       // 5
        txn_batch(7, 6, b"j", b"open"),                 // 6: txn of 7, still open
        kv_batch(7, &[(Some(b"x"), Some(b"y"))], 17),   // 7
    ];
    let ents: Vec<Entry> = batches
        .iter()
        .enumerate()
        .map(|(i, b)| Entry { index: i as u64 + 1, term: 1, data: b.clone().into(), ..Default::default() })
        .collect();
    log.append(&ents).unwrap();
    log.roll().unwrap();
    let mut j = job(&log, 1000, CompactionSettings::default());
    j.txns = TxnFacts { aborted: vec![(9, 2, 4)], open: HashMap::from([(7, 6)]), ..Default::default() };
    let out = clean(&j, 1 << 20, &mut |_| {}).unwrap();
    for (base, metas) in out.cleaned {
        assert!(log.install_cleaned(base, metas).unwrap());
    }
    let offsets: Vec<i64> = served(&log).iter().map(|r| r.0).collect();
    assert_eq!(offsets, vec![1, 3, 4, 5, 6, 7], "k@0 shadowed by the commit, the aborted record gone");
    let e = log.entries(4, 8, None).unwrap();
    let kept: Vec<Vec<u8>> = e.iter().map(|e| e.data.to_vec()).collect();
    assert_eq!(kept, batches[3..7], "committed (latest k), markers and the open txn kept byte for byte");
}

/// A marker with the given producer epoch.
fn marker_epoch(pid: i64, epoch: i16, commit: bool, offset: i64) -> Vec<u8> {
    let m = crate::partition::txn::Marker {
        producer_id: pid,
        producer_epoch: epoch,
        coordinator_epoch: 3,
        commit,
        offset,
        timestamp: 10 + offset,
    };
    let mut b = m.to_batch();
    crate::log::batch::stamp_base_offset(&mut b, offset);
    b
}

/// An idempotent (not transactional) batch of one record from `pid`.
fn idem_batch(pid: i64, seq: i32, offset: i64, key: &[u8]) -> Vec<u8> {
    let mut b = build_batch(offset, pid, 0, seq, 10 + offset, &[(Some(key), Some(b"i"))]);
    finish_batch(&mut b);
    b
}

/// Appends each batch as one entry after the log's last.
fn append_batches(log: &mut PartitionLog, batches: &[Vec<u8>]) {
    let first = log.last_index() + 1;
    let ents: Vec<Entry> = batches
        .iter()
        .enumerate()
        .map(|(i, b)| Entry { index: first + i as u64, term: 1, data: b.clone().into(), ..Default::default() })
        .collect();
    log.append(&ents).unwrap();
    log.roll().unwrap();
}

/// The producer table a replay of the whole log rebuilds (what a restart does).
fn replay(log: &PartitionLog) -> crate::partition::producer_state::ProducerStateTable {
    let mut t = crate::partition::producer_state::ProducerStateTable::new();
    for e in log.entries(log.first_index(), log.last_index() + 1, None).unwrap() {
        if !e.data.is_empty() {
            crate::partition::txn::apply_stored(&mut t, &e.data);
        }
    }
    t
}

/// A run planned from the replayed producer table, as the partition actor plans one.
fn run_txn(log: &mut PartitionLog, now_ms: i64, s: CompactionSettings) -> CleanOutcome {
    let t = replay(log);
    let mut j = job(log, now_ms, s);
    j.producer_last = t.last_offsets();
    j.txns = crate::partition::txn::cleaner_facts(&t);
    let out = clean(&j, 1 << 20, &mut |_| {}).unwrap();
    out.checkpoint.store(&log.dir).unwrap();
    for (base, metas) in &out.cleaned {
        assert!(log.install_cleaned(*base, metas.clone()).unwrap());
    }
    out
}

/// The offsets of the control batches (markers) the log serves.
fn marker_offsets(log: &PartitionLog) -> Vec<i64> {
    let all = log.read(0, usize::MAX, i64::MAX).unwrap();
    let (mut pos, mut out) = (0, Vec::new());
    while pos < all.len() {
        let h = crate::log::batch::BatchHeader::parse(&all[pos..]).unwrap();
        if h.is_control() {
            out.push(h.base_offset);
        }
        pos += h.total_len();
    }
    out
}

/// Per producer: id, epoch, last sequence, first offset of its open transaction, the LSO.
type Visible = Vec<(i64, i16, Option<i32>, Option<i64>, i64)>;

/// What a consumer and a producer can tell of a producer table: epochs, last sequences, open
/// transactions, the LSO.
fn visible(t: &crate::partition::producer_state::ProducerStateTable, hw: i64) -> Visible {
    t.iter()
        .map(|(pid, e)| {
            (pid, e.epoch(), e.last_sequence(), e.txn_first_offset(), crate::partition::txn::last_stable_offset(t, hw))
        })
        .collect()
}

#[test]
fn markers_of_emptied_transactions_stay_until_the_delete_horizon_then_go() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), opts(1 << 20), &logger()).unwrap();
    append_batches(
        &mut log,
        &[
            txn_batch(8, 0, b"a", b"committed"), // 0: txn of 8, shadowed by a@4
            txn_batch(9, 1, b"j", b"aborted"),   // 1: txn of 9, aborted
            marker_batch(8, true, 2),            // 2: COMMIT 8
            marker_batch(9, false, 3),           // 3: ABORT 9
            kv_batch(4, &[(Some(b"a"), Some(b"new"))], 14),
            idem_batch(8, 1, 5, b"p8"), // 5: the producers' last batches are not transactional
            idem_batch(9, 2, 6, b"p9"),
            txn_batch(5, 7, b"a", b"x"), // 7: txn of 5 (epoch 0), shadowed
            marker_epoch(5, 1, true, 8), // 8: COMMIT with a bumped epoch: 5's last entry
            kv_batch(9, &[(Some(b"a"), Some(b"newest"))], 19),
        ],
    );
    let before = replay(&log);
    assert_eq!(before.aborted.len(), 1);
    let s = CompactionSettings { delete_retention_ms: 1000, ..Default::default() };
    let out = run_txn(&mut log, 10_000, s);
    assert_eq!(marker_offsets(&log), vec![2, 3, 8], "the transactions' batches were read this run: kept");
    assert!(out.dropped_aborts.is_empty() && out.markers_removed == 0);
    assert_eq!(served(&log).iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 3, 5, 6, 8, 9]);
    // Dirty again: the transactions are empty now, but the horizon has not passed.
    append_batches(&mut log, &[kv_batch(10, &[(Some(b"c"), Some(b"3"))], 20)]);
    let out = run_txn(&mut log, 10_999, s);
    assert_eq!(marker_offsets(&log), vec![2, 3, 8], "before delete.retention.ms");
    assert_eq!(out.markers_removed, 0);
    append_batches(&mut log, &[kv_batch(11, &[(Some(b"d"), Some(b"4"))], 21)]);
    let out = run_txn(&mut log, 11_000, s);
    assert_eq!(marker_offsets(&log), vec![8], "gone after it; 5's last entry is its marker: kept");
    assert_eq!(out.markers_removed, 2);
    let base = log.cleanable_segments(u64::MAX)[0].base_index;
    assert_eq!(out.dropped_aborts, vec![(base, 9, 3)], "the aborted index loses the ABORT removed");
    let e = log.entries(3, 5, None).unwrap();
    assert!(e.iter().all(|e| e.data.is_empty()), "the markers' entries lose their batch");
    assert_eq!(log.next_offset(), 12, "offsets never move");
    // Producer state after a replay of the cleaned log: what producers and consumers can see is
    // the same; the aborted index is the live one minus the removed ABORT.
    let after = replay(&log);
    let mut live = before.clone();
    for (_, pid, off) in &out.dropped_aborts {
        assert!(live.aborted.remove_marker(*pid, *off));
    }
    assert_eq!(visible(&after, 12), visible(&before, 12));
    assert_eq!(after.get(5).map(|e| (e.epoch(), e.coordinator_epoch())), Some((1, 3)));
    assert_eq!(after.aborted, live.aborted);
    assert!(after.aborted.is_empty());
    // Clean once more: nothing else goes.
    append_batches(&mut log, &[kv_batch(12, &[(Some(b"e"), Some(b"5"))], 22)]);
    run_txn(&mut log, 20_000, s);
    assert_eq!(marker_offsets(&log), vec![8]);
}

#[test]
fn a_marker_stays_while_a_batch_of_its_transaction_is_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), opts(1 << 20), &logger()).unwrap();
    append_batches(
        &mut log,
        &[
            txn_batch(8, 0, b"a", b"latest"), // 0: committed, latest value of a: survives
            marker_batch(8, true, 1),
            txn_batch(9, 2, b"j", b"aborted"), // 2: aborted; 9's last batch: kept empty
            marker_batch(9, false, 3),
            txn_batch(7, 4, b"k", b"aborted"), // 4, 5: aborted, removed this run
            txn_batch(7, 5, b"k", b"aborted"),
            marker_batch(7, false, 6),
            idem_batch(7, 6, 7, b"p7"),
            idem_batch(8, 1, 8, b"p8"),
        ],
    );
    let before = replay(&log);
    assert_eq!(before.aborted.len(), 2);
    let s = CompactionSettings { delete_retention_ms: 0, ..Default::default() };
    let out = run_txn(&mut log, 10_000, s);
    assert_eq!(marker_offsets(&log), vec![1, 3, 6], "every transaction had a batch at the start of the run");
    assert_eq!(out.markers_removed, 0);
    let e = log.entries(3, 4, None).unwrap();
    let h = crate::log::batch::BatchHeader::parse(&e[0].data).unwrap();
    assert_eq!((h.base_offset, h.record_count), (2, 0), "9's aborted batch kept empty");
    append_batches(&mut log, &[kv_batch(9, &[(Some(b"c"), Some(b"3"))], 20)]);
    let out = run_txn(&mut log, 20_000, s);
    assert_eq!(marker_offsets(&log), vec![1, 3], "the ABORT of 7 went; a's record and 9's empty batch keep theirs");
    assert_eq!(out.markers_removed, 1);
    let after = replay(&log);
    assert_eq!(visible(&after, 10), visible(&before, 10));
    let want: Vec<_> = before.aborted.iter().filter(|t| t.producer_id == 9).copied().collect();
    assert_eq!(after.aborted.iter().copied().collect::<Vec<_>>(), want, "9's abort still indexed");
    assert_eq!(served(&log).iter().map(|r| (r.0, r.1.clone())).collect::<Vec<_>>()[0], (0, "a".to_string()));
}
