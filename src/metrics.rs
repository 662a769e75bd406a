//! Metrics: process-wide counters, gauges and interval samples, rendered as Prometheus text at
//! `/metrics` (see [`serve`]). Every series carries the node id, so several in-process nodes can
//! share one registry in tests. Writers are actors on their own events (role changes, frames,
//! fsync rounds, requests); the hot paths only touch atomics or a short mutex.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

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

/// The last samples of an interval or latency, for quantiles at scrape time.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    recent: VecDeque<f64>,
    count: u64,
    sum: f64,
}

const KEEP: usize = 4096;

impl Samples {
    pub fn record(&mut self, seconds: f64) {
        if self.recent.len() == KEEP {
            self.recent.pop_front();
        }
        self.recent.push_back(seconds);
        self.count += 1;
        self.sum += seconds;
    }

    /// The q-quantile (0..=1) of the recent samples.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.recent.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = self.recent.iter().copied().collect();
        v.sort_by(|a, b| a.total_cmp(b));
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        Some(v[i])
    }
}

/// Per-group Raft figures.
#[derive(Debug, Default, Clone)]
pub struct GroupFigures {
    pub role: String,
    pub term: u64,
    pub elections_started: u64,
    pub elections_won: u64,
    pub leader_changes: u64,
    pub apply_lag: u64,
}

/// Per-peer transport figures.
#[derive(Debug, Default, Clone)]
pub struct PeerFigures {
    pub frames: u64,
    pub bytes: u64,
    pub heartbeat_frames: u64,
    pub dropped_messages: u64,
    pub heartbeat_interval: Samples,
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
}

/// The process-wide registry.
#[derive(Debug, Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

/// The registry.
pub fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Registry::default)
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

    /// Counts a failed disk operation (`op`: write, fsync, ...; `kind`: no_space, io, ...).
    pub fn disk_error(&self, node: u64, op: &str, kind: &str) {
        self.with(|i| *i.disk_errors.entry((node, op.to_string(), kind.to_string())).or_default() += 1)
    }

    /// How many disk operations `op` failed with `kind` on `node`.
    pub fn disk_errors(&self, node: u64, op: &str, kind: &str) -> u64 {
        self.with(|i| i.disk_errors.get(&(node, op.to_string(), kind.to_string())).copied().unwrap_or(0))
    }

    /// Records one produce request's latency.
    pub fn produce(&self, node: u64, took: Duration) {
        self.with(|i| i.produce.entry(node).or_default().record(took.as_secs_f64()))
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
        let mut out = String::new();
        let dfail = deserialization_failures_total();
        self.with(|i| {
            let nodes: std::collections::BTreeSet<u64> = i.groups.keys().map(|(n, _)| *n).collect();
            out.push_str("# TYPE deserialization_failures_total counter\n");
            for n in nodes.iter().copied().chain(nodes.is_empty().then_some(0)) {
                let _ = writeln!(out, "deserialization_failures_total{{node=\"{n}\"}} {dfail}");
            }
            out.push_str("# TYPE chronik_raft_term gauge\n# TYPE chronik_raft_is_leader gauge\n");
            out.push_str("# TYPE chronik_raft_elections_started_total counter\n# TYPE chronik_raft_elections_won_total counter\n");
            out.push_str("# TYPE chronik_raft_leader_changes_total counter\n# TYPE chronik_apply_lag_entries gauge\n");
            for ((n, g), f) in &i.groups {
                let l = format!("node=\"{n}\",group=\"{g}\"");
                let _ = writeln!(out, "chronik_raft_term{{{l}}} {}", f.term);
                let _ = writeln!(out, "chronik_raft_is_leader{{{l},role=\"{}\"}} {}", f.role, u8::from(f.role == "Leader"));
                let _ = writeln!(out, "chronik_raft_elections_started_total{{{l}}} {}", f.elections_started);
                let _ = writeln!(out, "chronik_raft_elections_won_total{{{l}}} {}", f.elections_won);
                let _ = writeln!(out, "chronik_raft_leader_changes_total{{{l}}} {}", f.leader_changes);
                let _ = writeln!(out, "chronik_apply_lag_entries{{{l}}} {}", f.apply_lag);
            }
            out.push_str("# TYPE chronik_peer_frames_total counter\n# TYPE chronik_peer_bytes_total counter\n");
            out.push_str("# TYPE chronik_peer_heartbeat_frames_total counter\n# TYPE chronik_peer_dropped_messages_total counter\n");
            out.push_str("# TYPE chronik_heartbeat_interval_seconds summary\n");
            for ((n, p), f) in &i.peers {
                let l = format!("node=\"{n}\",peer=\"{p}\"");
                let _ = writeln!(out, "chronik_peer_frames_total{{{l}}} {}", f.frames);
                let _ = writeln!(out, "chronik_peer_bytes_total{{{l}}} {}", f.bytes);
                let _ = writeln!(out, "chronik_peer_heartbeat_frames_total{{{l}}} {}", f.heartbeat_frames);
                let _ = writeln!(out, "chronik_peer_dropped_messages_total{{{l}}} {}", f.dropped_messages);
                summary(&mut out, "chronik_heartbeat_interval_seconds", &l, &f.heartbeat_interval);
            }
            out.push_str("# TYPE chronik_fsync_seconds summary\n");
            for (n, s) in &i.fsync {
                summary(&mut out, "chronik_fsync_seconds", &format!("node=\"{n}\""), s);
            }
            out.push_str("# TYPE chronik_produce_seconds summary\n");
            for (n, s) in &i.produce {
                summary(&mut out, "chronik_produce_seconds", &format!("node=\"{n}\""), s);
            }
            out.push_str("# TYPE chronik_requests_total counter\n");
            for ((n, k), c) in &i.requests {
                let _ = writeln!(out, "chronik_requests_total{{node=\"{n}\",api_key=\"{k}\"}} {c}");
            }
            out.push_str("# TYPE chronik_request_errors_total counter\n");
            for ((n, k, e), c) in &i.errors {
                let _ = writeln!(out, "chronik_request_errors_total{{node=\"{n}\",api_key=\"{k}\",error_code=\"{e}\"}} {c}");
            }
            out.push_str("# TYPE disk_errors_total counter\n");
            for ((n, op, kind), c) in &i.disk_errors {
                let _ = writeln!(out, "disk_errors_total{{node=\"{n}\",op=\"{op}\",kind=\"{kind}\"}} {c}");
            }
        });
        out
    }
}

fn summary(out: &mut String, name: &str, labels: &str, s: &Samples) {
    for q in [0.5, 0.99, 1.0] {
        if let Some(v) = s.quantile(q) {
            let _ = writeln!(out, "{name}{{{labels},quantile=\"{q}\"}} {v:.6}");
        }
    }
    let _ = writeln!(out, "{name}_sum{{{labels}}} {:.6}", s.sum);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", s.count);
}

/// Serves `/metrics` on `listener` until the process ends (plain HTTP/1.0, one response per
/// connection).
pub async fn serve(listener: tokio::net::TcpListener, logger: slog::Logger) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let logger = logger.clone();
        actix::spawn(async move {
            let mut buf = [0u8; 2048];
            let n = match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let req = String::from_utf8_lossy(&buf[..n]);
            let (status, body) = if req.starts_with("GET /metrics") {
                ("200 OK", registry().render())
            } else {
                ("404 Not Found", "only /metrics is served\n".to_string())
            };
            let head = format!(
                "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            if let Err(e) = stream.write_all(format!("{head}{body}").as_bytes()).await {
                slog::debug!(logger, "metrics write failed"; "error" => %e);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_shows_hex_and_ascii() {
        let d = hex_dump(b"AB\x00", 64);
        assert!(d.starts_with("0000  41 42 00"));
        assert!(d.trim_end().ends_with("AB."));
    }

    #[test]
    fn disk_errors_count_per_node_op_and_kind() {
        let r = Registry::default();
        r.disk_error(3, "write", "no_space");
        r.disk_error(3, "write", "no_space");
        r.disk_error(3, "fsync", "io");
        assert_eq!(r.disk_errors(3, "write", "no_space"), 2);
        assert_eq!(r.disk_errors(3, "fsync", "no_space"), 0);
        let text = r.render();
        assert!(text.contains("disk_errors_total{node=\"3\",op=\"write\",kind=\"no_space\"} 2"), "{text}");
        assert!(text.contains("disk_errors_total{node=\"3\",op=\"fsync\",kind=\"io\"} 1"), "{text}");
    }

    #[test]
    fn quantiles_and_render() {
        let r = Registry::default();
        r.peer(9, 2, |p| {
            for ms in [149.0, 150.0, 151.0, 150.0] {
                p.heartbeat_interval.record(ms / 1000.0);
            }
            p.frames = 4;
        });
        r.group(9, "t/0", |g| {
            g.role = "Leader".into();
            g.elections_won = 1;
        });
        let text = r.render();
        assert!(text.contains("chronik_peer_frames_total{node=\"9\",peer=\"2\"} 4"), "{text}");
        assert!(
            text.contains("chronik_heartbeat_interval_seconds{node=\"9\",peer=\"2\",quantile=\"0.5\"} 0.150000"),
            "{text}"
        );
        assert!(text.contains("chronik_raft_elections_won_total{node=\"9\",group=\"t/0\"} 1"), "{text}");
    }
}
