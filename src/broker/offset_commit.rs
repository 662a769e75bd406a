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
pub(crate) type Decided = (i32, Option<i16>);

/// One partition of a commit request (OffsetCommit or TxnOffsetCommit), in plain terms.
pub(crate) struct PartitionCommit {
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

/// The checks OffsetCommit and TxnOffsetCommit share, per partition: the request's own `check`
/// (group ACL, member and generation), the topic's READ ACL, an unknown partition
/// (UNKNOWN_TOPIC_OR_PARTITION), metadata over `offset.metadata.max.bytes`
/// (OFFSET_METADATA_TOO_LARGE). Returns every partition's early answer and the offsets of the
/// others, to be stored.
pub(crate) fn decide_commit(
    ctx: &BrokerCtx,
    check: Result<(), i16>,
    topics: impl Iterator<Item = (TopicName, Vec<PartitionCommit>)>,
) -> (Vec<(TopicName, Vec<Decided>)>, Vec<OffsetEntry>) {
    let image = ctx.image();
    let mut decided = Vec::new();
    let mut entries = Vec::new();
    for (name, partitions) in topics {
        let topic = string(&name.0);
        let count = image.topics.get(&topic).map(|i| i.partitions.len());
        let topic_refused = ctx.check_topic(Operation::Read, &topic).err();
        let mut parts = Vec::with_capacity(partitions.len());
        for p in partitions {
            let error = if let Err(e) = check {
                Some(e)
            } else if topic_refused.is_some() {
                topic_refused
            } else if !count.is_some_and(|n| p.partition >= 0 && (p.partition as usize) < n) {
                Some(code::UNKNOWN_TOPIC_OR_PARTITION)
            } else if p.metadata.len() > MAX_METADATA_BYTES {
                Some(code::OFFSET_METADATA_TOO_LARGE)
            } else {
                entries.push(OffsetEntry {
                    topic: topic.clone(),
                    partition: p.partition,
                    offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata: p.metadata,
                });
                None
            };
            parts.push((p.partition, error));
        }
        decided.push((name, parts));
    }
    (decided, entries)
}

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
    let topics = req.topics.iter().map(|t| {
        let parts = t.partitions.iter().map(|p| PartitionCommit {
            partition: p.partition_index,
            offset: p.committed_offset,
            leader_epoch: if v >= 6 { p.committed_leader_epoch } else { -1 },
            metadata: opt_string(&p.committed_metadata).unwrap_or_default(),
        });
        (t.name.clone(), parts.collect())
    });
    let (decided, entries) = decide_commit(&ctx, check, topics);
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
