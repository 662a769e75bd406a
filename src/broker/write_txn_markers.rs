//! WriteTxnMarkers (key 27, v1; Kafka 4 removed v0, KIP-896): the transaction coordinator's
//! request to write COMMIT/ABORT markers, answered here for tools (and a coordinator) that call
//! it. Per partition the marker goes through the partition's Raft group
//! (`PartitionMsg::WriteTxnMarker`, `partition::txn`) and is answered once committed.
//!
//! Kafka's errors (`KafkaApis.handleWriteTxnMarkersRequest`): without CLUSTER_ACTION on the
//! cluster (an authorizer on) every partition gets CLUSTER_AUTHORIZATION_FAILED; an unknown topic
//! or partition UNKNOWN_TOPIC_OR_PARTITION; a node that does not lead it NOT_LEADER_OR_FOLLOWER;
//! a marker from an older producer epoch INVALID_PRODUCER_EPOCH, from an older coordinator epoch
//! TRANSACTION_COORDINATOR_FENCED. A partition that fails writes nothing.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{RequestHeader, WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use tokio::sync::oneshot;

use super::BrokerCtx;
use crate::error::{code, PartitionError};
use crate::partition::PartitionMsg;
use crate::security::acl::Operation;

/// How long a marker may take to commit (Kafka uses `request.timeout.ms`, 30 s by default).
const MARKER_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    _h: RequestHeader,
    req: WriteTxnMarkersRequest,
) -> Option<WriteTxnMarkersResponse> {
    let denied = ctx.check_cluster(Operation::ClusterAction).err();
    let mut markers = Vec::with_capacity(req.markers.len());
    for m in req.markers {
        let mut topics = Vec::with_capacity(m.topics.len());
        for t in m.topics {
            let name = t.name.0.to_string();
            let parts = t.partition_indexes.into_iter().map(|p| {
                let (ctx, name) = (ctx.clone(), name.clone());
                async move {
                    let error = match ctx.partition(&name, p) {
                        _ if denied.is_some() => denied.unwrap_or(code::CLUSTER_AUTHORIZATION_FAILED),
                        None => ctx.missing_partition(&name, p).kafka_code(),
                        Some(h) => {
                            let (tx, rx) = oneshot::channel();
                            h.addr.do_send(PartitionMsg::WriteTxnMarker {
                                producer_id: m.producer_id.0,
                                producer_epoch: m.producer_epoch,
                                commit: m.transaction_result,
                                coordinator_epoch: m.coordinator_epoch,
                                reply: tx,
                            });
                            match tokio::time::timeout(MARKER_TIMEOUT, rx).await {
                                Err(_) => code::REQUEST_TIMED_OUT,
                                Ok(r) => match r.unwrap_or(Err(PartitionError::ShuttingDown)) {
                                    Ok(_) => code::NONE,
                                    Err(e) => e.kafka_code(),
                                },
                            }
                        }
                    };
                    WritableTxnMarkerPartitionResult::default().with_partition_index(p).with_error_code(error)
                }
            });
            let parts: Vec<_> = parts.collect();
            topics
                .push(WritableTxnMarkerTopicResult::default().with_name(t.name).with_partitions(join_all(parts).await));
        }
        markers.push(WritableTxnMarkerResult::default().with_producer_id(m.producer_id).with_topics(topics));
    }
    Some(WriteTxnMarkersResponse::default().with_markers(markers))
}
