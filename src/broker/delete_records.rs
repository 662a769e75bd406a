//! DeleteRecords (key 21): moves each partition's log start offset through the partition's Raft
//! group (`partition/delete_records.rs`) and answers the new low watermark per partition.
//!
//! Kafka's errors: an offset past the high watermark (or negative, other than -1 for the high
//! watermark) is OFFSET_OUT_OF_RANGE; a node that does not lead the partition answers
//! NOT_LEADER_OR_FOLLOWER; an unknown topic or partition UNKNOWN_TOPIC_OR_PARTITION; a topic
//! whose `cleanup.policy` does not include `delete` POLICY_VIOLATION; no answer within the
//! request's `timeout_ms` REQUEST_TIMED_OUT. A failed partition changes nothing. Partitions are
//! handled concurrently.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, RequestHeader};
use tokio::sync::oneshot;

use super::BrokerCtx;
use crate::error::{code, PartitionError};
use crate::partition::PartitionMsg;
use crate::security::acl::Operation;

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    _h: RequestHeader,
    req: DeleteRecordsRequest,
) -> Option<DeleteRecordsResponse> {
    let timeout = Duration::from_millis(req.timeout_ms.max(0) as u64);
    let image = ctx.image();
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let ctx = ctx.clone();
        let name = t.name.0.to_string();
        let policy = image.topics.get(&name).and_then(|i| i.configs.get("cleanup.policy").cloned());
        let deletable = policy.is_none_or(|p| p.split(',').any(|s| s.trim() == "delete"));
        // Kafka: DELETE on the topic.
        let denied = ctx.check_topic(Operation::Delete, &name).err();
        let parts = t.partitions.into_iter().map(|p| {
            let ctx = ctx.clone();
            let name = name.clone();
            async move {
                let result = match ctx.partition(&name, p.partition_index) {
                    _ if denied.is_some() => Err(denied.unwrap_or(code::TOPIC_AUTHORIZATION_FAILED)),
                    None => Err(ctx.missing_partition(&name, p.partition_index).kafka_code()),
                    Some(_) if !deletable => Err(code::POLICY_VIOLATION),
                    Some(h) => {
                        let (tx, rx) = oneshot::channel();
                        h.addr.do_send(PartitionMsg::DeleteRecords { offset: p.offset, reply: tx });
                        match tokio::time::timeout(timeout, rx).await {
                            Err(_) => Err(code::REQUEST_TIMED_OUT),
                            Ok(r) => r.unwrap_or(Err(PartitionError::ShuttingDown)).map_err(|e| e.kafka_code()),
                        }
                    }
                };
                let r = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
                match result {
                    Ok(low_watermark) => r.with_low_watermark(low_watermark),
                    Err(code) => r.with_low_watermark(-1).with_error_code(code),
                }
            }
        });
        let parts: Vec<_> = parts.collect();
        topics.push(async move {
            DeleteRecordsTopicResult::default().with_name(t.name).with_partitions(join_all(parts).await)
        });
    }
    Some(DeleteRecordsResponse::default().with_topics(join_all(topics).await))
}
