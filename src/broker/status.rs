//! chronik's private status request, served on the Kafka port for `chronik-server cluster
//! status`. It uses API key [`STATUS_API_KEY`], which no Kafka client sends and ApiVersions does
//! not advertise. Request: the usual v1 request header (key, version 0, correlation id, client
//! id) and no body. Response: the correlation id, then one JSON document (i32 length + UTF-8)
//! describing this node: brokers, `deserialization_failures_total`, and every group it hosts.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use serde::Serialize;
use tokio::sync::oneshot;

use super::BrokerCtx;
use crate::meta::MetaMsg;
use crate::partition::actor::PartitionStatus;
use crate::partition::PartitionMsg;
use crate::raft::core::GroupStatus;

/// The private API key of the status request.
pub const STATUS_API_KEY: i16 = 32000;

/// One broker as registered in `__meta`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BrokerEntry {
    pub node: u64,
    pub host: String,
    pub port: i32,
}

/// A partition group on this node.
#[derive(Debug, Serialize)]
pub struct PartitionEntry {
    pub node: u64,
    pub topic: String,
    pub partition: i32,
    #[serde(flatten)]
    pub status: PartitionStatus,
}

/// What one node reports.
#[derive(Debug, Serialize)]
pub struct NodeStatus {
    pub node: u64,
    pub deserialization_failures_total: u64,
    pub brokers: Vec<BrokerEntry>,
    pub meta: Option<GroupStatus>,
    pub groups: Vec<PartitionEntry>,
}

/// Gathers this node's status.
pub async fn node_status(ctx: &BrokerCtx) -> NodeStatus {
    let image = ctx.image();
    let (tx, rx) = oneshot::channel();
    ctx.meta.do_send(MetaMsg::Status { reply: tx });
    let meta = rx.await.ok();
    let mut groups = Vec::new();
    for (topic, parts) in ctx.partition_table().iter() {
        for (p, h) in parts {
            let (tx, rx) = oneshot::channel();
            h.addr.do_send(PartitionMsg::Status { reply: tx });
            if let Ok(status) = rx.await {
                groups.push(PartitionEntry { node: ctx.node_id, topic: topic.clone(), partition: *p, status });
            }
        }
    }
    groups.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    NodeStatus {
        node: ctx.node_id,
        deserialization_failures_total: crate::metrics::deserialization_failures_total(),
        brokers: image
            .brokers
            .iter()
            .map(|(id, b)| BrokerEntry { node: *id, host: b.host.clone(), port: b.port })
            .collect(),
        meta,
        groups,
    }
}

/// Answers one status request: a framed response (size prefix, correlation id, JSON).
pub async fn handle(ctx: Arc<BrokerCtx>, correlation_id: i32) -> BytesMut {
    let status = node_status(&ctx).await;
    let json = serde_json::to_vec(&status).unwrap_or_default();
    let mut buf = BytesMut::with_capacity(12 + json.len());
    buf.put_i32((8 + json.len()) as i32);
    buf.put_i32(correlation_id);
    buf.put_i32(json.len() as i32);
    buf.extend_from_slice(&json);
    buf
}

/// The private API key of the fault-injection request (honoured only with `faults.runtime`).
pub const FAULTS_API_KEY: i16 = 32001;

/// A change to this node's peer fault injection.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct FaultChange {
    /// Peers to cut off in both directions.
    #[serde(default)]
    pub cut: Vec<u64>,
    /// Peers to reconnect.
    #[serde(default)]
    pub heal: Vec<u64>,
    /// Delay in ms for frames to `delay_to` (0 removes the delay).
    #[serde(default)]
    pub delay_ms: Option<u64>,
    #[serde(default)]
    pub delay_to: Vec<u64>,
}

/// Applies a fault change; the answer is a JSON `{"ok": bool, "error": ...}` frame.
pub fn handle_faults(ctx: &BrokerCtx, correlation_id: i32, body: &[u8]) -> BytesMut {
    let result: Result<(), String> = if !ctx.settings.runtime_faults {
        Err("faults.runtime is off on this node".to_string())
    } else {
        serde_json::from_slice::<FaultChange>(body).map_err(|e| e.to_string()).map(|change| {
            for p in &change.cut {
                ctx.faults.partition(*p, true);
            }
            for p in &change.heal {
                ctx.faults.partition(*p, false);
            }
            if let Some(ms) = change.delay_ms {
                let d = (ms > 0).then(|| std::time::Duration::from_millis(ms));
                for p in &change.delay_to {
                    ctx.faults.delay_to(*p, d);
                }
            }
            slog::warn!(ctx.logger, "fault injection changed"; "change" => ?change);
        })
    };
    let json = match result {
        Ok(()) => serde_json::json!({"ok": true}),
        Err(e) => serde_json::json!({"ok": false, "error": e}),
    }
    .to_string();
    let mut buf = BytesMut::with_capacity(12 + json.len());
    buf.put_i32((8 + json.len()) as i32);
    buf.put_i32(correlation_id);
    buf.put_i32(json.len() as i32);
    buf.extend_from_slice(json.as_bytes());
    buf
}
