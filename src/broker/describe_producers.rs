//! DescribeProducers (key 61, v0): per partition, the producers its leader knows (id, epoch,
//! last sequence, last timestamp, coordinator epoch, start offset of the open transaction or
//! -1), as `kafka-transactions.sh describe-producers` shows them (`partition::core_txn`).
//!
//! Kafka's errors: READ on the topic refused TOPIC_AUTHORIZATION_FAILED; an unknown topic or
//! partition UNKNOWN_TOPIC_OR_PARTITION; a node that does not lead it NOT_LEADER_OR_FOLLOWER.

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId, RequestHeader};
use tokio::sync::oneshot;

use super::BrokerCtx;
use crate::error::PartitionError;
use crate::partition::PartitionMsg;
use crate::security::acl::Operation;

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    _h: RequestHeader,
    req: DescribeProducersRequest,
) -> Option<DescribeProducersResponse> {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.0.to_string();
        let denied = ctx.check_topic(Operation::Read, &name).err();
        let mut parts = Vec::with_capacity(t.partition_indexes.len());
        for p in t.partition_indexes {
            let result = match ctx.partition(&name, p) {
                _ if denied.is_some() => Err(PartitionError::TopicAuthorizationFailed),
                None => Err(ctx.missing_partition(&name, p)),
                Some(h) => {
                    let (tx, rx) = oneshot::channel();
                    h.addr.do_send(PartitionMsg::DescribeProducers { reply: tx });
                    rx.await.unwrap_or(Err(PartitionError::ShuttingDown))
                }
            };
            let r = PartitionResponse::default().with_partition_index(p);
            parts.push(match result {
                Ok(producers) => r.with_active_producers(
                    producers
                        .iter()
                        .map(|s| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(s.producer_id))
                                .with_producer_epoch(i32::from(s.producer_epoch))
                                .with_last_sequence(s.last_sequence)
                                .with_last_timestamp(s.last_timestamp)
                                .with_coordinator_epoch(s.coordinator_epoch)
                                .with_current_txn_start_offset(s.current_txn_start_offset)
                        })
                        .collect(),
                ),
                Err(e) => r.with_error_code(e.kafka_code()),
            });
        }
        topics.push(TopicResponse::default().with_name(t.name).with_partitions(parts));
    }
    Some(DescribeProducersResponse::default().with_topics(topics))
}
