//! ListTransactions (key 66, KIP-664): the transactions this node coordinates, filtered by
//! state, producer id and (v1) minimum running time, and by what the principal may DESCRIBE.
//! Admin clients ask every broker and merge: a node that does not coordinate answers an empty
//! list. Unknown state names are echoed in `unknown_state_filters`.

use std::sync::Arc;

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, RequestHeader, TransactionalId,
};

use super::txn_common::coordinator;
use super::{sb, BrokerCtx};
use crate::security::acl::{Operation, ResourceType};
use crate::txn::code;
use crate::txn::model::TxnState;

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    h: RequestHeader,
    req: ListTransactionsRequest,
) -> Option<ListTransactionsResponse> {
    let resp = ListTransactionsResponse::default();
    let (_, serving) = coordinator(&ctx).await;
    match serving {
        Ok(()) => {}
        Err(code::NOT_COORDINATOR) => return Some(resp),
        Err(e) => return Some(resp.with_error_code(e)),
    }
    let mut states = Vec::new();
    let mut unknown = Vec::new();
    for f in &req.state_filters {
        match TxnState::from_name(f.as_str()) {
            Some(s) => states.push(s),
            None => unknown.push(f.clone()),
        }
    }
    let duration = if h.request_api_version >= 1 { req.duration_filter } else { -1 };
    let now = ctx.clock.unix_millis();
    let image = ctx.image();
    let listed = image
        .transactions
        .values()
        .filter(|t| states.is_empty() || states.contains(&t.state()))
        .filter(|t| req.producer_id_filters.is_empty() || req.producer_id_filters.contains(&ProducerId(t.producer_id)))
        .filter(|t| duration < 0 || now.saturating_sub(t.start_ms) > duration)
        .filter(|t| ctx.visible(Operation::Describe, ResourceType::TransactionalId, &t.transactional_id))
        .map(|t| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(sb(t.transactional_id.clone())))
                .with_producer_id(ProducerId(t.producer_id))
                .with_transaction_state(sb(t.state().name()))
        })
        .collect();
    Some(resp.with_unknown_state_filters(unknown).with_transaction_states(listed))
}
