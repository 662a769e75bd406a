//! AddPartitionsToTxn (key 24): partitions join the producer's transaction. v0-v3 carry one
//! transaction from a client; v4+ (KIP-890) batch transactions and come from brokers (CLUSTER
//! ACTION), `verify_only` asking whether partitions are already in the transaction without
//! adding them. As Kafka: if any partition is unauthorized or unknown, none is added (the
//! others answer OPERATION_NOT_ATTEMPTED).

use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction};
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ProducerId, RequestHeader, TransactionalId,
};

use super::txn_common::{check_id, fenced_for, run};
use super::BrokerCtx;
use crate::security::acl::Operation;
use crate::txn::code;
use crate::txn::model::{AddPartitions, TxnOp, TxnTopic};

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    h: RequestHeader,
    req: AddPartitionsToTxnRequest,
) -> Option<AddPartitionsToTxnResponse> {
    let v = h.request_api_version;
    let resp = AddPartitionsToTxnResponse::default();
    if v < 4 {
        let txn = AddPartitionsToTxnTransaction::default()
            .with_transactional_id(req.v3_and_below_transactional_id)
            .with_producer_id(req.v3_and_below_producer_id)
            .with_producer_epoch(req.v3_and_below_producer_epoch)
            .with_topics(req.v3_and_below_topics);
        let result = one(&ctx, v, txn, true).await;
        return Some(resp.with_results_by_topic_v3_and_below(result.topic_results));
    }
    if let Err(e) = ctx.check_cluster(Operation::ClusterAction) {
        return Some(resp.with_error_code(e));
    }
    let mut results = Vec::with_capacity(req.transactions.len());
    for txn in req.transactions {
        results.push(one(&ctx, v, txn, false).await);
    }
    Some(resp.with_results_by_transaction(results))
}

/// One transaction's partitions: every partition gets `error`.
fn all(topics: &[AddPartitionsToTxnTopic], error: impl Fn(&str, i32) -> i16) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default().with_name(t.name.clone()).with_results_by_partition(
                t.partitions
                    .iter()
                    .map(|p| {
                        AddPartitionsToTxnPartitionResult::default()
                            .with_partition_index(*p)
                            .with_partition_error_code(error(t.name.0.as_str(), *p))
                    })
                    .collect(),
            )
        })
        .collect()
}

async fn one(ctx: &BrokerCtx, v: i16, txn: AddPartitionsToTxnTransaction, client: bool) -> AddPartitionsToTxnResult {
    let id: TransactionalId = txn.transactional_id.clone();
    let result =
        |topics| AddPartitionsToTxnResult::default().with_transactional_id(id.clone()).with_topic_results(topics);
    let ProducerId(producer_id) = txn.producer_id;
    let epoch = i32::from(txn.producer_epoch);
    let id_str = id.0.as_str();
    // Clients need WRITE on the transactional id; brokers (v4+) were checked for CLUSTER_ACTION.
    let checked = if client {
        check_id(ctx, Operation::Write, id_str)
    } else if id_str.is_empty() || id_str.len() > crate::txn::MAX_TRANSACTIONAL_ID_BYTES {
        Err(code::INVALID_REQUEST)
    } else {
        Ok(())
    };
    if let Err(e) = checked {
        return result(all(&txn.topics, |_, _| e));
    }
    if txn.verify_only {
        let image = ctx.image();
        let topics = txn
            .topics
            .iter()
            .map(|t| {
                let codes = crate::txn::core::verify(
                    &image.transactions,
                    id_str,
                    producer_id,
                    epoch,
                    t.name.0.as_str(),
                    &t.partitions,
                );
                AddPartitionsToTxnTopicResult::default().with_name(t.name.clone()).with_results_by_partition(
                    t.partitions
                        .iter()
                        .zip(codes)
                        .map(|(p, e)| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(*p)
                                .with_partition_error_code(e)
                        })
                        .collect(),
                )
            })
            .collect();
        return result(topics);
    }
    // Authorization and existence first: any failure and nothing is added.
    let image = ctx.image();
    let refused = |topic: &str, p: i32| -> Option<i16> {
        if client {
            if let Err(e) = ctx.check_topic(Operation::Write, topic) {
                return Some(e);
            }
        }
        let exists = image.topics.get(topic).is_some_and(|t| p >= 0 && (p as usize) < t.partitions.len());
        (!exists).then_some(code::UNKNOWN_TOPIC_OR_PARTITION)
    };
    let any_refused = txn.topics.iter().any(|t| t.partitions.iter().any(|p| refused(t.name.0.as_str(), *p).is_some()));
    if any_refused {
        return result(all(&txn.topics, |t, p| refused(t, p).unwrap_or(code::OPERATION_NOT_ATTEMPTED)));
    }
    let op = TxnOp::AddPartitions(AddPartitions {
        transactional_id: id_str.to_string(),
        producer_id,
        producer_epoch: epoch,
        partitions: txn
            .topics
            .iter()
            .map(|t| TxnTopic { topic: t.name.0.to_string(), partitions: t.partitions.clone() })
            .collect(),
    });
    let error = match run(ctx, op).await {
        Ok(r) => fenced_for(r.error, v, 2),
        Err(e) => e,
    };
    result(all(&txn.topics, |_, _| error))
}
