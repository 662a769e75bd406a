//! Raft plumbing shared by every group: the partition groups and the `__meta` group.
//!
//! - [`storage`]: raft-rs `Storage` over the partition log (the Raft log *is* the partition log).
//! - [`core`]: the Ready loop around `RawNode`, with the Ready contract; no actix.
//! - [`syncer`]: the group-commit fsync worker shared by all groups of a node.
//! - [`ticker`]: the node-wide tick actor.

pub mod core;
pub mod storage;
pub mod syncer;
pub mod ticker;

/// Raft group ids. `__meta` is group 0; partition groups get ids from the metadata state.
pub type GroupId = u64;
/// The id of the `__meta` group.
pub const META_GROUP: GroupId = 0;

/// Per-node settings every group is built with (derived from the configuration by the node).
#[derive(Debug, Clone)]
pub struct GroupSettings {
    pub node_id: u64,
    pub heartbeat_tick: usize,
    pub election_tick: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub durability: core::Durability,
    pub segment_bytes: u64,
    pub index_interval_bytes: u64,
    pub max_message_bytes: usize,
}

impl GroupSettings {
    /// Settings for tests: node 1, 10 heartbeat ticks to an election, fsync durability.
    pub fn for_tests() -> Self {
        GroupSettings {
            node_id: 1,
            heartbeat_tick: 1,
            election_tick: 10,
            pre_vote: true,
            check_quorum: true,
            durability: core::Durability::Fsync,
            segment_bytes: 1024 * 1024,
            index_interval_bytes: 4096,
            max_message_bytes: 1024 * 1024,
        }
    }

    /// The raft-rs configuration for a group whose state machine starts at `applied`.
    pub fn raft_config(&self, applied: u64) -> ::raft::Config {
        ::raft::Config {
            id: self.node_id,
            election_tick: self.election_tick,
            heartbeat_tick: self.heartbeat_tick,
            applied,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            check_quorum: self.check_quorum,
            pre_vote: self.pre_vote,
            max_committed_size_per_ready: 16 * 1024 * 1024,
            ..Default::default()
        }
    }
}
