//! Helpers shared by the transaction APIs: asking the transaction coordinator actor, the
//! transactional-id checks every API makes first (length, ACL), and Kafka's mapping of
//! PRODUCER_FENCED to INVALID_PRODUCER_EPOCH for clients too old to know it.

use tokio::sync::oneshot;

use super::BrokerCtx;
use crate::security::acl::{Operation, ResourceType};
use crate::txn::code;
use crate::txn::model::{TxnOp, TxnReply};
use crate::txn::TxnMsg;

/// Proposes a transition through the coordinator: its reply, or the error code (not the
/// coordinator, no `__meta` leader, ...).
pub async fn run(ctx: &BrokerCtx, op: TxnOp) -> Result<TxnReply, i16> {
    let (tx, rx) = oneshot::channel();
    ctx.txn.do_send(TxnMsg::Request { op, reply: tx });
    rx.await.unwrap_or(Err(code::COORDINATOR_NOT_AVAILABLE))
}

/// Whether this node coordinates transactions now (and the `__meta` leader, 0: none).
pub async fn coordinator(ctx: &BrokerCtx) -> (u64, Result<(), i16>) {
    let (tx, rx) = oneshot::channel();
    ctx.txn.do_send(TxnMsg::Coordinator { reply: tx });
    rx.await.unwrap_or((0, Err(code::COORDINATOR_NOT_AVAILABLE)))
}

/// The checks on a transactional id before anything else: not empty, not longer than
/// [`crate::txn::MAX_TRANSACTIONAL_ID_BYTES`] (INVALID_REQUEST), and `op` allowed on it
/// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
pub fn check_id(ctx: &BrokerCtx, op: Operation, id: &str) -> Result<(), i16> {
    if id.is_empty() || id.len() > crate::txn::MAX_TRANSACTIONAL_ID_BYTES {
        return Err(code::INVALID_REQUEST);
    }
    ctx.check(op, ResourceType::TransactionalId, id)
}

/// PRODUCER_FENCED as versions below `since` know it: INVALID_PRODUCER_EPOCH.
pub fn fenced_for(error: i16, version: i16, since: i16) -> i16 {
    if error == code::PRODUCER_FENCED && version < since {
        code::INVALID_PRODUCER_EPOCH
    } else {
        error
    }
}
