//! Raft traffic between nodes.
//!
//! - [`frame`]: the prost frame that carries the Raft messages of every group between a pair of
//!   nodes, and its length-prefixed codec.
//! - [`actor`]: one [`actor::PeerActor`] per remote node: owns the TCP connection (reconnects with
//!   backoff), a bounded queue, and writes every queued message in one frame per flush.
//! - [`transport`]: the handle groups use to hand messages over without waiting, with fault
//!   injection (drop, delay, partition) that tests switch on.
//! - [`join`]: a new node's join request to a running member, and the address book it keeps.
//! - [`spawn`]: starts the peer actor of a node the transport learns of.
//! - [`listener`]: accepts peer connections, validates frames and routes each message to its group.
//! - [`throttle`]: Kafka's replication throttles: the node-wide quotas and what each link holds back.
//! - [`liveness`]: when each peer node was last heard from (hibernation's node-level heartbeat).

pub mod actor;
pub mod frame;
pub mod join;
pub mod listener;
pub mod liveness;
pub mod spawn;
pub mod throttle;
pub mod transport;

pub use transport::{Faults, Router, Transport};
