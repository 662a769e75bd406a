//! DescribeTopicPartitions (key 75, Kafka 4's `kafka-topics --describe` and
//! `AdminClient.describeTopics`): topics with their partitions (leader, epoch, replicas, in-sync
//! replicas), paginated as Kafka's `DescribeTopicPartitionsRequestHandler` and
//! `KRaftMetadataCache.describeTopicResponse` do:
//! - no topics asked: every topic (`__consumer_offsets` included), else the topics asked; in name
//!   order, from the cursor's topic on (a cursor whose topic is not among those asked, or with a
//!   negative partition, is INVALID_REQUEST for the whole request);
//! - at most `response_partition_limit` partitions (at least 1, at most Kafka's
//!   `max.request.partition.size.limit` default, 2000); where the limit cuts a topic or falls
//!   before the next one, `next_cursor` names the topic and partition to continue from;
//! - a topic asked by name that does not exist: UNKNOWN_TOPIC_OR_PARTITION (not counted).

use std::sync::Arc;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, RequestHeader, TopicName,
};
use uuid::Uuid;

use super::groups::{ask, string};
use super::{internal_topic, sb, topics, BrokerCtx};
use crate::error::code;
use crate::group::GroupMsg;
use crate::meta::MetaState;
use crate::security::acl::{Operation, ResourceType};

/// Kafka's `max.request.partition.size.limit` default.
pub const MAX_PARTITIONS_PER_RESPONSE: i32 = 2000;

/// What may be done to a topic without an authorizer: READ (3), WRITE (4), CREATE (5),
/// DELETE (6), ALTER (7), DESCRIBE (8), DESCRIBE_CONFIGS (10), ALTER_CONFIGS (11).
const TOPIC_OPERATIONS: i32 = (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);

/// Kafka fails the whole request (`getErrorResponse`): every topic asked gets the error.
fn invalid(req: &DescribeTopicPartitionsRequest) -> Option<DescribeTopicPartitionsResponse> {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(t.name.clone()))
                .with_error_code(code::INVALID_REQUEST)
        })
        .collect();
    Some(DescribeTopicPartitionsResponse::default().with_topics(topics))
}

/// One partition row (as Metadata reports it).
fn partition_row(
    ctx: &BrokerCtx,
    image: &MetaState,
    topic: &str,
    i: usize,
) -> DescribeTopicPartitionsResponsePartition {
    let info = &image.topics[topic].partitions[i];
    let replicas: Vec<BrokerId> = info.replicas.iter().map(|r| BrokerId(*r as i32)).collect();
    let handle = ctx.partition(topic, i as i32);
    let isr = handle
        .as_ref()
        .map(|h| h.shared.in_sync())
        .filter(|isr| !isr.is_empty())
        .map(|isr| isr.into_iter().map(|r| BrokerId(r as i32)).collect())
        .unwrap_or_else(|| replicas.clone());
    let row = DescribeTopicPartitionsResponsePartition::default()
        .with_partition_index(i as i32)
        .with_replica_nodes(replicas)
        .with_isr_nodes(isr)
        .with_eligible_leader_replicas(Some(Vec::new()))
        .with_last_known_elr(Some(Vec::new()));
    match topics::leader_of(ctx, image, topic, i as i32) {
        Some((leader, epoch)) if leader != 0 => {
            row.with_leader_id(BrokerId(leader as i32)).with_leader_epoch(epoch as i32)
        }
        _ => row.with_error_code(code::LEADER_NOT_AVAILABLE).with_leader_id(BrokerId(-1)).with_leader_epoch(-1),
    }
}

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    _h: RequestHeader,
    req: DescribeTopicPartitionsRequest,
) -> Option<DescribeTopicPartitionsResponse> {
    let image = ctx.image();
    let fetch_all = req.topics.is_empty();
    let cursor = req.cursor.as_ref().map(|c| (string(&c.topic_name.0), c.partition_index));
    let from = cursor.as_ref().map(|c| c.0.clone()).unwrap_or_default();
    let mut names: Vec<String> = if fetch_all {
        // Topics the principal may not describe are left out, as Metadata does.
        image
            .topics
            .keys()
            .cloned()
            .chain([internal_topic::CONSUMER_OFFSETS.to_string()])
            .filter(|n| ctx.visible(Operation::Describe, ResourceType::Topic, n))
            .collect()
    } else {
        req.topics.iter().map(|t| string(&t.name.0)).collect()
    };
    names.retain(|n| *n >= from);
    names.sort();
    names.dedup();
    if let Some((topic, partition)) = &cursor {
        // "The topic list should contain the cursor topic", "the cursor partition must be valid".
        if (!fetch_all && !names.contains(topic)) || *partition < 0 {
            return invalid(&req);
        }
    }
    let mut remaining = req.response_partition_limit.clamp(1, MAX_PARTITIONS_PER_RESPONSE) as usize;
    let mut start = cursor.as_ref().map_or(0, |c| c.1.max(0) as usize);
    let coordinator = if names.iter().any(|n| internal_topic::is_internal(n)) {
        ask(&ctx, |reply| GroupMsg::Coordinator { reply }).await.map_or(0, |(leader, _)| leader)
    } else {
        0
    };
    let mut topics_out = Vec::new();
    let mut next_cursor = None;
    for name in names {
        if let Err(denied) = ctx.check_topic(Operation::Describe, &name) {
            topics_out.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(denied)
                    .with_name(Some(TopicName(sb(name.clone()))))
                    .with_is_internal(internal_topic::is_internal(&name))
                    .with_topic_authorized_operations(TOPIC_OPERATIONS),
            );
            continue;
        }
        let count = if internal_topic::is_internal(&name) {
            Some(1)
        } else {
            image.topics.get(&name).map(|t| t.partitions.len())
        };
        let Some(count) = count else {
            if !fetch_all {
                topics_out.push(
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION)
                        .with_name(Some(TopicName(sb(name.clone()))))
                        .with_is_internal(false)
                        .with_topic_authorized_operations(TOPIC_OPERATIONS),
                );
            }
            start = 0;
            continue;
        };
        if remaining == 0 {
            next_cursor = Some(Cursor::default().with_topic_name(TopicName(sb(name))).with_partition_index(0));
            break;
        }
        let end = count.min(start + remaining);
        let mut t = DescribeTopicPartitionsResponseTopic::default()
            .with_name(Some(TopicName(sb(name.clone()))))
            .with_topic_authorized_operations(TOPIC_OPERATIONS);
        if internal_topic::is_internal(&name) {
            let m = internal_topic::metadata_topic(&image, coordinator, 12);
            t = t.with_is_internal(true).with_topic_id(m.topic_id);
            if start == 0 {
                let p = &m.partitions[0];
                t.partitions.push(
                    DescribeTopicPartitionsResponsePartition::default()
                        .with_error_code(p.error_code)
                        .with_partition_index(0)
                        .with_leader_id(p.leader_id)
                        .with_leader_epoch(p.leader_epoch)
                        .with_replica_nodes(p.replica_nodes.clone())
                        .with_isr_nodes(p.isr_nodes.clone())
                        .with_eligible_leader_replicas(Some(Vec::new()))
                        .with_last_known_elr(Some(Vec::new())),
                );
            }
        } else {
            t.topic_id = Uuid::from_bytes(image.topics[&name].id);
            t.partitions = (start.min(end)..end).map(|i| partition_row(&ctx, &image, &name, i)).collect();
        }
        remaining -= end.saturating_sub(start);
        topics_out.push(t);
        if end < count {
            next_cursor = Some(Cursor::default().with_topic_name(TopicName(sb(name))).with_partition_index(end as i32));
            break;
        }
        start = 0;
    }
    Some(DescribeTopicPartitionsResponse::default().with_topics(topics_out).with_next_cursor(next_cursor))
}
