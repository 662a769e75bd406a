//! DescribeClientQuotas (key 48): the quota values of the entities matching the filter
//! components (match type 0: the named entity, 1: the default entity, 2: any entity of the
//! type; `strict`: no other entity types). Needs DESCRIBE_CONFIGS on the cluster (else
//! CLUSTER_AUTHORIZATION_FAILED).

use std::sync::Arc;

use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse, RequestHeader};

use super::{sb, BrokerCtx};
use crate::error::code;
use crate::security::acl::Operation;
use crate::security::quota::{CLIENT_ID, USER};

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    _h: RequestHeader,
    req: DescribeClientQuotasRequest,
) -> Option<DescribeClientQuotasResponse> {
    let resp = DescribeClientQuotasResponse::default().with_error_message(None);
    if let Err(denied) = ctx.check_cluster(Operation::DescribeConfigs) {
        return Some(resp.with_error_code(denied).with_entries(None));
    }
    for c in &req.components {
        let t = c.entity_type.as_str();
        if (t != USER && t != CLIENT_ID) || c.match_type > 2 || (c.match_type == 0 && c._match.is_none()) {
            return Some(
                resp.with_error_code(code::INVALID_REQUEST)
                    .with_error_message(Some(sb(format!(
                        "invalid filter component {t:?} (match type {})",
                        c.match_type
                    ))))
                    .with_entries(None),
            );
        }
    }
    let quotas = ctx.image().client_quotas.clone();
    let entries = quotas
        .iter()
        .filter(|(entity, _)| {
            let matched = req.components.iter().all(|c| {
                entity.iter().find(|p| p.entity_type == c.entity_type.as_str()).is_some_and(|p| match c.match_type {
                    0 => p.name.as_deref() == c._match.as_ref().map(|m| m.as_str()),
                    1 => p.name.is_none(),
                    _ => true,
                })
            });
            let extra = entity.iter().any(|p| !req.components.iter().any(|c| c.entity_type.as_str() == p.entity_type));
            matched && !(req.strict && extra)
        })
        .map(|(entity, values)| {
            EntryData::default()
                .with_entity(
                    entity
                        .iter()
                        .map(|p| {
                            EntityData::default()
                                .with_entity_type(sb(p.entity_type.clone()))
                                .with_entity_name(p.name.clone().map(sb))
                        })
                        .collect(),
                )
                .with_values(
                    values.iter().map(|(k, v)| ValueData::default().with_key(sb(k.clone())).with_value(v.0)).collect(),
                )
        })
        .collect();
    Some(resp.with_entries(Some(entries)))
}
