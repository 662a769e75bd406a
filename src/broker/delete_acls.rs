//! DeleteAcls (key 31): removes the ACL bindings matching each filter through `__meta`, and
//! answers per filter with the bindings it matched in the image the request saw. Needs ALTER on
//! the cluster (else CLUSTER_AUTHORIZATION_FAILED per filter); an invalid filter gets
//! INVALID_REQUEST.

use std::sync::Arc;

use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse, RequestHeader};

use super::{meta_error_code, sb, BrokerCtx};
use crate::error::code;
use crate::meta::command::{Cmd, DeleteAcls, MetaCommand};
use crate::meta::state::MetaResult;
use crate::security::acl::{AclBindingFilter, Operation};

pub async fn handle(ctx: Arc<BrokerCtx>, _h: RequestHeader, req: DeleteAclsRequest) -> Option<DeleteAclsResponse> {
    let failed = |code: i16, message: Option<String>| {
        DeleteAclsFilterResult::default().with_error_code(code).with_error_message(message.map(sb))
    };
    if let Err(denied) = ctx.check_cluster(Operation::Alter) {
        let results = req.filters.iter().map(|_| failed(denied, None)).collect();
        return Some(DeleteAclsResponse::default().with_filter_results(results));
    }
    let filters: Vec<AclBindingFilter> = req
        .filters
        .into_iter()
        .map(|f| AclBindingFilter {
            resource_type: f.resource_type_filter.into(),
            resource_name: f.resource_name_filter.map(|s| s.to_string()),
            pattern_type: f.pattern_type_filter.into(),
            principal: f.principal_filter.map(|s| s.to_string()),
            host: f.host_filter.map(|s| s.to_string()),
            operation: f.operation.into(),
            permission: f.permission_type.into(),
        })
        .collect();
    let valid: Vec<AclBindingFilter> = filters.iter().filter(|f| f.invalid().is_none()).cloned().collect();
    let before = ctx.image().acls.clone();
    let outcome = if valid.is_empty() {
        None
    } else {
        match ctx.propose(MetaCommand::new(Cmd::DeleteAcls(DeleteAcls { filters: valid }))).await {
            Ok(MetaResult::Rejected { code, message }) => Some((code, message)),
            Ok(_) => None,
            Err(e) => Some((meta_error_code(&e), e.to_string())),
        }
    };
    let results = filters
        .iter()
        .map(|f| {
            if let Some(why) = f.invalid() {
                return failed(code::INVALID_REQUEST, Some(why));
            }
            if let Some((c, m)) = &outcome {
                return failed(*c, Some(m.clone()));
            }
            let matching = before
                .iter()
                .filter(|b| f.matches(b))
                .map(|b| {
                    DeleteAclsMatchingAcl::default()
                        .with_error_message(None)
                        .with_resource_type(b.resource_type as i8)
                        .with_resource_name(sb(b.resource_name.clone()))
                        .with_pattern_type(b.pattern_type as i8)
                        .with_principal(sb(b.principal.clone()))
                        .with_host(sb(b.host.clone()))
                        .with_operation(b.operation as i8)
                        .with_permission_type(b.permission as i8)
                })
                .collect();
            DeleteAclsFilterResult::default().with_error_message(None).with_matching_acls(matching)
        })
        .collect();
    Some(DeleteAclsResponse::default().with_filter_results(results))
}
