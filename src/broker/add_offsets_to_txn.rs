//! AddOffsetsToTxn (key 25): the producer's transaction will commit offsets of a consumer group
//! (KIP-98; Kafka adds the group's `__consumer_offsets` partition, chronik records the group,
//! whose offsets live in `__meta`). TxnOffsetCommit for that group is accepted afterwards.

use std::sync::Arc;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, RequestHeader};

use super::txn_common::{check_id, fenced_for, run};
use super::BrokerCtx;
use crate::security::acl::Operation;
use crate::txn::model::{AddGroup, TxnOp};

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    h: RequestHeader,
    req: AddOffsetsToTxnRequest,
) -> Option<AddOffsetsToTxnResponse> {
    let id = req.transactional_id.0.as_str();
    let group = req.group_id.0.as_str();
    let checked = check_id(&ctx, Operation::Write, id).and_then(|()| ctx.check_group(Operation::Read, group));
    let error = match checked {
        Err(e) => e,
        Ok(()) => {
            let op = TxnOp::AddGroup(AddGroup {
                transactional_id: id.to_string(),
                producer_id: req.producer_id.0,
                producer_epoch: i32::from(req.producer_epoch),
                group: group.to_string(),
            });
            match run(&ctx, op).await {
                Ok(r) => fenced_for(r.error, h.request_api_version, 2),
                Err(e) => e,
            }
        }
    };
    Some(AddOffsetsToTxnResponse::default().with_error_code(error))
}
