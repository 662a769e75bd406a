//! ApiVersions (key 18): the versions of every API in the route table.

use std::sync::Arc;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, RequestHeader};

use super::routes::ROUTES;
use super::BrokerCtx;
use crate::error::code;

fn api_keys() -> Vec<ApiVersion> {
    ROUTES
        .iter()
        .map(|r| {
            ApiVersion::default().with_api_key(r.key as i16).with_min_version(r.advertised_min).with_max_version(r.max)
        })
        .collect()
}

/// The answer to an ApiVersions request of a version chronik does not know: error 35 and the
/// supported ranges, to be encoded in the v0 layout.
pub fn unsupported_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_error_code(code::UNSUPPORTED_VERSION).with_api_keys(api_keys())
}

pub async fn handle(_ctx: Arc<BrokerCtx>, _h: RequestHeader, _req: ApiVersionsRequest) -> Option<ApiVersionsResponse> {
    Some(ApiVersionsResponse::default().with_api_keys(api_keys()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertises_api_versions_itself() {
        let keys = api_keys();
        assert!(keys.iter().any(|k| k.api_key == 18 && k.min_version == 0 && k.max_version == 4));
        assert_eq!(keys.len(), ROUTES.len());
    }
}
