//! AlterConfigs (key 33), the legacy form: the given configs replace all of a topic's configs
//! (validated as a whole). BROKER resources are refused: chronik's broker configs are static.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, RequestHeader};

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{incremental_alter_configs::apply_topic_change, sb, BrokerCtx};
use crate::error::code;
use crate::security::acl::Operation;

pub async fn handle(ctx: Arc<BrokerCtx>, _h: RequestHeader, req: AlterConfigsRequest) -> Option<AlterConfigsResponse> {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let base = AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        if let Err(denied) = ctx.check_config_resource(Operation::AlterConfigs, r.resource_type, &r.resource_name) {
            responses.push(base.with_error_code(denied).with_error_message(None));
            continue;
        }
        if r.resource_type != RESOURCE_TOPIC {
            let msg = if r.resource_type == RESOURCE_BROKER {
                super::incremental_alter_configs::BROKER_READ_ONLY.to_string()
            } else {
                format!("resource type {} cannot be altered", r.resource_type)
            };
            responses.push(base.with_error_code(code::INVALID_REQUEST).with_error_message(Some(sb(msg))));
            continue;
        }
        let mut set = BTreeMap::new();
        for c in &r.configs {
            if let Some(v) = &c.value {
                set.insert(c.name.to_string(), v.to_string());
            }
        }
        let outcome = apply_topic_change(&ctx, r.resource_name.as_str(), set, vec![], true, req.validate_only).await;
        responses.push(match outcome {
            Ok(()) => base,
            Err((c, m)) => base.with_error_code(c).with_error_message(Some(sb(m))),
        });
    }
    Some(AlterConfigsResponse::default().with_responses(responses))
}
