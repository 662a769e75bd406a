//! OffsetDelete (key 47, `kafka-consumer-groups --delete-offsets`): deletes a group's committed
//! offsets through `__meta`, with Kafka's rules (`OffsetMetadataManager.deleteOffsets` and the
//! classic group's `validateOffsetDelete`):
//! - an unknown group (no members, no stored membership, no offsets) or a Dead one:
//!   GROUP_ID_NOT_FOUND; an empty group id: INVALID_GROUP_ID (top-level errors);
//! - a group with members whose protocol type is not `consumer`: NON_EMPTY_GROUP;
//! - a consumer group with members: the partitions of every topic it is subscribed to are refused
//!   with GROUP_SUBSCRIBED_TO_TOPIC, the others are deleted; an empty group deletes everything;
//! - a topic or partition that does not exist: UNKNOWN_TOPIC_OR_PARTITION, as Kafka's KafkaApis;
//! - a partition without a committed offset answers NONE (nothing to delete).
//!
//! Subscriptions are the members' `ConsumerProtocolSubscription`s: those of the running group
//! while Stable and those stored with its last rebalance in `__meta`.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, RequestHeader};

use super::groups::{ask, commit_error, string};
use super::BrokerCtx;
use crate::error::code;
use crate::group::expiry::subscribed_topics;
use crate::group::{GroupMsg, GroupState};
use crate::meta::command::{Cmd, DeleteOffsets, MetaCommand, OffsetRef};
use crate::meta::state::MetaResult;
use crate::security::acl::Operation;

fn top_level(error: i16) -> Option<OffsetDeleteResponse> {
    Some(OffsetDeleteResponse::default().with_error_code(error))
}

pub async fn handle(ctx: Arc<BrokerCtx>, _h: RequestHeader, req: OffsetDeleteRequest) -> Option<OffsetDeleteResponse> {
    let group = string(&req.group_id.0);
    if group.is_empty() {
        return top_level(code::INVALID_GROUP_ID);
    }
    // Kafka: DELETE on the group, then READ on each topic.
    if let Err(denied) = ctx.check_group(Operation::Delete, &group) {
        return top_level(denied);
    }
    let described = ask(&ctx, |reply| GroupMsg::Describe { groups: vec![group.clone()], reply })
        .await
        .unwrap_or(Err(code::COORDINATOR_NOT_AVAILABLE));
    let running = match described {
        Err(e) => return top_level(e),
        Ok(mut found) => found.pop().flatten(),
    };
    let image = ctx.image();
    let stored = image.consumer_groups.get(&group);
    let active = running.as_ref().is_some_and(|d| {
        matches!(d.state, GroupState::Stable | GroupState::PreparingRebalance | GroupState::CompletingRebalance)
    });
    let known = running.as_ref().is_some_and(|d| d.state != GroupState::Dead)
        || image.offsets.contains_key(&group)
        || stored.is_some();
    if !known {
        return top_level(code::GROUP_ID_NOT_FOUND);
    }
    let mut subscribed = BTreeSet::new();
    if let Some(d) = running.as_ref().filter(|_| active) {
        if d.protocol_type != "consumer" {
            return top_level(code::NON_EMPTY_GROUP);
        }
        d.members.iter().for_each(|m| subscribed.extend(subscribed_topics(&m.metadata)));
        if let Some(s) = stored {
            s.members.iter().for_each(|m| subscribed.extend(subscribed_topics(&m.subscription)));
        }
    }
    let mut to_delete = Vec::new();
    let mut topics: Vec<(kafka_protocol::messages::TopicName, Vec<(i32, i16)>)> = Vec::new();
    for t in &req.topics {
        let name = string(&t.name.0);
        let info = image.topics.get(&name);
        let denied = ctx.check_topic(Operation::Read, &name).err();
        let parts = t
            .partitions
            .iter()
            .map(|p| {
                let p = p.partition_index;
                let error = if let Some(denied) = denied {
                    denied
                } else if info.is_none_or(|i| p < 0 || p as usize >= i.partitions.len()) {
                    code::UNKNOWN_TOPIC_OR_PARTITION
                } else if subscribed.contains(&name) {
                    code::GROUP_SUBSCRIBED_TO_TOPIC
                } else {
                    to_delete.push(OffsetRef { topic: name.clone(), partition: p, if_committed_at: None });
                    code::NONE
                };
                (p, error)
            })
            .collect();
        topics.push((t.name.clone(), parts));
    }
    if !to_delete.is_empty() {
        let cmd = MetaCommand::new(Cmd::DeleteOffsets(DeleteOffsets { group, offsets: to_delete }));
        match ctx.propose(cmd).await {
            Ok(MetaResult::Rejected { code, .. }) => return top_level(code),
            Ok(_) => {}
            Err(e) => return top_level(commit_error(&e)),
        }
    }
    let topics = topics
        .into_iter()
        .map(|(name, parts)| {
            OffsetDeleteResponseTopic::default().with_name(name).with_partitions(
                parts
                    .into_iter()
                    .map(|(p, e)| OffsetDeleteResponsePartition::default().with_partition_index(p).with_error_code(e))
                    .collect(),
            )
        })
        .collect();
    Some(OffsetDeleteResponse::default().with_topics(topics))
}
