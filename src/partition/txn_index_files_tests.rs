//! Tests of the aborted-index files of a partition core (`txn_index_files.rs`): written for the
//! sealed, applied segments; on open, checked against the replay, and rebuilt when missing,
//! damaged or different.

use std::path::Path;

use bytes::BytesMut;

use super::*;
use crate::log::batch::{build_batch, finish_batch, BatchHeader};
use crate::partition::core::tests::settle;
use crate::raft::GroupSettings;

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

/// A core whose segments roll every few entries.
fn open_small(dir: &Path) -> PartitionCore {
    let settings = GroupSettings { segment_bytes: 600, ..GroupSettings::for_tests() };
    let mut c = PartitionCore::open(dir, 7, &[1], false, &settings, logger()).unwrap();
    settle(&mut c);
    c
}

fn txn_batch(pid: i64, seq: i32) -> (BytesMut, BatchHeader) {
    let mut b = build_batch(0, pid, 0, seq, 1000, &[(None, Some(&b"t"[..]))]);
    b[21..23].copy_from_slice(&0x10i16.to_be_bytes());
    finish_batch(&mut b);
    let h = BatchHeader::parse(&b).unwrap();
    (BytesMut::from(&b[..]), h)
}

/// Sixteen transactions of two producers, by four: aborted, committed, aborted, committed.
fn fill(c: &mut PartitionCore) {
    for round in 0..16i32 {
        let pid = i64::from(round % 2);
        let (b, h) = txn_batch(pid, round / 2);
        c.produce(b, h).unwrap();
        c.write_marker(pid, 0, (round / 4) % 2 == 1, 0, 5).unwrap();
        settle(c);
    }
}

/// Runs every due job (and its follow-ups) as the actor would; returns how many ran.
fn drain(c: &mut PartitionCore) -> usize {
    let mut n = 0;
    while let Some(mut job) = c.txn_index_job() {
        loop {
            n += 1;
            assert!(n < 1000, "jobs do not end");
            let r = job.run();
            match c.txn_index_done(&job, r) {
                Some(next) => job = next,
                None => break,
            }
        }
    }
    n
}

fn aborted(c: &PartitionCore) -> AbortedTxns {
    c.raft.sm().producers.aborted.clone()
}

fn spans(c: &PartitionCore) -> Vec<SegmentSpan> {
    c.raft.storage().log().sealed_spans()
}

/// Every sealed segment's file holds exactly the aborts whose marker is in it.
fn assert_files_match(dir: &Path, c: &PartitionCore) {
    let list = aborted(c);
    for s in spans(c) {
        let file = txn_index::load(dir, s.base, s.offset_start, s.offset_end).unwrap();
        let want: Vec<i64> = list.markers_in(s.offset_start, s.offset_end).iter().map(|t| t.last_offset).collect();
        let got: Vec<i64> = file.expect("written").expect("valid").iter().map(|e| e.last_offset).collect();
        assert_eq!(got, want, "segment {}", s.base);
    }
}

#[test]
fn each_sealed_applied_segment_gets_its_file_and_a_reopen_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = open_small(dir.path());
    fill(&mut c);
    let sealed = spans(&c);
    assert!(sealed.len() >= 4, "small segments roll: {}", sealed.len());
    let before = aborted(&c);
    assert_eq!(before.len(), 8);
    assert_eq!(drain(&mut c), sealed.len(), "one store per sealed segment");
    assert_files_match(dir.path(), &c);
    let with_none = sealed.iter().filter(|s| before.markers_in(s.offset_start, s.offset_end).is_empty()).count();
    assert!(with_none > 0 && with_none < sealed.len(), "some files are empty, some not");
    let active = sealed.last().unwrap().last_index + 1;
    assert!(!txn_index::path(dir.path(), active).exists(), "the active segment has none");
    assert_eq!(drain(&mut c), 0, "written once");
    drop(c);
    // Reopened with its files: the same list, and every file checked good (nothing rewritten).
    let mut c = open_small(dir.path());
    assert_eq!(aborted(&c), before);
    assert_eq!(drain(&mut c), 0, "the files agree with the replay");
    drop(c);
    // Without them: the same list from the replay, and the files written again.
    for s in &sealed {
        std::fs::remove_file(txn_index::path(dir.path(), s.base)).unwrap();
    }
    let mut c = open_small(dir.path());
    assert_eq!(aborted(&c), before);
    assert_eq!(drain(&mut c), sealed.len());
    assert_files_match(dir.path(), &c);
}

#[test]
fn damaged_or_different_files_are_refused_and_rebuilt_from_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = open_small(dir.path());
    fill(&mut c);
    drain(&mut c);
    let before = aborted(&c);
    let sealed = spans(&c);
    let path = |s: &SegmentSpan| txn_index::path(dir.path(), s.base);
    let good: Vec<Vec<u8>> = sealed.iter().map(|s| std::fs::read(path(s)).unwrap()).collect();
    let full: Vec<usize> = (0..sealed.len()).filter(|i| good[*i].len() >= 2 * txn_index::ENTRY_LEN).collect();
    assert!(full.len() >= 3, "segments with two aborts or more: {}", full.len());
    drop(c);
    // Truncated (a partial entry), an unknown version, out of order, and valid but different.
    let (t, v, o) = (full[0], full[1], full[2]);
    std::fs::write(path(&sealed[t]), &good[t][..good[t].len() - 3]).unwrap();
    let mut bad = good[v].clone();
    bad[1] = 7;
    std::fs::write(path(&sealed[v]), bad).unwrap();
    let mut swapped = good[o][txn_index::ENTRY_LEN..2 * txn_index::ENTRY_LEN].to_vec();
    swapped.extend_from_slice(&good[o][..txn_index::ENTRY_LEN]);
    swapped.extend_from_slice(&good[o][2 * txn_index::ENTRY_LEN..]);
    std::fs::write(path(&sealed[o]), swapped).unwrap();
    let empty = (0..sealed.len()).find(|i| good[*i].is_empty()).expect("a segment without aborts");
    let other = &good[t][..txn_index::ENTRY_LEN];
    let mut entry = txn_index::decode(other, 0, i64::MAX).unwrap();
    entry[0].last_offset = sealed[empty].offset_start;
    entry[0].first_offset = sealed[empty].offset_start;
    std::fs::write(path(&sealed[empty]), txn_index::encode(&entry)).unwrap();
    let refused = |i: usize| {
        let s = &sealed[i];
        txn_index::load(dir.path(), s.base, s.offset_start, s.offset_end).unwrap().unwrap().is_err()
    };
    assert!(refused(t) && refused(v) && refused(o), "the decoder refuses the damaged files");
    assert!(!refused(empty), "the different one decodes");
    let mut c = open_small(dir.path());
    assert_eq!(aborted(&c), before, "the replay is the list");
    assert_eq!(drain(&mut c), 4, "only the four bad files are rewritten");
    for (i, s) in sealed.iter().enumerate() {
        assert_eq!(std::fs::read(path(s)).unwrap(), good[i], "segment {}", s.base);
    }
}

#[test]
fn a_stale_job_is_redone_and_a_gone_segments_file_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = open_small(dir.path());
    fill(&mut c);
    let first = spans(&c)[0];
    // The cleaner swaps the segment while its job runs: written again afterwards.
    let job = c.txn_index_job().unwrap();
    assert_eq!(job.base(), first.base);
    assert!(c.txn_index_job().is_none(), "one job at a time");
    c.forget_txn_indexes(&[first.base]);
    let r = job.run();
    assert_eq!(c.txn_index_done(&job, r), None);
    let redo = c.txn_index_job().expect("redone");
    assert_eq!(redo.base(), first.base);
    // Retention deletes the segment while this job runs: the file it leaves is removed after.
    let r = redo.run();
    let gone: Vec<SegmentSpan> = spans(&c).into_iter().filter(|s| s.base != first.base).collect();
    let follow = c.txn_files.finished(&redo, r, &gone, &logger());
    assert_eq!(follow, Some(TxnIndexJob::Remove { dir: dir.path().to_path_buf(), base: first.base }));
    assert!(txn_index::path(dir.path(), first.base).exists());
    let r = follow.as_ref().unwrap().run();
    assert_eq!(c.txn_files.finished(follow.as_ref().unwrap(), r, &gone, &logger()), None);
    assert!(!txn_index::path(dir.path(), first.base).exists());
    assert!(!c.txn_files.busy());
}

#[test]
fn the_idle_check_after_each_apply_misses_no_segment() {
    // Jobs looked for after every round, as the actor does after every Applied: the cheap idle
    // check skips the rounds where nothing fell due, yet every segment still gets its file once.
    let dir = tempfile::tempdir().unwrap();
    let mut c = open_small(dir.path());
    let (mut stores, mut skipped) = (0, 0);
    for round in 0..16i32 {
        let pid = i64::from(round % 2);
        let (b, h) = txn_batch(pid, round / 2);
        c.produce(b, h).unwrap();
        c.write_marker(pid, 0, (round / 4) % 2 == 1, 0, 5).unwrap();
        settle(&mut c);
        let (applied, key) = (c.confirmed_applied(), c.raft.storage().log().sealed_key());
        if c.txn_files.idle(key, applied) {
            skipped += 1;
            let due = spans(&c).iter().filter(|s| s.last_index <= applied).count();
            assert!(due <= stores, "idle while segment {} is due", stores);
        }
        stores += drain(&mut c);
    }
    assert_eq!(stores, spans(&c).len(), "one store per sealed segment");
    assert!(skipped > 0, "some rounds sealed no segment and were skipped");
    assert_files_match(dir.path(), &c);
    // A forget (the cleaner's swap) ends the idle state at once.
    let key = c.raft.storage().log().sealed_key();
    assert!(c.txn_files.idle(key, c.confirmed_applied()));
    c.forget_txn_indexes(&[spans(&c)[0].base]);
    assert!(!c.txn_files.idle(key, c.confirmed_applied()));
    assert_eq!(drain(&mut c), 1);
}
