//! Kafka transactions: the transaction coordinator (KIP-98, KIP-360, KIP-447, KIP-890 part 1).
//!
//! Transaction state is part of the `__meta` state machine, so it is replicated, snapshotted and
//! survives failover; the coordinator runs on the `__meta` leader (see `docs/architecture.md`,
//! "Transactions: the coordinator").
//!
//! - [`model`]: per transactional id state ([`model::TxnMeta`]) and the `__meta` commands.
//! - [`core`]: Kafka's transitions and error codes (pure; applied by `meta::state`), and the
//!   timers' decisions (timed-out transactions, expired ids).
//! - [`markers`]: where COMMIT/ABORT markers go ([`markers::MarkerSink`]), and the real sink.
//! - [`actor`]: the coordinator actor (shell): requests in, `__meta` proposals and marker
//!   delivery out, timers as messages.

pub mod actor;
pub mod core;
pub mod markers;
pub mod model;

pub use actor::{TxnCoordinator, TxnMsg};

/// Kafka error codes of transactions (Kafka's `Errors`).
pub mod code {
    pub use crate::error::code::*;
    pub const INVALID_TXN_STATE: i16 = 48;
    pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
    pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    pub const TRANSACTION_COORDINATOR_FENCED: i16 = 52;
    pub const OPERATION_NOT_ATTEMPTED: i16 = 55;
    pub const PRODUCER_FENCED: i16 = 90;
    pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
    pub const TRANSACTION_ABORTABLE: i16 = 120;
}

/// The longest transactional id accepted (bytes): Kafka's limit is the request size; chronik
/// takes the largest id a non-flexible request version can carry (an INT16-length STRING), so
/// one transaction's `__meta` state stays small. Longer: INVALID_REQUEST, nothing written.
pub const MAX_TRANSACTIONAL_ID_BYTES: usize = i16::MAX as usize;

#[cfg(test)]
mod core_tests;
