//! LeaveGroup (key 13): members leave (v0-2: one member id; v3+: a batch, also by
//! `group.instance.id` alone, as the admin client removes static members); the group rebalances.

use std::sync::Arc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse, RequestHeader};

use super::groups::{ask, opt_string, string};
use super::{sb, BrokerCtx};
use crate::error::code;
use crate::group::{GroupMsg, LeavingMember};
use crate::security::acl::Operation;

pub async fn handle(ctx: Arc<BrokerCtx>, h: RequestHeader, req: LeaveGroupRequest) -> Option<LeaveGroupResponse> {
    let v = h.request_api_version;
    if let Err(denied) = ctx.check_group(Operation::Read, req.group_id.0.as_str()) {
        return Some(LeaveGroupResponse::default().with_error_code(denied));
    }
    let members: Vec<LeavingMember> = if v >= 3 {
        req.members
            .iter()
            .map(|m| LeavingMember {
                member_id: string(&m.member_id),
                group_instance_id: opt_string(&m.group_instance_id),
            })
            .collect()
    } else {
        vec![LeavingMember { member_id: string(&req.member_id), group_instance_id: None }]
    };
    let group_id = string(&req.group_id.0);
    let n = members.len();
    let leaving = members.clone();
    let (top, errors) = ask(&ctx, |reply| GroupMsg::Leave { group_id, members: leaving, reply })
        .await
        .unwrap_or((code::COORDINATOR_NOT_AVAILABLE, vec![code::COORDINATOR_NOT_AVAILABLE; n]));
    if v < 3 {
        let error = if top != code::NONE { top } else { errors.first().copied().unwrap_or(code::NONE) };
        return Some(LeaveGroupResponse::default().with_error_code(error));
    }
    let responses = members
        .into_iter()
        .zip(errors)
        .map(|(m, e)| {
            MemberResponse::default()
                .with_member_id(sb(m.member_id))
                .with_group_instance_id(m.group_instance_id.map(sb))
                .with_error_code(e)
        })
        .collect();
    Some(LeaveGroupResponse::default().with_error_code(top).with_members(responses))
}
