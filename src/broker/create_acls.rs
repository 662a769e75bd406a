//! CreateAcls (key 30): adds ACL bindings through `__meta` (so they apply on every node). Needs
//! ALTER on the cluster (else CLUSTER_AUTHORIZATION_FAILED for each creation); an invalid
//! binding (unknown type, MATCH/ANY pattern, unparsable principal) gets INVALID_REQUEST.

use std::sync::Arc;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse, RequestHeader};

use super::{meta_error_code, sb, BrokerCtx};
use crate::error::code;
use crate::meta::command::{Cmd, CreateAcls, MetaCommand};
use crate::meta::state::MetaResult;
use crate::security::acl::{AclBinding, Operation};

pub async fn handle(ctx: Arc<BrokerCtx>, _h: RequestHeader, req: CreateAclsRequest) -> Option<CreateAclsResponse> {
    let result = |code: i16, message: Option<String>| {
        AclCreationResult::default().with_error_code(code).with_error_message(message.map(sb))
    };
    if let Err(denied) = ctx.check_cluster(Operation::Alter) {
        let results = req.creations.iter().map(|_| result(denied, None)).collect();
        return Some(CreateAclsResponse::default().with_results(results));
    }
    let bindings: Vec<AclBinding> = req
        .creations
        .iter()
        .map(|c| AclBinding {
            resource_type: c.resource_type.into(),
            resource_name: c.resource_name.to_string(),
            pattern_type: c.resource_pattern_type.into(),
            principal: c.principal.to_string(),
            host: c.host.to_string(),
            operation: c.operation.into(),
            permission: c.permission_type.into(),
        })
        .collect();
    let mut results: Vec<(i16, Option<String>)> = bindings
        .iter()
        .map(|b| match b.invalid() {
            Some(why) => (code::INVALID_REQUEST, Some(why)),
            None => (code::NONE, None),
        })
        .collect();
    let valid: Vec<AclBinding> = bindings.into_iter().filter(|b| b.invalid().is_none()).collect();
    if !valid.is_empty() {
        let failed = match ctx.propose(MetaCommand::new(Cmd::CreateAcls(CreateAcls { acls: valid }))).await {
            Ok(MetaResult::Rejected { code, message }) => Some((code, Some(message))),
            Ok(_) => None,
            Err(e) => Some((meta_error_code(&e), Some(e.to_string()))),
        };
        if let Some(f) = failed {
            for r in results.iter_mut().filter(|r| r.0 == code::NONE) {
                *r = f.clone();
            }
        }
    }
    let results = results.into_iter().map(|(c, m)| result(c, m)).collect();
    Some(CreateAclsResponse::default().with_results(results))
}
