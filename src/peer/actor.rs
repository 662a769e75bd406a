//! One actor per remote node: it owns the outbound TCP connection to that node and a bounded
//! queue of Raft messages. Groups `do_send` messages; the actor flushes everything queued as one
//! frame after each burst. A slow or dead peer only fills its own queue: when the queue or the
//! writer's buffer is full, messages are dropped and Raft retransmits them. The connection is
//! re-established with exponential backoff.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use raft::eraftpb::Message;
use slog::Logger;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::frame;
use super::transport::Faults;
use crate::raft::GroupId;

/// Most messages queued for one peer before new ones are dropped.
const MAX_QUEUED: usize = 16 * 1024;
/// Frames buffered for the writer task.
const MAX_FRAMES: usize = 64;

/// The peer actor's one message enum.
#[derive(Message)]
#[rtype(result = "()")]
pub enum PeerMsg {
    /// Messages of one group for this peer.
    Send(GroupId, Vec<Message>),
    /// Write everything queued (self-sent after a burst).
    Flush,
    /// The connection is up; frames go to this writer.
    Connected(mpsc::Sender<Bytes>),
    /// The connection attempt or the connection failed.
    Disconnected,
    /// Time to try connecting again.
    Reconnect,
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
    writer: Option<mpsc::Sender<Bytes>>,
    connecting: bool,
    backoff: Duration,
    flush_scheduled: bool,
    faults: Arc<Faults>,
    pub stats: PeerStats,
    logger: Logger,
}

impl PeerActor {
    pub fn new(me: u64, peer: u64, addr: String, faults: Arc<Faults>, logger: Logger) -> Self {
        PeerActor {
            me,
            peer,
            addr,
            queue: Vec::new(),
            writer: None,
            connecting: false,
            backoff: Duration::from_millis(50),
            flush_scheduled: false,
            faults,
            stats: PeerStats::default(),
            logger,
        }
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        if self.connecting || self.writer.is_some() {
            return;
        }
        self.connecting = true;
        let addr = self.addr.clone();
        let me = ctx.address();
        let logger = self.logger.clone();
        actix::spawn(async move {
            let stream = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(&addr)).await;
            let mut stream = match stream {
                Ok(Ok(s)) => s,
                _ => {
                    me.do_send(PeerMsg::Disconnected);
                    return;
                }
            };
            let _ = stream.set_nodelay(true);
            let (tx, mut rx) = mpsc::channel::<Bytes>(MAX_FRAMES);
            me.do_send(PeerMsg::Connected(tx));
            while let Some(frame) = rx.recv().await {
                if let Err(e) = stream.write_all(&frame).await {
                    slog::debug!(logger, "peer write failed"; "error" => %e);
                    break;
                }
            }
            me.do_send(PeerMsg::Disconnected);
        });
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        self.flush_scheduled = false;
        if self.queue.is_empty() {
            return;
        }
        let msgs = std::mem::take(&mut self.queue);
        if self.faults.dropping_to(self.peer) {
            self.stats.dropped_messages += msgs.len() as u64;
            return;
        }
        let Some(writer) = self.writer.clone() else {
            self.stats.dropped_messages += msgs.len() as u64;
            self.connect(ctx);
            return;
        };
        let bytes = frame::encode(self.me, self.peer, &msgs);
        let size = bytes.len() as u64;
        let count = msgs.len() as u64;
        match self.faults.delay(self.peer) {
            Some(d) => {
                ctx.run_later(d, move |act, _| {
                    if writer.try_send(bytes).is_err() {
                        act.stats.dropped_messages += count;
                    }
                });
            }
            None => {
                if writer.try_send(bytes).is_err() {
                    self.stats.dropped_messages += count;
                    return;
                }
            }
        }
        self.stats.frames += 1;
        self.stats.bytes += size;
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
                for m in msgs {
                    if self.queue.len() >= MAX_QUEUED {
                        self.stats.dropped_messages += 1;
                    } else {
                        self.queue.push((group, m));
                    }
                }
                if !self.flush_scheduled {
                    self.flush_scheduled = true;
                    ctx.notify(PeerMsg::Flush);
                }
            }
            PeerMsg::Flush => self.flush(ctx),
            PeerMsg::Connected(tx) => {
                slog::info!(self.logger, "connected to peer"; "peer" => self.peer, "addr" => &self.addr);
                self.connecting = false;
                self.writer = Some(tx);
                self.backoff = Duration::from_millis(50);
            }
            PeerMsg::Disconnected => {
                if self.writer.take().is_some() {
                    slog::warn!(self.logger, "lost connection to peer"; "peer" => self.peer, "addr" => &self.addr);
                }
                self.connecting = false;
                let delay = self.backoff;
                self.backoff = (self.backoff * 2).min(Duration::from_secs(2));
                ctx.notify_later(PeerMsg::Reconnect, delay);
            }
            PeerMsg::Reconnect => self.connect(ctx),
        }
    }
}
