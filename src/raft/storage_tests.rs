//! Tests of `raft::storage`: raft-rs's storage tests over the partition log, snapshots, the
//! persisted raft state, and a `RawNode` driven through it.

use super::*;
use raft::{Config, RawNode};
use std::os::unix::fs::FileExt as _;

fn logger() -> Logger {
    Logger::root(slog::Discard, slog::o!())
}

/// One entry per segment, so that retention can compact at any index like MemStorage.
fn opts() -> LogOptions {
    LogOptions { segment_bytes: 1, index_interval_bytes: 4096, kind: LogKind::KafkaBatches }
}

fn new_entry(index: u64, term: u64) -> Entry {
    Entry { term, index, ..Default::default() }
}

fn ctx() -> GetEntriesContext {
    GetEntriesContext::empty(false)
}

fn size_of(e: &Entry) -> u64 {
    u64::from(e.compute_size())
}

#[test]
fn term_and_vote_survive_reopen_and_a_torn_slot_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
        s.initialize_voters(&[1, 2, 3]).unwrap();
        let hs = HardState { term: 4, vote: 2, commit: 0, ..Default::default() };
        s.set_hard_state(&hs, false).unwrap();
        assert!(s.has_dirty_state());
        let f = s.take_dirty_state().expect("vote file to sync");
        f.sync_all().unwrap();
        assert!(!s.has_dirty_state());
        let hs = HardState { term: 5, vote: 3, commit: 0, ..Default::default() };
        s.set_hard_state(&hs, false).unwrap();
    }
    let (s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
    let hs = s.initial_state().unwrap().hard_state;
    assert_eq!((hs.term, hs.vote), (5, 3));
    drop(s);
    // Tear the newer slot (sequence 2, slot 0): the older state comes back.
    let f = std::fs::OpenOptions::new().write(true).open(dir.path().join(VOTE_FILE)).unwrap();
    f.write_all_at(&[0xff; 8], 8).unwrap();
    let (s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
    let hs = s.initial_state().unwrap().hard_state;
    assert_eq!((hs.term, hs.vote), (4, 2));
}

fn store_err(e: StorageError) -> raft::Error {
    raft::Error::Store(e)
}

/// Storage holding `ents` (MemStorage's tests start at index 3: the log is reset to 2 first).
fn storage_with(dir: &Path, ents: &[Entry]) -> GroupStorage {
    let (mut s, _) = GroupStorage::open(dir, opts(), &logger()).unwrap();
    let first = ents[0].index;
    s.log_mut().reset_to(first - 1, first - 1, 0).unwrap();
    s.log_mut().append(ents).unwrap();
    s
}

/// Entries `lo..hi`, entry `i` having term `i`.
fn run(lo: u64, hi: u64) -> Vec<Entry> {
    (lo..hi).map(|i| new_entry(i, i)).collect()
}

fn three() -> Vec<Entry> {
    run(3, 6)
}

#[test]
fn storage_term() {
    let dir = tempfile::tempdir().unwrap();
    let s = storage_with(dir.path(), &three());
    // Unlike MemStorage, the term of first_index - 1 is remembered.
    let tests = [
        (1, Err(store_err(StorageError::Compacted))),
        (2, Ok(2)),
        (3, Ok(3)),
        (4, Ok(4)),
        (5, Ok(5)),
        (6, Err(store_err(StorageError::Unavailable))),
    ];
    for (idx, want) in tests {
        assert_eq!(s.term(idx), want, "term({idx})");
    }
}

#[test]
fn storage_entries() {
    let dir = tempfile::tempdir().unwrap();
    let s = storage_with(dir.path(), &run(3, 7));
    let max = u64::MAX;
    let sz = |i: u64| size_of(&new_entry(i, i));
    let tests = vec![
        (2, 6, max, Err(store_err(StorageError::Compacted))),
        (3, 4, max, Ok(run(3, 4))),
        (4, 5, max, Ok(run(4, 5))),
        (4, 6, max, Ok(run(4, 6))),
        (4, 7, max, Ok(run(4, 7))),
        // even if maxsize is zero, the first entry should be returned
        (4, 7, 0, Ok(run(4, 5))),
        (4, 7, sz(4) + sz(5), Ok(run(4, 6))),
        (4, 7, sz(4) + sz(5) + sz(6) / 2, Ok(run(4, 6))),
        (4, 7, sz(4) + sz(5) + sz(6) - 1, Ok(run(4, 6))),
        (4, 7, sz(4) + sz(5) + sz(6), Ok(run(4, 7))),
        // Beyond the log: an error instead of MemStorage's panic.
        (4, 8, max, Err(store_err(StorageError::Unavailable))),
        (4, 4, max, Ok(vec![])),
    ];
    for (i, (lo, hi, maxsize, want)) in tests.into_iter().enumerate() {
        assert_eq!(s.entries(lo, hi, maxsize, ctx()), want, "#{i}");
    }
    // None means no limit.
    assert_eq!(s.entries(3, 7, None, ctx()).unwrap(), run(3, 7));
}

#[test]
fn storage_first_last_index_and_compact() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = storage_with(dir.path(), &three());
    assert_eq!((s.first_index(), s.last_index()), (Ok(3), Ok(5)));
    s.log_mut().append(&[new_entry(6, 5)]).unwrap();
    assert_eq!(s.last_index(), Ok(6));
    // MemStorage's compact(idx) is retention of every segment up to idx - 1 (one entry each).
    // (compact index, first index, its term, entries left)
    for (idx, windex, wterm, wlen) in [(2, 3, 3, 3), (3, 3, 3, 3), (4, 4, 4, 2), (5, 5, 5, 1)] {
        let dir = tempfile::tempdir().unwrap();
        let mut s = storage_with(dir.path(), &three());
        s.log_mut().apply_retention(0, None, Some(0), idx - 1).unwrap();
        let index = s.first_index().unwrap();
        assert_eq!(index, windex, "compact {idx}");
        let term = s.entries(index, index + 1, 1, ctx()).unwrap()[0].term;
        assert_eq!(term, wterm, "compact {idx}");
        let last = s.last_index().unwrap();
        assert_eq!(s.entries(index, last + 1, 100, ctx()).unwrap().len(), wlen);
    }
}

#[test]
fn storage_create_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = storage_with(dir.path(), &three());
    let cs = ConfState { voters: vec![1, 2, 3], ..Default::default() };
    s.set_conf_state(&cs).unwrap();
    let snap = |s: &GroupStorage, req| {
        s.snapshot(req, 0).map(|sn| {
            let m = sn.get_metadata();
            (m.index, m.term, m.get_conf_state().voters.clone(), sn.data.to_vec())
        })
    };
    let zero = 0i64.to_be_bytes().to_vec();
    assert_eq!(snap(&s, 0), Ok((2, 2, vec![1, 2, 3], zero.clone())));
    assert_eq!(snap(&s, 4), Ok((4, 4, vec![1, 2, 3], zero.clone())));
    let unavailable = Err(store_err(StorageError::SnapshotTemporarilyUnavailable));
    assert_eq!(snap(&s, 6), unavailable);
    s.log_mut().apply_retention(0, None, Some(0), 4).unwrap();
    assert_eq!(snap(&s, 0), Ok((4, 4, vec![1, 2, 3], zero)));
    // A brand-new log has nothing to snapshot (raft rejects index 0).
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
    assert_eq!(snap(&s, 0), unavailable);
}

#[test]
fn snapshot_data_is_the_next_offset() {
    let dir = tempfile::tempdir().unwrap();
    let o = LogOptions { segment_bytes: 300, ..opts() };
    let (mut s, _) = GroupStorage::open(dir.path(), o.clone(), &logger()).unwrap();
    s.log_mut().reset_to(9, 2, 500).unwrap();
    let b = crate::log::offsets::make_batch(500, 7, 0, 100);
    let e = Entry { index: 10, term: 2, data: b.into(), ..Default::default() };
    s.log_mut().append(&[e, new_entry(11, 2)]).unwrap();
    let data = |s: &GroupStorage, req| s.snapshot(req, 0).unwrap().data.to_vec();
    assert_eq!(data(&s, 0), 500i64.to_be_bytes());
    assert_eq!(data(&s, 10), 507i64.to_be_bytes());
    // A DeleteRecords floor past the snapshot's offset travels with it.
    s.log_mut().set_records_start(503).unwrap();
    assert_eq!(data(&s, 0), [500i64.to_be_bytes(), 503i64.to_be_bytes()].concat());
    assert_eq!(data(&s, 10), 507i64.to_be_bytes());
    // The __meta group's opaque log: no offset.
    let dir = tempfile::tempdir().unwrap();
    let opaque = LogOptions { kind: LogKind::Opaque, ..o };
    let (mut s, _) = GroupStorage::open(dir.path(), opaque, &logger()).unwrap();
    s.log_mut().append(&[new_entry(1, 1)]).unwrap();
    assert!(data(&s, 1).is_empty());
}

#[test]
fn storage_append() {
    let e = |pairs: &[(u64, u64)]| -> Vec<Entry> { pairs.iter().map(|&(i, t)| new_entry(i, t)).collect() };
    let tests = vec![
        (three(), Some(three())),
        (e(&[(3, 3), (4, 6), (5, 6)]), Some(e(&[(3, 3), (4, 6), (5, 6)]))),
        (e(&[(3, 3), (4, 4), (5, 5), (6, 5)]), Some(e(&[(3, 3), (4, 4), (5, 5), (6, 5)]))),
        // overwriting compacted raft logs is an error
        (e(&[(2, 3), (3, 3), (4, 5)]), None),
        // truncate the existing entries and append
        (e(&[(4, 5)]), Some(e(&[(3, 3), (4, 5)]))),
        // direct append
        (e(&[(6, 6)]), Some(run(3, 7))),
        // a gap is an error
        (e(&[(7, 6)]), None),
    ];
    for (i, (ents, want)) in tests.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = storage_with(dir.path(), &three());
        let res = s.log_mut().append(&ents);
        match want {
            Some(want) => {
                res.unwrap();
                let last = s.last_index().unwrap();
                assert_eq!(s.entries(3, last + 1, None, ctx()).unwrap(), want, "#{i}");
            }
            None => {
                assert!(res.is_err(), "#{i}");
                let now = s.entries(3, 6, None, ctx()).unwrap();
                assert_eq!(now, three(), "#{i} unchanged");
            }
        }
    }
}

#[test]
fn storage_apply_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
    let mut meta = SnapshotMetadata { index: 4, term: 4, ..Default::default() };
    meta.mut_conf_state().voters = vec![1, 2, 3];
    s.apply_snapshot(&meta, 40).unwrap();
    assert_eq!((s.first_index(), s.last_index(), s.term(4)), (Ok(5), Ok(4), Ok(4)));
    assert_eq!((s.hard_state().commit, s.hard_state().term), (4, 4));
    assert_eq!(s.conf_state().voters, vec![1, 2, 3]);
    assert_eq!(s.log().next_offset(), 40);
    // Out of date.
    meta.index = 3;
    meta.term = 3;
    assert!(s.apply_snapshot(&meta, 0).is_err());
    drop(s);
    let (s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
    let st = s.initial_state().unwrap();
    assert_eq!((st.hard_state.commit, st.hard_state.term), (4, 4));
    assert_eq!((s.first_index(), s.term(4)), (Ok(5), Ok(4)));
}

#[test]
fn hard_state_persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
    assert!(s.is_new());
    assert!(!s.initial_state().unwrap().initialized());
    s.initialize_voters(&[1, 2, 3]).unwrap();
    assert!(!s.is_new());
    assert!(s.initialize_voters(&[1]).is_err());
    s.log_mut().append(&[new_entry(1, 2), new_entry(2, 2), new_entry(3, 2)]).unwrap();
    let mut hs = HardState { term: 2, vote: 1, commit: 1, ..Default::default() };
    s.set_hard_state(&hs, true).unwrap();
    // Commit-only change: not fsynced, but written.
    hs.commit = 3;
    s.set_hard_state(&hs, false).unwrap();
    s.log_mut().sync().unwrap();
    drop(s);
    let (s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
    assert!(!s.is_new());
    let st = s.initial_state().unwrap();
    let h = &st.hard_state;
    assert_eq!((h.term, h.vote, h.commit), (2, 1, 3));
    assert_eq!(st.conf_state.voters, vec![1, 2, 3]);
    assert_eq!(s.hard_state(), &st.hard_state);
}

#[test]
fn term_or_vote_change_is_always_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
    let hs = HardState { term: 5, vote: 2, ..Default::default() };
    s.set_hard_state(&hs, false).unwrap();
    // A damaged commit file is ignored.
    std::fs::write(dir.path().join(COMMIT_FILE), b"garbage").unwrap();
    drop(s);
    let (s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
    assert_eq!((s.hard_state().term, s.hard_state().vote), (5, 2));
}

#[test]
fn commit_is_clamped_into_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
    s.initialize_voters(&[1]).unwrap();
    s.log_mut().append(&[new_entry(1, 1), new_entry(2, 1), new_entry(3, 1)]).unwrap();
    let hs = HardState { term: 1, commit: 3, ..Default::default() };
    s.set_hard_state(&hs, true).unwrap();
    s.log_mut().sync().unwrap();
    drop(s);
    // Torn tail: the last entry's segment loses its frame.
    let last_seg = dir.path().join(format!("{:020}.log", 3));
    let len = std::fs::metadata(&last_seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&last_seg).unwrap();
    f.set_len(len - 1).unwrap();
    drop(f);
    let (s, rep) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
    assert!(rep.truncated_bytes > 0);
    assert_eq!(s.last_index(), Ok(2));
    assert_eq!(s.initial_state().unwrap().hard_state.commit, 2);
}

#[test]
fn corrupt_state_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
    s.initialize_voters(&[1]).unwrap();
    drop(s);
    let p = dir.path().join(STATE_FILE);
    let mut raw = std::fs::read(&p).unwrap();
    let n = raw.len();
    raw[n - 6] ^= 0xFF;
    std::fs::write(&p, &raw).unwrap();
    let err = GroupStorage::open(dir.path(), opts(), &logger()).err().unwrap();
    assert!(matches!(err, LogError::CorruptState { .. }), "{err}");
    std::fs::write(&p, b"CRS1").unwrap();
    assert!(GroupStorage::open(dir.path(), opts(), &logger()).is_err());
}

/// Runs ready/advance until quiet, persisting like a broker would; returns applied entries.
fn drive(node: &mut RawNode<GroupStorage>) -> usize {
    let mut applied = 0;
    while node.has_ready() {
        let mut rd = node.ready();
        applied += rd.take_committed_entries().len();
        let store = node.mut_store();
        store.log_mut().append(rd.entries()).unwrap();
        if let Some(hs) = rd.hs() {
            store.set_hard_state(hs, true).unwrap();
        }
        let (files, _) = store.log_mut().take_dirty();
        files.iter().for_each(|f| f.sync_data().unwrap());
        let mut light = node.advance(rd);
        if let Some(c) = light.commit_index() {
            let mut hs = node.store().hard_state().clone();
            hs.commit = c;
            node.mut_store().set_hard_state(&hs, false).unwrap();
        }
        applied += light.take_committed_entries().len();
        node.advance_apply();
    }
    applied
}

/// A single-voter raft group elected and fed proposals through GroupStorage, then restarted.
#[test]
fn raw_node_commits_through_group_storage() {
    let dir = tempfile::tempdir().unwrap();
    let o = LogOptions { segment_bytes: 300, ..opts() };
    let cfg = Config { id: 1, ..Default::default() };
    let (mut s, _) = GroupStorage::open(dir.path(), o.clone(), &logger()).unwrap();
    s.initialize_voters(&[1]).unwrap();
    let mut node = RawNode::new(&cfg, s, &logger()).unwrap();
    node.campaign().unwrap();
    assert_eq!(drive(&mut node), 1, "the leader's no-op");
    for i in 0..3 {
        let batch = crate::log::offsets::make_batch(i * 2, 2, 100 + i, 30);
        node.propose(vec![], batch).unwrap();
        drive(&mut node);
    }
    let log = node.store().log();
    assert_eq!(log.last_index(), 4);
    assert_eq!(node.store().hard_state().commit, 4);
    assert_eq!(log.offset_after_index(4), 6);
    assert_eq!(log.offset_for_timestamp(101), Some((2, 101)));
    drop(node);
    let (s, rep) = GroupStorage::open(dir.path(), o, &logger()).unwrap();
    assert_eq!(rep.truncated_bytes, 0);
    assert_eq!(s.initial_state().unwrap().hard_state.commit, 4);
    let mut node = RawNode::new(&cfg, s, &logger()).unwrap();
    node.campaign().unwrap();
    drive(&mut node);
    assert_eq!(node.raft.term, 2);
    assert_eq!(node.store().log().last_index(), 5);
    assert_eq!(node.store().hard_state().commit, 5);
    assert_eq!(node.store().log().read(0, usize::MAX, 6).unwrap().len(), 3 * 91);
}

#[test]
fn a_raft_start_above_the_data_start_hides_entries_and_the_snapshot_names_the_segments() {
    let dir = tempfile::tempdir().unwrap();
    let o = LogOptions { segment_bytes: 300, index_interval_bytes: 256, kind: LogKind::KafkaBatches };
    let (mut s, _) = GroupStorage::open(dir.path(), o.clone(), &logger()).unwrap();
    s.initialize_voters(&[1, 2]).unwrap();
    crate::log::partition_log::tests::fill(s.log_mut(), 1, 7, 2); // [1,2] [3,4] [5,6] [7]
    s.log_mut().sync().unwrap();
    let legacy = s.snapshot(0, 0);
    assert!(legacy.is_err(), "nothing below the data start: no snapshot at index 0");
    assert!(s.log_mut().set_raft_start(5).unwrap());
    assert_eq!((s.first_index(), s.last_index()), (Ok(5), Ok(7)));
    assert_eq!(s.entries(4, 6, None, ctx()), Err(store_err(StorageError::Compacted)));
    assert_eq!(s.entries(5, 6, None, ctx()).unwrap().len(), 1);
    assert_eq!((s.term(4), s.term(3)), (Ok(2), Err(store_err(StorageError::Compacted))));
    // The Kafka view still holds everything.
    assert_eq!(s.log().first_index(), 1);
    let snap = s.snapshot(0, 0).unwrap();
    let m = snap.get_metadata();
    assert_eq!((m.index, m.term, m.get_conf_state().voters.clone()), (4, 2, vec![1, 2]));
    let d = SnapshotDescriptor::decode(&snap.data).unwrap();
    assert_eq!((d.next_offset, d.start_index, d.start_offset, d.floor), (8, 1, 0, 0));
    let bases: Vec<u64> = d.files.iter().map(|f| f.base_index).collect();
    assert_eq!(bases, vec![1, 3]);
    assert_eq!((d.files[1].last_index, d.files[1].last_term, d.files[1].entries), (4, 2, 2));
    // A later requested index is a metadata-only snapshot, as before.
    let d6 = SnapshotDescriptor::decode(&s.snapshot(6, 0).unwrap().data).unwrap();
    assert!(!d6.has_manifest());
    drop(s);
    // Reopened: the raft start holds, and a commit persisted before it is raised to it.
    let (s, _) = GroupStorage::open(dir.path(), o, &logger()).unwrap();
    assert_eq!(s.first_index(), Ok(5));
    assert_eq!(s.initial_state().unwrap().hard_state.commit, 4);
}

#[test]
fn conf_index_and_learners_survive_reopen_and_old_files_read_as_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
    s.initialize_voters(&[1, 2, 3]).unwrap();
    assert_eq!(s.conf_index(), 0);
    // A file written without the field (as before conf changes existed) decodes with 0.
    let hs = HardState::default();
    let old = encode_state(&hs, s.conf_state(), 0);
    assert_eq!(decode_state(dir.path(), &old).unwrap().1, 0);
    let joint = ConfState { voters: vec![2, 3, 4], voters_outgoing: vec![1, 2, 3], ..Default::default() };
    s.set_conf_state_at(&joint, 17).unwrap();
    drop(s);
    let (s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
    assert_eq!(s.conf_index(), 17);
    assert_eq!(s.initial_state().unwrap().conf_state, joint, "no unknown field left in the state raft-rs sees");
    // A new replica that joins starts from the leader's conf state and its index.
    let dir2 = tempfile::tempdir().unwrap();
    let (mut n, _) = GroupStorage::open(dir2.path(), opts(), &logger()).unwrap();
    let cs = ConfState { voters: vec![1, 2, 3], learners: vec![4], ..Default::default() };
    n.initialize_conf(&cs, 9).unwrap();
    assert!(n.initialize_conf(&cs, 9).is_err());
    drop(n);
    let (n, _) = GroupStorage::open(dir2.path(), opts(), &logger()).unwrap();
    assert_eq!((n.conf_state().learners.clone(), n.conf_index()), (vec![4], 9));
}
