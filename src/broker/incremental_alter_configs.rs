//! IncrementalAlterConfigs (key 44): SET, DELETE, APPEND and SUBTRACT of single topic configs
//! (APPEND/SUBTRACT on LIST configs such as `cleanup.policy` only, as Kafka). The topic's
//! resulting config map is validated as a whole (types, ranges, cross-field rules) before it
//! is proposed. On a BROKER resource (a broker id, or "" for the cluster default) only Kafka's
//! replication throttle rates can be set or deleted (`meta::broker_config`: what
//! `kafka-reassign-partitions.sh --throttle` sets and `--verify` removes); every other broker
//! config is static and refused.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, RequestHeader};

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::topics::TopicError;
use super::{meta_error_code, sb, BrokerCtx};
use crate::error::code;
use crate::meta::broker_config::{self, AlterBrokerConfigs};
use crate::meta::command::{AlterTopicConfigs, Cmd, MetaCommand};
use crate::meta::state::MetaResult;
use crate::meta::topic_config::{self, apply_list_op, validate_topic_configs, ListOp};
use crate::security::acl::Operation;

/// The answer to an alteration of a static BROKER config.
pub const BROKER_READ_ONLY: &str = "chronik's broker configs are static: set them in the configuration file \
     (see docs/configuration.md) and restart the node; only leader.replication.throttled.rate, \
     follower.replication.throttled.rate and replica.alter.log.dirs.io.max.bytes.per.second can be \
     altered at run time (with IncrementalAlterConfigs)";

/// An alteration of a BROKER resource: SET or DELETE of the dynamic keys only.
fn broker_change(entity: &str, configs: &[(i8, &str, Option<&str>)]) -> Result<AlterBrokerConfigs, (i16, String)> {
    if !entity.is_empty() {
        match entity.parse::<i32>() {
            Ok(id) if id < 0 => return Err((code::INVALID_REQUEST, "Invalid negative broker ID.".into())),
            Ok(_) => {}
            Err(_) => return Err((code::INVALID_REQUEST, "Unable to parse broker name as a base 10 number.".into())),
        }
    }
    let mut change = AlterBrokerConfigs { entity: entity.to_string(), ..Default::default() };
    let mut names = std::collections::HashSet::new();
    for (op, name, value) in configs {
        if !names.insert(*name) {
            return Err((code::INVALID_REQUEST, "Error due to duplicate config keys".into()));
        }
        if !broker_config::DYNAMIC_KEYS.contains(name) {
            return Err((code::INVALID_REQUEST, BROKER_READ_ONLY.into()));
        }
        match (op, value) {
            (0, Some(v)) => {
                broker_config::validate(name, v).map_err(|m| (code::INVALID_CONFIG, m))?;
                change.set.insert(name.to_string(), v.trim().to_string());
            }
            (0, None) => return Err((code::INVALID_REQUEST, format!("Null value not supported for : {name}"))),
            (1, _) => change.delete.push(name.to_string()),
            (2 | 3, _) => {
                let verb = if *op == 2 { "append" } else { "subtract" };
                return Err((
                    code::INVALID_CONFIG,
                    format!("Config value {verb} is not allowed for config key: {name}"),
                ));
            }
            (other, _) => return Err((code::INVALID_REQUEST, format!("Unknown alter configs operation {other}"))),
        }
    }
    Ok(change)
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
        if r.resource_type == RESOURCE_BROKER {
            let ops: Vec<_> =
                r.configs.iter().map(|c| (c.config_operation, c.name.as_str(), c.value.as_deref())).collect();
            let outcome = match broker_change(&r.resource_name, &ops) {
                Ok(_) if req.validate_only => Ok(()),
                Ok(change) => match ctx.propose(MetaCommand::new(Cmd::AlterBrokerConfigs(change))).await {
                    Ok(MetaResult::Rejected { code, message }) => Err((code, message)),
                    Ok(_) => Ok(()),
                    Err(e) => Err((meta_error_code(&e), e.to_string())),
                },
                Err(e) => Err(e),
            };
            responses.push(match outcome {
                Ok(()) => base,
                Err((c, m)) => base.with_error_code(c).with_error_message(Some(sb(m))),
            });
            continue;
        }
        if r.resource_type != RESOURCE_TOPIC {
            let msg = format!("resource type {} cannot be altered", r.resource_type);
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
    fn a_broker_takes_set_and_delete_of_the_throttle_rates_only() {
        let rate = broker_config::LEADER_RATE;
        let c = broker_change("2", &[(0, rate, Some("1000")), (1, broker_config::FOLLOWER_RATE, None)]).unwrap();
        assert_eq!((c.entity.as_str(), c.set[rate].as_str(), c.delete.len()), ("2", "1000", 1));
        assert_eq!(broker_change("", &[(1, rate, None)]).unwrap().entity, "");
        let err = |entity, ops: &[(i8, &str, Option<&str>)]| broker_change(entity, ops).unwrap_err();
        assert_eq!(err("1", &[(0, "log.retention.ms", Some("1"))]).0, code::INVALID_REQUEST);
        assert_eq!(err("1", &[(0, rate, Some("-1"))]).0, code::INVALID_CONFIG);
        assert_eq!(err("1", &[(2, rate, Some("1"))]).0, code::INVALID_CONFIG);
        assert_eq!(err("1", &[(0, rate, None)]).0, code::INVALID_REQUEST);
        assert_eq!(err("1", &[(1, rate, None), (0, rate, Some("1"))]).1, "Error due to duplicate config keys");
        assert_eq!(err("x", &[(1, rate, None)]).1, "Unable to parse broker name as a base 10 number.");
        assert_eq!(err("-2", &[(1, rate, None)]).1, "Invalid negative broker ID.");
    }
}
