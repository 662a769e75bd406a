//! DeleteGroups (key 42): an empty group (no members) is forgotten by the coordinator and its
//! committed offsets are deleted through `__meta`. A group with members gets NON_EMPTY_GROUP,
//! an unknown one GROUP_ID_NOT_FOUND.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, RequestHeader};

use super::groups::{ask, commit_error, string};
use super::BrokerCtx;
use crate::error::code;
use crate::group::GroupMsg;
use crate::meta::command::{Cmd, DeleteGroups, MetaCommand};
use crate::meta::state::MetaResult;

pub async fn handle(ctx: Arc<BrokerCtx>, _h: RequestHeader, req: DeleteGroupsRequest) -> Option<DeleteGroupsResponse> {
    let image = ctx.image();
    let asked: Vec<(String, bool)> = req
        .groups_names
        .iter()
        .map(|g| {
            let id = string(&g.0);
            let has_offsets = image.offsets.contains_key(&id);
            (id, has_offsets)
        })
        .collect();
    let n = asked.len();
    let names: Vec<String> = asked.iter().map(|(g, _)| g.clone()).collect();
    let mut errors = ask(&ctx, |reply| GroupMsg::Delete { groups: asked, reply })
        .await
        .unwrap_or_else(|| vec![code::COORDINATOR_NOT_AVAILABLE; n]);
    let deletable: Vec<String> =
        names.iter().zip(&errors).filter(|(_, e)| **e == code::NONE).map(|(g, _)| g.clone()).collect();
    if !deletable.is_empty() {
        let failed = match ctx.propose(MetaCommand::new(Cmd::DeleteGroups(DeleteGroups { groups: deletable }))).await {
            Ok(MetaResult::Rejected { code, .. }) => code,
            Ok(_) => code::NONE,
            Err(e) => commit_error(&e),
        };
        for e in errors.iter_mut().filter(|e| **e == code::NONE) {
            *e = failed;
        }
    }
    let results = req
        .groups_names
        .into_iter()
        .zip(errors)
        .map(|(g, e)| DeletableGroupResult::default().with_group_id(g).with_error_code(e))
        .collect();
    Some(DeleteGroupsResponse::default().with_results(results))
}
