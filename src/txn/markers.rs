//! Where the coordinator's COMMIT/ABORT markers go: the [`MarkerSink`] trait (so the coordinator
//! is testable with a fake), and [`NodeSink`], the real one: a partition led on this node gets
//! `PartitionMsg::WriteTxnMarker`; a partition led elsewhere answers NOT_LEADER_OR_FOLLOWER
//! for now (the peer request `peer::frame::TxnMarkerRequest` is defined; its delivery is not
//! wired yet), so the coordinator retries until the leader moves here or the wiring lands.
//! Markers are idempotent on the partition, so retrying is always safe.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::{oneshot, watch};

use super::code;
use crate::broker::PartitionTable;
use crate::partition::PartitionMsg;

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

/// The node's sink: partitions running here.
pub struct NodeSink {
    pub partitions: watch::Receiver<Arc<PartitionTable>>,
}

impl MarkerSink for NodeSink {
    fn send(&self, topic: &str, partition: i32, m: Marker) -> BoxFuture<'static, Result<i64, i16>> {
        let handle = self.partitions.borrow().get(topic).and_then(|p| p.get(&partition)).cloned();
        Box::pin(async move {
            let Some(h) = handle else { return Err(code::NOT_LEADER_OR_FOLLOWER) };
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
