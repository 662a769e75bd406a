//! Where the coordinator's COMMIT/ABORT markers go: the [`MarkerSink`] trait (so the coordinator
//! is testable with a fake), and [`NodeSink`], the real one: a partition running on this node
//! gets `PartitionMsg::WriteTxnMarker`; for a partition led by another node (as `__meta` last
//! heard) a `peer::frame::TxnMarkerRequest` goes to that node, which turns it into the same
//! message and answers with a `TxnMarkerResponse`. No answer within [`PEER_TIMEOUT`] is
//! REQUEST_TIMED_OUT. Markers are idempotent on the partition, so the coordinator retries any
//! failure.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{oneshot, watch};

use super::code;
use crate::broker::PartitionTable;
use crate::meta::MetaState;
use crate::partition::PartitionMsg;
use crate::peer::frame::TxnMarkerRequest;
use crate::peer::Transport;

/// One marker for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    /// The coordinator's epoch (the `__meta` leader's term), so partitions can fence a stale
    /// coordinator.
    pub coordinator_epoch: i32,
}

/// Delivers markers; the answer is the marker's offset or a Kafka error code.
pub trait MarkerSink: Send + Sync + 'static {
    fn send(&self, topic: &str, partition: i32, marker: Marker) -> BoxFuture<'static, Result<i64, i16>>;
}

/// How long a marker request to another node waits for its answer.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(5);

/// The node's sink: partitions running here, and peers for the others.
pub struct NodeSink {
    pub partitions: watch::Receiver<Arc<PartitionTable>>,
    pub image: watch::Receiver<Arc<MetaState>>,
    pub transport: Transport,
}

impl NodeSink {
    /// A marker for a partition led by another node.
    fn remote(&self, topic: &str, partition: i32, m: Marker) -> BoxFuture<'static, Result<i64, i16>> {
        let target = {
            let image = self.image.borrow();
            image.topics.get(topic).and_then(|t| t.partitions.get(partition as usize)).map(|p| {
                let leader = image.leaders.get(&p.group).map(|(l, _)| *l).filter(|l| *l != 0);
                (p.group, leader)
            })
        };
        let request = match target {
            Some((group, Some(leader))) if leader != self.transport.me() => {
                let req = TxnMarkerRequest {
                    request_id: 0,
                    group,
                    producer_id: m.producer_id,
                    producer_epoch: i32::from(m.producer_epoch),
                    commit: m.commit,
                    coordinator_epoch: m.coordinator_epoch,
                };
                self.transport.request_txn_marker(leader, req)
            }
            _ => None,
        };
        Box::pin(async move {
            let Some(rx) = request else { return Err(code::NOT_LEADER_OR_FOLLOWER) };
            match tokio::time::timeout(PEER_TIMEOUT, rx).await {
                Ok(Ok(resp)) if resp.error_code == 0 => Ok(resp.offset),
                Ok(Ok(resp)) => Err(i16::try_from(resp.error_code).unwrap_or(code::UNKNOWN_SERVER_ERROR)),
                Ok(Err(_)) | Err(_) => Err(code::REQUEST_TIMED_OUT),
            }
        })
    }
}

impl MarkerSink for NodeSink {
    fn send(&self, topic: &str, partition: i32, m: Marker) -> BoxFuture<'static, Result<i64, i16>> {
        let handle = self.partitions.borrow().get(topic).and_then(|p| p.get(&partition)).cloned();
        let Some(h) = handle.filter(|h| h.shared.leader() == self.transport.me()) else {
            return self.remote(topic, partition, m);
        };
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            h.addr.do_send(PartitionMsg::WriteTxnMarker {
                producer_id: m.producer_id,
                producer_epoch: m.producer_epoch,
                commit: m.commit,
                coordinator_epoch: m.coordinator_epoch,
                reply: tx,
            });
            match rx.await {
                Ok(Ok(offset)) => Ok(offset),
                Ok(Err(e)) => Err(e.kafka_code()),
                Err(_) => Err(code::NOT_LEADER_OR_FOLLOWER),
            }
        })
    }
}
