//! FindCoordinator (key 10): the coordinator of every group and of every transactional id (key
//! type 1) is the `__meta` leader (where group state, committed offsets and transaction state
//! are proposed), as the group coordinator actor knows it. v4+ batches keys.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use super::groups::ask;
use super::{sb, BrokerCtx};
use crate::error::code;
use crate::group::GroupMsg;
use crate::security::acl::Operation;

/// Key type 0: a consumer group.
const GROUP: i8 = 0;
/// Key type 1: a transactional id.
const TRANSACTION: i8 = 1;

struct Answer {
    error: i16,
    message: Option<StrBytes>,
    node_id: i32,
    host: StrBytes,
    port: i32,
}

fn answer(ctx: &BrokerCtx, coordinator: Result<u64, i16>, key_type: i8, key: &str) -> Answer {
    let fail = |error, message: &str| Answer {
        error,
        message: Some(sb(message)),
        node_id: -1,
        host: StrBytes::default(),
        port: -1,
    };
    if let (GROUP, Err(denied)) = (key_type, ctx.check_group(Operation::Describe, key)) {
        return Answer { message: None, ..fail(denied, "") };
    }
    if key_type == TRANSACTION {
        if let Err(e) = super::txn_common::check_id(ctx, Operation::Describe, key) {
            return Answer { message: None, ..fail(e, "") };
        }
    }
    match key_type {
        GROUP | TRANSACTION => match coordinator.map(|id| (id, ctx.image().brokers.get(&id).cloned())) {
            Ok((id, Some(b))) => match b.endpoint(&crate::security::principal::current().listener) {
                Some((host, port)) => {
                    Answer { error: code::NONE, message: None, node_id: id as i32, host: sb(host), port }
                }
                None => fail(code::COORDINATOR_NOT_AVAILABLE, "the coordinator has no such listener"),
            },
            Ok((_, None)) => fail(code::COORDINATOR_NOT_AVAILABLE, "the coordinator is not registered yet"),
            Err(e) => fail(e, "no __meta leader: no coordinator"),
        },
        other => fail(code::INVALID_REQUEST, &format!("unsupported coordinator key type {other}")),
    }
}

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    h: RequestHeader,
    req: FindCoordinatorRequest,
) -> Option<FindCoordinatorResponse> {
    let version = h.request_api_version;
    let resp = FindCoordinatorResponse::default();
    let coordinator = match ask(&ctx, |reply| GroupMsg::Coordinator { reply }).await {
        Some((leader, _)) if leader != 0 => Ok(leader),
        _ => Err(code::COORDINATOR_NOT_AVAILABLE),
    };
    if version >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let a = answer(&ctx, coordinator, req.key_type, &key);
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(a.node_id))
                    .with_host(a.host)
                    .with_port(a.port)
                    .with_error_code(a.error)
                    .with_error_message(a.message)
            })
            .collect();
        return Some(resp.with_coordinators(coordinators));
    }
    let a = answer(&ctx, coordinator, if version >= 1 { req.key_type } else { GROUP }, &req.key);
    Some(
        resp.with_error_code(a.error)
            .with_error_message(if version >= 1 { a.message } else { None })
            .with_node_id(BrokerId(a.node_id))
            .with_host(a.host)
            .with_port(a.port),
    )
}
