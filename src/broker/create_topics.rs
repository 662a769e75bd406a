//! CreateTopics (key 19): validates each topic, proposes it to `__meta` (unless validate-only),
//! and answers once every new partition has a leader or the request's timeout has passed. A
//! manual `assignments` list (`kafka-topics.sh --replica-assignment`) is checked as Kafka does
//! (`meta::assignment`; `num_partitions` and `replication_factor` must then be -1) and goes to
//! `__meta` with the command: each partition's first broker is its preferred leader.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, RequestHeader};
use uuid::Uuid;

use super::topics::{self, NewTopic};
use super::{sb, BrokerCtx};
use crate::error::code;
use crate::meta::topic_config::{described_defs, effective};

pub async fn handle(ctx: Arc<BrokerCtx>, h: RequestHeader, req: CreateTopicsRequest) -> Option<CreateTopicsResponse> {
    let version = h.request_api_version;
    let timeout = Duration::from_millis(req.timeout_ms.clamp(0, 600_000) as u64);
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut result = CreatableTopicResult::default().with_name(t.name.clone());
        let mut configs = BTreeMap::new();
        let mut bad_config = None;
        for c in &t.configs {
            match &c.value {
                Some(v) => {
                    configs.insert(c.name.to_string(), v.to_string());
                }
                None => bad_config = Some(format!("config {} has no value", c.name.as_str())),
            }
        }
        // validate_only describes the requested configs (the topic is not created).
        let requested = configs.clone();
        let manual = !t.assignments.is_empty();
        let assignment = if manual {
            let pairs: Vec<(i32, Vec<i32>)> =
                t.assignments.iter().map(|a| (a.partition_index, a.broker_ids.iter().map(|b| b.0).collect())).collect();
            crate::meta::assignment::for_new_topic(&ctx.image().brokers, &pairs)
        } else {
            Ok(Vec::new())
        };
        let outcome = if let Err(denied) = ctx.check_create_topic(&name) {
            Err((denied, "Authorization failed.".to_string()))
        } else if let Some(m) = bad_config {
            Err((code::INVALID_CONFIG, m))
        } else if manual && t.replication_factor != -1 {
            Err((
                code::INVALID_REQUEST,
                "A manual partition assignment was specified, but replication factor was not set to -1.".to_string(),
            ))
        } else if manual && t.num_partitions != -1 {
            Err((
                code::INVALID_REQUEST,
                "A manual partition assignment was specified, but numPartitions was not set to -1.".to_string(),
            ))
        } else if let Err(e) = &assignment {
            Err(e.clone())
        } else {
            let new = NewTopic {
                name: name.clone(),
                partitions: t.num_partitions,
                replication_factor: t.replication_factor,
                configs,
                assignment: assignment.unwrap_or_default(),
            };
            if req.validate_only {
                topics::validate(&ctx, &new).map(|(p, rf)| (None, p, rf))
            } else {
                let (p, rf) = match topics::validate(&ctx, &new) {
                    Ok(v) => v,
                    Err(e) => {
                        results.push(error_result(result, e, version));
                        continue;
                    }
                };
                topics::create(&ctx, new, timeout).await.map(|id| (Some(id), p, rf))
            }
        };
        match outcome {
            Ok((id, p, rf)) => {
                if let (Some(id), true) = (id, version >= 7) {
                    result.topic_id = Uuid::from_bytes(id);
                }
                if version < 5 {
                    results.push(result);
                    continue;
                }
                result.num_partitions = p as i32;
                result.replication_factor = rf as i16;
                let image = ctx.image();
                let info = image.topics.get(&name).cloned();
                let configs = info.as_ref().map_or(&requested, |i| &i.configs);
                result.configs = Some(
                    described_defs()
                        .filter_map(|d| {
                            let (value, source) = effective(d.name, configs, &ctx.settings.topic_defaults)?;
                            Some(
                                CreatableTopicConfigs::default()
                                    .with_name(sb(d.name))
                                    .with_value(Some(sb(value)))
                                    .with_config_source(source.code()),
                            )
                        })
                        .collect(),
                );
                results.push(result);
            }
            Err(e) => results.push(error_result(result, e, version)),
        }
    }
    Some(CreateTopicsResponse::default().with_topics(results))
}

fn error_result(r: CreatableTopicResult, (c, msg): (i16, String), version: i16) -> CreatableTopicResult {
    let r = r.with_error_code(c).with_error_message(Some(sb(msg)));
    if version >= 5 {
        r.with_num_partitions(-1).with_replication_factor(-1)
    } else {
        r
    }
}
