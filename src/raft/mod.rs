//! Raft plumbing shared by every group: the partition groups and the `__meta` group.
//!
//! - [`storage`]: raft-rs `Storage` over the partition log (the Raft log *is* the partition log).
//! - [`core`]: the Ready loop around `RawNode`, with the Ready contract; no actix.
//! - [`shell`]: the group shell every group's actor embeds: the Ready loop's driving, the
//!   writer's answers, storage failure → poison → barrier → timed reopen; no actix.
//! - [`recovery`]: the pure failure/recovery state machine the shell follows (generation,
//!   durable index, reopen backoff).
//! - [`write_job`]: the writes of one Ready and the messages that wait for them.
//! - [`writer`]: the node's disk writer thread: carries out every group's queued writes in order.
//! - [`syncer`]: the group-commit fsync stage behind the writer, shared by all groups of a node.
//! - [`disk_error`]: the typed error both report ([`disk_error::DiskError`]: op, path, kind)
//!   and its Kafka error code.
//! - [`ticker`]: the node-wide tick actor; it skips quiet groups.
//! - [`first_campaign`]: new groups' first elections, a bounded number at once per node.
//! - [`hibernate`]: when an idle group goes quiet and what wakes it (`raft.hibernate`).
//! - [`quiet_log`]: the filtered logger raft-rs gets for a partition group.
//! - [`pollers`]: the poller threads the partition groups are sharded over (`raft.threads`).
//! - [`membership`]: the pure planner of a group's membership changes (learners, one joint
//!   ConfChangeV2, leaving it, leader transfer first).

pub mod core;
pub mod disk_error;
pub mod first_campaign;
pub mod hibernate;
pub mod membership;
pub mod pollers;
pub mod quiet_log;
pub mod recovery;
pub mod shell;
pub mod storage;
pub mod syncer;
pub mod ticker;
pub mod write_job;
pub mod writer;

/// Raft group ids. `__meta` is group 0; partition groups get ids from the metadata state.
pub type GroupId = u64;
/// The id of the `__meta` group.
pub const META_GROUP: GroupId = 0;

/// The leader's CheckQuorum period in ticks for an election timeout of `election_tick` ticks:
/// half of it, and always more than one heartbeat period (raft-rs requires
/// `heartbeat_tick < election_tick`, and a check must see at least one round of heartbeat
/// responses). A leader cut off from its quorum therefore steps down at the first check that
/// finds no follower heard from in a whole period: within `2 × quorum_check_tick ≤ T` ticks of
/// losing it, before any follower (timeout `[T, 2T)`) can start an election.
pub fn quorum_check_tick(election_tick: usize, heartbeat_tick: usize) -> usize {
    (election_tick / 2).max(heartbeat_tick.saturating_add(1))
}

/// Per-node settings every group is built with (derived from the configuration by the node).
#[derive(Debug, Clone)]
pub struct GroupSettings {
    pub node_id: u64,
    pub heartbeat_tick: usize,
    /// The configured election timeout in ticks (T). Followers and candidates time out after a
    /// random count in `[T, 2T)`; a leader checks its quorum every [`quorum_check_tick`] ticks.
    pub election_tick: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub durability: core::Durability,
    pub segment_bytes: u64,
    pub index_interval_bytes: u64,
    pub max_message_bytes: usize,
    /// Most append messages in flight to one follower (`raft.max-inflight-msgs`).
    pub max_inflight_msgs: usize,
    /// Most bytes of entries in one append message (`raft.max-size-per-msg`); raft-rs always
    /// sends at least one entry, however large.
    pub max_size_per_msg: u64,
    /// Most bytes of one snapshot chunk (`raft.snapshot-chunk-bytes`).
    pub snapshot_chunk_bytes: u64,
    /// Fault injection (`faults.replay-delay`): a delay of each round of a partition's replay
    /// at open that applies record batches.
    pub replay_delay: std::time::Duration,
    /// The replay's thread niceness (`raft.replay-nice`, `log::priority`).
    pub replay_nice: i32,
    /// Idle partition groups go quiet (`raft.hibernate`, `raft::hibernate`).
    pub hibernate: bool,
    /// The tick period (a woken follower turns its leader node's silence into ticks).
    pub tick: std::time::Duration,
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
            max_inflight_msgs: 256,
            max_size_per_msg: 1024 * 1024,
            snapshot_chunk_bytes: 1024 * 1024,
            replay_delay: std::time::Duration::ZERO,
            replay_nice: 0,
            hibernate: false,
            tick: std::time::Duration::from_millis(50),
        }
    }

    /// The raft-rs configuration for a group whose state machine starts at `applied`.
    ///
    /// raft-rs uses its `election_tick` for two things: the base of the randomized follower
    /// timeout (overridden here by `min_election_tick`/`max_election_tick` = `[T, 2T)`) and the
    /// period of the leader's CheckQuorum (and of a follower's leader lease). A leader that
    /// checked its quorum only every T ticks could stay leader for almost 2T after it lost its
    /// quorum; checking every T/2 ([`quorum_check_tick`]) bounds that at T.
    pub fn raft_config(&self, applied: u64) -> ::raft::Config {
        ::raft::Config {
            id: self.node_id,
            election_tick: quorum_check_tick(self.election_tick, self.heartbeat_tick),
            min_election_tick: self.election_tick,
            max_election_tick: self.election_tick.saturating_mul(2),
            heartbeat_tick: self.heartbeat_tick,
            applied,
            max_size_per_msg: self.max_size_per_msg,
            max_inflight_msgs: self.max_inflight_msgs,
            check_quorum: self.check_quorum,
            pre_vote: self.pre_vote,
            max_committed_size_per_ready: 16 * 1024 * 1024,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_check_is_half_the_election_timeout_and_above_the_heartbeat() {
        // 50 ms ticks: heartbeat 150 ms = 3 ticks, election 3 s = 60 ticks.
        assert_eq!(quorum_check_tick(60, 3), 30);
        // Odd counts round down; the check never falls to the heartbeat period or below.
        assert_eq!(quorum_check_tick(61, 3), 30);
        assert_eq!(quorum_check_tick(5, 3), 4);
        assert_eq!(quorum_check_tick(2, 1), 2);
        for t in 2..200 {
            for hb in 1..t {
                let q = quorum_check_tick(t, hb);
                assert!(q > hb && q <= t, "t {t} hb {hb} q {q}");
            }
        }
    }

    #[test]
    fn raft_config_randomizes_in_t_2t_and_checks_quorum_every_half_t() {
        let s = GroupSettings { heartbeat_tick: 3, election_tick: 60, ..GroupSettings::for_tests() };
        let c = s.raft_config(0);
        c.validate().expect("raft-rs accepts the derived configuration");
        assert_eq!((c.min_election_tick, c.max_election_tick), (60, 120));
        assert_eq!(c.election_tick, 30);
        assert_eq!(c.heartbeat_tick, 3);
        assert!(c.pre_vote && c.check_quorum);
    }

    #[test]
    fn raft_config_takes_the_configured_message_limits() {
        let s = GroupSettings { max_inflight_msgs: 7, max_size_per_msg: 12_345, ..GroupSettings::for_tests() };
        let c = s.raft_config(0);
        c.validate().expect("raft-rs accepts the configured limits");
        assert_eq!(c.max_inflight_msgs, 7);
        assert_eq!(c.max_size_per_msg, 12_345);
    }
}
