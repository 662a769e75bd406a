//! Raft traffic between nodes.
//!
//! - [`frame`]: the prost frame that carries the Raft messages of every group between a pair of
//!   nodes, and its length-prefixed codec.
//! - [`actor`]: one [`actor::PeerActor`] per remote node: owns the TCP connection (reconnects with
//!   backoff), a bounded queue, and writes every queued message in one frame per flush.
//! - [`transport`]: the handle groups use to hand messages over without waiting, with fault
//!   injection (drop, delay, partition) that tests switch on.
//! - [`listener`]: accepts peer connections, validates frames and routes each message to its group.
//! - [`liveness`]: when each peer node was last heard from (hibernation's node-level heartbeat).

pub mod actor;
pub mod frame;
pub mod listener;
pub mod liveness;
pub mod transport;

pub use transport::{Faults, Router, Transport};
