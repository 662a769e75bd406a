//! ListConfigResources (key 74): the resources that have configs. v0 (Kafka's former
//! ListClientMetricsResources) lists client-metrics resources, of which chronik has none; v1
//! lists the requested types (all when none is given): every topic (TOPIC), every registered
//! broker (BROKER and BROKER_LOGGER). chronik has no client-metrics or group configs, so
//! CLIENT_METRICS and GROUP list nothing; any other type is INVALID_REQUEST.

use std::sync::Arc;

use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse, RequestHeader};

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{sb, BrokerCtx};
use crate::error::code;

const RESOURCE_BROKER_LOGGER: i8 = 8;
const RESOURCE_CLIENT_METRICS: i8 = 16;
const RESOURCE_GROUP: i8 = 32;
const ALL: [i8; 5] = [RESOURCE_TOPIC, RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_CLIENT_METRICS, RESOURCE_GROUP];

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    h: RequestHeader,
    req: ListConfigResourcesRequest,
) -> Option<ListConfigResourcesResponse> {
    // Kafka: DESCRIBE_CONFIGS on the CLUSTER resource.
    if let Err(denied) = ctx.check_cluster(crate::security::acl::Operation::DescribeConfigs) {
        return Some(ListConfigResourcesResponse::default().with_error_code(denied));
    }
    if h.request_api_version == 0 {
        return Some(ListConfigResourcesResponse::default());
    }
    let types: Vec<i8> = if req.resource_types.is_empty() { ALL.to_vec() } else { req.resource_types };
    if let Some(bad) = types.iter().find(|t| !ALL.contains(t)) {
        slog::debug!(ctx.logger, "ListConfigResources with an unsupported resource type"; "type" => *bad);
        return Some(ListConfigResourcesResponse::default().with_error_code(code::INVALID_REQUEST));
    }
    let image = ctx.image();
    let mut out = Vec::new();
    for t in types {
        let names: Vec<String> = match t {
            RESOURCE_TOPIC => image.topics.keys().cloned().collect(),
            RESOURCE_BROKER | RESOURCE_BROKER_LOGGER => image.brokers.keys().map(u64::to_string).collect(),
            _ => Vec::new(),
        };
        out.extend(
            names.into_iter().map(|n| ConfigResource::default().with_resource_name(sb(n)).with_resource_type(t)),
        );
    }
    Some(ListConfigResourcesResponse::default().with_config_resources(out))
}
