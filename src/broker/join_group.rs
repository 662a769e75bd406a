//! JoinGroup (key 11): parks the request at the group coordinator until the join completes.
//! v4+ new members first get MEMBER_ID_REQUIRED with their member id; v5+ carries
//! `group.instance.id` (static membership); v7+ answers the protocol type; v9 tells a static
//! leader that rejoined a stable group to skip the assignment.

use std::sync::Arc;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, RequestHeader};

use super::groups::{ask, millis, opt_string, string};
use super::{sb, BrokerCtx};
use crate::error::code;
use crate::group::{GroupMsg, JoinRequest, JoinResponse, Protocol};
use crate::security::acl::Operation;

pub async fn handle(ctx: Arc<BrokerCtx>, h: RequestHeader, req: JoinGroupRequest) -> Option<JoinGroupResponse> {
    let v = h.request_api_version;
    let member_id = string(&req.member_id);
    if let Err(denied) = ctx.check_group(Operation::Read, req.group_id.0.as_str()) {
        let r =
            JoinGroupResponse::default().with_error_code(denied).with_generation_id(-1).with_member_id(req.member_id);
        return Some(if v >= 7 { r.with_protocol_name(None) } else { r });
    }
    let join = JoinRequest {
        group_id: string(&req.group_id.0),
        member_id: member_id.clone(),
        group_instance_id: if v >= 5 { opt_string(&req.group_instance_id) } else { None },
        client_id: h.client_id.as_ref().map(string).unwrap_or_default(),
        // Kafka reports the host as InetAddress.toString() does: "/" and the address.
        client_host: crate::net::connection::client_addr().map(|a| format!("/{}", a.ip())).unwrap_or_default(),
        session_timeout: millis(req.session_timeout_ms),
        rebalance_timeout: millis(if v >= 1 && req.rebalance_timeout_ms > 0 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        }),
        protocol_type: string(&req.protocol_type),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| Protocol { name: string(&p.name), metadata: p.metadata })
            .collect(),
        require_known_member_id: v >= 4,
    };
    let r = ask(&ctx, |reply| GroupMsg::Join { req: join, reply })
        .await
        .unwrap_or_else(|| JoinResponse::error(code::COORDINATOR_NOT_AVAILABLE, member_id));
    let members = r
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(sb(m.member_id))
                .with_group_instance_id(if v >= 5 { m.group_instance_id.map(sb) } else { None })
                .with_metadata(m.metadata)
        })
        .collect();
    Some(
        JoinGroupResponse::default()
            .with_error_code(r.error)
            .with_generation_id(r.generation_id)
            .with_protocol_type(if v >= 7 { r.protocol_type.map(sb) } else { None })
            .with_protocol_name(match r.protocol_name {
                Some(p) => Some(sb(p)),
                None if v >= 7 => None,
                None => Some(sb("")),
            })
            .with_leader(sb(r.leader))
            .with_skip_assignment(v >= 9 && r.skip_assignment)
            .with_member_id(sb(r.member_id))
            .with_members(members),
    )
}
