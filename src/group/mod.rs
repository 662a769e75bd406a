//! Consumer groups: the classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup)
//! and the checks in front of committed offsets.
//!
//! - [`types`]: settings, requests, responses and effects of the state machine.
//! - [`state`]: one group's state machine, a plain struct driven by `now` (no actix, no clock).
//! - [`coordinator`]: all groups of the node, member ids, group-level checks, the tick.
//! - [`actor`]: the [`GroupCoordinator`] actor: parked requests, the 100 ms timer.
//!
//! Committed offsets are not kept here: they live in the `__meta` state (see
//! `meta::state::MetaState::offsets`) so that they are durable and follow the `__meta` leader.
//! Group membership is kept in memory only; after a restart members rejoin (their heartbeats
//! get UNKNOWN_MEMBER_ID) and resume from the committed offsets.

pub mod actor;
pub mod coordinator;
pub mod state;
pub mod types;

#[cfg(test)]
mod tests;

pub use actor::{GroupCoordinator, GroupMsg};
pub use types::*;
