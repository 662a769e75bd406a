//! DescribeConfigs (key 32): every topic config of Kafka 4.4 with its effective value and
//! source (DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG when chronik's TOML sets the default,
//! DEFAULT_CONFIG), plus an internal config (`internal.segment.bytes`) only when the topic
//! sets it, as Kafka; synonyms when asked, and type and documentation at v3+; and the BROKER
//! resource (this node's id or "" for the cluster default) with the broker settings of
//! [`super::broker_configs`], read-only but for the replication throttle rates set at run time
//! (`meta::broker_config`: DYNAMIC_BROKER_CONFIG or DYNAMIC_DEFAULT_BROKER_CONFIG).

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, RequestHeader};

use super::broker_configs::BrokerConfigEntry;
use super::{sb, BrokerCtx};
use crate::error::code;
use crate::meta::broker_config;
use crate::meta::topic_config::{described_defs, effective, Source};
use crate::security::acl::Operation;

/// Kafka's ConfigResource types.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// What the request asks for besides values.
#[derive(Clone, Copy)]
struct Detail {
    synonyms: bool,
    documentation: bool,
    v3: bool,
}

impl Detail {
    fn entry(
        self,
        name: &str,
        value: Option<String>,
        source: Source,
        read_only: bool,
        config_type: i8,
        doc: &str,
    ) -> DescribeConfigsResourceResult {
        let mut e = DescribeConfigsResourceResult::default()
            .with_name(sb(name))
            .with_value(value.map(sb))
            .with_read_only(read_only)
            .with_config_source(source.code())
            .with_is_sensitive(false);
        if self.v3 {
            e = e.with_config_type(config_type);
            if self.documentation {
                e = e.with_documentation(Some(sb(doc)));
            }
        }
        e
    }
}

fn synonym(name: &str, value: Option<String>, source: Source) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default().with_name(sb(name)).with_value(value.map(sb)).with_source(source.code())
}

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    h: RequestHeader,
    req: DescribeConfigsRequest,
) -> Option<DescribeConfigsResponse> {
    let v3 = h.request_api_version >= 3;
    let detail = Detail { synonyms: req.include_synonyms, documentation: v3 && req.include_documentation, v3 };
    let image = ctx.image();
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            if let Err(denied) =
                ctx.check_config_resource(Operation::DescribeConfigs, r.resource_type, &r.resource_name)
            {
                return base.with_error_code(denied).with_error_message(None);
            }
            let keys = r.configuration_keys.clone();
            let wanted =
                |k: &str| keys.as_ref().is_none_or(|keys| keys.is_empty() || keys.iter().any(|x| x.as_str() == k));
            match r.resource_type {
                RESOURCE_TOPIC => {
                    // The internal offsets topic exists without configs (broker/internal_topic.rs).
                    if super::internal_topic::is_internal(r.resource_name.as_str()) {
                        return base.with_configs(Vec::new());
                    }
                    let Some(topic) = image.topics.get(r.resource_name.as_str()) else {
                        return base
                            .with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION)
                            .with_error_message(Some(sb("unknown topic")));
                    };
                    let defaults = &ctx.settings.topic_defaults;
                    let configs = described_defs()
                        .filter(|d| wanted(d.name))
                        .filter_map(|d| {
                            let (value, source) = effective(d.name, &topic.configs, defaults)?;
                            let mut e = detail.entry(d.name, Some(value), source, false, d.kind.code(), d.doc);
                            if detail.synonyms {
                                let mut syn = Vec::new();
                                if let Some(v) = topic.configs.get(d.name) {
                                    syn.push(synonym(d.name, Some(v.clone()), Source::Topic));
                                }
                                if let Some(b) = d.synonym {
                                    if let Some(v) = defaults.get(d.name) {
                                        syn.push(synonym(b, Some(v.clone()), Source::StaticBroker));
                                    }
                                    syn.push(synonym(b, Some(d.default.to_string()), Source::Default));
                                }
                                e = e.with_synonyms(syn);
                            }
                            Some(e)
                        })
                        .collect();
                    base.with_configs(configs)
                }
                RESOURCE_BROKER => {
                    let name = r.resource_name.as_str();
                    if !name.is_empty() && name != ctx.node_id.to_string() {
                        return base.with_error_code(code::INVALID_REQUEST).with_error_message(Some(sb(format!(
                            "Unexpected broker id, expected {} or empty string, but received {name}",
                            ctx.node_id
                        ))));
                    }
                    let dynamic = &image.broker_configs;
                    let configs = ctx
                        .settings
                        .broker_configs
                        .iter()
                        .filter(|c| wanted(&c.name))
                        .map(|c: &BrokerConfigEntry| {
                            // The run-time throttle rates: this broker's own value, else the
                            // cluster default (all the "" resource shows), else Kafka's default.
                            let is_dynamic = broker_config::DYNAMIC_KEYS.contains(&c.name.as_str());
                            let own = dynamic.get(name).and_then(|m| m.get(&c.name)).filter(|_| !name.is_empty());
                            let default = dynamic.get("").and_then(|m| m.get(&c.name));
                            let (value, source) = match (own, default) {
                                (Some(v), _) => (Some(v.clone()), Source::DynamicBroker),
                                (None, Some(v)) => (Some(v.clone()), Source::DynamicDefaultBroker),
                                _ => (c.value.clone(), c.source),
                            };
                            let mut e = detail
                                .entry(&c.name, value, source, !is_dynamic, c.kind.code(), c.doc)
                                .with_is_sensitive(c.sensitive);
                            if detail.synonyms {
                                let mut syn = Vec::new();
                                if let Some(v) = own {
                                    syn.push(synonym(&c.name, Some(v.clone()), Source::DynamicBroker));
                                }
                                if let Some(v) = default {
                                    syn.push(synonym(&c.name, Some(v.clone()), Source::DynamicDefaultBroker));
                                }
                                if c.source == Source::StaticBroker {
                                    syn.push(synonym(&c.name, c.value.clone(), Source::StaticBroker));
                                }
                                syn.push(synonym(&c.name, c.kafka_default.clone(), Source::Default));
                                e = e.with_synonyms(syn);
                            }
                            e
                        })
                        .collect();
                    base.with_configs(configs)
                }
                other => base
                    .with_error_code(code::INVALID_REQUEST)
                    .with_error_message(Some(sb(format!("resource type {other} is not supported")))),
            }
        })
        .collect();
    Some(DescribeConfigsResponse::default().with_results(results))
}
