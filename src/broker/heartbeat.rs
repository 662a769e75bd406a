//! Heartbeat (key 12): keeps a member's session alive; REBALANCE_IN_PROGRESS asks it to rejoin.

use std::sync::Arc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse, RequestHeader};

use super::groups::{ask, opt_string, string};
use super::BrokerCtx;
use crate::error::code;
use crate::group::{GroupMsg, MemberRef};
use crate::security::acl::Operation;

pub async fn handle(ctx: Arc<BrokerCtx>, h: RequestHeader, req: HeartbeatRequest) -> Option<HeartbeatResponse> {
    if let Err(denied) = ctx.check_group(Operation::Read, req.group_id.0.as_str()) {
        return Some(HeartbeatResponse::default().with_error_code(denied));
    }
    let who = MemberRef {
        group_id: string(&req.group_id.0),
        member_id: string(&req.member_id),
        group_instance_id: if h.request_api_version >= 3 { opt_string(&req.group_instance_id) } else { None },
        generation_id: req.generation_id,
    };
    let error = ask(&ctx, |reply| GroupMsg::Heartbeat { who, reply }).await.unwrap_or(code::COORDINATOR_NOT_AVAILABLE);
    Some(HeartbeatResponse::default().with_error_code(error))
}
