//! ListGroups (key 16): the groups this node coordinates, and the groups that only have
//! committed offsets (Empty). v4+ filters by state, v5+ by type (all groups are "classic").

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse, RequestHeader};

use super::groups::ask;
use super::{sb, BrokerCtx};
use crate::error::code;
use crate::group::{GroupMsg, GroupState};
use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};

pub async fn handle(ctx: Arc<BrokerCtx>, h: RequestHeader, req: ListGroupsRequest) -> Option<ListGroupsResponse> {
    let v = h.request_api_version;
    let listed = match ask(&ctx, |reply| GroupMsg::List { reply }).await {
        Some(Ok(listed)) => listed,
        // A node that does not coordinate lists no groups (each broker lists its own).
        Some(Err(code::NOT_COORDINATOR)) => return Some(ListGroupsResponse::default()),
        Some(Err(e)) => return Some(ListGroupsResponse::default().with_error_code(e)),
        None => return Some(ListGroupsResponse::default().with_error_code(code::COORDINATOR_NOT_AVAILABLE)),
    };
    let mut all: BTreeMap<String, (String, GroupState)> =
        listed.into_iter().map(|g| (g.group_id, (g.protocol_type, g.state))).collect();
    for g in ctx.image().offsets.keys() {
        all.entry(g.clone()).or_insert((String::new(), GroupState::Empty));
    }
    let states: Vec<String> =
        if v >= 4 { req.states_filter.iter().map(|s| s.as_str().to_ascii_lowercase()).collect() } else { Vec::new() };
    // DESCRIBE on the cluster lists every group; otherwise only those the principal may describe.
    let everything = ctx.visible(Operation::Describe, ResourceType::Cluster, CLUSTER_NAME);
    all.retain(|id, _| everything || ctx.visible(Operation::Describe, ResourceType::Group, id));
    let classic_wanted = v < 5
        || req.types_filter.is_empty()
        || req.types_filter.iter().any(|t| t.as_str().eq_ignore_ascii_case("classic"));
    let groups = all
        .into_iter()
        .filter(|(_, (_, state))| {
            classic_wanted && (states.is_empty() || states.contains(&state.name().to_ascii_lowercase()))
        })
        .map(|(id, (protocol_type, state))| {
            let mut g = ListedGroup::default().with_group_id(GroupId(sb(id))).with_protocol_type(sb(protocol_type));
            if v >= 4 {
                g = g.with_group_state(sb(state.name()));
            }
            if v >= 5 {
                g = g.with_group_type(sb("classic"));
            }
            g
        })
        .collect();
    Some(ListGroupsResponse::default().with_groups(groups))
}
