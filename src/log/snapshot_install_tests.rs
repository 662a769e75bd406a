//! Tests of `snapshot_install`: a received snapshot's segments are checked, installed, and an
//! install cut at any step by a crash is completed (or, before its marker, undone) on open.

use super::*;
use crate::log::partition_log::tests::{fill, logger, opts};
use crate::log::snapshot_descriptor::SnapshotDescriptor;

const SEG: u64 = 300; // two entries per segment

/// A leader log: entries 1..=9 in segments [1,2] [3,4] [5,6] [7,8] [9]; the snapshot at 6.
fn leader(dir: &Path) -> (PartitionLog, SnapshotDescriptor) {
    let mut log = PartitionLog::open(dir, opts(SEG), &logger()).unwrap().0;
    fill(&mut log, 1, 9, 2);
    log.sync().unwrap();
    let files = log.snapshot_manifest(6).expect("6 ends a sealed segment");
    let (start_index, prev_term, start_offset) = log.data_start();
    let desc = SnapshotDescriptor {
        version: 1,
        next_offset: log.offset_after_index(6),
        floor: 0,
        log_start_offset: log.log_start_offset(),
        start_index,
        prev_term,
        start_offset,
        files,
    };
    (log, desc)
}

/// A follower with an older, different log (entries 1..=3 of term 1), and the leader's files
/// copied into its staging directory as the receiver would.
fn follower(dir: &Path, leader_dir: &Path, desc: &SnapshotDescriptor) -> PartitionLog {
    let mut log = PartitionLog::open(dir, opts(SEG), &logger()).unwrap().0;
    fill(&mut log, 1, 3, 1);
    log.sync().unwrap();
    let staging = staging_dir(dir, 6);
    std::fs::create_dir_all(&staging).unwrap();
    for f in &desc.files {
        std::fs::copy(leader_dir.join(&f.name), staging.join(&f.name)).unwrap();
    }
    log
}

fn same_as_leader(log: &PartitionLog, leader: &PartitionLog) {
    assert_eq!((log.first_index(), log.raft_first_index(), log.last_index()), (1, 7, 6));
    assert_eq!(log.term(6), Some(2));
    assert_eq!(log.next_offset(), leader.offset_after_index(6));
    let a = log.read(0, usize::MAX, i64::MAX).unwrap();
    let b = leader.read(0, usize::MAX, log.next_offset()).unwrap();
    assert_eq!(a, b, "serves the leader's bytes");
    assert_eq!(log.entries(1, 7, None).unwrap(), leader.entries(1, 7, None).unwrap());
}

#[test]
fn prepared_segments_replace_the_log_and_survive_reopen() {
    let (ld, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (leader, desc) = leader(ld.path());
    assert_eq!(desc.files.len(), 3);
    let mut log = follower(fd.path(), ld.path(), &desc);
    let mut batches = 0;
    let p = prepare(fd.path(), &desc, 6, 2, 256, &mut |h| {
        assert_eq!(h.len(), BATCH_HEADER_LEN);
        batches += 1;
    })
    .unwrap();
    assert_eq!(batches, 6);
    // The old segments' aborted-transactions indexes go with them (one for every base the new
    // log has, too): none is left beside the installed segments.
    let txn_files = || -> Vec<String> {
        let names =
            std::fs::read_dir(fd.path()).unwrap().map(|d| d.unwrap().file_name().to_string_lossy().into_owned());
        names.filter(|n| n.ends_with(".txnindex")).collect()
    };
    for b in p.segments.iter().map(|s| s.0).chain([1]) {
        crate::log::txn_index::store(fd.path(), b, &[]).unwrap();
    }
    assert!(!txn_files().is_empty());
    log.install_snapshot(&p).unwrap();
    assert_eq!(txn_files(), Vec::<String>::new());
    same_as_leader(&log, &leader);
    assert!(!staging_dir(fd.path(), 6).exists());
    assert!(!fd.path().join(MARKER).exists());
    // The log goes on after the snapshot.
    fill(&mut log, 7, 1, 3);
    drop(log);
    let log = PartitionLog::open(fd.path(), opts(SEG), &logger()).unwrap().0;
    assert_eq!((log.raft_first_index(), log.last_index()), (7, 7));
    assert_eq!(log.read(0, usize::MAX, leader.offset_after_index(6)).unwrap(), leader.read(0, usize::MAX, 12).unwrap());
}

#[test]
fn prepare_refuses_a_damaged_or_short_file() {
    let (ld, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_leader, desc) = leader(ld.path());
    let _log = follower(fd.path(), ld.path(), &desc);
    let p = staging_dir(fd.path(), 6).join(&desc.files[1].name);
    let mut raw = std::fs::read(&p).unwrap();
    raw[60] ^= 0x40;
    std::fs::write(&p, &raw).unwrap();
    let e = prepare(fd.path(), &desc, 6, 2, 256, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("crc"), "{e}");
    raw[60] ^= 0x40;
    raw.pop();
    std::fs::write(&p, &raw).unwrap();
    assert!(prepare(fd.path(), &desc, 6, 2, 256, &mut |_| {}).is_err(), "length differs from the manifest");
    raw.push(0);
    // A snapshot term that is not the last file's.
    std::fs::copy(ld.path().join(&desc.files[1].name), &p).unwrap();
    assert!(prepare(fd.path(), &desc, 6, 3, 256, &mut |_| {}).is_err());
    assert!(prepare(fd.path(), &desc, 6, 2, 256, &mut |_| {}).is_ok());
}

#[test]
fn a_crash_at_any_step_leaves_the_old_log_or_the_new_one() {
    let mut steps_seen = 0;
    for budget in 0..64 {
        let (ld, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (leader, desc) = leader(ld.path());
        let log = follower(fd.path(), ld.path(), &desc);
        let p = prepare(fd.path(), &desc, 6, 2, 256, &mut |_| {}).unwrap();
        drop(log);
        let m = Marker {
            index: 6,
            term: 2,
            start: LogStart { start_index: 1, prev_term: 0, start_offset: 0, reset_pending: false },
            floor: 0,
            bases: p.segments.iter().map(|s| s.0).collect(),
        };
        state_file::store(&fd.path().join(MARKER), MARKER_MAGIC, &m.encode()).unwrap();
        let done = finish_steps(fd.path(), &m, budget).unwrap();
        let log = PartitionLog::open(fd.path(), opts(SEG), &logger()).unwrap().0;
        same_as_leader(&log, &leader);
        assert!(!fd.path().join(MARKER).exists() && !staging_dir(fd.path(), 6).exists());
        if done {
            steps_seen = budget;
            break;
        }
    }
    assert!(steps_seen > 10, "every step was cut once: {steps_seen}");
    // Before the marker: the old log stays and the staging directory goes.
    let (ld, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_leader, desc) = leader(ld.path());
    let log = follower(fd.path(), ld.path(), &desc);
    prepare(fd.path(), &desc, 6, 2, 256, &mut |_| {}).unwrap();
    let before = log.read(0, usize::MAX, i64::MAX).unwrap();
    drop(log);
    let log = PartitionLog::open(fd.path(), opts(SEG), &logger()).unwrap().0;
    assert_eq!((log.first_index(), log.raft_first_index(), log.last_index()), (1, 1, 3));
    assert_eq!(log.read(0, usize::MAX, i64::MAX).unwrap(), before);
    assert!(!staging_dir(fd.path(), 6).exists());
}

#[test]
fn marker_round_trip() {
    let m = Marker {
        index: 9,
        term: 3,
        start: LogStart { start_index: 4, prev_term: 2, start_offset: 77, reset_pending: false },
        floor: 80,
        bases: vec![4, 7],
    };
    let p = Path::new("x");
    assert_eq!(Marker::decode(p, &m.encode()).unwrap(), m);
    assert!(Marker::decode(p, &m.encode()[..40]).is_err());
    assert!(is_staging_name("snapshot-12.tmp") && !is_staging_name("snapshot-x.tmp"));
}

#[test]
fn a_snapshot_of_transactional_data_rebuilds_the_same_producer_table() {
    use crate::log::batch::{build_batch, finish_batch, stamp_base_offset};
    use crate::partition::producer_state::ProducerStateTable;
    use crate::partition::txn::{apply_stored, Marker};
    use raft::eraftpb::Entry;
    let (ld, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut log = PartitionLog::open(ld.path(), opts(1 << 20), &logger()).unwrap().0;
    let txn = |pid: i64, offset: i64| {
        let mut b = build_batch(offset, pid, 0, 0, 1000, &[(None, Some(&b"v"[..]))]);
        b[21..23].copy_from_slice(&0x10i16.to_be_bytes());
        finish_batch(&mut b);
        b
    };
    let m = Marker { producer_id: 5, producer_epoch: 0, coordinator_epoch: 3, commit: false, offset: 1, timestamp: 9 };
    let mut abort = m.to_batch();
    stamp_base_offset(&mut abort, 1);
    let batches = [txn(5, 0), abort, txn(6, 2)];
    let ents: Vec<Entry> = batches
        .iter()
        .enumerate()
        .map(|(i, b)| Entry { index: i as u64 + 1, term: 1, data: b.clone().into(), ..Default::default() })
        .collect();
    log.append(&ents).unwrap();
    log.roll().unwrap();
    log.sync().unwrap();
    let mut want = ProducerStateTable::new();
    batches.iter().for_each(|b| apply_stored(&mut want, b));
    assert_eq!((want.aborted.len(), want.first_open_offset()), (1, Some(2)));
    let (start_index, prev_term, start_offset) = log.data_start();
    let desc = SnapshotDescriptor {
        version: 1,
        next_offset: log.offset_after_index(3),
        floor: 0,
        log_start_offset: log.log_start_offset(),
        start_index,
        prev_term,
        start_offset,
        files: log.snapshot_manifest(3).expect("3 ends a sealed segment"),
    };
    let staging = staging_dir(fd.path(), 3);
    std::fs::create_dir_all(&staging).unwrap();
    for f in &desc.files {
        std::fs::copy(ld.path().join(&f.name), staging.join(&f.name)).unwrap();
    }
    let mut got = ProducerStateTable::new();
    prepare(fd.path(), &desc, 3, 1, 256, &mut |b| apply_stored(&mut got, b)).unwrap();
    assert_eq!(got, want, "the marker is read whole: the aborted index and open transactions match");
}
