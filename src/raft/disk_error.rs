//! Typed disk errors: what the disk writer (`writer.rs`) and the syncer (`syncer.rs`) report to
//! the groups instead of a string, so that a full disk (ENOSPC) and a failing one (EIO) can be
//! told apart, counted (`disk_errors_total{node,op,kind}`) and answered with a Kafka error code
//! chosen in one place ([`DiskError::kafka_code`]).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use slog::Logger;

use crate::error::code;
use crate::log::LogError;

/// Linux `ENOSPC` and `EDQUOT`: no space left (on the device, in the quota).
const ENOSPC: i32 = 28;
const EDQUOT: i32 = 122;
/// Linux `EIO`: the device failed the operation.
const EIO: i32 = 5;

/// The operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiskOp {
    /// A positional write of entry frames, index records or a state slot (disk writer).
    Write,
    /// A `set_len` (a truncated suffix, a segment cut; disk writer).
    Truncate,
    /// An fsync (syncer, or a sealed segment or directory in the writer).
    Fsync,
    /// An operation of the group's log on its own actor (a segment's files created on a roll, a
    /// state file replaced) or the opening of a log.
    Open,
    /// Not attempted: an earlier write of the same group failed (its poison flag is set).
    Skipped,
    /// Not attempted: the disk writer is shutting down.
    Stopped,
}

impl DiskOp {
    /// The `op` label of `disk_errors_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskOp::Write => "write",
            DiskOp::Truncate => "truncate",
            DiskOp::Fsync => "fsync",
            DiskOp::Open => "open",
            DiskOp::Skipped => "skipped",
            DiskOp::Stopped => "stopped",
        }
    }
}

impl fmt::Display for DiskOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed disk operation on `path`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op} of {} failed: {message}", path.display())]
pub struct DiskError {
    pub op: DiskOp,
    pub path: PathBuf,
    /// The I/O error's kind.
    pub kind: io::ErrorKind,
    /// The raw OS error number, when the OS gave one (tells ENOSPC from EIO).
    pub os_code: Option<i32>,
    message: String,
}

impl DiskError {
    /// From an I/O error of `op` on `path`.
    pub fn io(op: DiskOp, path: &Path, e: &io::Error) -> Self {
        DiskError { op, path: path.to_path_buf(), kind: e.kind(), os_code: e.raw_os_error(), message: e.to_string() }
    }

    /// From a log error of `op` (an I/O error keeps its path and kind; others are `Other`).
    pub fn from_log(op: DiskOp, e: &LogError) -> Self {
        match e {
            LogError::Io { path, source } => DiskError::io(op, path, source),
            other => DiskError {
                op,
                path: PathBuf::new(),
                kind: io::ErrorKind::Other,
                os_code: None,
                message: other.to_string(),
            },
        }
    }

    /// A job skipped because an earlier write of its group failed.
    pub fn skipped() -> Self {
        DiskError::not_attempted(DiskOp::Skipped, "an earlier write of this group failed")
    }

    /// A job refused because the writer (or syncer) has stopped.
    pub fn stopped() -> Self {
        DiskError::not_attempted(DiskOp::Stopped, "the disk writer has stopped")
    }

    fn not_attempted(op: DiskOp, message: &str) -> Self {
        DiskError { op, path: PathBuf::new(), kind: io::ErrorKind::Other, os_code: None, message: message.into() }
    }

    /// True for a full device or quota (ENOSPC, EDQUOT).
    pub fn is_no_space(&self) -> bool {
        matches!(self.os_code, Some(ENOSPC | EDQUOT))
            || matches!(self.kind, io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
    }

    /// The `kind` label of `disk_errors_total`: `no_space`, `io` (EIO), or the I/O error kind.
    pub fn kind_label(&self) -> String {
        if self.is_no_space() {
            "no_space".into()
        } else if self.os_code == Some(EIO) {
            "io".into()
        } else {
            format!("{:?}", self.kind).to_lowercase()
        }
    }

    /// The Kafka error code a client gets for a request this failure stopped. Kafka answers
    /// KAFKA_STORAGE_ERROR for any failure of a log directory — EIO, a full disk, anything the
    /// disk refused — and clients retry it after a metadata refresh. Only a request refused
    /// because the node is shutting down gets NOT_LEADER_OR_FOLLOWER, as during a shutdown.
    pub fn kafka_code(&self) -> i16 {
        match self.op {
            DiskOp::Stopped => code::NOT_LEADER_OR_FOLLOWER,
            _ => code::KAFKA_STORAGE_ERROR,
        }
    }

    /// Logs the failure where it happened and counts it in `disk_errors_total` (not for jobs
    /// that were only skipped or refused). A full disk gets a line that says so and names the
    /// path, so the operator knows which filesystem needs space.
    pub fn report(&self, node: u64, logger: &Logger) {
        if matches!(self.op, DiskOp::Skipped | DiskOp::Stopped) {
            return;
        }
        crate::metrics::registry().disk_error(node, self.op.as_str(), &self.kind_label());
        if self.is_no_space() {
            slog::error!(logger, "disk full: no space left for {} of {}; free space on that filesystem — the affected groups stop and reopen on their own once writes go through again",
                self.op, self.path.display(); "path" => %self.path.display(), "op" => self.op.as_str(), "error" => %self);
        } else {
            slog::error!(logger, "disk {} failed", self.op; "path" => %self.path.display(), "kind" => self.kind_label(),
                "os_error" => self.os_code, "error" => %self);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(op: DiskOp, code: i32) -> DiskError {
        DiskError::io(op, Path::new("/data/groups/1/00000000000000000000.log"), &io::Error::from_raw_os_error(code))
    }

    #[test]
    fn enospc_and_eio_are_told_apart() {
        let full = os(DiskOp::Write, ENOSPC);
        let eio = os(DiskOp::Fsync, EIO);
        assert!(full.is_no_space() && !eio.is_no_space());
        assert_eq!((full.kind_label().as_str(), eio.kind_label().as_str()), ("no_space", "io"));
        assert!(os(DiskOp::Write, EDQUOT).is_no_space());
        assert_eq!(full.kind, io::ErrorKind::StorageFull);
        assert_eq!(eio.os_code, Some(EIO));
        let text = full.to_string();
        assert!(text.starts_with("write of /data/groups/1/00000000000000000000.log failed: "), "{text}");
    }

    #[test]
    fn kafka_codes_follow_kafka() {
        assert_eq!(os(DiskOp::Write, ENOSPC).kafka_code(), code::KAFKA_STORAGE_ERROR, "a full disk");
        assert_eq!(os(DiskOp::Fsync, EIO).kafka_code(), code::KAFKA_STORAGE_ERROR, "EIO");
        assert_eq!(os(DiskOp::Truncate, 13).kafka_code(), code::KAFKA_STORAGE_ERROR, "EACCES");
        assert_eq!(DiskError::skipped().kafka_code(), code::KAFKA_STORAGE_ERROR);
        assert_eq!(DiskError::stopped().kafka_code(), code::NOT_LEADER_OR_FOLLOWER, "shutting down");
    }

    #[test]
    fn log_errors_keep_their_path_and_kind() {
        let e = LogError::io(Path::new("/x/y.log"), io::Error::from_raw_os_error(ENOSPC));
        let d = DiskError::from_log(DiskOp::Open, &e);
        assert_eq!((d.op, d.path.as_path(), d.is_no_space()), (DiskOp::Open, Path::new("/x/y.log"), true));
        let c = DiskError::from_log(DiskOp::Open, &LogError::NonContiguous { expected: 2, got: 5 });
        assert_eq!((c.kind, c.os_code), (io::ErrorKind::Other, None));
        assert!(c.to_string().contains("non-contiguous"), "{c}");
    }

    #[test]
    fn reports_count_real_failures_only() {
        let logger = Logger::root(slog::Discard, slog::o!());
        let node = 7_000_001;
        os(DiskOp::Write, ENOSPC).report(node, &logger);
        os(DiskOp::Write, ENOSPC).report(node, &logger);
        os(DiskOp::Fsync, EIO).report(node, &logger);
        DiskError::skipped().report(node, &logger);
        DiskError::stopped().report(node, &logger);
        let r = crate::metrics::registry();
        assert_eq!(r.disk_errors(node, "write", "no_space"), 2);
        assert_eq!(r.disk_errors(node, "fsync", "io"), 1);
        assert_eq!(r.disk_errors(node, "skipped", "other"), 0);
        assert_eq!(r.disk_errors(node, "stopped", "other"), 0);
    }
}
