//! The fd budget: a process-wide, bounded LRU of the open segment and Raft state files
//! (RocksDB's `max_open_files` table cache is the model), and [`DiskFile`], the handle every log
//! and queued write names a file by.
//!
//! A managed [`DiskFile`] is a path plus the identity (device, inode) of the file it was made
//! for; its descriptor is opened on first use and may be closed by the cache when it is the least
//! recently used of more than `storage.max-open-files` open files. The next use opens it again and
//! checks that the path still names the same inode: a deleted, renamed or replaced file is never
//! reopened under its old name (the use fails with an I/O error, which the partition answers as
//! KAFKA_STORAGE_ERROR). The cache never closes a file
//! - that is in use at that moment (a read, a write or an fsync holds its descriptor),
//! - that was written and whose fsync is owed (`.log` files and `raft-vote`: written but not yet
//!   fsynced) — the derived files (`.index`, `.timeindex`, `raft-commit`), which are rebuilt on
//!   open or never fsynced by design, may be closed with dirty pages, which stay in the page
//!   cache (a later fsync through a new descriptor flushes the same inode),
//! - that was retired (its segment was deleted or replaced) while open: queued writes may still
//!   land in the orphaned inode; it closes when its last handle drops. A retired file that is no
//!   longer open turns writes and fsyncs into no-ops (their bytes would be unlinked anyway) and
//!   reads into errors.
//!
//! A zero-copy Fetch holds the descriptors of the segments it sends until they are sent
//! ([`DiskFile::hold_for_send`]); such held descriptors may be a quarter of the capacity at most,
//! process-wide, and a Fetch that finds the share taken reads its bytes instead.
//!
//! Out of descriptors, an open makes room (idle files closed, then idle files owed an fsync
//! fsynced and closed) and tries again ([`FileCache::relieve`]).
//!
//! Unmanaged handles ([`DiskFile::new`]: directories, tests, tools) stay open for their lifetime.
//! The process's soft `RLIMIT_NOFILE` is raised to its hard limit at start ([`raise_fd_limit`]).

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::{IoContext, Result};
use crate::protocol::chain::HeldFile;

/// Capacity when nothing configured it (tools, tests): large enough to never matter there.
const DEFAULT_CAPACITY: usize = 4096;

/// Zero-copy sends may hold a 1/SEND_SHARE of the capacity in descriptors.
const SEND_SHARE: usize = 4;

/// One descriptor held by a send: given back when dropped.
struct SendSlot(Arc<AtomicUsize>);

impl Drop for SendSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The bounded LRU of open managed files.
#[derive(Debug)]
pub struct FileCache {
    capacity: AtomicUsize,
    /// Descriptors held by zero-copy sends ([`DiskFile::hold_for_send`]).
    sending: Arc<AtomicUsize>,
    lru: Mutex<Lru>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

#[derive(Debug, Default)]
struct Lru {
    tick: u64,
    /// id → its tick in `order`.
    ticks: HashMap<u64, u64>,
    /// tick → (id, file), oldest first.
    order: BTreeMap<u64, (u64, Weak<DiskFile>)>,
}

impl Lru {
    fn touch(&mut self, id: u64, file: &Weak<DiskFile>) {
        self.tick += 1;
        if let Some(old) = self.ticks.insert(id, self.tick) {
            if let Some(e) = self.order.remove(&old) {
                self.order.insert(self.tick, e);
                return;
            }
        }
        self.order.insert(self.tick, (id, file.clone()));
    }

    fn forget(&mut self, id: u64) {
        if let Some(t) = self.ticks.remove(&id) {
            self.order.remove(&t);
        }
    }
}

/// Figures of the cache (metrics, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheFigures {
    pub capacity: usize,
    pub open: usize,
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
}

impl FileCache {
    pub fn new(capacity: usize) -> Arc<FileCache> {
        Arc::new(FileCache {
            capacity: AtomicUsize::new(capacity.max(1)),
            sending: Arc::new(AtomicUsize::new(0)),
            lru: Mutex::new(Lru::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        })
    }

    /// The process's cache (the fd limit is per process, so is the budget).
    pub fn global() -> &'static Arc<FileCache> {
        static CACHE: OnceLock<Arc<FileCache>> = OnceLock::new();
        CACHE.get_or_init(|| FileCache::new(DEFAULT_CAPACITY))
    }

    /// Sets the capacity (`storage.max-open-files`) and closes what is over it.
    pub fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity.max(1), Ordering::Relaxed);
        self.evict_over(capacity.max(1), None);
    }

    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    pub fn figures(&self) -> CacheFigures {
        CacheFigures {
            capacity: self.capacity(),
            open: self.lock().ticks.len(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.lru.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn touch(&self, id: u64, file: &Weak<DiskFile>) {
        self.lock().touch(id, file);
    }

    fn forget(&self, id: u64) {
        self.lock().forget(id);
    }

    /// A file was opened: it becomes the most recent, and the least recent closable files are
    /// closed while more than the capacity are open.
    fn admit(&self, id: u64, file: &Weak<DiskFile>) {
        self.touch(id, file);
        self.evict_over(self.capacity(), Some(id));
    }

    /// Closes least recently used files until at most `limit` are open (files the cache may
    /// not close are skipped and stay; so is `keep`, the file just opened).
    fn evict_over(&self, limit: usize, keep: Option<u64>) {
        let mut closed: Vec<Arc<File>> = Vec::new();
        let mut dropped: Vec<Arc<DiskFile>> = Vec::new();
        {
            let mut lru = self.lock();
            let mut over = lru.ticks.len().saturating_sub(limit);
            let mut gone = Vec::new();
            for (tick, (id, weak)) in lru.order.iter() {
                if over == 0 {
                    break;
                }
                if Some(*id) == keep {
                    continue;
                }
                let Some(f) = weak.upgrade() else {
                    gone.push((*tick, *id));
                    over -= 1;
                    continue;
                };
                // try_lock: the lock order elsewhere is file then cache; never wait here.
                if let Ok(mut s) = f.slot.try_lock() {
                    if s.closable(f.pins_dirty) {
                        if let Some(fd) = s.file.take() {
                            closed.push(fd);
                        }
                        gone.push((*tick, *id));
                        over -= 1;
                    }
                }
                dropped.push(f);
            }
            for (tick, id) in gone {
                lru.order.remove(&tick);
                lru.ticks.remove(&id);
            }
        }
        self.evictions.fetch_add(closed.len() as u64, Ordering::Relaxed);
        // Closed and dropped outside the lock (a last handle's drop takes it).
        drop(closed);
        drop(dropped);
    }
}

#[derive(Debug, Default)]
struct Slot {
    file: Option<Arc<File>>,
    /// Writes begun / writes covered by a finished fsync (managed files that pin when dirty).
    written: u64,
    synced: u64,
    retired: bool,
}

impl Slot {
    fn closable(&self, pins_dirty: bool) -> bool {
        let owed = pins_dirty && self.written != self.synced;
        !self.retired && !owed && self.file.as_ref().is_some_and(|f| Arc::strong_count(f) == 1)
    }
}

/// An open file and its path (for errors), shared by the log and queued ops. Managed handles
/// (see the module docs) open and close their descriptor through the [`FileCache`].
#[derive(Debug)]
pub struct DiskFile {
    pub path: PathBuf,
    slot: Mutex<Slot>,
    /// Managed: the cache, this file's id in it, and the (device, inode) it was made for.
    cache: Option<(Arc<FileCache>, u64, (u64, u64))>,
    /// Unsynced writes keep the descriptor open (`.log`, `raft-vote`).
    pins_dirty: bool,
    me: Weak<DiskFile>,
}

/// How a managed file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// Create it if missing (never truncated here).
    Create,
    /// It must exist.
    Existing,
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23) | Some(24))
}

impl DiskFile {
    /// An unmanaged handle: `file` stays open as long as the handle lives.
    pub fn new(file: File, path: PathBuf) -> Arc<DiskFile> {
        let slot = Slot { file: Some(Arc::new(file)), ..Default::default() };
        Arc::new_cyclic(|me| DiskFile { path, slot: Mutex::new(slot), cache: None, pins_dirty: false, me: me.clone() })
    }

    /// Opens a directory for fsync.
    pub fn dir(path: &Path) -> Result<Arc<DiskFile>> {
        let f = File::open(path).ctx(path)?;
        Ok(DiskFile::new(f, path.to_path_buf()))
    }

    /// A managed handle of `path` in the process's cache (read + write, never `O_APPEND`).
    /// `pins_dirty`: unsynced writes keep it open (see the module docs).
    pub fn managed(path: &Path, how: Opening, pins_dirty: bool) -> Result<Arc<DiskFile>> {
        DiskFile::managed_in(FileCache::global(), path, how, pins_dirty)
    }

    /// [`Self::managed`] in a given cache.
    pub fn managed_in(cache: &Arc<FileCache>, path: &Path, how: Opening, pins_dirty: bool) -> Result<Arc<DiskFile>> {
        let f = open_retrying(cache, path, how == Opening::Create).ctx(path)?;
        let m = f.metadata().ctx(path)?;
        let id = next_id();
        let slot = Slot { file: Some(Arc::new(f)), ..Default::default() };
        let d = Arc::new_cyclic(|me| DiskFile {
            path: path.to_path_buf(),
            slot: Mutex::new(slot),
            cache: Some((cache.clone(), id, (m.dev(), m.ino()))),
            pins_dirty,
            me: me.clone(),
        });
        cache.admit(id, &d.me);
        Ok(d)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open descriptor, opened again if the cache closed it. `None`: the file was retired
    /// and is closed.
    fn descriptor(&self) -> io::Result<Option<Arc<File>>> {
        let Some((cache, id, identity)) = &self.cache else {
            return Ok(self.lock().file.clone());
        };
        let mut s = self.lock();
        if let Some(f) = &s.file {
            let f = f.clone();
            let retired = s.retired;
            drop(s);
            cache.hits.fetch_add(1, Ordering::Relaxed);
            if !retired {
                cache.touch(*id, &self.me);
            }
            return Ok(Some(f));
        }
        if s.retired {
            return Ok(None);
        }
        cache.misses.fetch_add(1, Ordering::Relaxed);
        let f = open_retrying(cache, &self.path, false)?;
        let m = f.metadata()?;
        if (m.dev(), m.ino()) != *identity {
            return Err(io::Error::new(io::ErrorKind::NotFound, "the file was replaced since it was opened"));
        }
        let f = Arc::new(f);
        s.file = Some(f.clone());
        drop(s);
        cache.admit(*id, &self.me);
        Ok(Some(f))
    }

    /// The descriptor held for a zero-copy send (`protocol::chain`): kept open until the send
    /// is done, even if the cache closes its own reference meanwhile, so it counts against a
    /// share of the budget, a quarter of its capacity, process-wide. `None` when that share is
    /// used up: the caller reads the bytes instead. Unmanaged files have no budget.
    pub(crate) fn hold_for_send(&self) -> io::Result<Option<Arc<HeldFile>>> {
        let Some((cache, _, _)) = &self.cache else {
            return Ok(Some(HeldFile::new(self.for_read()?)));
        };
        let share = (cache.capacity() / SEND_SHARE).max(1);
        let taken = cache.sending.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < share).then_some(n + 1));
        if taken.is_err() {
            return Ok(None);
        }
        let release = SendSlot(cache.sending.clone());
        let file = self.for_read()?;
        Ok(Some(HeldFile::with_release(file, Box::new(release))))
    }

    /// The descriptor for a read: a retired, closed file cannot be read.
    fn for_read(&self) -> io::Result<Arc<File>> {
        self.descriptor()?.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the file was removed"))
    }

    /// Runs `op` on the descriptor as a write: a write that pins counts as unsynced until an
    /// fsync begun after it finishes. A retired, closed file takes the write as a no-op.
    pub fn write_with<T: Default>(&self, op: impl FnOnce(&File) -> io::Result<T>) -> io::Result<T> {
        let Some(f) = self.descriptor()? else { return Ok(T::default()) };
        // Counted once done, while `f` is still held (so the cache cannot close it between):
        // an fsync that read the count before this write finished leaves it pinned.
        let r = op(&f);
        if self.pins_dirty {
            self.lock().written += 1;
        }
        r
    }

    /// Runs `op` on the descriptor as a read.
    pub fn read_with<T>(&self, op: impl FnOnce(&File) -> io::Result<T>) -> io::Result<T> {
        op(&*self.for_read()?)
    }

    /// fsyncs the file's data (a no-op for a retired, closed file).
    pub fn sync_data(&self) -> io::Result<()> {
        let Some(f) = self.descriptor()? else { return Ok(()) };
        let seen = self.lock().written;
        f.sync_data()?;
        let mut s = self.lock();
        s.synced = s.synced.max(seen);
        Ok(())
    }

    /// fsyncs data and metadata.
    pub fn sync_all(&self) -> io::Result<()> {
        let Some(f) = self.descriptor()? else { return Ok(()) };
        let seen = self.lock().written;
        f.sync_all()?;
        let mut s = self.lock();
        s.synced = s.synced.max(seen);
        Ok(())
    }

    pub fn set_len(&self, len: u64) -> io::Result<()> {
        self.write_with(|f| f.set_len(len))
    }

    pub fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.write_with(|f| f.write_all_at(buf, pos))
    }

    pub fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.read_with(|f| f.read_exact_at(buf, pos))
    }

    pub fn metadata(&self) -> io::Result<std::fs::Metadata> {
        self.read_with(|f| f.metadata())
    }

    /// The segment of this file was deleted or replaced: it is never opened again. If it is
    /// open, it stays open (queued writes land in the orphaned inode) until its last handle
    /// drops.
    pub fn retire(&self) {
        self.lock().retired = true;
        if let Some((cache, id, _)) = &self.cache {
            cache.forget(*id);
        }
    }

    /// Whether the descriptor is open now (tests).
    pub fn is_open(&self) -> bool {
        self.lock().file.is_some()
    }
}

impl Drop for DiskFile {
    fn drop(&mut self) {
        if let Some((cache, id, _)) = &self.cache {
            cache.forget(*id);
        }
    }
}

/// Opens `path` read + write. When the process is out of descriptors, the cache makes room
/// ([`FileCache::relieve`]) and it tries again, up to 3 times.
fn open_retrying(cache: &FileCache, path: &Path, create: bool) -> io::Result<File> {
    let open = || OpenOptions::new().read(true).write(true).create(create).truncate(false).open(path);
    let mut tries = 0;
    loop {
        match open() {
            Err(e) if is_fd_exhaustion(&e) && tries < 3 => {
                tries += 1;
                cache.relieve();
            }
            r => return r,
        }
    }
}

impl FileCache {
    /// The process is out of descriptors: closes the idle files down to half the capacity, then
    /// fsyncs and closes idle files that have an fsync owed (on this thread: the exception,
    /// never the steady state), up to half the capacity of them.
    fn relieve(&self) {
        self.evict_over(self.capacity() / 2, None);
        let open: Vec<Arc<DiskFile>> = self.lock().order.values().filter_map(|(_, w)| w.upgrade()).collect();
        let mut closed = 0;
        for f in &open {
            if closed >= self.capacity().div_ceil(2) {
                break;
            }
            if f.sync_and_close() {
                closed += 1;
            }
        }
        self.evictions.fetch_add(closed as u64, Ordering::Relaxed);
        drop(open);
    }
}

impl DiskFile {
    /// Closes the descriptor if it is idle, after an fsync if one is owed; false if it is in
    /// use, retired, busy or its fsync failed (then it stays open, and owed).
    fn sync_and_close(&self) -> bool {
        let Some((cache, id, _)) = &self.cache else { return false };
        let Ok(mut s) = self.slot.try_lock() else { return false };
        if s.retired || s.file.as_ref().is_none_or(|f| Arc::strong_count(f) != 1) {
            return false;
        }
        if s.written != s.synced {
            let seen = s.written;
            if s.file.as_ref().is_some_and(|f| f.sync_data().is_err()) {
                return false;
            }
            s.synced = seen;
        }
        let f = s.file.take();
        drop(s);
        drop(f);
        cache.forget(*id);
        true
    }

    /// Cuts a file just created (or a stale one of the same name) to empty: no data, so no
    /// fsync is owed for it (the directory fsync makes the creation durable).
    pub fn truncate_new(&self) -> io::Result<()> {
        self.read_with(|f| f.set_len(0))
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns (soft, hard) after.
pub fn raise_fd_limit() -> io::Result<(u64, u64)> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    if l.current != l.maximum {
        l.current = l.maximum;
        setrlimit(Resource::Nofile, l).map_err(io::Error::from)?;
    }
    let l = getrlimit(Resource::Nofile);
    Ok((l.current.unwrap_or(u64::MAX), l.maximum.unwrap_or(u64::MAX)))
}

/// Descriptors kept aside from the budget and the connections: listeners, peer links, the
/// event loops, directories being fsynced, the cleaner's and snapshot transfers' own files.
pub const RESERVED_FDS: u64 = 256;

/// At node start: raises the soft `RLIMIT_NOFILE` to the hard limit, sets the process's budget
/// (`configured`, or half the soft limit when 0) and warns when the limit is below the budget
/// plus `connections` plus [`RESERVED_FDS`]. Returns the budget.
pub fn apply_budget(configured: u64, connections: u64, logger: &slog::Logger) -> usize {
    let (soft, hard) = match raise_fd_limit() {
        Ok(l) => l,
        Err(e) => {
            slog::warn!(logger, "cannot raise the open files limit"; "error" => %e);
            let l = rustix::process::getrlimit(rustix::process::Resource::Nofile);
            (l.current.unwrap_or(u64::MAX), l.maximum.unwrap_or(u64::MAX))
        }
    };
    let budget = if configured == 0 { (soft / 2).max(64) } else { configured };
    let budget = usize::try_from(budget).unwrap_or(usize::MAX);
    FileCache::global().set_capacity(budget);
    let need = (budget as u64).saturating_add(connections).saturating_add(RESERVED_FDS);
    if soft < need {
        slog::warn!(logger, "the open files limit is below what the fd budget and the connections may need";
            "limit" => soft, "hard_limit" => hard, "storage.max_open_files" => budget,
            "kafka.max_connections" => connections, "reserved" => RESERVED_FDS, "need" => need);
    } else {
        slog::info!(logger, "fd budget"; "limit" => soft, "storage.max_open_files" => budget);
    }
    budget
}

/// The number of descriptors the process has open now (`/proc/self/fd`), if readable.
pub fn open_fds() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count().saturating_sub(1))
}

#[cfg(test)]
#[path = "file_cache_tests.rs"]
mod tests;
