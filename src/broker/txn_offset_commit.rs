//! TxnOffsetCommit (key 28): a transactional producer commits a consumer group's offsets
//! inside its transaction (KIP-98, KIP-447). The member and generation are checked as
//! OffsetCommit checks them (when the request names a member or a generation); the offsets are
//! then kept pending in the transaction's `__meta` state and become the group's committed
//! offsets in the same `__meta` command that completes the commit (so they are visible only on
//! commit, atomically; an abort drops them).

use std::sync::Arc;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{RequestHeader, TopicName, TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::groups::{ask, opt_string, string};
use super::txn_common::{check_id, run};
use super::BrokerCtx;
use crate::group::{GroupMsg, MemberRef};
use crate::meta::command::OffsetEntry;
use crate::security::acl::Operation;
use crate::txn::code;
use crate::txn::model::{TxnCommitOffsets, TxnOp};

/// Kafka's `offset.metadata.max.bytes` default.
const MAX_METADATA_BYTES: usize = 4096;

/// A partition and its error when decided before proposing (None: to be stored).
type Decided = (i32, Option<i16>);

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    h: RequestHeader,
    req: TxnOffsetCommitRequest,
) -> Option<TxnOffsetCommitResponse> {
    let v = h.request_api_version;
    let id = req.transactional_id.0.as_str();
    let group = string(&req.group_id.0);
    let member_id = if v >= 3 { string(&req.member_id) } else { String::new() };
    let generation = if v >= 3 { req.generation_id } else { -1 };
    let mut check = check_id(&ctx, Operation::Write, id).and_then(|()| ctx.check_group(Operation::Read, &group));
    if check.is_ok() && (!member_id.is_empty() || generation >= 0) {
        let who = MemberRef {
            group_id: group.clone(),
            member_id,
            group_instance_id: if v >= 3 { opt_string(&req.group_instance_id) } else { None },
            generation_id: generation,
        };
        check = ask(&ctx, |reply| GroupMsg::ValidateCommit { who, reply })
            .await
            .unwrap_or(Err(code::COORDINATOR_NOT_AVAILABLE));
    }
    let image = ctx.image();
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
                    leader_epoch: if v >= 2 { p.committed_leader_epoch } else { -1 },
                    metadata,
                });
                None
            };
            parts.push((p.partition_index, error));
        }
        decided.push((t.name.clone(), parts));
    }
    let stored = if entries.is_empty() {
        code::NONE
    } else {
        let op = TxnOp::CommitOffsets(TxnCommitOffsets {
            transactional_id: id.to_string(),
            producer_id: req.producer_id.0,
            producer_epoch: i32::from(req.producer_epoch),
            group,
            offsets: entries,
        });
        match run(&ctx, op).await {
            Ok(r) => r.error,
            Err(e) => e,
        }
    };
    let topics = decided
        .into_iter()
        .map(|(name, parts)| {
            TxnOffsetCommitResponseTopic::default().with_name(name).with_partitions(
                parts
                    .into_iter()
                    .map(|(index, error)| {
                        TxnOffsetCommitResponsePartition::default()
                            .with_partition_index(index)
                            .with_error_code(error.unwrap_or(stored))
                    })
                    .collect(),
            )
        })
        .collect();
    Some(TxnOffsetCommitResponse::default().with_topics(topics))
}
