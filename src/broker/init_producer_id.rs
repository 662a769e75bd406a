//! InitProducerId (key 22): producer ids for idempotent producers, allocated through `__meta`
//! so they are unique across restarts (a producer that re-initialises with its id and epoch,
//! KIP-360, gets the next epoch); with a transactional id, the transaction coordinator
//! (`txn::core`) gives the id's producer id and a bumped epoch, fencing the previous producer.

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId, RequestHeader};

use super::txn_common::{check_id, fenced_for, run};
use super::{meta_error_code, BrokerCtx};
use crate::error::code;
use crate::meta::command::{AllocateProducerIds, Cmd, MetaCommand};
use crate::meta::state::MetaResult;
use crate::security::acl::Operation;
use crate::txn::model::{InitTxn, TxnOp};

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    h: RequestHeader,
    req: InitProducerIdRequest,
) -> Option<InitProducerIdResponse> {
    let resp = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    if let Some(id) = req.transactional_id.as_ref().map(|t| t.0.as_str()) {
        return Some(transactional(&ctx, h.request_api_version, id, &req, resp).await);
    }
    if let Err(denied) = ctx.check_idempotent_write() {
        return Some(resp.with_error_code(denied));
    }
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        return Some(resp.with_producer_id(req.producer_id).with_producer_epoch(req.producer_epoch + 1));
    }
    let cmd = MetaCommand::new(Cmd::AllocateProducerIds(AllocateProducerIds { count: 1 }));
    Some(match ctx.propose(cmd).await {
        Ok(MetaResult::ProducerIds { start }) => resp.with_producer_id(ProducerId(start)).with_producer_epoch(0),
        Ok(other) => {
            slog::warn!(ctx.logger, "producer id allocation failed"; "result" => ?other);
            resp.with_error_code(code::UNKNOWN_SERVER_ERROR)
        }
        Err(e) => resp.with_error_code(match meta_error_code(&e) {
            code::REQUEST_TIMED_OUT => code::COORDINATOR_NOT_AVAILABLE,
            c => c,
        }),
    })
}

/// InitProducerId with a transactional id (Kafka's `handleInitProducerId`).
async fn transactional(
    ctx: &BrokerCtx,
    version: i16,
    id: &str,
    req: &InitProducerIdRequest,
    resp: InitProducerIdResponse,
) -> InitProducerIdResponse {
    // Kafka answers an empty transactional id with INVALID_REQUEST.
    if let Err(e) = check_id(ctx, Operation::Write, id) {
        return resp.with_error_code(e);
    }
    let max = i64::try_from(ctx.txn_settings.max_timeout.as_millis()).unwrap_or(i64::MAX);
    if let Err(e) = crate::txn::core::check_timeout(req.transaction_timeout_ms, max) {
        return resp.with_error_code(e);
    }
    let op = TxnOp::Init(InitTxn {
        transactional_id: id.to_string(),
        timeout_ms: req.transaction_timeout_ms,
        expected_producer_id: if version >= 3 { req.producer_id.0 } else { -1 },
        expected_epoch: if version >= 3 { i32::from(req.producer_epoch) } else { -1 },
    });
    match run(ctx, op).await {
        Ok(r) if r.error == code::NONE => {
            resp.with_producer_id(ProducerId(r.producer_id)).with_producer_epoch(r.producer_epoch)
        }
        Ok(r) => resp.with_error_code(fenced_for(r.error, version, 4)),
        Err(e) => resp.with_error_code(e),
    }
}
