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
use crate::security::acl::Operation;

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
    // Groups the principal may not delete are answered GROUP_AUTHORIZATION_FAILED and not asked.
    let refused: Vec<Option<i16>> = names.iter().map(|g| ctx.check_group(Operation::Delete, g).err()).collect();
    let asked: Vec<(String, bool)> =
        asked.into_iter().zip(&refused).filter(|(_, r)| r.is_none()).map(|(a, _)| a).collect();
    let n_asked = asked.len();
    let mut answered = ask(&ctx, |reply| GroupMsg::Delete { groups: asked, reply })
        .await
        .unwrap_or_else(|| vec![code::COORDINATOR_NOT_AVAILABLE; n_asked])
        .into_iter();
    let mut errors: Vec<i16> = refused
        .iter()
        .map(|r| r.unwrap_or_else(|| answered.next().unwrap_or(code::COORDINATOR_NOT_AVAILABLE)))
        .collect();
    debug_assert_eq!(errors.len(), n);
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
