//! The transport handle and the router.
//!
//! [`Transport`] is what a group holds to send Raft messages: `send` groups the messages by
//! destination node and `do_send`s them to that node's [`PeerActor`]; it never waits. [`Router`]
//! is the other direction: it hands each message received from a peer to the actor of its group.
//! [`Faults`] lets tests drop or delay traffic to chosen peers and cut nodes apart; everything is
//! off by default.

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
    pub(crate) fn dropping_to(&self, node: u64) -> bool {
        self.state.read().expect("faults lock").drop_to.contains(&node)
    }
    pub(crate) fn dropping_from(&self, node: u64) -> bool {
        self.state.read().expect("faults lock").drop_from.contains(&node)
    }
    pub(crate) fn delay(&self, node: u64) -> Option<Duration> {
        self.state.read().expect("faults lock").delay_to.get(&node).copied()
    }
}

/// Sends Raft messages to peers without waiting.
#[derive(Clone)]
pub struct Transport {
    me: u64,
    peers: Arc<HashMap<u64, Addr<PeerActor>>>,
    pub faults: Arc<Faults>,
}

impl Transport {
    pub fn new(me: u64, peers: HashMap<u64, Addr<PeerActor>>, faults: Arc<Faults>) -> Self {
        Transport { me, peers: Arc::new(peers), faults }
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
        if let Some(peer) = self.peers.get(&to) {
            peer.do_send(PeerMsg::Repair(repair));
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
        for (node, msgs) in by_node {
            if let Some(peer) = self.peers.get(&node) {
                peer.do_send(PeerMsg::Send(group, msgs));
            }
        }
    }
}

/// Routes messages received from peers to their group's actor.
#[derive(Clone)]
pub struct Router {
    meta: Addr<MetaActor>,
    groups: watch::Receiver<Arc<HashMap<GroupId, Addr<PartitionActor>>>>,
}

impl Router {
    pub fn new(meta: Addr<MetaActor>, groups: watch::Receiver<Arc<HashMap<GroupId, Addr<PartitionActor>>>>) -> Self {
        Router { meta, groups }
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

    /// Delivers one message; false if this node does not host the group.
    pub fn route(&self, group: GroupId, msg: Message) -> bool {
        if group == META_GROUP {
            self.meta.do_send(MetaMsg::Raft(msg));
            return true;
        }
        match self.groups.borrow().get(&group) {
            Some(addr) => {
                addr.do_send(PartitionMsg::Raft(msg));
                true
            }
            None => false,
        }
    }
}
