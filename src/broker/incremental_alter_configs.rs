//! IncrementalAlterConfigs (key 44): SET and DELETE of single topic configs. APPEND and
//! SUBTRACT apply to list-valued configs only, which chronik's topic configs are not.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, RequestHeader};

use super::describe_configs::RESOURCE_TOPIC;
use super::topics::TopicError;
use super::{meta_error_code, sb, BrokerCtx};
use crate::error::code;
use crate::meta::command::{AlterTopicConfigs, Cmd, MetaCommand};
use crate::meta::state::{validate_topic_config, MetaResult};
use crate::security::acl::Operation;

/// Validates and (unless `validate_only`) proposes a change of a topic's configs.
pub async fn apply_topic_change(
    ctx: &BrokerCtx,
    topic: &str,
    set: BTreeMap<String, String>,
    delete: Vec<String>,
    replace_all: bool,
    validate_only: bool,
) -> Result<(), TopicError> {
    if !ctx.image().topics.contains_key(topic) {
        return Err((code::UNKNOWN_TOPIC_OR_PARTITION, format!("no topic {topic:?}")));
    }
    for (k, v) in &set {
        validate_topic_config(k, v).map_err(|m| (code::INVALID_CONFIG, m))?;
    }
    for k in &delete {
        if !crate::meta::state::TOPIC_CONFIGS.iter().any(|(name, _)| name == k) {
            return Err((code::INVALID_CONFIG, format!("unknown topic config {k:?}")));
        }
    }
    if validate_only {
        return Ok(());
    }
    let cmd = MetaCommand::new(Cmd::AlterTopicConfigs(AlterTopicConfigs {
        name: topic.to_string(),
        set,
        delete,
        replace_all,
    }));
    match ctx.propose(cmd).await {
        Ok(MetaResult::Rejected { code, message }) => Err((code, message)),
        Ok(_) => Ok(()),
        Err(e) => Err((meta_error_code(&e), e.to_string())),
    }
}

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    _h: RequestHeader,
    req: IncrementalAlterConfigsRequest,
) -> Option<IncrementalAlterConfigsResponse> {
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
            responses.push(
                base.with_error_code(code::INVALID_REQUEST)
                    .with_error_message(Some(sb("only topic configs can be altered"))),
            );
            continue;
        }
        let (mut set, mut delete, mut bad) = (BTreeMap::new(), Vec::new(), None);
        for c in &r.configs {
            match (c.config_operation, &c.value) {
                (0, Some(v)) => {
                    set.insert(c.name.to_string(), v.to_string());
                }
                (1, _) => delete.push(c.name.to_string()),
                (op, _) => bad = Some(format!("operation {op} on {} is not supported", c.name.as_str())),
            }
        }
        let outcome = match bad {
            Some(m) => Err((code::INVALID_CONFIG, m)),
            None => apply_topic_change(&ctx, r.resource_name.as_str(), set, delete, false, req.validate_only).await,
        };
        responses.push(match outcome {
            Ok(()) => base,
            Err((c, m)) => base.with_error_code(c).with_error_message(Some(sb(m))),
        });
    }
    Some(IncrementalAlterConfigsResponse::default().with_responses(responses))
}
