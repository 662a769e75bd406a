//! Consumer groups: the classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup)
//! and the checks in front of committed offsets.
//!
//! - [`types`]: settings, requests, responses and effects of the state machine.
//! - [`state`]: one group's state machine, a plain struct driven by `now` (no actix, no clock);
//!   its requests after the join and its timers are in `session.rs`, its reports and `__meta`
//!   snapshot in `snapshot.rs`.
//! - [`coordinator`]: all groups of the node, member ids, group-level checks, the tick.
//! - [`expiry`]: which committed offsets expire (`offsets.retention`), a plain function.
//! - [`actor`]: the [`GroupCoordinator`] actor: parked requests, the 100 ms timer.
//!
//! Committed offsets are not kept here: they live in the `__meta` state (see
//! `meta::state::MetaState::offsets`) so that they are durable and follow the `__meta` leader.
//! Each group's membership is also stored in `__meta` after every rebalance
//! (`MetaState::consumer_groups`), and read back when the coordinator meets a group it does not
//! have in memory (after a restart): members keep their ids, generation and assignment.

pub mod actor;
pub mod coordinator;
pub mod expiry;
mod session;
mod snapshot;
pub mod state;
pub mod types;

#[cfg(test)]
mod tests;

pub use actor::{GroupCoordinator, GroupMsg};
pub use types::*;
