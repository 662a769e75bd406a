//! Metrics: process-wide counters, gauges and latency/interval summaries, rendered as Prometheus
//! text by [`render`] (served at `/metrics` by the admin API, `crate::admin`). Every series carries the node id, so
//! several in-process nodes can share one registry in tests. Writers are actors on their own
//! events (role changes, frames, fsync rounds, requests); the hot paths only touch an atomic or
//! hold one short mutex for a map lookup and an O(1) HDR histogram record.
//!
//! Files: `samples` (HDR histograms and quantiles), `exposition` (figures → `prometheus` metric
//! families → text), `cleaner` (the log cleaner's figures), `snapshots` (snapshot transfers), `leaders` (preferred leader transfers), `request_pool` (the request memory pool), `disk_queue` (the disk writer's queue), `pollers` (groups per poller thread), `files` (the fd budget), `throttle` (replication throttle bytes). The series are listed in
//! `docs/metrics.md`.

mod cleaner;
mod disk_queue;
mod exposition;
mod files;
mod leaders;
mod pollers;
mod request_pool;
mod samples;
mod snapshots;
mod throttle;
mod transactions;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub use cleaner::{cleaner_bytes_read, cleaner_forget, cleaner_partition, cleaner_run};
pub use disk_queue::set_disk_queue;
use exposition::Family;
pub use leaders::{balancer_figures, balancer_round, leader_transfer_requested, leader_transfers_requested};
pub use pollers::{hibernation, set_liveness, set_pollers};
pub use request_pool::set_request_pool;
pub use samples::{Buckets, Samples, WINDOW};
pub use snapshots::{snapshot_chunk_sent, snapshot_figures, snapshot_installed, SnapshotFigures};
pub use throttle::set_throttle;

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Committed entries that could not be decoded on apply (bad length or CRC). Must stay 0.
static DESERIALIZATION_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Counts one undecodable committed entry.
pub fn count_deserialization_failure() {
    DESERIALIZATION_FAILURES.fetch_add(1, Ordering::Relaxed);
}

/// `deserialization_failures_total`.
pub fn deserialization_failures_total() -> u64 {
    DESERIALIZATION_FAILURES.load(Ordering::Relaxed)
}

/// A hex + ASCII dump of the first `max` bytes, for error logs.
pub fn hex_dump(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes[..bytes.len().min(max)].chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = chunk.iter().map(|b| if b.is_ascii_graphic() { *b as char } else { '.' }).collect();
        out.push_str(&format!("{:04x}  {:<48} {}\n", i * 16, hex.join(" "), ascii));
    }
    out
}

/// Per-group Raft figures.
#[derive(Debug, Default, Clone)]
pub struct GroupFigures {
    pub role: String,
    pub term: u64,
    /// The leader this replica knows of (0: none known).
    pub leader: u64,
    pub elections_started: u64,
    pub elections_won: u64,
    pub leader_changes: u64,
    pub apply_lag: u64,
    /// Partitions only: high watermark minus last stable offset (open transactions' records).
    pub lso_lag: Option<i64>,
    /// `__meta` only: the last snapshot (index, bytes) and the log's size on disk after it.
    pub snapshot: Option<(u64, u64, u64)>,
}

/// Upper bounds (seconds) of `chronik_heartbeat_gap_seconds`: fine around the default 150 ms
/// heartbeat interval (+- 10 ms is the stability tests' bound), coarse beyond.
pub const HEARTBEAT_GAP_BOUNDS: [f64; 14] =
    [0.05, 0.1, 0.14, 0.16, 0.17, 0.18, 0.19, 0.2, 0.25, 0.3, 0.5, 1.0, 3.0, 10.0];

/// Per-peer transport figures.
#[derive(Debug, Clone)]
pub struct PeerFigures {
    pub frames: u64,
    pub bytes: u64,
    pub heartbeat_frames: u64,
    pub dropped_messages: u64,
    /// Raft messages, and their entry bytes, still queued after the link's last frame.
    pub queued_messages: u64,
    pub queued_entry_bytes: u64,
    /// Recent intervals between heartbeat frames (quantiles).
    pub heartbeat_interval: Samples,
    /// The same intervals as a histogram (windows between two scrapes).
    pub heartbeat_gaps: Buckets,
}

impl Default for PeerFigures {
    fn default() -> Self {
        PeerFigures {
            frames: 0,
            bytes: 0,
            heartbeat_frames: 0,
            dropped_messages: 0,
            queued_messages: 0,
            queued_entry_bytes: 0,
            heartbeat_interval: Samples::default(),
            heartbeat_gaps: Buckets::new(&HEARTBEAT_GAP_BOUNDS),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    groups: BTreeMap<(u64, String), GroupFigures>,
    peers: BTreeMap<(u64, u64), PeerFigures>,
    requests: BTreeMap<(u64, i16), u64>,
    errors: BTreeMap<(u64, i16, i16), u64>,
    fsync: BTreeMap<u64, Samples>,
    produce: BTreeMap<u64, Samples>,
    disk_errors: BTreeMap<(u64, String, String), u64>,
    /// Fetch record bytes answered, by how they are sent (`sendfile` or `copied`).
    fetch_bytes: BTreeMap<(u64, &'static str), u64>,
}

/// The process-wide registry.
#[derive(Debug, Default)]
pub struct Registry {
    inner: Mutex<Inner>,
    /// The log cleaner's figures (`cleaner.rs`), under their own lock.
    cleaner: Mutex<cleaner::Figures>,
    /// Snapshot transfer figures (`snapshots.rs`), under their own lock.
    snapshots: Mutex<snapshots::Figures>,
    /// Preferred leader election figures (`leaders.rs`), under their own lock.
    leaders: Mutex<leaders::Figures>,
    /// Each node's poller threads (`pollers.rs`), under their own lock.
    pollers: Mutex<pollers::Figures>,
    /// Each node's replication throttle (`throttle.rs`), under its own lock.
    throttles: Mutex<throttle::Figures>,
    /// Each node's request memory pool (`request_pool.rs`), under its own lock.
    request_pools: Mutex<request_pool::Figures>,
    /// Each node's disk writer queue (`disk_queue.rs`), under its own lock.
    disk_queues: Mutex<disk_queue::Figures>,
    /// The transaction coordinator's figures (`transactions.rs`), under their own lock.
    transactions: Mutex<transactions::Figures>,
}

/// The registry.
pub fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Registry::default)
}

/// Every node's series as Prometheus text (what `/metrics` serves).
pub fn render() -> String {
    registry().render()
}

/// One node's series as Prometheus text (for a process hosting several nodes, e.g. tests).
pub fn render_node(node: u64) -> String {
    registry().render_only(Some(node))
}

impl Registry {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// Updates a group's figures (`group` is a display name, e.g. `__meta` or `topic/3`).
    pub fn group(&self, node: u64, group: &str, f: impl FnOnce(&mut GroupFigures)) {
        self.with(|i| f(i.groups.entry((node, group.to_string())).or_default()))
    }

    /// Forgets a group (deleted topic).
    pub fn remove_group(&self, node: u64, group: &str) {
        self.with(|i| i.groups.remove(&(node, group.to_string())));
    }

    /// Updates a peer link's figures.
    pub fn peer(&self, node: u64, peer: u64, f: impl FnOnce(&mut PeerFigures)) {
        self.with(|i| f(i.peers.entry((node, peer)).or_default()))
    }

    /// Counts a request, and its error code when not 0.
    pub fn request(&self, node: u64, api_key: i16, error_code: Option<i16>) {
        self.with(|i| {
            *i.requests.entry((node, api_key)).or_default() += 1;
            if let Some(code) = error_code.filter(|c| *c != 0) {
                *i.errors.entry((node, api_key, code)).or_default() += 1;
            }
        })
    }

    /// Counts an error code returned for a request (without counting the request again).
    pub fn error(&self, node: u64, api_key: i16, error_code: i16) {
        self.with(|i| *i.errors.entry((node, api_key, error_code)).or_default() += 1)
    }

    /// Records one fsync round.
    pub fn fsync(&self, node: u64, took: Duration) {
        self.with(|i| i.fsync.entry(node).or_default().record(took.as_secs_f64()))
    }

    /// Records one produce request's latency.
    pub fn produce(&self, node: u64, took: Duration) {
        self.with(|i| i.produce.entry(node).or_default().record(took.as_secs_f64()))
    }

    /// Counts the record bytes of a Fetch response, under one lock: `sendfile` bytes are file
    /// ranges sent from the page cache, `copied` ones bytes the process holds (read, or not yet
    /// written).
    pub fn fetch_bytes(&self, node: u64, sendfile: u64, copied: u64) {
        if sendfile + copied > 0 {
            self.with(|i| {
                for (sent, bytes) in [("sendfile", sendfile), ("copied", copied)] {
                    if bytes > 0 {
                        *i.fetch_bytes.entry((node, sent)).or_default() += bytes;
                    }
                }
            })
        }
    }

    /// Counts one disk error: `op` is what failed (e.g. `write`, `fsync`, `open`), `kind` what
    /// the OS said (e.g. `enospc`, `eio`, `other`).
    pub fn disk_error(&self, node: u64, op: &str, kind: &str) {
        self.with(|i| *i.disk_errors.entry((node, op.to_string(), kind.to_string())).or_default() += 1)
    }

    /// How many disk errors node `node` counted for `op` and `kind` (tests and status).
    pub fn disk_errors(&self, node: u64, op: &str, kind: &str) -> u64 {
        self.with(|i| i.disk_errors.get(&(node, op.to_string(), kind.to_string())).copied().unwrap_or(0))
    }

    /// A copy of one peer link's figures.
    pub fn peer_figures(&self, node: u64, peer: u64) -> Option<PeerFigures> {
        self.with(|i| i.peers.get(&(node, peer)).cloned())
    }

    /// A copy of one group's figures.
    pub fn group_figures(&self, node: u64, group: &str) -> Option<GroupFigures> {
        self.with(|i| i.groups.get(&(node, group.to_string())).cloned())
    }

    /// Everything, as Prometheus text (version 0.0.4).
    pub fn render(&self) -> String {
        self.render_only(None)
    }

    /// The series of `node` (or of every node), as Prometheus text (version 0.0.4).
    pub fn render_only(&self, node: Option<u64>) -> String {
        let keep = |n: u64| node.is_none_or(|want| want == n);
        let dfail = deserialization_failures_total() as f64;
        let families = self.with(|i| {
            let mut nodes: BTreeSet<u64> = i.groups.keys().map(|(n, _)| *n).filter(|n| keep(*n)).collect();
            if nodes.is_empty() {
                nodes.insert(node.unwrap_or(0));
            }
            let mut deser = Family::counter(
                "deserialization_failures_total",
                "Committed entries that could not be decoded on apply (process-wide; must stay 0).",
            );
            for n in &nodes {
                deser.value(&[("node", &n.to_string())], dfail);
            }

            let mut term = Family::gauge("chronik_raft_term", "Raft term of the group on this node.");
            let mut leader =
                Family::gauge("chronik_raft_is_leader", "1 when this node leads the group; `role` names its role.");
            let mut started =
                Family::counter("chronik_raft_elections_started_total", "Elections this node started for the group.");
            let mut won = Family::counter("chronik_raft_elections_won_total", "Elections this node won for the group.");
            let mut changes = Family::counter(
                "chronik_raft_leader_changes_total",
                "Times this node learnt a new leader of the group.",
            );
            let mut lag = Family::gauge(
                "chronik_apply_lag_entries",
                "Committed entries of the group not yet applied on this node.",
            );
            let mut lso_lag = Family::gauge(
                "chronik_partition_lso_lag_offsets",
                "High watermark minus last stable offset of the partition on this node (records of open transactions).",
            );
            let mut snap_index = Family::gauge(
                "chronik_meta_snapshot_index",
                "Raft index of the latest `__meta` snapshot on this node.",
            );
            let mut snap_bytes =
                Family::gauge("chronik_meta_snapshot_bytes", "Size of the latest `__meta` snapshot file on this node.");
            let mut meta_log = Family::gauge(
                "chronik_meta_log_bytes",
                "Bytes of the `__meta` log on this node after the latest compaction.",
            );
            for ((n, g), f) in i.groups.iter().filter(|((n, _), _)| keep(*n)) {
                let n = n.to_string();
                if let Some((index, size, log)) = f.snapshot {
                    let l = [("node", n.as_str())];
                    snap_index.value(&l, index as f64);
                    snap_bytes.value(&l, size as f64);
                    meta_log.value(&l, log as f64);
                }
                let l = [("node", n.as_str()), ("group", g.as_str())];
                term.value(&l, f.term as f64);
                leader.value(&[l[0], l[1], ("role", f.role.as_str())], f64::from(u8::from(f.role == "Leader")));
                started.value(&l, f.elections_started as f64);
                won.value(&l, f.elections_won as f64);
                changes.value(&l, f.leader_changes as f64);
                lag.value(&l, f.apply_lag as f64);
                if let Some(v) = f.lso_lag {
                    lso_lag.value(&l, v as f64);
                }
            }

            let mut frames = Family::counter("chronik_peer_frames_total", "Frames sent on the link to `peer`.");
            let mut bytes = Family::counter("chronik_peer_bytes_total", "Bytes sent on the link to `peer`.");
            let mut hb_frames =
                Family::counter("chronik_peer_heartbeat_frames_total", "Frames carrying heartbeats sent to `peer`.");
            let mut dropped = Family::counter(
                "chronik_peer_dropped_messages_total",
                "Raft messages to `peer` dropped (no connection, full queue or injected fault).",
            );
            let mut queued = Family::gauge(
                "chronik_peer_queue_messages",
                "Raft messages to `peer` still queued after the link's last frame (its backlog).",
            );
            let mut queued_bytes = Family::gauge(
                "chronik_peer_queue_entry_bytes",
                "Entry bytes of the Raft messages to `peer` still queued after the link's last frame.",
            );
            let mut hb_interval = Family::summary(
                "chronik_heartbeat_interval_seconds",
                "Interval between heartbeat frames sent to `peer` (quantiles of the recent intervals).",
            );
            let mut hb_gaps = Family::histogram(
                "chronik_heartbeat_gap_seconds",
                "Interval between heartbeat frames sent to `peer` (histogram of every interval).",
            );
            for ((n, p), f) in i.peers.iter().filter(|((n, _), _)| keep(*n)) {
                let (n, p) = (n.to_string(), p.to_string());
                let l = [("node", n.as_str()), ("peer", p.as_str())];
                frames.value(&l, f.frames as f64);
                bytes.value(&l, f.bytes as f64);
                hb_frames.value(&l, f.heartbeat_frames as f64);
                dropped.value(&l, f.dropped_messages as f64);
                queued.value(&l, f.queued_messages as f64);
                queued_bytes.value(&l, f.queued_entry_bytes as f64);
                hb_interval.samples(&l, &f.heartbeat_interval);
                hb_gaps.buckets(&l, &f.heartbeat_gaps);
            }

            let mut fsync = Family::summary("chronik_fsync_seconds", "Duration of the syncer's fsync rounds.");
            for (n, s) in i.fsync.iter().filter(|(n, _)| keep(**n)) {
                fsync.samples(&[("node", &n.to_string())], s);
            }
            let mut produce =
                Family::summary("chronik_produce_seconds", "Produce request latency, receipt to response.");
            for (n, s) in i.produce.iter().filter(|(n, _)| keep(**n)) {
                produce.samples(&[("node", &n.to_string())], s);
            }
            let mut requests = Family::counter("chronik_requests_total", "Kafka requests received, by API key.");
            for ((n, k), c) in i.requests.iter().filter(|((n, _), _)| keep(*n)) {
                requests.value(&[("node", &n.to_string()), ("api_key", &k.to_string())], *c as f64);
            }
            let mut errors =
                Family::counter("chronik_request_errors_total", "Kafka error codes returned, by API key and code.");
            for ((n, k, e), c) in i.errors.iter().filter(|((n, _, _), _)| keep(*n)) {
                errors.value(
                    &[("node", &n.to_string()), ("api_key", &k.to_string()), ("error_code", &e.to_string())],
                    *c as f64,
                );
            }
            let mut fetched = Family::counter(
                "chronik_fetch_record_bytes_total",
                "Record bytes of Fetch responses, by how they are sent: `sendfile` (from the page cache, plaintext listeners) or `copied`.",
            );
            for ((n, sent), c) in i.fetch_bytes.iter().filter(|((n, _), _)| keep(*n)) {
                fetched.value(&[("node", &n.to_string()), ("sent", sent)], *c as f64);
            }
            let mut disk = Family::counter("disk_errors_total", "Disk errors, by failed operation and error kind.");
            for ((n, op, kind), c) in i.disk_errors.iter().filter(|((n, _, _), _)| keep(*n)) {
                disk.value(&[("node", &n.to_string()), ("op", op), ("kind", kind)], *c as f64);
            }
            vec![
                deser,
                term,
                leader,
                started,
                won,
                changes,
                lag,
                lso_lag,
                snap_index,
                snap_bytes,
                meta_log,
                frames,
                bytes,
                hb_frames,
                dropped,
                queued,
                queued_bytes,
                hb_interval,
                hb_gaps,
                fsync,
                produce,
                requests,
                errors,
                fetched,
                disk,
            ]
        });
        let mut families = families;
        families.extend(cleaner::families(self, &keep));
        families.extend(snapshots::families(self, &keep));
        families.extend(leaders::families(self, &keep));
        families.extend(request_pool::families(self, &keep));
        families.extend(disk_queue::families(self, &keep));
        families.extend(pollers::families(self, &keep));
        families.extend(throttle::families(self, &keep));
        families.extend(transactions::families(self, &keep));
        families.extend(files::families(self, &keep));
        exposition::encode(families)
    }
}

#[cfg(test)]
mod tests;
