//! DescribeGroups (key 15): state, protocol and members (with metadata and assignment while
//! Stable) of each group. A group known only by its committed offsets is Empty; an unknown group
//! is Dead (v6+: GROUP_ID_NOT_FOUND, as Kafka 4 answers).

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, RequestHeader};

use super::groups::{ask, string};
use super::{sb, BrokerCtx};
use crate::error::code;
use crate::group::{GroupMsg, GroupState};
use crate::security::acl::{Operation, ResourceType};

/// What may be done to a group without an authorizer: READ (3), DELETE (6), DESCRIBE (8),
/// DESCRIBE_CONFIGS (10), ALTER_CONFIGS (11).
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    h: RequestHeader,
    req: DescribeGroupsRequest,
) -> Option<DescribeGroupsResponse> {
    let v = h.request_api_version;
    let ids: Vec<String> = req.groups.iter().map(|g| string(&g.0)).collect();
    let n = ids.len();
    let wanted = ids.clone();
    let found = ask(&ctx, |reply| GroupMsg::Describe { groups: wanted, reply })
        .await
        .unwrap_or(Err(code::COORDINATOR_NOT_AVAILABLE));
    let image = ctx.image();
    let asked_operations = v >= 3 && req.include_authorized_operations;
    let groups = req
        .groups
        .into_iter()
        .zip(found.map(|f| f.into_iter().map(Ok).collect()).unwrap_or_else(|e| vec![Err(e); n]))
        .zip(ids)
        .map(|((group_id, found), id)| {
            let operations = match (asked_operations, ctx.authorizer.enabled()) {
                (false, _) => i32::MIN,
                (true, false) => GROUP_OPERATIONS,
                (true, true) => ctx.authorized_operations(ResourceType::Group, &id),
            };
            let g = DescribedGroup::default().with_group_id(group_id).with_authorized_operations(operations);
            if let Err(denied) = ctx.check_group(Operation::Describe, &id) {
                return g.with_error_code(denied).with_group_state(sb(""));
            }
            match found {
                Err(e) => g.with_error_code(e).with_group_state(sb(GroupState::Dead.name())),
                Ok(Some(d)) => g
                    .with_group_state(sb(d.state.name()))
                    .with_protocol_type(sb(d.protocol_type))
                    .with_protocol_data(sb(d.protocol))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(sb(m.member_id))
                                    .with_group_instance_id(if v >= 4 { m.group_instance_id.map(sb) } else { None })
                                    .with_client_id(sb(m.client_id))
                                    .with_client_host(sb(m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment)
                            })
                            .collect(),
                    ),
                Ok(None) if image.offsets.contains_key(&id) => g.with_group_state(sb(GroupState::Empty.name())),
                Ok(None) if v >= 6 => g
                    .with_error_code(code::GROUP_ID_NOT_FOUND)
                    .with_error_message(Some(sb(format!("Group {id} not found."))))
                    .with_group_state(sb(GroupState::Dead.name())),
                Ok(None) => g.with_group_state(sb(GroupState::Dead.name())),
            }
        })
        .collect();
    Some(DescribeGroupsResponse::default().with_groups(groups))
}
