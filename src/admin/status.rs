//! What the admin API reports and changes on this node, independent of HTTP: the node's status
//! (brokers, `__meta`, every hosted partition group), one partition's status, readiness
//! (`__meta` has a leader and every hosted group has one), fault-injection changes, and the
//! merge of every node's status into the cluster view. The actors are asked by message; these
//! functions only run on the admin server's threads, never on a group's arbiter.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{oneshot, watch};

use crate::broker::PartitionTable;
use crate::meta::{MetaActor, MetaMsg, MetaState};
use crate::partition::actor::PartitionStatus;
use crate::partition::PartitionMsg;
use crate::raft::core::GroupStatus;

/// The handles the admin API reads and changes (cloned from the node's own).
#[derive(Clone)]
pub struct AdminState {
    pub node_id: u64,
    pub meta: actix::Addr<MetaActor>,
    pub image: watch::Receiver<Arc<MetaState>>,
    pub partitions: watch::Receiver<Arc<PartitionTable>>,
    pub faults: Arc<crate::peer::Faults>,
    /// `faults.runtime`: the fault endpoints accept changes.
    pub runtime_faults: bool,
    pub logger: slog::Logger,
    /// The node's authorizer: with `[authorizer] enabled`, status needs CLUSTER DESCRIBE and
    /// fault changes CLUSTER ALTER, asked as `User:ANONYMOUS` from the HTTP client's address.
    pub authorizer: Arc<crate::security::authorizer::Authorizer>,
}

/// One broker as registered in `__meta`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BrokerEntry {
    pub node: u64,
    pub host: String,
    pub port: i32,
    /// The broker's admin address, if it registered one.
    pub admin: Option<String>,
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
    /// crc32c of the encoded `__meta` state this node has applied (`meta::snapshot::encode`):
    /// replicas that applied the same log show the same digest.
    pub meta_digest: u32,
    pub groups: Vec<PartitionEntry>,
}

/// The brokers of the latest applied metadata.
pub fn brokers(image: &MetaState) -> Vec<BrokerEntry> {
    image
        .brokers
        .iter()
        .map(|(id, b)| BrokerEntry { node: *id, host: b.host.clone(), port: b.port, admin: b.admin.clone() })
        .collect()
}

/// `__meta`'s status on this node (`None` if the actor is gone).
pub async fn meta_status(state: &AdminState) -> Option<GroupStatus> {
    let (tx, rx) = oneshot::channel();
    state.meta.do_send(MetaMsg::Status { reply: tx });
    rx.await.ok()
}

/// A partition's status; with `checksum`, the CRC of its whole committed log too (it reads the
/// log: readiness and progress polls leave it out).
async fn partition_of(handle: &crate::broker::PartitionHandle, checksum: bool) -> Option<PartitionStatus> {
    let (tx, rx) = oneshot::channel();
    handle.addr.do_send(PartitionMsg::Status { reply: tx, checksum });
    rx.await.ok()
}

/// Gathers this node's status; `checksums`: each partition's log CRC too (reads every log).
pub async fn node_status(state: &AdminState, checksums: bool) -> NodeStatus {
    let image = state.image.borrow().clone();
    let meta = meta_status(state).await;
    let table = state.partitions.borrow().clone();
    let mut groups = Vec::new();
    for (topic, parts) in table.iter() {
        for (p, h) in parts {
            if let Some(status) = partition_of(h, checksums).await {
                groups.push(PartitionEntry { node: state.node_id, topic: topic.clone(), partition: *p, status });
            }
        }
    }
    groups.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    NodeStatus {
        node: state.node_id,
        deserialization_failures_total: crate::metrics::deserialization_failures_total(),
        brokers: brokers(&image),
        meta,
        meta_digest: crc32c::crc32c(&crate::meta::snapshot::encode(&image)),
        groups,
    }
}

/// One partition's status on this node; `None` if it does not run here.
pub async fn partition_status(state: &AdminState, topic: &str, partition: i32) -> Option<PartitionEntry> {
    let handle = state.partitions.borrow().get(topic).and_then(|p| p.get(&partition)).cloned()?;
    let status = partition_of(&handle, true).await?;
    Some(PartitionEntry { node: state.node_id, topic: topic.to_string(), partition, status })
}

/// Why this node is not ready; empty when it is: `__meta` must have a known leader, and every
/// group that the metadata places on this node must run here and have a known leader. A known
/// leader means a live quorum: a follower that hears nothing for an election timeout becomes a
/// (pre-)candidate and forgets its leader, and a leader without a quorum steps down
/// (`raft.check-quorum`).
pub async fn readiness(state: &AdminState) -> Vec<String> {
    let mut reasons = Vec::new();
    match meta_status(state).await {
        None => reasons.push("__meta is not running".to_string()),
        Some(m) if m.leader == 0 => {
            reasons.push(format!("__meta has no leader (term {}, role {}): no quorum", m.term, m.role))
        }
        Some(_) => {}
    }
    let image = state.image.borrow().clone();
    let table = state.partitions.borrow().clone();
    for (name, topic) in &image.topics {
        for (index, p) in topic.partitions.iter().enumerate() {
            if !p.replicas.contains(&state.node_id) {
                continue;
            }
            let index = index as i32;
            match table.get(name).and_then(|ps| ps.get(&index)) {
                None => reasons.push(format!("{name}/{index} is not open on this node")),
                Some(h) => match partition_of(h, false).await {
                    None => reasons.push(format!("{name}/{index} did not answer")),
                    Some(s) if s.raft.leader == 0 => reasons.push(format!("{name}/{index} has no leader")),
                    Some(_) => {}
                },
            }
        }
    }
    reasons
}

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

/// Applies a fault change (the caller checked `faults.runtime`).
pub fn apply_faults(state: &AdminState, change: &FaultChange) {
    for p in &change.cut {
        state.faults.partition(*p, true);
    }
    for p in &change.heal {
        state.faults.partition(*p, false);
    }
    if let Some(ms) = change.delay_ms {
        let d = (ms > 0).then(|| std::time::Duration::from_millis(ms));
        for p in &change.delay_to {
            state.faults.delay_to(*p, d);
        }
    }
    slog::warn!(state.logger, "fault injection changed"; "change" => ?change);
}

/// What one node answered for the cluster view.
pub enum NodeAnswer {
    Status(serde_json::Value),
    Unreachable { node: u64, error: String },
}

/// Merges every node's status into `{"brokers": [...], "nodes": [...], "groups": [...]}`, where
/// `groups` holds each node's partition groups and its `__meta` (topic `__meta`) and `nodes`
/// marks the unreachable ones with an `error`.
pub fn merge(brokers: &[BrokerEntry], answers: Vec<NodeAnswer>) -> serde_json::Value {
    let mut nodes = Vec::new();
    let mut groups = Vec::new();
    for answer in answers {
        let status = match answer {
            NodeAnswer::Status(s) => s,
            NodeAnswer::Unreachable { node, error } => {
                nodes.push(serde_json::json!({"node": node, "reachable": false, "error": error}));
                continue;
            }
        };
        nodes.push(serde_json::json!({
            "node": status["node"],
            "reachable": true,
            "deserialization_failures_total": status["deserialization_failures_total"],
        }));
        if let Some(mut meta) = status.get("meta").cloned().filter(|m| !m.is_null()) {
            meta["node"] = status["node"].clone();
            meta["topic"] = "__meta".into();
            meta["partition"] = 0.into();
            groups.push(meta);
        }
        groups.extend(status["groups"].as_array().cloned().unwrap_or_default());
    }
    serde_json::json!({ "brokers": brokers, "nodes": nodes, "groups": groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_marks_unreachable_nodes_and_tags_meta() {
        let brokers = vec![
            BrokerEntry { node: 1, host: "127.0.0.1".into(), port: 9092, admin: Some("127.0.0.1:9300".into()) },
            BrokerEntry { node: 2, host: "127.0.0.1".into(), port: 9093, admin: None },
        ];
        let one = serde_json::json!({
            "node": 1, "deserialization_failures_total": 0,
            "meta": {"group": 0, "leader": 1},
            "groups": [{"node": 1, "topic": "t", "partition": 0}],
        });
        let v = merge(
            &brokers,
            vec![NodeAnswer::Status(one), NodeAnswer::Unreachable { node: 2, error: "timed out".into() }],
        );
        assert_eq!(v["brokers"][0]["admin"], "127.0.0.1:9300");
        assert_eq!(v["nodes"][0]["reachable"], true);
        assert_eq!(v["nodes"][1], serde_json::json!({"node": 2, "reachable": false, "error": "timed out"}));
        let groups = v["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0]["topic"], "__meta");
        assert_eq!(groups[0]["node"], 1);
        assert_eq!(groups[1]["topic"], "t");
    }
}
