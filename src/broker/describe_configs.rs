//! DescribeConfigs (key 32): topic configs (retention.ms, retention.bytes, segment.bytes,
//! cleanup.policy, max.message.bytes) with their source, and an empty list for brokers.

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, RequestHeader};

use super::{sb, BrokerCtx};
use crate::error::code;
use crate::meta::state::TOPIC_CONFIGS;

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
                RESOURCE_BROKER => {
                    let wanted = |k: &str| {
                        r.configuration_keys
                            .as_ref()
                            .is_none_or(|keys| keys.is_empty() || keys.iter().any(|x| x.as_str() == k))
                    };
                    let configs = ctx
                        .settings
                        .broker_configs
                        .iter()
                        .filter(|c| wanted(&c.name))
                        .map(|c| {
                            DescribeConfigsResourceResult::default()
                                .with_name(sb(c.name.clone()))
                                .with_value(c.value.clone().map(sb))
                                .with_is_sensitive(c.sensitive)
                                .with_config_source(SOURCE_STATIC_BROKER)
                                .with_config_type(if v3 { c.config_type } else { 0 })
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

/// DescribeConfigs' STATIC_BROKER_CONFIG source (from the configuration file).
const SOURCE_STATIC_BROKER: i8 = 4;

/// One broker config as DescribeConfigs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    pub name: String,
    /// `None` for a sensitive config: its value never leaves the configuration.
    pub value: Option<String>,
    pub sensitive: bool,
    /// Kafka's ConfigType (v3+): 2 STRING, 5 LONG, 7 LIST, 9 PASSWORD.
    pub config_type: i8,
}

/// The broker configs of the connection side of security, with Kafka's names. Secrets (the
/// PLAIN users' passwords, the TLS private keys) are listed as sensitive with no value.
pub fn broker_configs(config: &crate::config::Config) -> Vec<BrokerConfig> {
    let plain = |name: &str, value: String, config_type| BrokerConfig {
        name: name.to_string(),
        value: Some(value),
        sensitive: false,
        config_type,
    };
    let secret = |name: String| BrokerConfig { name, value: None, sensitive: true, config_type: 9 };
    let k = &config.kafka;
    let mut out = vec![
        plain("listeners", k.listeners.join(","), 7),
        plain("advertised.listeners", k.advertised_listeners.join(","), 7),
        plain(
            "listener.security.protocol.map",
            k.listener_security_protocol_map.iter().map(|(n, p)| format!("{n}:{p}")).collect::<Vec<_>>().join(","),
            7,
        ),
        plain("sasl.enabled.mechanisms", config.sasl.enabled_mechanisms.join(","), 7),
        plain("connections.max.reauth.ms", k.connections_max_reauth_ms.to_string(), 5),
        plain(
            "ssl.client.auth",
            match config.tls.client_auth {
                crate::config::ClientAuth::None => "none",
                crate::config::ClientAuth::Requested => "requested",
                crate::config::ClientAuth::Required => "required",
            }
            .to_string(),
            2,
        ),
    ];
    if let Some(p) = &config.tls.cert_file {
        out.push(plain("ssl.keystore.certificate.chain.location", p.display().to_string(), 2));
    }
    if config.tls.key_file.is_some() {
        out.push(secret("ssl.keystore.key".to_string()));
    }
    if config.raft.tls_key_file.is_some() {
        out.push(secret("raft.tls.key".to_string()));
    }
    if !config.sasl.plain_users.is_empty() {
        for l in k.resolved_listeners().unwrap_or_default().iter().filter(|l| l.protocol.sasl()) {
            out.push(secret(format!("listener.name.{}.plain.sasl.jaas.config", l.name.to_ascii_lowercase())));
        }
    }
    out
}
