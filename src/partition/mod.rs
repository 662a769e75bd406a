//! Kafka partitions, each one Raft group.
//!
//! - [`core`]: the partition's Raft core and Kafka view (offset stamping, idempotence, reads);
//!   no actix, deterministic tests.
//! - [`actor`]: the actor shell: mailbox, tick/sync/retention wiring, produce and fetch waiters.
//! - [`apply`]: the apply actor: committed entries are applied off the group's actor.
//! - [`shared`]: the few atomics a partition publishes for lock-free reads (leader, HW, ...).
//! - [`producer_state`]: idempotent-producer bookkeeping.

pub mod actor;
pub mod apply;
pub mod core;
pub mod producer_state;
pub mod shared;

pub use actor::{PartitionActor, PartitionMsg};
pub use shared::PartitionShared;
