//! DescribeTransactions (key 65, KIP-664): the coordinator's state of each transactional id
//! (`kafka-transactions.sh describe`). Ids this node does not coordinate get NOT_COORDINATOR,
//! unknown ones TRANSACTIONAL_ID_NOT_FOUND, ids the principal may not DESCRIBE
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED.

use std::sync::Arc;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, RequestHeader, TopicName,
};

use super::txn_common::{check_id, coordinator};
use super::{sb, BrokerCtx};
use crate::security::acl::Operation;
use crate::txn::code;

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    _h: RequestHeader,
    req: DescribeTransactionsRequest,
) -> Option<DescribeTransactionsResponse> {
    let (_, serving) = coordinator(&ctx).await;
    let image = ctx.image();
    let states = req
        .transactional_ids
        .into_iter()
        .map(|id| {
            let s = TransactionState::default().with_transactional_id(id.clone()).with_producer_id(ProducerId(-1));
            let name = id.0.as_str();
            if let Err(e) = check_id(&ctx, Operation::Describe, name).and(serving) {
                return s.with_error_code(e);
            }
            let Some(t) = image.transactions.get(name) else {
                return s.with_error_code(code::TRANSACTIONAL_ID_NOT_FOUND);
            };
            s.with_transaction_state(sb(t.state().name()))
                .with_transaction_timeout_ms(t.timeout_ms)
                .with_transaction_start_time_ms(t.start_ms)
                .with_producer_id(ProducerId(t.producer_id))
                .with_producer_epoch(t.epoch())
                .with_topics(
                    t.partitions
                        .iter()
                        .map(|tp| {
                            TopicData::default()
                                .with_topic(TopicName(sb(tp.topic.clone())))
                                .with_partitions(tp.partitions.clone())
                        })
                        .collect(),
                )
        })
        .collect();
    Some(DescribeTransactionsResponse::default().with_transaction_states(states))
}
