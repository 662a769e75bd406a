//! DescribeConfigs (key 32): topic configs (retention.ms, retention.bytes, segment.bytes,
//! cleanup.policy, max.message.bytes) with their source, and an empty list for brokers.

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, RequestHeader};

use super::{sb, BrokerCtx};
use crate::error::code;
use crate::meta::state::TOPIC_CONFIGS;
use crate::security::acl::Operation;

/// Kafka's ConfigResource types.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
/// Kafka's ConfigSource values.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    h: RequestHeader,
    req: DescribeConfigsRequest,
) -> Option<DescribeConfigsResponse> {
    let v3 = h.request_api_version >= 3;
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
            match r.resource_type {
                RESOURCE_TOPIC => {
                    let Some(topic) = image.topics.get(r.resource_name.as_str()) else {
                        return base
                            .with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION)
                            .with_error_message(Some(sb("unknown topic")));
                    };
                    let wanted = |k: &str| {
                        r.configuration_keys
                            .as_ref()
                            .is_none_or(|keys| keys.is_empty() || keys.iter().any(|x| x.as_str() == k))
                    };
                    let configs = TOPIC_CONFIGS
                        .iter()
                        .filter(|(k, _)| wanted(k))
                        .map(|(k, default)| {
                            let (value, source) = match topic.configs.get(*k) {
                                Some(v) => (v.clone(), SOURCE_TOPIC),
                                None => (default.to_string(), SOURCE_DEFAULT),
                            };
                            DescribeConfigsResourceResult::default()
                                .with_name(sb(*k))
                                .with_value(Some(sb(value)))
                                .with_config_source(source)
                                .with_config_type(match (v3, *k == "cleanup.policy") {
                                    (false, _) => 0,
                                    (true, true) => 7,
                                    (true, false) => 5,
                                })
                        })
                        .collect();
                    base.with_configs(configs)
                }
                RESOURCE_BROKER => base,
                other => base
                    .with_error_code(code::INVALID_REQUEST)
                    .with_error_message(Some(sb(format!("resource type {other} is not supported")))),
            }
        })
        .collect();
    Some(DescribeConfigsResponse::default().with_results(results))
}
