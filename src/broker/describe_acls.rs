//! DescribeAcls (key 29): the ACL bindings of the published `__meta` image that match the
//! filter, grouped by resource pattern as Kafka answers. Needs DESCRIBE on the cluster (else
//! CLUSTER_AUTHORIZATION_FAILED); an invalid filter gets INVALID_REQUEST.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse, RequestHeader};

use super::{sb, BrokerCtx};
use crate::error::code;
use crate::security::acl::{AclBindingFilter, Operation};

pub async fn handle(ctx: Arc<BrokerCtx>, _h: RequestHeader, req: DescribeAclsRequest) -> Option<DescribeAclsResponse> {
    if let Err(denied) = ctx.check_cluster(Operation::Describe) {
        return Some(DescribeAclsResponse::default().with_error_code(denied).with_error_message(None));
    }
    let filter = AclBindingFilter {
        resource_type: req.resource_type_filter.into(),
        resource_name: req.resource_name_filter.map(|s| s.to_string()),
        pattern_type: req.pattern_type_filter.into(),
        principal: req.principal_filter.map(|s| s.to_string()),
        host: req.host_filter.map(|s| s.to_string()),
        operation: req.operation.into(),
        permission: req.permission_type.into(),
    };
    if let Some(why) = filter.invalid() {
        return Some(
            DescribeAclsResponse::default().with_error_code(code::INVALID_REQUEST).with_error_message(Some(sb(why))),
        );
    }
    let acls = ctx.image().acls.clone();
    let mut by_resource: BTreeMap<(i32, String, i32), Vec<AclDescription>> = BTreeMap::new();
    for b in acls.iter().filter(|b| filter.matches(b)) {
        by_resource.entry((b.resource_type, b.resource_name.clone(), b.pattern_type)).or_default().push(
            AclDescription::default()
                .with_principal(sb(b.principal.clone()))
                .with_host(sb(b.host.clone()))
                .with_operation(b.operation as i8)
                .with_permission_type(b.permission as i8),
        );
    }
    let resources = by_resource
        .into_iter()
        .map(|((rt, name, pt), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(rt as i8)
                .with_resource_name(sb(name))
                .with_pattern_type(pt as i8)
                .with_acls(acls)
        })
        .collect();
    Some(DescribeAclsResponse::default().with_error_message(None).with_resources(resources))
}
