//! The admin HTTP API, on its own listener (`admin.listen`) apart from the Kafka port: metrics,
//! health and readiness, this node's and the whole cluster's status, one partition's status,
//! membership changes (`members`: add-node, remove-node, decommission), and (only with
//! `faults.runtime = true`) fault injection. `server` runs the listener, `routes` maps requests
//! to answers, `status` gathers what the actors report, and `client` is the blocking caller
//! behind `chronik-server cluster status|faults|add-node|remove-node|decommission`.

pub mod client;
pub mod members;
pub mod routes;
pub mod server;
pub mod status;

pub use client::{cluster_status, fetch_status, member_change, render, send_faults, AdminError};
pub use server::AdminServer;
pub use status::{AdminState, FaultChange};
