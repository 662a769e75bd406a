//! OffsetCommit (key 8): the group coordinator checks the member and generation, then the
//! offsets are proposed to `__meta` and the answer waits until they are applied (durable on a
//! majority of `__meta`). Offsets of unknown partitions get UNKNOWN_TOPIC_OR_PARTITION.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, RequestHeader, TopicName};

use super::groups::{ask, commit_error, opt_string, string};
use super::BrokerCtx;
use crate::error::code;
use crate::group::{GroupMsg, MemberRef};
use crate::meta::command::{Cmd, CommitOffsets, MetaCommand, OffsetEntry};
use crate::meta::state::MetaResult;
use crate::security::acl::Operation;

/// Kafka's `offset.metadata.max.bytes` default.
const MAX_METADATA_BYTES: usize = 4096;

/// A partition and its error when decided before proposing (None: to be committed).
type Decided = (i32, Option<i16>);

pub async fn handle(ctx: Arc<BrokerCtx>, h: RequestHeader, req: OffsetCommitRequest) -> Option<OffsetCommitResponse> {
    let v = h.request_api_version;
    let group = string(&req.group_id.0);
    let who = MemberRef {
        group_id: group.clone(),
        member_id: string(&req.member_id),
        group_instance_id: if v >= 7 { opt_string(&req.group_instance_id) } else { None },
        generation_id: req.generation_id_or_member_epoch,
    };
    let check = match ctx.check_group(Operation::Read, &group) {
        Err(denied) => Err(denied),
        Ok(()) => ask(&ctx, |reply| GroupMsg::ValidateCommit { who, reply })
            .await
            .unwrap_or(Err(code::COORDINATOR_NOT_AVAILABLE)),
    };
    let image = ctx.image();
    // Per partition: Some(error) decided now, None to be committed.
    let mut decided: Vec<(TopicName, Vec<Decided>)> = Vec::new();
    let mut entries = Vec::new();
    for t in &req.topics {
        let topic = string(&t.name.0);
        let info = image.topics.get(&topic);
        let topic_refused = ctx.check_topic(Operation::Read, &topic).err();
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let metadata = opt_string(&p.committed_metadata).unwrap_or_default();
            let error = if let Err(e) = check {
                Some(e)
            } else if topic_refused.is_some() {
                topic_refused
            } else if !info.is_some_and(|i| p.partition_index >= 0 && (p.partition_index as usize) < i.partitions.len())
            {
                Some(code::UNKNOWN_TOPIC_OR_PARTITION)
            } else if metadata.len() > MAX_METADATA_BYTES {
                Some(code::OFFSET_METADATA_TOO_LARGE)
            } else {
                entries.push(OffsetEntry {
                    topic: topic.clone(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: if v >= 6 { p.committed_leader_epoch } else { -1 },
                    metadata,
                });
                None
            };
            parts.push((p.partition_index, error));
        }
        decided.push((t.name.clone(), parts));
    }
    let committed = if entries.is_empty() {
        code::NONE
    } else {
        let cmd = MetaCommand::new(Cmd::CommitOffsets(CommitOffsets {
            group,
            offsets: entries,
            commit_timestamp: ctx.clock.unix_millis(),
        }));
        match ctx.propose(cmd).await {
            Ok(MetaResult::Rejected { code, .. }) => code,
            Ok(_) => code::NONE,
            Err(e) => commit_error(&e),
        }
    };
    let topics = decided
        .into_iter()
        .map(|(name, parts)| {
            OffsetCommitResponseTopic::default().with_name(name).with_partitions(
                parts
                    .into_iter()
                    .map(|(index, error)| {
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(index)
                            .with_error_code(error.unwrap_or(committed))
                    })
                    .collect(),
            )
        })
        .collect();
    Some(OffsetCommitResponse::default().with_topics(topics))
}
