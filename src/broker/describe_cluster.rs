//! DescribeCluster (key 60): the brokers, the cluster id and the controller.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse, RequestHeader};

use super::{sb, BrokerCtx};
use crate::error::code;
use crate::security::acl::Operation;

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    h: RequestHeader,
    req: DescribeClusterRequest,
) -> Option<DescribeClusterResponse> {
    let image = ctx.image();
    let resp = DescribeClusterResponse::default().with_endpoint_type(1).with_cluster_id(sb(image.cluster_id.clone()));
    if h.request_api_version >= 1 && req.endpoint_type != 1 {
        return Some(
            resp.with_error_code(code::UNSUPPORTED_VERSION)
                .with_error_message(Some(sb("only broker endpoints are served"))),
        );
    }
    if let Err(denied) = ctx.check_cluster(Operation::Describe) {
        return Some(resp.with_error_code(denied));
    }
    // The addresses of the listener this client came in on.
    let listener = crate::security::principal::current().listener.clone();
    let brokers = image
        .brokers
        .iter()
        .filter_map(|(id, b)| {
            let (host, port) = b.endpoint(&listener)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(*id as i32))
                    .with_host(sb(host))
                    .with_port(port)
                    .with_rack(b.rack.clone().map(sb)),
            )
        })
        .collect();
    Some(resp.with_controller_id(BrokerId(ctx.controller_id(&image))).with_brokers(brokers))
}
