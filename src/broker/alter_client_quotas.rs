//! AlterClientQuotas (key 49): sets or removes `producer_byte_rate`, `consumer_byte_rate` and
//! `request_percentage` for user and/or client-id entities (a null name is the default entity)
//! through `__meta`. Needs ALTER_CONFIGS on the cluster (else CLUSTER_AUTHORIZATION_FAILED);
//! an unknown entity type or key, or a non-positive value, gets INVALID_REQUEST.

use std::sync::Arc;

use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse, RequestHeader};

use super::{meta_error_code, sb, BrokerCtx};
use crate::error::code;
use crate::meta::command::{AlterClientQuotas, Cmd, MetaCommand};
use crate::meta::state::MetaResult;
use crate::security::acl::Operation;
use crate::security::quota::{invalid, EntityPart, QuotaChange};

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    _h: RequestHeader,
    req: AlterClientQuotasRequest,
) -> Option<AlterClientQuotasResponse> {
    let denied = ctx.check_cluster(Operation::AlterConfigs).err();
    let changes: Vec<QuotaChange> = req
        .entries
        .iter()
        .map(|e| QuotaChange {
            entity: e
                .entity
                .iter()
                .map(|p| EntityPart {
                    entity_type: p.entity_type.to_string(),
                    name: p.entity_name.as_ref().map(|n| n.to_string()),
                })
                .collect(),
            set: e.ops.iter().filter(|o| !o.remove).map(|o| (o.key.to_string(), o.value)).collect(),
            remove: e.ops.iter().filter(|o| o.remove).map(|o| o.key.to_string()).collect(),
        })
        .collect();
    let mut results: Vec<(i16, Option<String>)> = changes
        .iter()
        .map(|c| match (denied, invalid(c)) {
            (Some(d), _) => (d, None),
            (None, Some(why)) => (code::INVALID_REQUEST, Some(why)),
            (None, None) => (code::NONE, None),
        })
        .collect();
    let valid: Vec<QuotaChange> =
        changes.into_iter().zip(&results).filter(|(_, r)| r.0 == code::NONE).map(|(c, _)| c).collect();
    if !valid.is_empty() && !req.validate_only {
        let failed =
            match ctx.propose(MetaCommand::new(Cmd::AlterClientQuotas(AlterClientQuotas { changes: valid }))).await {
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
    let entries = req
        .entries
        .into_iter()
        .zip(results)
        .map(|(e, (c, m))| {
            EntryData::default().with_error_code(c).with_error_message(m.map(sb)).with_entity(
                e.entity
                    .into_iter()
                    .map(|p| EntityData::default().with_entity_type(p.entity_type).with_entity_name(p.entity_name))
                    .collect(),
            )
        })
        .collect();
    Some(AlterClientQuotasResponse::default().with_entries(entries))
}
