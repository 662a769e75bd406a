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
use kafka_protocol::messages::{RequestHeader, TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::groups::{ask, opt_string, string};
use super::offset_commit::{decide_commit, PartitionCommit};
use super::txn_common::{check_id, run};
use super::BrokerCtx;
use crate::group::{GroupMsg, MemberRef};
use crate::security::acl::Operation;
use crate::txn::code;
use crate::txn::model::{TxnCommitOffsets, TxnOp};

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
    let topics = req.topics.iter().map(|t| {
        let parts = t.partitions.iter().map(|p| PartitionCommit {
            partition: p.partition_index,
            offset: p.committed_offset,
            leader_epoch: if v >= 2 { p.committed_leader_epoch } else { -1 },
            metadata: opt_string(&p.committed_metadata).unwrap_or_default(),
        });
        (t.name.clone(), parts.collect())
    });
    let (decided, entries) = decide_commit(&ctx, check, topics);
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
