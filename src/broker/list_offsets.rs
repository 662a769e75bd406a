//! ListOffsets (key 2): earliest (-2), latest (-1, the high watermark), max timestamp (-3),
//! or the first offset whose batch has a timestamp at or after the one given. With
//! `isolation_level` 1 (READ_COMMITTED, v2+) the last stable offset bounds them, as in Kafka.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, RequestHeader};
use tokio::sync::oneshot;

use super::BrokerCtx;
use crate::error::PartitionError;
use crate::partition::PartitionMsg;
use crate::security::acl::Operation;

pub async fn handle(ctx: Arc<BrokerCtx>, h: RequestHeader, req: ListOffsetsRequest) -> Option<ListOffsetsResponse> {
    let read_committed = h.request_api_version >= 2 && req.isolation_level == 1;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut parts = Vec::with_capacity(t.partitions.len());
        let refused = ctx.check_topic(Operation::Describe, &name).is_err();
        for p in t.partitions {
            let result = match ctx.partition(&name, p.partition_index) {
                _ if refused => Err(PartitionError::TopicAuthorizationFailed),
                // The internal offsets topic is an empty partition (broker/internal_topic.rs).
                None if super::internal_topic::is_internal(&name) && p.partition_index == 0 => Ok(((0, -1), 0)),
                None => Err(ctx.missing_partition(&name, p.partition_index)),
                Some(h) => {
                    let (tx, rx) = oneshot::channel();
                    h.addr.do_send(PartitionMsg::ListOffset { timestamp: p.timestamp, read_committed, reply: tx });
                    rx.await.unwrap_or(Err(PartitionError::ShuttingDown)).map(|r| (r, h.shared.term()))
                }
            };
            parts.push(match result {
                Ok(((offset, ts), term)) => ListOffsetsPartitionResponse::default()
                    .with_partition_index(p.partition_index)
                    .with_offset(offset)
                    .with_timestamp(ts)
                    .with_leader_epoch(if h.request_api_version >= 4 { term as i32 } else { -1 }),
                Err(e) => ListOffsetsPartitionResponse::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(e.kafka_code())
                    .with_offset(-1)
                    .with_timestamp(-1),
            });
        }
        topics.push(ListOffsetsTopicResponse::default().with_name(t.name).with_partitions(parts));
    }
    Some(ListOffsetsResponse::default().with_topics(topics))
}
