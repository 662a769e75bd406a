//! One actor per remote node: it owns the outbound TCP connection to that node and a bounded
//! queue of Raft messages. Groups `do_send` messages; the actor flushes everything queued as one
//! frame after each burst. Heartbeats and heartbeat responses wait for the ticker's beat (three
//! quarters of a tick after each tick): on the beat of a heartbeat tick (every leader of this node heartbeats
//! on those ticks) the heartbeats of every group bound to this peer leave in one frame, together
//! with this node's responses to the peer's heartbeats. So an idle link carries one frame per
//! heartbeat interval in each direction, two per node pair. Heartbeat send intervals are
//! recorded per peer. With hibernation on (`raft.hibernate`) the beat of a heartbeat tick sends a
//! frame even when no group queued a heartbeat, if no heartbeat frame went to the peer since the
//! last one (the node beat, possibly empty): the peer's liveness (`peer::liveness`) then never depends on which
//! groups are awake. A slow or dead peer only fills its own queue: when the queue or the
//! writer's buffer is full, messages are dropped and Raft retransmits them. The connection is
//! re-established with exponential backoff. Replication traffic that Kafka's replication
//! throttles cover waits in the link's [`Gate`] until the node's quota lets it go
//! (`peer::throttle`).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use raft::eraftpb::{Message, MessageType};
use slog::Logger;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::frame;
use super::throttle::{Admit, Gate, ReplicationThrottle};
use super::transport::Faults;
use crate::raft::GroupId;

/// Most messages queued for one peer before new ones are dropped.
const MAX_QUEUED: usize = 16 * 1024;
/// Frames buffered for the writer task.
const MAX_FRAMES: usize = 64;
/// Most bytes of snapshot chunk data in one frame; more waits for the next flush.
pub const MAX_CHUNK_FRAME: usize = frame::MAX_FRAME / 2;
/// Most bytes of Raft entries in one frame; the rest of the queue waits for the next flush. A
/// follower far behind is sent up to `raft.max-inflight-msgs` × `raft.max-size-per-msg` of appends
/// in one Ready (256 MiB by default), more than the receiver takes in one frame.
pub const MAX_ENTRIES_FRAME: usize = frame::MAX_FRAME / 4;
/// Most bytes of Raft entries queued for one peer; appends past it are dropped (Raft resends).
const MAX_QUEUED_ENTRY_BYTES: usize = 4 * frame::MAX_FRAME;
/// Most bytes of entries the replication throttle holds on one link; past it, held kinds of
/// messages are dropped (Raft resends: a probe is re-sent on every heartbeat response, so a
/// throttled link would otherwise fill with copies).
const MAX_HELD_BYTES: u64 = 16 * 1024 * 1024;
/// Most snapshot messages queued for one peer (each transfer has one chunk in flight).
const MAX_SNAPSHOT_QUEUED: usize = 256;

/// The peer actor's one message enum.
#[derive(Message)]
#[rtype(result = "()")]
pub enum PeerMsg {
    /// Messages of one group for this peer.
    Send(GroupId, Vec<Message>),
    /// A repair request or copy for this peer.
    Repair(frame::Repair),
    /// A snapshot chunk request or chunk for this peer.
    Snapshot(frame::SnapshotPeerMsg),
    /// A transaction marker request or answer for this peer.
    TxnMarker(frame::TxnMarkerPeerMsg),
    /// Write everything queued (self-sent after a burst).
    Flush,
    /// The ticker's beat, three quarters of a tick after each tick. On a heartbeat tick (`heartbeat_tick`)
    /// everything queued goes out, heartbeat responses included; on other ticks only heartbeats
    /// that missed their beat do (responses wait for the next heartbeat frame).
    FlushHeartbeats { heartbeat_tick: bool },
    /// The connection is up; frames go to this writer.
    Connected(mpsc::Sender<Bytes>),
    /// The connection attempt or the connection failed.
    Disconnected,
    /// Time to try connecting again.
    Reconnect,
    /// Time to let go what the replication throttle holds (`peer::throttle`).
    ReleaseHeld,
}

/// Whether a beat sends the heartbeat queue. The beat of a heartbeat tick always does (with the
/// responses gathered since the last frame). Otherwise only when heartbeats are queued and the
/// last heartbeat tick's beat had none to send: a whole frame that came late leaves as soon as
/// its first heartbeats arrive (the actor then flushes at once, not at the next beat).
/// Heartbeats that miss a frame that did leave wait for the next heartbeat tick, so a link
/// carries one heartbeat frame per interval however busy the groups are.
fn beat_flushes(heartbeat_tick: bool, frame_due: bool, heartbeats_queued: bool) -> bool {
    heartbeat_tick || (frame_due && heartbeats_queued)
}

/// Whether a beat sends the node beat (hibernation on): on a heartbeat tick with no heartbeat
/// queued, when no heartbeat frame went to the peer since the last heartbeat tick. A link whose
/// heartbeats came late (and left in a late frame) already told the peer this node is alive in
/// this interval, and a second heartbeat frame per interval would only add wake-ups; so every
/// link carries exactly one heartbeat frame per interval.
fn node_beat_due(enabled: bool, heartbeat_tick: bool, heartbeats_queued: bool, sent_since_beat: bool) -> bool {
    enabled && heartbeat_tick && !heartbeats_queued && !sent_since_beat
}

/// Bytes of entry data (and contexts) a Raft message carries.
fn entry_bytes(m: &Message) -> usize {
    m.get_entries().iter().map(|e| e.get_data().len() + e.get_context().len()).sum()
}

/// How many messages from the head of `queue` go in one frame: as many as fit in `budget` bytes
/// of entries, and at least one (a message larger than the budget goes alone).
fn frame_prefix(queue: &[(GroupId, Message)], budget: usize) -> usize {
    let mut bytes = 0;
    for (i, (_, m)) in queue.iter().enumerate() {
        bytes += entry_bytes(m);
        if bytes > budget && i > 0 {
            return i;
        }
    }
    queue.len()
}

/// Writes the link's frames to `stream` until it fails or the actor drops the sender.
async fn pump<S: tokio::io::AsyncWrite + Unpin>(mut stream: S, me: Addr<PeerActor>, logger: Logger) {
    let (tx, mut rx) = mpsc::channel::<Bytes>(MAX_FRAMES);
    me.do_send(PeerMsg::Connected(tx));
    while let Some(frame) = rx.recv().await {
        if let Err(e) = stream.write_all(&frame).await {
            slog::debug!(logger, "peer write failed"; "error" => %e);
            break;
        }
    }
    me.do_send(PeerMsg::Disconnected);
}

/// Counters of one peer link.
#[derive(Debug, Default, Clone, Copy)]
pub struct PeerStats {
    pub frames: u64,
    pub bytes: u64,
    pub dropped_messages: u64,
}

/// The actor owning the link to one remote node.
pub struct PeerActor {
    me: u64,
    peer: u64,
    addr: String,
    queue: Vec<(GroupId, Message)>,
    /// Bytes of entries in `queue`.
    queued_entry_bytes: usize,
    repairs: Vec<frame::Repair>,
    /// Transaction marker requests and answers (bounded like repairs).
    txn_markers: Vec<frame::TxnMarkerPeerMsg>,
    /// Snapshot chunk requests and chunks (a frame carries at most [`MAX_CHUNK_FRAME`] of chunk data).
    snapshots: std::collections::VecDeque<frame::SnapshotPeerMsg>,
    /// Heartbeats and their responses, sent together on the ticker's beat.
    heartbeats: Vec<(GroupId, Message)>,
    last_heartbeat_frame: Option<std::time::Instant>,
    /// The last heartbeat tick's beat found no heartbeat to send.
    heartbeat_frame_due: bool,
    writer: Option<mpsc::Sender<Bytes>>,
    connecting: bool,
    backoff: Duration,
    flush_scheduled: bool,
    faults: Arc<Faults>,
    /// Mutual TLS to the peer (`raft.tls-*`), or plain TCP.
    tls: Option<tokio_rustls::TlsConnector>,
    pub stats: PeerStats,
    /// Told the peer's id when an established connection drops (`report_unreachable`).
    on_lost: Option<LostPeer>,
    /// Kafka's replication throttles (node-wide) and what they hold on this link.
    throttle: Option<Arc<ReplicationThrottle>>,
    gate: Gate,
    release_scheduled: bool,
    /// Send a frame on every heartbeat tick's beat, empty if need be (`raft.hibernate`).
    node_beat: bool,
    /// The current flush is a heartbeat tick's beat that sends the node beat.
    beat_now: bool,
    /// A heartbeat frame went to the peer since the last heartbeat tick's beat.
    sent_since_beat: bool,
    logger: Logger,
}

/// What a peer actor calls when its connection to the peer drops: the node tells every group
/// (`PartitionMsg::Unreachable`), whose leader then calls raft-rs `report_unreachable`, so a
/// follower is never left paused in Replicate with a full inflight window of lost appends.
pub type LostPeer = Arc<dyn Fn(u64) + Send + Sync>;

impl PeerActor {
    pub fn new(me: u64, peer: u64, addr: String, faults: Arc<Faults>, logger: Logger) -> Self {
        Self::with_tls(me, peer, addr, faults, None, logger)
    }

    /// A peer link over mutual TLS when `tls` is set.
    pub fn with_tls(
        me: u64,
        peer: u64,
        addr: String,
        faults: Arc<Faults>,
        tls: Option<tokio_rustls::TlsConnector>,
        logger: Logger,
    ) -> Self {
        PeerActor {
            me,
            peer,
            addr,
            queue: Vec::new(),
            queued_entry_bytes: 0,
            repairs: Vec::new(),
            txn_markers: Vec::new(),
            snapshots: Default::default(),
            heartbeats: Vec::new(),
            last_heartbeat_frame: None,
            heartbeat_frame_due: false,
            writer: None,
            connecting: false,
            backoff: Duration::from_millis(50),
            flush_scheduled: false,
            faults,
            tls,
            stats: PeerStats::default(),
            on_lost: None,
            throttle: None,
            gate: Gate::default(),
            release_scheduled: false,
            node_beat: false,
            beat_now: false,
            sent_since_beat: false,
            logger,
        }
    }

    /// Holds replication traffic back as `throttle` says.
    pub fn with_throttle(mut self, throttle: Arc<ReplicationThrottle>) -> Self {
        self.throttle = Some(throttle);
        self
    }

    /// Queues what the throttle lets go now and sets a timer for the rest.
    fn release_held(&mut self, ctx: &mut Context<Self>) {
        let Some(t) = self.throttle.clone() else { return };
        let r = self.gate.release(&t, std::time::Instant::now());
        let urgent = !r.raft.is_empty();
        for (g, m) in r.raft {
            self.queued_entry_bytes += entry_bytes(&m);
            self.queue.push((g, m));
        }
        if urgent && !self.flush_scheduled {
            self.flush_scheduled = true;
            ctx.notify(PeerMsg::Flush);
        }
        if let Some(d) = r.again.filter(|_| !self.release_scheduled) {
            self.release_scheduled = true;
            ctx.notify_later(PeerMsg::ReleaseHeld, d);
        }
    }

    /// Sends the node beat on every heartbeat tick (hibernation on).
    pub fn with_node_beat(mut self, on: bool) -> Self {
        self.node_beat = on;
        self
    }

    /// Calls `f` with the peer's id whenever an established connection drops.
    pub fn with_on_lost(mut self, f: LostPeer) -> Self {
        self.on_lost = Some(f);
        self
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        if self.connecting || self.writer.is_some() {
            return;
        }
        self.connecting = true;
        let addr = self.addr.clone();
        let me = ctx.address();
        let logger = self.logger.clone();
        let (tls, peer) = (self.tls.clone(), self.peer);
        actix::spawn(async move {
            let stream = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(&addr)).await;
            let stream = match stream {
                Ok(Ok(s)) => s,
                _ => {
                    me.do_send(PeerMsg::Disconnected);
                    return;
                }
            };
            let _ = stream.set_nodelay(true);
            match tls {
                None => pump(stream, me, logger).await,
                Some(connector) => {
                    let Some(name) = crate::security::peer_tls::server_name(peer) else {
                        me.do_send(PeerMsg::Disconnected);
                        return;
                    };
                    match tokio::time::timeout(Duration::from_secs(2), connector.connect(name, stream)).await {
                        Ok(Ok(tls)) => pump(tls, me, logger).await,
                        Ok(Err(e)) => {
                            slog::warn!(logger, "peer TLS handshake failed"; "error" => %e);
                            me.do_send(PeerMsg::Disconnected);
                        }
                        Err(_) => me.do_send(PeerMsg::Disconnected),
                    }
                }
            }
        });
    }

    /// Writes the queue as one frame, at most [`MAX_ENTRIES_FRAME`] of entries (the rest goes in
    /// the next frame, flushed at once). Heartbeat responses ride along in any frame that goes
    /// out; heartbeats only when `with_heartbeats` (the ticker's beat).
    fn flush(&mut self, ctx: &mut Context<Self>, with_heartbeats: bool) {
        self.flush_scheduled = false;
        let n = frame_prefix(&self.queue, MAX_ENTRIES_FRAME);
        let rest = self.queue.split_off(n);
        let mut msgs = std::mem::replace(&mut self.queue, rest);
        let sent: usize = msgs.iter().map(|(_, m)| entry_bytes(m)).sum();
        self.queued_entry_bytes = self.queued_entry_bytes.saturating_sub(sent);
        if !self.queue.is_empty() {
            self.flush_scheduled = true;
            ctx.notify(PeerMsg::Flush);
        }
        // What stays queued after this frame (every push schedules a flush, so this is the
        // link's backlog as of its last frame).
        let (left, left_bytes) = (self.queue.len() as u64, self.queued_entry_bytes as u64);
        crate::metrics::registry().peer(self.me, self.peer, |p| {
            p.queued_messages = left;
            p.queued_entry_bytes = left_bytes;
        });
        if !with_heartbeats && !msgs.is_empty() && !self.heartbeats.is_empty() {
            let (responses, heartbeats): (Vec<_>, Vec<_>) = std::mem::take(&mut self.heartbeats)
                .into_iter()
                .partition(|(_, m)| m.get_msg_type() == MessageType::MsgHeartbeatResponse);
            self.heartbeats = heartbeats;
            msgs.extend(responses);
        }
        let node_beat = std::mem::take(&mut self.beat_now);
        if with_heartbeats && (node_beat || !self.heartbeats.is_empty()) {
            let carries_heartbeat =
                node_beat || self.heartbeats.iter().any(|(_, m)| m.get_msg_type() == MessageType::MsgHeartbeat);
            msgs.append(&mut self.heartbeats);
            if carries_heartbeat {
                self.sent_since_beat = true;
                let now = std::time::Instant::now();
                let interval = self.last_heartbeat_frame.replace(now).map(|t| now - t);
                crate::metrics::registry().peer(self.me, self.peer, |p| {
                    p.heartbeat_frames += 1;
                    if let Some(i) = interval {
                        p.heartbeat_interval.record(i.as_secs_f64());
                        p.heartbeat_gaps.record(i.as_secs_f64());
                    }
                });
            }
        }
        let repairs = std::mem::take(&mut self.repairs);
        let mut snapshots = Vec::new();
        let mut chunk_bytes = 0;
        while let Some(m) = self.snapshots.front() {
            if !snapshots.is_empty() && chunk_bytes + m.data_len() > MAX_CHUNK_FRAME {
                // The rest goes in the next frame.
                if !self.flush_scheduled {
                    self.flush_scheduled = true;
                    ctx.notify(PeerMsg::Flush);
                }
                break;
            }
            chunk_bytes += m.data_len();
            snapshots.extend(self.snapshots.pop_front());
        }
        let txn_markers = std::mem::take(&mut self.txn_markers);
        let extras = frame::Extras { repairs, snapshots, txn_markers };
        if msgs.is_empty() && extras.is_empty() && !node_beat {
            return;
        }
        if self.faults.dropping_to(self.peer) {
            self.count_dropped(msgs.len() + extras.len());
            return;
        }
        let Some(writer) = self.writer.clone() else {
            self.count_dropped(msgs.len() + extras.len());
            self.connect(ctx);
            return;
        };
        let bytes = frame::encode_full(self.me, self.peer, &msgs, extras);
        let size = bytes.len() as u64;
        let count = msgs.len() as u64;
        match self.faults.delay(self.peer) {
            Some(d) => {
                ctx.run_later(d, move |act, _| {
                    if writer.try_send(bytes).is_err() {
                        act.count_dropped(count as usize);
                    }
                });
            }
            None => {
                if writer.try_send(bytes).is_err() {
                    self.count_dropped(count as usize);
                    return;
                }
            }
        }
        self.stats.frames += 1;
        self.stats.bytes += size;
        crate::metrics::registry().peer(self.me, self.peer, |p| {
            p.frames += 1;
            p.bytes += size;
        });
    }

    fn count_dropped(&mut self, n: usize) {
        self.stats.dropped_messages += n as u64;
        crate::metrics::registry().peer(self.me, self.peer, |p| p.dropped_messages += n as u64);
    }
}

impl Actor for PeerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.connect(ctx);
    }
}

impl Handler<PeerMsg> for PeerActor {
    type Result = ();

    fn handle(&mut self, msg: PeerMsg, ctx: &mut Self::Context) {
        match msg {
            PeerMsg::Send(group, msgs) => {
                let (mut urgent, mut late_frame, mut held) = (false, false, false);
                for m in msgs {
                    let m = match &self.throttle {
                        Some(t) => match self.gate.admit(t, group, m, MAX_HELD_BYTES) {
                            Admit::Send(m) => m,
                            Admit::Held => {
                                held = true;
                                continue;
                            }
                            Admit::Dropped => {
                                self.count_dropped(1);
                                continue;
                            }
                        },
                        None => m,
                    };
                    late_frame |= self.heartbeat_frame_due && m.get_msg_type() == MessageType::MsgHeartbeat;
                    let heartbeat =
                        matches!(m.get_msg_type(), MessageType::MsgHeartbeat | MessageType::MsgHeartbeatResponse);
                    let bytes = entry_bytes(&m);
                    let queue = if heartbeat { &mut self.heartbeats } else { &mut self.queue };
                    if queue.len() >= MAX_QUEUED
                        || (bytes > 0 && self.queued_entry_bytes + bytes > MAX_QUEUED_ENTRY_BYTES)
                    {
                        self.count_dropped(1);
                    } else {
                        queue.push((group, m));
                        self.queued_entry_bytes += bytes;
                        urgent |= !heartbeat;
                    }
                }
                if urgent && !self.flush_scheduled {
                    self.flush_scheduled = true;
                    ctx.notify(PeerMsg::Flush);
                }
                if late_frame {
                    // The last beat found no heartbeat to send: this frame is late; it leaves
                    // once the burst is queued instead of waiting for the next beat.
                    ctx.notify(PeerMsg::FlushHeartbeats { heartbeat_tick: false });
                }
                if held {
                    self.release_held(ctx);
                }
            }
            PeerMsg::Repair(r) => {
                if self.repairs.len() < 1024 {
                    self.repairs.push(r);
                }
                if !self.flush_scheduled {
                    self.flush_scheduled = true;
                    ctx.notify(PeerMsg::Flush);
                }
            }
            PeerMsg::TxnMarker(m) => {
                if self.txn_markers.len() < 1024 {
                    self.txn_markers.push(m);
                } else {
                    self.count_dropped(1);
                }
                if !self.flush_scheduled {
                    self.flush_scheduled = true;
                    ctx.notify(PeerMsg::Flush);
                }
            }
            PeerMsg::Snapshot(mut m) => {
                // The leader quota paces snapshot chunks: an empty "throttled" answer instead.
                if let (frame::SnapshotPeerMsg::Chunk(c), Some(t)) = (&mut m, &self.throttle) {
                    let bytes = c.data.len() as u64;
                    if bytes > 0 {
                        if let Err(wait) = t.admit_chunk(c.group, bytes, std::time::Instant::now()) {
                            c.data = Bytes::new();
                            c.eof = false;
                            c.throttled_ms = (wait.as_millis() as u64).max(1);
                        }
                    }
                }
                if self.snapshots.len() < MAX_SNAPSHOT_QUEUED {
                    self.snapshots.push_back(m);
                } else {
                    self.count_dropped(1);
                }
                if !self.flush_scheduled {
                    self.flush_scheduled = true;
                    ctx.notify(PeerMsg::Flush);
                }
            }
            PeerMsg::Flush => self.flush(ctx, false),
            PeerMsg::FlushHeartbeats { heartbeat_tick } => {
                let queued = self.heartbeats.iter().any(|(_, m)| m.get_msg_type() == MessageType::MsgHeartbeat);
                if beat_flushes(heartbeat_tick, self.heartbeat_frame_due, queued) {
                    // The node beat: only when no heartbeat frame went since the last heartbeat
                    // tick's frame (a late frame counts).
                    let node_beat = node_beat_due(self.node_beat, heartbeat_tick, queued, self.sent_since_beat);
                    self.beat_now = node_beat;
                    self.flush(ctx, true);
                    if heartbeat_tick {
                        self.sent_since_beat = false;
                    }
                    // A heartbeat tick whose beat found no heartbeat (and sent no node beat)
                    // leaves its frame due: the first heartbeats that come late go out as soon
                    // as they are queued.
                    self.heartbeat_frame_due = heartbeat_tick && !queued && !node_beat;
                }
            }
            PeerMsg::Connected(tx) => {
                slog::info!(self.logger, "connected to peer"; "peer" => self.peer, "addr" => &self.addr);
                self.connecting = false;
                self.writer = Some(tx);
                self.backoff = Duration::from_millis(50);
            }
            PeerMsg::Disconnected => {
                if self.writer.take().is_some() {
                    slog::warn!(self.logger, "lost connection to peer"; "peer" => self.peer, "addr" => &self.addr);
                    if let Some(f) = &self.on_lost {
                        f(self.peer);
                    }
                }
                self.connecting = false;
                let delay = self.backoff;
                self.backoff = (self.backoff * 2).min(Duration::from_secs(2));
                ctx.notify_later(PeerMsg::Reconnect, delay);
            }
            PeerMsg::Reconnect => self.connect(ctx),
            PeerMsg::ReleaseHeld => {
                self.release_scheduled = false;
                self.release_held(ctx);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{beat_flushes, entry_bytes, frame_prefix, node_beat_due, MAX_ENTRIES_FRAME};
    use crate::peer::frame;
    use raft::eraftpb::{Entry, Message, MessageType};

    fn append(bytes: usize) -> (crate::raft::GroupId, Message) {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppend);
        let e = Entry { data: vec![0u8; bytes].into(), ..Default::default() };
        m.set_entries(vec![e].into());
        (7, m)
    }

    #[test]
    fn a_frame_carries_at_most_its_budget_of_entries_and_at_least_one_message() {
        const MIB: usize = 1024 * 1024;
        // A catch-up Ready: 256 appends of 1 MiB for one follower (100+ MiB broke the 64 MiB
        // frame limit: the receiver closed the link and the follower caught up at ~2 MB/s).
        let mut queue: Vec<_> = (0..256).map(|_| append(MIB)).collect();
        let mut frames = Vec::new();
        while !queue.is_empty() {
            let n = frame_prefix(&queue, MAX_ENTRIES_FRAME);
            let rest = queue.split_off(n);
            frames.push(std::mem::replace(&mut queue, rest));
        }
        assert_eq!(frames.len(), 256 * MIB / MAX_ENTRIES_FRAME);
        for f in &frames {
            let bytes: usize = f.iter().map(|(_, m)| entry_bytes(m)).sum();
            assert!(bytes <= MAX_ENTRIES_FRAME);
            let encoded = frame::encode_full(1, 2, f, frame::Extras::default());
            assert!(encoded.len() < frame::MAX_FRAME / 2, "frame of {} bytes", encoded.len());
        }
        // Messages without entries cost nothing; one message over the budget goes alone.
        let mut small = vec![(7, Message::default()); 3];
        assert_eq!(frame_prefix(&small, 0), 3);
        small.insert(0, append(MAX_ENTRIES_FRAME + 1));
        assert_eq!(frame_prefix(&small, MAX_ENTRIES_FRAME), 1, "the large one goes alone");
        assert_eq!(frame_prefix(&small[1..], MAX_ENTRIES_FRAME), 3);
        assert_eq!(frame_prefix(&[], MAX_ENTRIES_FRAME), 0);
    }

    #[test]
    fn one_heartbeat_frame_per_interval_and_a_late_frame_leaves_at_the_next_beat() {
        // The beat of a heartbeat tick always sends.
        assert!(beat_flushes(true, false, true));
        assert!(beat_flushes(true, true, false));
        // Stragglers behind a frame that left wait for the next heartbeat tick.
        assert!(!beat_flushes(false, false, true));
        // A frame that found nothing to carry: the late heartbeats go at the next beat.
        assert!(beat_flushes(false, true, true));
        assert!(!beat_flushes(false, true, false));
    }

    #[test]
    fn the_node_beat_fills_only_a_silent_interval() {
        assert!(node_beat_due(true, true, false, false), "idle link: the node beat");
        assert!(!node_beat_due(false, true, false, false), "hibernation off: no node beat");
        assert!(!node_beat_due(true, false, false, false), "only on heartbeat ticks");
        assert!(!node_beat_due(true, true, true, false), "heartbeats go anyway");
        assert!(!node_beat_due(true, true, false, true), "a heartbeat frame went out since the last beat");
    }
}
