//! Test support for the `RaftCore` unit tests: a replica of a three-voter group over a real log
//! in a temporary directory, messages made by hand, and a replica made leader by its peers'
//! votes, all without a network or an actor.

use raft::eraftpb::{Entry, Message, MessageType};
use slog::Logger;

use crate::log::{LogKind, LogOptions};
use crate::raft::core::{Durability, RaftCore, StateMachine};
use crate::raft::storage::GroupStorage;
use crate::raft::GroupSettings;

/// A state machine that applies nothing.
pub struct Sm;
impl StateMachine for Sm {
    fn apply(&mut self, _: &Entry) {}
}

/// Replica `id` of a group of voters 1, 2, 3.
pub fn core(dir: &std::path::Path, id: u64) -> RaftCore<Sm> {
    let logger = Logger::root(slog::Discard, slog::o!());
    let opts = LogOptions { segment_bytes: 1 << 20, index_interval_bytes: 4096, kind: LogKind::Opaque };
    let (mut storage, _) = GroupStorage::open(dir, opts, &logger).unwrap();
    storage.initialize_voters(&[1, 2, 3]).unwrap();
    let cfg = GroupSettings { node_id: id, ..GroupSettings::for_tests() }.raft_config(0);
    RaftCore::new(7, &cfg, storage, Sm, Durability::Fsync, logger).unwrap()
}

pub fn msg(t: MessageType, from: u64, to: u64, term: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(t);
    (m.from, m.to, m.term) = (from, to, term);
    m
}

/// Node 1 wins an election with node 2's (pre-)votes.
pub fn leader(dir: &std::path::Path) -> RaftCore<Sm> {
    let mut c = core(dir, 1);
    c.campaign().unwrap();
    c.step(msg(MessageType::MsgRequestPreVoteResponse, 2, 1, 1)).unwrap();
    c.step(msg(MessageType::MsgRequestVoteResponse, 2, 1, 1)).unwrap();
    assert!(c.is_leader());
    c
}
