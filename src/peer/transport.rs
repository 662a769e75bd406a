//! The transport handle and the router.
//!
//! [`Transport`] is what a group holds to send Raft messages: `send` groups the messages by
//! destination node and `do_send`s them to that node's [`PeerActor`]; it never waits. [`Router`]
//! is the other direction: it hands each message received from a peer to the actor of its group.
//! [`Faults`] lets tests drop or delay traffic to chosen peers and cut nodes apart, and hold this
//! node's partition leaders in a joint configuration; everything is off by default.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix::prelude::*;
use raft::eraftpb::Message;
use tokio::sync::watch;

use super::actor::{PeerActor, PeerMsg};
use crate::meta::{MetaActor, MetaMsg};
use crate::partition::{PartitionActor, PartitionMsg};
use crate::raft::{GroupId, META_GROUP};

#[derive(Debug, Default)]
struct FaultState {
    drop_to: HashSet<u64>,
    drop_from: HashSet<u64>,
    delay_to: HashMap<u64, Duration>,
    hold_joint: bool,
}

/// Fault injection for the peer transport (tests only switch it on).
#[derive(Debug, Default)]
pub struct Faults {
    state: RwLock<FaultState>,
}

impl Faults {
    /// Drops everything sent to `node`.
    pub fn drop_to(&self, node: u64, on: bool) {
        let mut s = self.state.write().expect("faults lock");
        if on {
            s.drop_to.insert(node);
        } else {
            s.drop_to.remove(&node);
        }
    }
    /// Drops everything received from `node`.
    pub fn drop_from(&self, node: u64, on: bool) {
        let mut s = self.state.write().expect("faults lock");
        if on {
            s.drop_from.insert(node);
        } else {
            s.drop_from.remove(&node);
        }
    }
    /// Delays every frame to `node` (None: no delay).
    pub fn delay_to(&self, node: u64, delay: Option<Duration>) {
        let mut s = self.state.write().expect("faults lock");
        match delay {
            Some(d) => s.delay_to.insert(node, d),
            None => s.delay_to.remove(&node),
        };
    }
    /// Cuts this node off from `node` in both directions (or heals it).
    pub fn partition(&self, node: u64, on: bool) {
        self.drop_to(node, on);
        self.drop_from(node, on);
    }
    pub fn dropping_to(&self, node: u64) -> bool {
        self.state.read().expect("faults lock").drop_to.contains(&node)
    }
    pub fn dropping_from(&self, node: u64) -> bool {
        self.state.read().expect("faults lock").drop_from.contains(&node)
    }
    pub(crate) fn delay(&self, node: u64) -> Option<Duration> {
        self.state.read().expect("faults lock").delay_to.get(&node).copied()
    }
    /// Holds this node's partition leaders in a joint configuration: a reassignment that entered
    /// one does not propose the leave until released (`partition::reassign`), so tests can fail
    /// nodes while a group is joint.
    pub fn hold_joint(&self, on: bool) {
        self.state.write().expect("faults lock").hold_joint = on;
    }
    pub fn holding_joint(&self) -> bool {
        self.state.read().expect("faults lock").hold_joint
    }
}

/// Transaction marker requests sent to peers and waiting for their answer, by request id.
#[derive(Debug, Default)]
pub struct MarkerWaiters {
    next_id: u64,
    waiting: HashMap<u64, tokio::sync::oneshot::Sender<super::frame::TxnMarkerResponse>>,
}

/// Starts the peer actor of a node the transport learns of (id, Raft address).
pub type SpawnPeer = Arc<dyn Fn(u64, String) -> Addr<PeerActor> + Send + Sync>;

/// The ids the peer listener accepts frames from (the known peers), shared with it.
pub type KnownPeers = Arc<RwLock<Arc<HashSet<u64>>>>;

/// Sends Raft messages to peers without waiting.
///
/// The peers are the configured seeds at start, then every member `__meta` records
/// ([`Transport::learn`], `meta::members`): the live membership is what `__meta` says.
#[derive(Clone)]
pub struct Transport {
    me: u64,
    peers: Arc<RwLock<HashMap<u64, Addr<PeerActor>>>>,
    /// Every node's Raft address this node knows, itself included.
    book: Arc<RwLock<std::collections::BTreeMap<u64, String>>>,
    known: KnownPeers,
    spawn: Option<SpawnPeer>,
    pub faults: Arc<Faults>,
    markers: Arc<std::sync::Mutex<MarkerWaiters>>,
    /// Peer liveness and the quiet-group count (`raft.hibernate`).
    liveness: Arc<super::liveness::Liveness>,
}

impl Transport {
    pub fn new(me: u64, peers: HashMap<u64, Addr<PeerActor>>, faults: Arc<Faults>) -> Self {
        let known: HashSet<u64> = peers.keys().copied().collect();
        Transport {
            me,
            peers: Arc::new(RwLock::new(peers)),
            book: Default::default(),
            known: Arc::new(RwLock::new(Arc::new(known))),
            spawn: None,
            faults,
            markers: Default::default(),
            liveness: Arc::default(),
        }
    }

    /// A transport that starts peer actors with `spawn` for the nodes it learns of; `book` is
    /// every address known at start (the seeds and this node).
    pub fn with_spawn(mut self, spawn: SpawnPeer, book: std::collections::BTreeMap<u64, String>) -> Self {
        self.spawn = Some(spawn);
        *self.book.write().unwrap_or_else(|p| p.into_inner()) = book;
        self
    }

    /// The ids the listener accepts frames from.
    pub fn known(&self) -> KnownPeers {
        self.known.clone()
    }

    /// Every Raft address this node knows, itself included.
    pub fn address_book(&self) -> std::collections::BTreeMap<u64, String> {
        self.book.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Learns node `id`'s Raft address (a member `__meta` recorded, or one a join answer named):
    /// starts its peer actor if it has none. An address change of a running peer is kept in the
    /// book but takes a restart of this node to follow. Returns true when a peer was started.
    pub fn learn(&self, id: u64, addr: &str) -> bool {
        if id == self.me || addr.is_empty() {
            return false;
        }
        self.book.write().unwrap_or_else(|p| p.into_inner()).insert(id, addr.to_string());
        let Some(spawn) = &self.spawn else { return false };
        let mut peers = self.peers.write().unwrap_or_else(|p| p.into_inner());
        if peers.contains_key(&id) {
            return false;
        }
        peers.insert(id, spawn(id, addr.to_string()));
        self.liveness.watch(id);
        let known: HashSet<u64> = peers.keys().copied().collect();
        *self.known.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(known);
        true
    }

    /// With this node's peer liveness (hibernation on or off).
    pub fn with_liveness(mut self, liveness: Arc<super::liveness::Liveness>) -> Self {
        for id in self.peer_ids() {
            liveness.watch(id);
        }
        self.liveness = liveness;
        self
    }

    /// This node's peer liveness.
    pub fn liveness(&self) -> &Arc<super::liveness::Liveness> {
        &self.liveness
    }

    /// The other nodes this transport reaches.
    pub fn peer_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.peers.read().unwrap_or_else(|p| p.into_inner()).keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    fn peer(&self, id: u64) -> Option<Addr<PeerActor>> {
        self.peers.read().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    /// A transport with no peers (standalone, unit tests).
    pub fn local(me: u64) -> Self {
        Transport::new(me, HashMap::new(), Arc::default())
    }

    /// This node's id.
    pub fn me(&self) -> u64 {
        self.me
    }

    /// Sends a repair request or copy to node `to` (see `frame::Repair`).
    pub fn send_repair(&self, to: u64, repair: super::frame::Repair) {
        if let Some(peer) = self.peer(to) {
            peer.do_send(PeerMsg::Repair(repair));
        }
    }

    /// Sends a snapshot chunk request or chunk to node `to` (see `frame::SnapshotChunk`).
    pub fn send_snapshot(&self, to: u64, msg: super::frame::SnapshotPeerMsg) {
        if let Some(peer) = self.peer(to) {
            peer.do_send(PeerMsg::Snapshot(msg));
        }
    }

    /// Sends a transaction marker request or answer to node `to`.
    pub fn send_txn_marker(&self, to: u64, msg: super::frame::TxnMarkerPeerMsg) {
        if let Some(peer) = self.peer(to) {
            peer.do_send(PeerMsg::TxnMarker(msg));
        }
    }

    /// Asks node `to` to write a marker; the answer arrives through [`Transport::marker_answered`]
    /// (None: the peer is unknown or the answer never came, e.g. the connection dropped it).
    pub fn request_txn_marker(
        &self,
        to: u64,
        mut req: super::frame::TxnMarkerRequest,
    ) -> Option<tokio::sync::oneshot::Receiver<super::frame::TxnMarkerResponse>> {
        let peer = self.peer(to)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let mut w = self.markers.lock().unwrap_or_else(|p| p.into_inner());
            w.next_id += 1;
            req.request_id = w.next_id;
            // Senders whose receiver gave up (timed out) are dropped here.
            w.waiting.retain(|_, s| !s.is_closed());
            w.waiting.insert(req.request_id, tx);
        }
        peer.do_send(PeerMsg::TxnMarker(super::frame::TxnMarkerPeerMsg::Request(req)));
        Some(rx)
    }

    /// Hands a peer's marker answer to the request waiting for it.
    pub fn marker_answered(&self, resp: super::frame::TxnMarkerResponse) {
        let waiter = self.markers.lock().unwrap_or_else(|p| p.into_inner()).waiting.remove(&resp.request_id);
        if let Some(w) = waiter {
            let _ = w.send(resp);
        }
    }

    /// Hands `msgs` of `group` to the peer actors of their destinations.
    pub fn send(&self, group: GroupId, msgs: Vec<Message>) {
        if msgs.is_empty() {
            return;
        }
        let mut by_node: HashMap<u64, Vec<Message>> = HashMap::new();
        for m in msgs {
            by_node.entry(m.to).or_default().push(m);
        }
        let peers = self.peers.read().unwrap_or_else(|p| p.into_inner());
        for (node, msgs) in by_node {
            if let Some(peer) = peers.get(&node) {
                peer.do_send(PeerMsg::Send(group, msgs));
            }
        }
    }
}

/// Messages held for a group that does not run here yet, per group.
const HELD_PER_GROUP: usize = 64;
/// How long held messages stay deliverable.
const HOLD_FOR: Duration = Duration::from_secs(5);

type Groups = Arc<HashMap<GroupId, Addr<PartitionActor>>>;
type Held = Vec<(std::time::Instant, Message)>;

/// Routes messages received from peers to their group's actor.
///
/// A new group starts on every replica when each applies the `__meta` entry that creates it, so
/// a peer's first vote request can arrive a moment before the group runs here. Such messages are
/// held briefly (a few per group, a few seconds) and delivered once the group starts, instead of
/// costing the group an election timeout; anything else for an unknown group is dropped.
#[derive(Clone)]
pub struct Router {
    meta: Addr<MetaActor>,
    groups: watch::Receiver<Groups>,
    held: Arc<std::sync::Mutex<HashMap<GroupId, Held>>>,
    /// Where transaction marker answers go (and requests' answers are sent from).
    transport: Option<Transport>,
    /// Kafka's replication throttles: the follower side counts catch-up bytes as they arrive.
    throttle: Option<Arc<super::throttle::ReplicationThrottle>>,
}

impl Router {
    pub fn new(meta: Addr<MetaActor>, groups: watch::Receiver<Groups>) -> Self {
        Router { meta, groups, held: Default::default(), transport: None, throttle: None }
    }

    /// Counts what arrives for follower-throttled groups (`peer::throttle`).
    pub fn with_throttle(mut self, throttle: Arc<super::throttle::ReplicationThrottle>) -> Self {
        self.throttle = Some(throttle);
        self
    }

    /// Routes transaction markers too, answering through `transport`.
    pub fn with_transport(mut self, transport: Transport) -> Self {
        self.transport = Some(transport);
        self
    }

    /// A frame from node `from` passed the listener's checks: it is alive.
    pub fn heard(&self, from: u64) {
        if let Some(t) = &self.transport {
            t.liveness.heard(from, std::time::Instant::now());
        }
    }

    /// A marker request from node `from` becomes `PartitionMsg::WriteTxnMarker` on the partition
    /// group (NOT_LEADER_OR_FOLLOWER if it does not run here); its answer goes back to `from`.
    /// A marker answer goes to the request waiting for it.
    pub fn route_txn_marker(&self, from: u64, msg: super::frame::TxnMarkerPeerMsg) {
        use super::frame::{TxnMarkerPeerMsg, TxnMarkerResponse};
        let Some(transport) = self.transport.clone() else { return };
        let req = match msg {
            TxnMarkerPeerMsg::Response(resp) => return transport.marker_answered(resp),
            TxnMarkerPeerMsg::Request(req) => req,
        };
        let answer = move |result: Result<i64, i16>| {
            let (error_code, offset) = match result {
                Ok(offset) => (0, offset),
                Err(code) => (i32::from(code), -1),
            };
            let resp = TxnMarkerResponse { request_id: req.request_id, error_code, offset };
            transport.send_txn_marker(from, TxnMarkerPeerMsg::Response(resp));
        };
        let Some(addr) = self.groups.borrow().get(&req.group).cloned() else {
            return answer(Err(crate::error::code::NOT_LEADER_OR_FOLLOWER));
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        addr.do_send(PartitionMsg::WriteTxnMarker {
            producer_id: req.producer_id,
            producer_epoch: i16::try_from(req.producer_epoch).unwrap_or(-1),
            commit: req.commit,
            coordinator_epoch: req.coordinator_epoch,
            reply: tx,
        });
        actix::spawn(async move {
            answer(match rx.await {
                Ok(Ok(offset)) => Ok(offset),
                Ok(Err(e)) => Err(e.kafka_code()),
                Err(_) => Err(crate::error::code::NOT_LEADER_OR_FOLLOWER),
            })
        });
    }

    /// Delivers a repair request or copy from node `from` to its partition group; false if this
    /// node does not host the group (`__meta` has no repairs).
    pub fn route_repair(&self, from: u64, repair: super::frame::Repair) -> bool {
        match self.groups.borrow().get(&repair.group) {
            Some(addr) => {
                addr.do_send(PartitionMsg::Repair { from, repair });
                true
            }
            None => false,
        }
    }

    /// Delivers a snapshot chunk request or chunk from node `from` to its partition group;
    /// false if this node does not host the group.
    pub fn route_snapshot(&self, from: u64, msg: super::frame::SnapshotPeerMsg) -> bool {
        match self.groups.borrow().get(&msg.group()) {
            Some(addr) => {
                addr.do_send(PartitionMsg::Snapshot { from, msg });
                true
            }
            None => false,
        }
    }

    /// A node asks to join (`peer::frame::JoinRequest`): `__meta` records it and answers with
    /// its configuration (`MetaMsg::Join`); no answer within 20 s is an error.
    pub async fn join(&self, req: super::frame::JoinRequest) -> super::frame::JoinReply {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.meta.do_send(MetaMsg::Join { req, reply: tx });
        match tokio::time::timeout(Duration::from_secs(20), rx).await {
            Ok(Ok(reply)) => reply,
            _ => super::frame::JoinReply {
                error: "the cluster did not record the node in time (no __meta leader?)".into(),
                retriable: true,
                ..Default::default()
            },
        }
    }

    /// Delivers one message; false if this node does not host the group (the message is held).
    pub fn route(&self, group: GroupId, msg: Message) -> bool {
        if group == META_GROUP {
            self.meta.do_send(MetaMsg::Raft(msg));
            return true;
        }
        if let Some(t) = &self.throttle {
            t.received(group, &msg, std::time::Instant::now());
        }
        if let Some(addr) = self.groups.borrow().get(&group) {
            addr.do_send(PartitionMsg::Raft(msg));
            return true;
        }
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let q = held.entry(group).or_default();
        if q.len() < HELD_PER_GROUP {
            q.push((std::time::Instant::now(), msg));
        }
        false
    }

    /// Delivers held messages to groups that have started; forgets old ones. Runs whenever the
    /// set of running groups changes (see [`Router::run_releases`]).
    pub fn release(&self) {
        let groups = self.groups.borrow().clone();
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.retain(|group, msgs| {
            msgs.retain(|(at, _)| at.elapsed() < HOLD_FOR);
            match groups.get(group) {
                Some(addr) => {
                    for (_, m) in msgs.drain(..) {
                        addr.do_send(PartitionMsg::Raft(m));
                    }
                    false
                }
                None => !msgs.is_empty(),
            }
        });
    }

    /// Releases held messages each time the running groups change, until the node stops.
    pub async fn run_releases(self) {
        let mut rx = self.groups.clone();
        while rx.changed().await.is_ok() {
            self.release();
        }
    }
}
