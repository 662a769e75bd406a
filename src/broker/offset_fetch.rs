//! OffsetFetch (key 9): committed offsets from the applied `__meta` state. A partition without
//! a committed offset answers -1. v2+ may ask for every topic of the group (null topics); v8+
//! asks for several groups at once. Only the coordinator (the `__meta` leader) answers; other
//! nodes say NOT_COORDINATOR, so that a client never reads an image that lags behind.

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, RequestHeader, TopicName};

use super::groups::{ask, string};
use super::{sb, BrokerCtx};
use crate::error::code;
use crate::group::GroupMsg;
use crate::meta::MetaState;
use crate::security::acl::{Operation, ResourceType};

/// One partition's answer: partition, offset, leader epoch, metadata, error code.
type Fetched = (i32, i64, i32, String, i16);

/// The offsets of `group` for the requested topics (None: every topic with offsets). A topic
/// the principal may not describe is left out of "all", and answered TOPIC_AUTHORIZATION_FAILED
/// when asked for.
fn fetch(
    ctx: &BrokerCtx,
    image: &MetaState,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Vec<(String, Vec<Fetched>)> {
    let offsets = image.offsets.get(group);
    let topics = topics.unwrap_or_else(|| {
        offsets
            .map(|o| {
                o.iter()
                    .filter(|(t, _)| ctx.visible(Operation::Describe, ResourceType::Topic, t))
                    .map(|(t, parts)| (t.clone(), parts.keys().copied().collect()))
                    .collect()
            })
            .unwrap_or_default()
    });
    topics
        .into_iter()
        .map(|(topic, parts)| {
            let refused = ctx.check_topic(Operation::Describe, &topic).err();
            let fetched = parts
                .into_iter()
                .map(|p| match (refused, image.committed(group, &topic, p)) {
                    (Some(e), _) => (p, -1, -1, String::new(), e),
                    (None, Some(c)) => (p, c.offset, c.leader_epoch, c.metadata.clone(), code::NONE),
                    (None, None) => (p, -1, -1, String::new(), code::NONE),
                })
                .collect();
            (topic, fetched)
        })
        .collect()
}

pub async fn handle(ctx: Arc<BrokerCtx>, h: RequestHeader, req: OffsetFetchRequest) -> Option<OffsetFetchResponse> {
    let v = h.request_api_version;
    let refused = match ask(&ctx, |reply| GroupMsg::Coordinator { reply }).await {
        Some((_, serving)) => serving.err(),
        None => Some(code::COORDINATOR_NOT_AVAILABLE),
    };
    if let Some(error) = refused {
        return Some(refuse(v, req, error));
    }
    if v < 8 {
        if let Err(denied) = ctx.check_group(Operation::Describe, req.group_id.0.as_str()) {
            return Some(refuse(v, req, denied));
        }
    }
    let image = ctx.image();
    let epoch = |e: i32| if v >= 5 { e } else { -1 };
    if v >= 8 {
        let groups = req
            .groups
            .into_iter()
            .map(|g| {
                if let Err(denied) = ctx.check_group(Operation::Describe, g.group_id.0.as_str()) {
                    return OffsetFetchResponseGroup::default().with_group_id(g.group_id).with_error_code(denied);
                }
                let topics =
                    g.topics.map(|ts| ts.into_iter().map(|t| (string(&t.name.0), t.partition_indexes)).collect());
                let topics = fetch(&ctx, &image, g.group_id.0.as_str(), topics)
                    .into_iter()
                    .map(|(name, parts)| {
                        OffsetFetchResponseTopics::default().with_name(TopicName(sb(name))).with_partitions(
                            parts
                                .into_iter()
                                .map(|(p, offset, e, metadata, error)| {
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(p)
                                        .with_error_code(error)
                                        .with_committed_offset(offset)
                                        .with_committed_leader_epoch(e)
                                        .with_metadata(Some(sb(metadata)))
                                })
                                .collect(),
                        )
                    })
                    .collect();
                OffsetFetchResponseGroup::default().with_group_id(g.group_id).with_topics(topics)
            })
            .collect();
        return Some(OffsetFetchResponse::default().with_groups(groups));
    }
    let topics = req.topics.map(|ts| ts.into_iter().map(|t| (string(&t.name.0), t.partition_indexes)).collect());
    let topics = fetch(&ctx, &image, req.group_id.0.as_str(), topics)
        .into_iter()
        .map(|(name, parts)| {
            OffsetFetchResponseTopic::default().with_name(TopicName(sb(name))).with_partitions(
                parts
                    .into_iter()
                    .map(|(p, offset, e, metadata, error)| {
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(p)
                            .with_error_code(error)
                            .with_committed_offset(offset)
                            .with_committed_leader_epoch(epoch(e))
                            .with_metadata(Some(sb(metadata)))
                    })
                    .collect(),
            )
        })
        .collect();
    Some(OffsetFetchResponse::default().with_topics(topics))
}

/// The answer of a node that cannot serve committed offsets now.
fn refuse(v: i16, req: OffsetFetchRequest, error: i16) -> OffsetFetchResponse {
    if v >= 8 {
        let groups = req
            .groups
            .into_iter()
            .map(|g| OffsetFetchResponseGroup::default().with_group_id(g.group_id).with_error_code(error))
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    if v >= 2 {
        return OffsetFetchResponse::default().with_error_code(error);
    }
    // v1 has no top-level error: every requested partition carries it.
    let topics = req
        .topics
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            OffsetFetchResponseTopic::default().with_name(t.name).with_partitions(
                t.partition_indexes
                    .into_iter()
                    .map(|p| {
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(-1)
                            .with_metadata(Some(sb("")))
                            .with_error_code(error)
                    })
                    .collect(),
            )
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
