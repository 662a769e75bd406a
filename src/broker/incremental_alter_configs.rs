//! IncrementalAlterConfigs (key 44): SET, DELETE, APPEND and SUBTRACT of single topic configs
//! (APPEND/SUBTRACT on LIST configs such as `cleanup.policy` only, as Kafka). The topic's
//! resulting config map is validated as a whole (types, ranges, cross-field rules) before it
//! is proposed. BROKER resources are refused: chronik's broker configs are static; the one
//! exception is a DELETE of Kafka's replication throttles (`leader.replication.throttled.rate`,
//! `follower.replication.throttled.rate`, `replica.alter.log.dirs.io.max.bytes.per.second`), which
//! `kafka-reassign-partitions.sh --verify|--cancel` sends to every broker once a reassignment is
//! done: chronik sets no such throttle, so there is nothing to remove and the answer is NONE.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, RequestHeader};

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::topics::TopicError;
use super::{meta_error_code, sb, BrokerCtx};
use crate::error::code;
use crate::meta::command::{AlterTopicConfigs, Cmd, MetaCommand};
use crate::meta::state::MetaResult;
use crate::meta::topic_config::{self, apply_list_op, validate_topic_configs, ListOp};
use crate::security::acl::Operation;

/// The answer to an alteration of a BROKER resource.
pub const BROKER_READ_ONLY: &str = "chronik's broker configs are static: set them in the configuration file \
     (see docs/configuration.md) and restart the node; they cannot be altered at run time";

/// The broker-level throttles Kafka's reassignment tool clears (`BROKER_LEVEL_THROTTLES`).
const BROKER_THROTTLES: [&str; 3] = [
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
    "replica.alter.log.dirs.io.max.bytes.per.second",
];

/// True when a BROKER alteration only deletes replication throttles (a no-op here).
fn clears_throttles_only(configs: &[(i8, &str)]) -> bool {
    !configs.is_empty() && configs.iter().all(|(op, name)| *op == 1 && BROKER_THROTTLES.contains(name))
}

/// Validates and (unless `validate_only`) proposes a change of a topic's configs.
pub async fn apply_topic_change(
    ctx: &BrokerCtx,
    topic: &str,
    set: BTreeMap<String, String>,
    delete: Vec<String>,
    replace_all: bool,
    validate_only: bool,
) -> Result<(), TopicError> {
    let image = ctx.image();
    let Some(info) = image.topics.get(topic) else {
        return Err((code::UNKNOWN_TOPIC_OR_PARTITION, format!("no topic {topic:?}")));
    };
    for k in &delete {
        if topic_config::def(k).is_none() {
            return Err((code::INVALID_CONFIG, format!("Unknown topic config name: {k}")));
        }
    }
    let mut merged = if replace_all { BTreeMap::new() } else { info.configs.clone() };
    merged.extend(set.clone());
    for k in &delete {
        merged.remove(k);
    }
    validate_topic_configs(&merged).map_err(|m| (code::INVALID_CONFIG, m))?;
    if validate_only {
        return Ok(());
    }
    topic_config::log_not_applied(&ctx.logger, topic, &set);
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
        let ops: Vec<(i8, &str)> = r.configs.iter().map(|c| (c.config_operation, c.name.as_str())).collect();
        if r.resource_type == RESOURCE_BROKER && clears_throttles_only(&ops) {
            responses.push(base);
            continue;
        }
        if r.resource_type != RESOURCE_TOPIC {
            let msg = if r.resource_type == RESOURCE_BROKER {
                BROKER_READ_ONLY.to_string()
            } else {
                format!("resource type {} cannot be altered", r.resource_type)
            };
            responses.push(base.with_error_code(code::INVALID_REQUEST).with_error_message(Some(sb(msg))));
            continue;
        }
        let current = ctx.image().topics.get(r.resource_name.as_str()).map(|t| t.configs.clone()).unwrap_or_default();
        let (mut set, mut delete, mut bad) = (BTreeMap::new(), Vec::new(), None);
        let mut names = std::collections::HashSet::new();
        for c in &r.configs {
            let key = c.name.to_string();
            if !names.insert(key.clone()) {
                bad = Some((code::INVALID_REQUEST, "Error due to duplicate config keys".to_string()));
                break;
            }
            let value = c.value.as_ref().map(|v| v.to_string());
            let op = match c.config_operation {
                2 => Some(ListOp::Append),
                3 => Some(ListOp::Subtract),
                _ => None,
            };
            match (c.config_operation, value) {
                (0, Some(v)) => {
                    set.insert(key, v);
                }
                (0, None) => bad = Some((code::INVALID_REQUEST, format!("Null value not supported for : {key}"))),
                (1, _) => delete.push(key),
                (2 | 3, v) => {
                    let op = op.expect("2 or 3");
                    match apply_list_op(&key, current.get(&key).map(String::as_str), v.as_deref().unwrap_or(""), op) {
                        Ok(v) => {
                            set.insert(key, v);
                        }
                        Err(m) => bad = Some((code::INVALID_CONFIG, m)),
                    }
                }
                (other, _) => bad = Some((code::INVALID_REQUEST, format!("Unknown alter configs operation {other}"))),
            }
        }
        let outcome = match bad {
            Some(e) => Err(e),
            None => apply_topic_change(&ctx, r.resource_name.as_str(), set, delete, false, req.validate_only).await,
        };
        responses.push(match outcome {
            Ok(()) => base,
            Err((c, m)) => base.with_error_code(c).with_error_message(Some(sb(m))),
        });
    }
    Some(IncrementalAlterConfigsResponse::default().with_responses(responses))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_delete_of_replication_throttles_passes_on_a_broker() {
        assert!(clears_throttles_only(&[
            (1, "leader.replication.throttled.rate"),
            (1, "follower.replication.throttled.rate")
        ]));
        assert!(!clears_throttles_only(&[(0, "leader.replication.throttled.rate")]), "SET is refused");
        assert!(!clears_throttles_only(&[(1, "log.retention.ms")]));
        assert!(!clears_throttles_only(&[]));
    }
}
