//! Unit tests of the fd budget (`file_cache.rs`): bounded, least recently used first, never a
//! file in use, with unsynced writes or retired; a reopened file reads the same bytes; a
//! replaced file is never reopened under its old name.

use std::os::unix::fs::FileExt;

use super::*;

fn files(cache: &Arc<FileCache>, dir: &Path, n: usize, pins: bool) -> Vec<Arc<DiskFile>> {
    (0..n).map(|i| DiskFile::managed_in(cache, &dir.join(format!("f{i}")), Opening::Create, pins).unwrap()).collect()
}

fn open_count(fs: &[Arc<DiskFile>]) -> usize {
    fs.iter().filter(|f| f.is_open()).count()
}

#[test]
fn the_cache_is_bounded_and_closes_the_least_recently_used() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(3);
    let fs = files(&cache, dir.path(), 5, false);
    assert_eq!(open_count(&fs), 3);
    assert_eq!(cache.figures().open, 3);
    // f0 and f1 were the oldest: closed.
    assert_eq!(fs.iter().map(|f| f.is_open()).collect::<Vec<_>>(), [false, false, true, true, true]);
    // Touch f2, then reopen f0: f3 is now the least recently used and goes.
    fs[2].metadata().unwrap();
    fs[0].metadata().unwrap();
    assert_eq!(fs.iter().map(|f| f.is_open()).collect::<Vec<_>>(), [true, false, true, false, true]);
    let fig = cache.figures();
    assert_eq!((fig.open, fig.misses, fig.evictions), (3, 1, 3));
    assert!(fig.hits >= 1);
}

#[test]
fn a_reopened_file_reads_the_bytes_written_before_it_was_closed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(1);
    let a = DiskFile::managed_in(&cache, &dir.path().join("a"), Opening::Create, false).unwrap();
    a.write_all_at(b"hello, world", 0).unwrap();
    let b = DiskFile::managed_in(&cache, &dir.path().join("b"), Opening::Create, false).unwrap();
    assert!(!a.is_open() && b.is_open());
    let mut buf = [0u8; 12];
    a.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"hello, world");
    assert!(a.is_open() && !b.is_open());
}

#[test]
fn a_file_with_unsynced_writes_stays_open_until_its_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(1);
    let log = DiskFile::managed_in(&cache, &dir.path().join("log"), Opening::Create, true).unwrap();
    log.write_all_at(b"entry", 0).unwrap();
    let others = files(&cache, dir.path(), 3, false);
    assert!(log.is_open(), "a file with an fsync owed is never closed");
    log.sync_data().unwrap();
    others[0].metadata().unwrap();
    assert!(!log.is_open(), "once fsynced, it is closed like any other");
    // Its bytes are there.
    let mut buf = [0u8; 5];
    log.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"entry");
}

#[test]
fn a_file_in_use_is_not_closed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(1);
    let a = DiskFile::managed_in(&cache, &dir.path().join("a"), Opening::Create, false).unwrap();
    a.read_with(|_f| {
        // Another file opens while `a` is read: `a` cannot be closed under the reader.
        let b = DiskFile::managed_in(&cache, &dir.path().join("b"), Opening::Create, false).unwrap();
        assert!(b.is_open());
        assert!(a.is_open());
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_replaced_or_removed_file_is_never_reopened_under_its_old_name() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(1);
    let p = dir.path().join("seg.log");
    let a = DiskFile::managed_in(&cache, &p, Opening::Create, false).unwrap();
    a.write_all_at(b"old", 0).unwrap();
    let _b = DiskFile::managed_in(&cache, &dir.path().join("b"), Opening::Create, false).unwrap();
    assert!(!a.is_open());
    // Another file takes the name (a cleaner's swap, a reset).
    let tmp = dir.path().join("new");
    std::fs::write(&tmp, b"new").unwrap();
    std::fs::rename(&tmp, &p).unwrap();
    let mut buf = [0u8; 3];
    let e = a.read_exact_at(&mut buf, 0).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    // Removed: the same.
    std::fs::remove_file(&p).unwrap();
    assert_eq!(a.read_exact_at(&mut buf, 0).unwrap_err().kind(), io::ErrorKind::NotFound);
}

#[test]
fn a_retired_file_keeps_its_descriptor_while_open_and_is_never_reopened_once_closed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(1);
    let p = dir.path().join("a");
    let a = DiskFile::managed_in(&cache, &p, Opening::Create, false).unwrap();
    a.retire();
    std::fs::remove_file(&p).unwrap();
    let _others = files(&cache, dir.path(), 2, false);
    assert!(a.is_open(), "retired while open: queued writes land in the orphaned inode");
    a.write_all_at(b"late", 0).unwrap();
    let mut buf = [0u8; 4];
    a.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"late");

    let q = dir.path().join("q");
    let b = DiskFile::managed_in(&cache, &q, Opening::Create, false).unwrap();
    let _c = DiskFile::managed_in(&cache, &dir.path().join("c"), Opening::Create, false).unwrap();
    assert!(!b.is_open());
    b.retire();
    std::fs::write(&q, b"someone else's").unwrap();
    // Writes and fsyncs of a retired, closed file are dropped; reads fail; nothing reopens it.
    b.write_all_at(b"x", 0).unwrap();
    b.sync_data().unwrap();
    assert!(b.read_exact_at(&mut buf, 0).is_err());
    assert!(!b.is_open());
    assert_eq!(std::fs::read(&q).unwrap(), b"someone else's");
}

#[test]
fn a_dropped_handle_leaves_the_cache_and_unmanaged_handles_stay_open() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(2);
    let fs = files(&cache, dir.path(), 2, false);
    assert_eq!(cache.figures().open, 2);
    drop(fs);
    assert_eq!(cache.figures().open, 0);
    let f = std::fs::File::create(dir.path().join("u")).unwrap();
    let u = DiskFile::new(f, dir.path().join("u"));
    u.write_all_at(b"u", 0).unwrap();
    assert!(u.is_open());
    let mut b = [0u8; 1];
    u.read_with(|f| f.read_exact_at(&mut b, 0)).unwrap_err();
}

#[test]
fn raising_the_fd_limit_reaches_the_hard_limit() {
    let (soft, hard) = raise_fd_limit().unwrap();
    assert_eq!(soft, hard);
    assert!(open_fds().is_some_and(|n| n > 0));
}

#[test]
fn out_of_descriptors_the_cache_fsyncs_and_closes_files_with_an_fsync_owed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(2);
    let logs: Vec<_> = (0..4)
        .map(|i| DiskFile::managed_in(&cache, &dir.path().join(format!("l{i}")), Opening::Create, true).unwrap())
        .collect();
    for (i, l) in logs.iter().enumerate() {
        l.write_all_at(format!("entry {i}").as_bytes(), 0).unwrap();
    }
    assert_eq!(open_count(&logs), 4, "owed an fsync: over the capacity rather than closed");
    cache.relieve();
    assert!(open_count(&logs) < 4, "the relief closed some after their fsync");
    for (i, l) in logs.iter().enumerate() {
        let mut b = vec![0u8; 7];
        l.read_exact_at(&mut b, 0).unwrap();
        assert_eq!(b, format!("entry {i}").as_bytes());
    }
}

#[test]
fn sends_hold_at_most_a_quarter_of_the_budget_and_give_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(8);
    let fs = files(&cache, dir.path(), 4, false);
    fs[0].write_all_at(b"abc", 0).unwrap();
    let a = fs[0].hold_for_send().unwrap().expect("within the share");
    let b = fs[1].hold_for_send().unwrap().expect("within the share");
    assert!(fs[2].hold_for_send().unwrap().is_none(), "a quarter of 8 is 2");
    let mut buf = [0u8; 3];
    a.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"abc");
    drop(b);
    let c = fs[3].hold_for_send().unwrap().expect("a slot was given back");
    drop((a, c));
    assert!(fs[2].hold_for_send().unwrap().is_some());
    // Unmanaged files have no budget.
    let path = dir.path().join("plain");
    let plain = DiskFile::new(File::create(&path).unwrap(), path);
    let held: Vec<_> = (0..5).map(|_| plain.hold_for_send().unwrap().expect("no budget")).collect();
    assert_eq!(held.len(), 5);
}
