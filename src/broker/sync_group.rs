//! SyncGroup (key 14): the leader sends the assignment; every member (the followers parked until
//! then) gets its own part. v5+ checks and answers the protocol type and name.

use std::sync::Arc;

use kafka_protocol::messages::{RequestHeader, SyncGroupRequest, SyncGroupResponse};

use super::groups::{ask, opt_string, string};
use super::{sb, BrokerCtx};
use crate::error::code;
use crate::group::{GroupMsg, SyncRequest, SyncResponse};
use crate::security::acl::Operation;

pub async fn handle(ctx: Arc<BrokerCtx>, h: RequestHeader, req: SyncGroupRequest) -> Option<SyncGroupResponse> {
    let v = h.request_api_version;
    if let Err(denied) = ctx.check_group(Operation::Read, req.group_id.0.as_str()) {
        return Some(SyncGroupResponse::default().with_error_code(denied));
    }
    let sync = SyncRequest {
        group_id: string(&req.group_id.0),
        member_id: string(&req.member_id),
        group_instance_id: if v >= 3 { opt_string(&req.group_instance_id) } else { None },
        generation_id: req.generation_id,
        protocol_type: if v >= 5 { opt_string(&req.protocol_type) } else { None },
        protocol_name: if v >= 5 { opt_string(&req.protocol_name) } else { None },
        assignments: req.assignments.into_iter().map(|a| (string(&a.member_id), a.assignment)).collect(),
    };
    let r = ask(&ctx, |reply| GroupMsg::Sync { req: sync, reply })
        .await
        .unwrap_or_else(|| SyncResponse::error(code::COORDINATOR_NOT_AVAILABLE));
    let mut resp = SyncGroupResponse::default().with_error_code(r.error).with_assignment(r.assignment);
    if v >= 5 {
        resp = resp.with_protocol_type(r.protocol_type.map(sb)).with_protocol_name(r.protocol_name.map(sb));
    }
    Some(resp)
}
