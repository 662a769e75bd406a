//! The route table: API key → supported versions and handler. The same table builds the
//! ApiVersions response, so chronik advertises exactly what it serves. Every advertised version
//! has an encode/decode round-trip test below.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

use super::throttle::{self, ThrottleField};
use super::*;
use crate::error::ProtocolError;
use crate::protocol::chain::Chain;
use crate::protocol::frame::{decode_body, decode_header, encode_response};

/// What a handler future yields: a framed response, or nothing (acks=0).
pub type Reply = Result<Option<Chain>, ProtocolError>;

/// A handler's answer: encodes itself into a framed response. Every kafka-protocol response
/// is one buffer; Fetch's is a chain with its records spliced in (`broker::fetch_reply`).
pub trait Answer: ThrottleField + Send + 'static {
    fn encode(self, what: &'static str, correlation_id: i32, version: i16) -> Result<Chain, ProtocolError>;
}

impl<R: Encodable + HeaderVersion + ThrottleField + Send + 'static> Answer for R {
    fn encode(self, what: &'static str, correlation_id: i32, version: i16) -> Result<Chain, ProtocolError> {
        encode_response(what, correlation_id, version, &self).map(Chain::from)
    }
}

impl Answer for fetch_reply::FetchReply {
    fn encode(self, what: &'static str, correlation_id: i32, version: i16) -> Result<Chain, ProtocolError> {
        fetch_reply::FetchReply::encode(self, what, correlation_id, version)
    }
}
type Handler = fn(Arc<BrokerCtx>, RequestHeader, Bytes) -> Result<BoxFuture<'static, Reply>, ProtocolError>;
/// Decodes a request body the way the route's handler does, and drops it (fuzzing, tests).
type DecodeCheck = fn(Bytes, i16) -> Result<(), ProtocolError>;

/// One API chronik serves.
pub struct Route {
    pub key: ApiKey,
    /// Lowest version advertised.
    pub advertised_min: i16,
    /// Lowest version accepted (Produce v0-v2 are advertised for old librdkafka but refused,
    /// as Apache Kafka 4 does).
    pub min: i16,
    pub max: i16,
    pub handler: Handler,
    /// Decodes a body as `handler` does, without a broker: the fuzz targets and the corpus
    /// tests call it, so they exercise exactly the decoder each route uses.
    pub decode: DecodeCheck,
}

/// Decodes a body as the request type of handler `_f` (the type is inferred from the handler).
fn decode_as<Req, Fut, F>(what: &'static str, body: Bytes, version: i16, _f: F) -> Result<(), ProtocolError>
where
    Req: Decodable,
    F: FnOnce(Arc<BrokerCtx>, RequestHeader, Req) -> Fut,
{
    decode_body::<Req>(what, body, version).map(drop)
}

fn serve<Req, Resp, F, Fut>(
    what: &'static str,
    ctx: Arc<BrokerCtx>,
    header: RequestHeader,
    body: Bytes,
    f: F,
) -> Result<BoxFuture<'static, Reply>, ProtocolError>
where
    Req: Decodable,
    Resp: Answer,
    F: FnOnce(Arc<BrokerCtx>, RequestHeader, Req) -> Fut,
    Fut: Future<Output = Option<Resp>> + Send + 'static,
{
    let version = header.request_api_version;
    let correlation_id = header.correlation_id;
    let req: Req = decode_body(what, body, version)?;
    let (ctx2, header2) = (ctx.clone(), header.clone());
    let fut = f(ctx, header, req);
    Ok(Box::pin(async move {
        let mut fut = std::pin::pin!(fut);
        // The time the handler keeps a thread busy: its polls, not its waits (KIP-124 counts
        // request handler thread time).
        let mut busy = std::time::Duration::ZERO;
        let resp = std::future::poll_fn(|cx| {
            let start = ctx2.clock.now();
            let r = fut.as_mut().poll(cx);
            busy += ctx2.clock.elapsed_since(start);
            r
        })
        .await;
        let throttle = ctx2.throttle_request(&header2, busy);
        throttle::mute(throttle);
        match resp {
            Some(mut resp) => {
                if let Some(t) = resp.throttle_time_ms(version) {
                    *t = (*t).max(throttle.min(i32::MAX as u64) as i32);
                }
                resp.encode(what, correlation_id, version).map(Some)
            }
            None => Ok(None),
        }
    }))
}

macro_rules! route {
    ($key:ident, $min:expr, $max:expr, $module:ident) => {
        route!($key, $min, $min, $max, $module)
    };
    ($key:ident, $adv:expr, $min:expr, $max:expr, $module:ident) => {
        Route {
            key: ApiKey::$key,
            advertised_min: $adv,
            min: $min,
            max: $max,
            handler: |ctx, header, body| serve(stringify!($module), ctx, header, body, $module::handle),
            decode: |body, version| decode_as(stringify!($module), body, version, $module::handle),
        }
    };
}

/// Every API chronik serves, with the version ranges Apache Kafka 4.x advertises, capped where a
/// newer version needs a feature chronik lacks (Fetch ≥ 13 and Produce 13 address topics by id).
pub static ROUTES: &[Route] = &[
    route!(Produce, 0, 3, 12, produce),
    route!(Fetch, 4, 12, fetch),
    route!(ListOffsets, 1, 10, list_offsets),
    route!(Metadata, 0, 12, metadata),
    route!(ApiVersions, 0, 4, api_versions),
    route!(CreateTopics, 2, 7, create_topics),
    route!(DeleteTopics, 1, 6, delete_topics),
    route!(InitProducerId, 0, 5, init_producer_id),
    route!(DescribeConfigs, 1, 4, describe_configs),
    route!(AlterConfigs, 0, 2, alter_configs),
    route!(CreatePartitions, 0, 3, create_partitions),
    route!(IncrementalAlterConfigs, 0, 1, incremental_alter_configs),
    route!(DescribeCluster, 0, 2, describe_cluster),
    route!(ListConfigResources, 0, 1, list_config_resources),
    route!(DeleteRecords, 0, 2, delete_records),
    route!(DescribeTopicPartitions, 0, 0, describe_topic_partitions),
    // Leaders: preferred leader election by Raft leader transfer.
    route!(ElectLeaders, 0, 2, elect_leaders),
    // Partition reassignment by Raft membership changes (`meta::reassign`).
    route!(AlterPartitionReassignments, 0, 1, alter_partition_reassignments),
    route!(ListPartitionReassignments, 0, 0, list_partition_reassignments),
    // v0 was removed in Kafka 4 (KIP-896).
    route!(DescribeLogDirs, 1, 4, describe_log_dirs),
    // The `__meta` quorum, as Kafka's `__cluster_metadata`.
    route!(DescribeQuorum, 0, 2, describe_quorum),
    // Transactions, partition side (v0 of WriteTxnMarkers was removed in Kafka 4, KIP-896).
    route!(WriteTxnMarkers, 1, 1, write_txn_markers),
    route!(DescribeProducers, 0, 0, describe_producers),
    // ACLs (v0 removed in Kafka 4, KIP-896).
    route!(DescribeAcls, 1, 3, describe_acls),
    route!(CreateAcls, 1, 3, create_acls),
    route!(DeleteAcls, 1, 3, delete_acls),
    // Client quotas.
    route!(AlterClientQuotas, 0, 1, alter_client_quotas),
    route!(DescribeClientQuotas, 0, 1, describe_client_quotas),
    // Consumer groups (the classic protocol; KIP-848's ConsumerGroupHeartbeat is not served),
    // in the order a consumer uses them. OffsetCommit v0-1 and OffsetFetch v0 were removed in
    // Kafka 4 (KIP-896).
    route!(FindCoordinator, 0, 6, find_coordinator),
    route!(JoinGroup, 0, 9, join_group),
    route!(SyncGroup, 0, 5, sync_group),
    route!(Heartbeat, 0, 4, heartbeat),
    route!(OffsetCommit, 2, 9, offset_commit),
    route!(OffsetFetch, 1, 9, offset_fetch),
    route!(DescribeGroups, 0, 6, describe_groups),
    route!(ListGroups, 0, 5, list_groups),
    route!(LeaveGroup, 0, 5, leave_group),
    route!(DeleteGroups, 0, 2, delete_groups),
    route!(OffsetDelete, 0, 0, offset_delete),
    // Transactions: the coordinator side (InitProducerId above serves transactional ids too).
    route!(AddPartitionsToTxn, 0, 5, add_partitions_to_txn),
    route!(AddOffsetsToTxn, 0, 4, add_offsets_to_txn),
    route!(EndTxn, 0, 5, end_txn),
    route!(TxnOffsetCommit, 0, 4, txn_offset_commit),
    route!(DescribeTransactions, 0, 0, describe_transactions),
    route!(ListTransactions, 0, 1, list_transactions),
    // Security, connection side: on SASL listeners the connection answers the SASL APIs itself
    // (net::sasl); these routes answer them elsewhere, and advertise the versions.
    route!(SaslHandshake, 0, 1, sasl_handshake),
    route!(SaslAuthenticate, 0, 2, sasl_authenticate),
    route!(DescribeUserScramCredentials, 0, 0, describe_user_scram_credentials),
    route!(AlterUserScramCredentials, 0, 0, alter_user_scram_credentials),
];

/// Finds the route of an API key.
pub fn route_for(key: i16) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.key as i16 == key)
}

/// What a frame turned out to be once its header is read.
pub enum Routed {
    /// ApiVersions at a version chronik does not know: answered in the v0 layout.
    UnsupportedApiVersions { correlation_id: i32 },
    /// A request of a served API and version, with its decoded header and undecoded body.
    Request { route: &'static Route, header: RequestHeader, body: Bytes },
}

/// Reads the header of one frame (without its size prefix) and finds its route: everything
/// [`dispatch`] does before the handler decodes the body. `Err`: log it and close the connection.
pub fn route_frame(frame: Bytes) -> Result<Routed, ProtocolError> {
    let peek = crate::protocol::peek_request(&frame)?;
    // An API key chronik does not serve (status and faults left this port for the admin API):
    // Apache Kafka cannot parse such a header either, and closes the connection.
    let Some(route) = route_for(peek.api_key) else {
        return Err(ProtocolError::UnknownApiKey(peek.api_key));
    };
    if peek.api_version < route.min || peek.api_version > route.max {
        if route.key == ApiKey::ApiVersions {
            return Ok(Routed::UnsupportedApiVersions { correlation_id: peek.correlation_id });
        }
        return Err(ProtocolError::UnsupportedVersion { key: peek.api_key, version: peek.api_version });
    }
    let (header, body) = decode_header(route.key, frame)?;
    Ok(Routed::Request { route, header, body })
}

/// Dispatches one frame (without its size prefix). `Err` means: log it and close the connection.
pub fn dispatch(ctx: &Arc<BrokerCtx>, frame: Bytes) -> Result<BoxFuture<'static, Reply>, ProtocolError> {
    let peek = crate::protocol::peek_request(&frame)?;
    let code = route_for(peek.api_key).is_none().then_some(crate::error::code::UNSUPPORTED_VERSION);
    crate::metrics::registry().request(ctx.node_id, peek.api_key, code);
    match route_frame(frame)? {
        Routed::UnsupportedApiVersions { correlation_id } => {
            // Tell the client what we support, in the v0 layout it can always read.
            let resp = api_versions::unsupported_response();
            let framed = Chain::from(encode_response("api versions", correlation_id, 0, &resp)?);
            Ok(Box::pin(async move { Ok(Some(framed)) }))
        }
        Routed::Request { route, header, body } => (route.handler)(ctx.clone(), header, body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Encodable + Decodable + Default + PartialEq + std::fmt::Debug>(version: i16) {
        let value = T::default();
        let mut buf = bytes::BytesMut::new();
        value.encode(&mut buf, version).unwrap_or_else(|e| panic!("encode v{version}: {e}"));
        let mut bytes = buf.freeze();
        let back = T::decode(&mut bytes, version).unwrap_or_else(|e| panic!("decode v{version}: {e}"));
        assert_eq!(bytes.len(), 0, "v{version} left bytes");
        assert_eq!(back, value);
    }

    macro_rules! check_versions {
        ($route:expr, $req:ty, $resp:ty) => {
            for v in $route.min..=$route.max {
                round_trip::<$req>(v);
                round_trip::<$resp>(v);
            }
        };
    }

    #[test]
    fn every_advertised_version_round_trips() {
        for r in ROUTES {
            assert!(r.advertised_min <= r.min && r.min <= r.max);
            let valid = r.key.valid_versions();
            assert!(r.min >= valid.min && r.max <= valid.max, "{:?} outside the crate's range", r.key);
            match r.key {
                ApiKey::Produce => check_versions!(r, ProduceRequest, ProduceResponse),
                ApiKey::Fetch => check_versions!(r, FetchRequest, FetchResponse),
                ApiKey::ListOffsets => check_versions!(r, ListOffsetsRequest, ListOffsetsResponse),
                ApiKey::Metadata => check_versions!(r, MetadataRequest, MetadataResponse),
                ApiKey::ApiVersions => check_versions!(r, ApiVersionsRequest, ApiVersionsResponse),
                ApiKey::CreateTopics => check_versions!(r, CreateTopicsRequest, CreateTopicsResponse),
                ApiKey::DeleteTopics => check_versions!(r, DeleteTopicsRequest, DeleteTopicsResponse),
                ApiKey::InitProducerId => check_versions!(r, InitProducerIdRequest, InitProducerIdResponse),
                ApiKey::DescribeConfigs => check_versions!(r, DescribeConfigsRequest, DescribeConfigsResponse),
                ApiKey::AlterConfigs => check_versions!(r, AlterConfigsRequest, AlterConfigsResponse),
                ApiKey::CreatePartitions => check_versions!(r, CreatePartitionsRequest, CreatePartitionsResponse),
                ApiKey::IncrementalAlterConfigs => {
                    check_versions!(r, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse)
                }
                ApiKey::DescribeCluster => check_versions!(r, DescribeClusterRequest, DescribeClusterResponse),
                ApiKey::ListConfigResources => {
                    check_versions!(r, ListConfigResourcesRequest, ListConfigResourcesResponse)
                }
                ApiKey::DeleteRecords => check_versions!(r, DeleteRecordsRequest, DeleteRecordsResponse),
                ApiKey::WriteTxnMarkers => check_versions!(r, WriteTxnMarkersRequest, WriteTxnMarkersResponse),
                ApiKey::DescribeProducers => check_versions!(r, DescribeProducersRequest, DescribeProducersResponse),
                ApiKey::DescribeTopicPartitions => {
                    check_versions!(r, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse)
                }
                ApiKey::ElectLeaders => check_versions!(r, ElectLeadersRequest, ElectLeadersResponse),
                ApiKey::AlterPartitionReassignments => {
                    check_versions!(r, AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse)
                }
                ApiKey::ListPartitionReassignments => {
                    check_versions!(r, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse)
                }
                ApiKey::DescribeLogDirs => check_versions!(r, DescribeLogDirsRequest, DescribeLogDirsResponse),
                ApiKey::DescribeQuorum => check_versions!(r, DescribeQuorumRequest, DescribeQuorumResponse),
                ApiKey::OffsetCommit => check_versions!(r, OffsetCommitRequest, OffsetCommitResponse),
                ApiKey::OffsetFetch => check_versions!(r, OffsetFetchRequest, OffsetFetchResponse),
                ApiKey::FindCoordinator => check_versions!(r, FindCoordinatorRequest, FindCoordinatorResponse),
                ApiKey::JoinGroup => check_versions!(r, JoinGroupRequest, JoinGroupResponse),
                ApiKey::Heartbeat => check_versions!(r, HeartbeatRequest, HeartbeatResponse),
                ApiKey::LeaveGroup => check_versions!(r, LeaveGroupRequest, LeaveGroupResponse),
                ApiKey::SyncGroup => check_versions!(r, SyncGroupRequest, SyncGroupResponse),
                ApiKey::DescribeGroups => check_versions!(r, DescribeGroupsRequest, DescribeGroupsResponse),
                ApiKey::ListGroups => check_versions!(r, ListGroupsRequest, ListGroupsResponse),
                ApiKey::DeleteGroups => check_versions!(r, DeleteGroupsRequest, DeleteGroupsResponse),
                ApiKey::OffsetDelete => check_versions!(r, OffsetDeleteRequest, OffsetDeleteResponse),
                ApiKey::SaslHandshake => check_versions!(r, SaslHandshakeRequest, SaslHandshakeResponse),
                ApiKey::SaslAuthenticate => check_versions!(r, SaslAuthenticateRequest, SaslAuthenticateResponse),
                ApiKey::DescribeUserScramCredentials => {
                    check_versions!(r, DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse)
                }
                ApiKey::AlterUserScramCredentials => {
                    check_versions!(r, AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse)
                }
                ApiKey::DescribeAcls => check_versions!(r, DescribeAclsRequest, DescribeAclsResponse),
                ApiKey::CreateAcls => check_versions!(r, CreateAclsRequest, CreateAclsResponse),
                ApiKey::DeleteAcls => check_versions!(r, DeleteAclsRequest, DeleteAclsResponse),
                ApiKey::DescribeClientQuotas => {
                    check_versions!(r, DescribeClientQuotasRequest, DescribeClientQuotasResponse)
                }
                ApiKey::AlterClientQuotas => check_versions!(r, AlterClientQuotasRequest, AlterClientQuotasResponse),
                ApiKey::AddPartitionsToTxn => {
                    check_versions!(r, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse)
                }
                ApiKey::AddOffsetsToTxn => check_versions!(r, AddOffsetsToTxnRequest, AddOffsetsToTxnResponse),
                ApiKey::EndTxn => check_versions!(r, EndTxnRequest, EndTxnResponse),
                ApiKey::TxnOffsetCommit => check_versions!(r, TxnOffsetCommitRequest, TxnOffsetCommitResponse),
                ApiKey::DescribeTransactions => {
                    check_versions!(r, DescribeTransactionsRequest, DescribeTransactionsResponse)
                }
                ApiKey::ListTransactions => check_versions!(r, ListTransactionsRequest, ListTransactionsResponse),
                other => panic!("route {other:?} has no round-trip test"),
            }
        }
    }

    #[test]
    fn kip_848_is_not_advertised() {
        assert!(route_for(ApiKey::ConsumerGroupHeartbeat as i16).is_none());
        assert!(route_for(ApiKey::ConsumerGroupDescribe as i16).is_none());
    }

    #[test]
    fn required_client_versions_are_advertised() {
        // From shared/kafka-clients.md: versions old librdkafka and Java 4.x need to see.
        let need: &[(ApiKey, &[i16])] = &[
            (ApiKey::Produce, &[2, 3, 7]),
            (ApiKey::Fetch, &[4, 10]),
            (ApiKey::ListOffsets, &[1]),
            (ApiKey::InitProducerId, &[0]),
            (ApiKey::Metadata, &[0, 4]),
            (ApiKey::FindCoordinator, &[0, 2]),
            (ApiKey::JoinGroup, &[0, 5]),
            (ApiKey::SyncGroup, &[0, 3]),
            (ApiKey::Heartbeat, &[0, 3]),
            (ApiKey::LeaveGroup, &[0, 1]),
            (ApiKey::OffsetFetch, &[1]),
            (ApiKey::OffsetCommit, &[2]),
        ];
        for (key, versions) in need {
            let r = route_for(*key as i16).unwrap();
            for v in *versions {
                assert!(r.advertised_min <= *v && *v <= r.max, "{key:?} v{v} not advertised");
            }
        }
    }
}
