//! InitProducerId (key 22): producer ids for idempotent producers, allocated through `__meta`
//! so they are unique across restarts. A producer that re-initialises with its id and epoch
//! (KIP-360) gets the next epoch. Transactions are not supported yet.

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId, RequestHeader};

use super::{meta_error_code, BrokerCtx};
use crate::error::code;
use crate::meta::command::{AllocateProducerIds, Cmd, MetaCommand};
use crate::meta::state::MetaResult;

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    _h: RequestHeader,
    req: InitProducerIdRequest,
) -> Option<InitProducerIdResponse> {
    let resp = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    match req.transactional_id.as_ref().map(|t| t.0.as_str()) {
        None => {}
        // Kafka answers an empty transactional id with INVALID_REQUEST.
        Some("") => return Some(resp.with_error_code(code::INVALID_REQUEST)),
        Some(id) => {
            slog::warn!(ctx.logger, "transactions are not supported"; "transactional_id" => id);
            return Some(resp.with_error_code(code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED));
        }
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
