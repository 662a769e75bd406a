//! Kafka partitions, each one Raft group.
//!
//! - [`core`]: the partition's Raft core and Kafka view (offset stamping, idempotence, reads);
//!   no actix, deterministic tests.
//! - [`actor`]: the actor: mailbox, tick and retention wiring, the partition's policy for the
//!   group shell (`raft::shell`), repair requests (`actor::repair`), and the reassignment it drives
//!   as leader (`actor::reassign`: `raft::membership` steps, reports to `__meta`).
//! - [`create`]: the new replicas of a CreateTopics, created as a batch with one sync round.
//! - [`waiters`]: the produce acknowledgements waiting for the high watermark; no actix.
//! - [`delete_records`]: DeleteRecords through the group (its entry, its apply, its waiters).
//! - [`apply`]: the apply actor: committed entries are applied off the group's actor.
//! - [`shared`]: the few atomics a partition publishes for lock-free reads (leader, HW, ...).
//! - [`producer_state`]: idempotent- and transactional-producer bookkeeping.
//! - [`txn`]: transactions on the partition side: markers, the aborted index, the last stable
//!   offset; `core_txn` (inside [`core`]) writes markers and serves read_committed reads, and
//!   `txn_index_files` (inside [`core`], run by `partition/txn_index_io.rs`) keeps the sealed
//!   segments' `.txnindex` files.
//! - [`cleaning`]: log compaction and time-based rolls on the partition side (plans runs for the
//!   node's cleaner thread, installs what it cleaned, moves the raft start); no actix.
//! - [`snapshot_receiver`]: the follower's side of a snapshot transfer that carries segment
//!   files (chunk sequencing, duplicates, time-outs); no actix. Its shell, and the serving of
//!   chunks on the leader, is `actor::snapshot`.

pub mod actor;
pub mod apply;
pub mod cleaning;
pub mod core;
pub mod create;
pub mod delete_records;
pub mod producer_state;
pub mod shared;
pub mod snapshot_receiver;
pub mod txn;
pub mod waiters;

pub use actor::{PartitionActor, PartitionMsg};
pub use shared::PartitionShared;
