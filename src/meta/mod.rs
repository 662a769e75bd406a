//! Cluster metadata, kept by the `__meta` Raft group.
//!
//! - [`command`]: the log entries of `__meta` (prost messages).
//! - [`state`]: the metadata state machine, a plain struct with deterministic tests.
//! - [`topic_config`]: Kafka's topic configs (the table, validation, effective values).
//! - [`assignment`]: Kafka's checks of manual replica assignments (CreateTopics, CreatePartitions).
//! - [`balancer`]: the automatic leader balancer's core (which partitions move back to their
//!   preferred replica), run by the actor on the `__meta` leader.
//! - [`broker_config`]: the dynamic broker configs (Kafka's replication throttle rates) and
//!   what they and the topics' throttled-replica lists mean for one node.
//! - [`reassign`]: partition reassignment state (target, original, the leader's conf state),
//!   its commands and how they apply.
//! - [`members`]: the cluster's nodes (id, Raft and Kafka address), join and removal, and the
//!   planner of `__meta`'s voters and learners.
//! - [`snapshot`]: the whole state as one versioned prost message, its file, and when to take one.
//! - [`actor`]: the metadata actor, which runs the `__meta` group, answers proposals once they
//!   are applied, and publishes each new [`state::MetaState`] image to readers.

pub mod actor;
pub mod assignment;
pub mod balancer;
pub mod broker_config;
pub mod command;
pub mod members;
pub mod reassign;
pub mod snapshot;
pub mod state;
#[cfg(test)]
pub mod test_image;
pub mod topic_config;
mod topic_config_table;

pub use actor::{MetaActor, MetaMsg};
pub use state::{MetaState, TopicInfo};
