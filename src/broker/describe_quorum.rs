//! DescribeQuorum (key 55, `kafka-metadata-quorum.sh describe --status|--replication`): the
//! `__meta` Raft group, chronik's controller quorum, described as Kafka's `__cluster_metadata`
//! partition 0: leader id, epoch (the Raft term), high watermark (the commit index), and every
//! voter of `__meta` with its log end offset, and its learners (`meta::members`: the members
//! beyond `meta.max-voters`) as observers.
//!
//! What a node knows: the leader knows each voter's match index (its log end offset); a follower
//! knows its own last index and, for the leader, the commit index it knows (a lower bound of the
//! leader's log end), and answers -1 (Kafka's "unknown") for the other voters. Fetch and
//! caught-up timestamps are not tracked: -1 (unknown) for every replica. v2 adds the voters'
//! endpoints on the listener the request came in on. ACL: DESCRIBE on CLUSTER.

use std::sync::Arc;

use kafka_protocol::messages::describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, RequestHeader, TopicName};
use tokio::sync::oneshot;

use super::{sb, BrokerCtx};
use crate::error::code;
use crate::meta::MetaMsg;
use crate::raft::core::GroupStatus;
use crate::security::acl::Operation;

/// Kafka's name of the metadata log.
pub const CLUSTER_METADATA_TOPIC: &str = "__cluster_metadata";

/// The partition answer for `__meta` as node `me` sees it: its `voters` and `observers`
/// (learners).
pub fn describe(me: u64, status: &GroupStatus, voters: &[u64], observers: &[u64]) -> PartitionData {
    let leo = |id: u64| -> i64 {
        if let Some(m) = status.match_index.get(&id) {
            *m as i64
        } else if id == me {
            status.last_index as i64
        } else if id == status.leader {
            // A follower knows the leader has at least every entry it knows committed.
            status.commit as i64
        } else {
            -1
        }
    };
    let states = |ids: &[u64]| -> Vec<ReplicaState> {
        ids.iter()
            .map(|id| {
                ReplicaState::default()
                    .with_replica_id(BrokerId(*id as i32))
                    .with_log_end_offset(leo(*id))
                    .with_last_fetch_timestamp(-1)
                    .with_last_caught_up_timestamp(-1)
            })
            .collect()
    };
    PartitionData::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(if status.leader == 0 { -1 } else { status.leader as i32 }))
        .with_leader_epoch(status.term.min(i32::MAX as u64) as i32)
        .with_high_watermark(status.commit as i64)
        .with_current_voters(states(voters))
        .with_observers(states(observers))
}

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    h: RequestHeader,
    req: DescribeQuorumRequest,
) -> Option<DescribeQuorumResponse> {
    let version = h.request_api_version;
    let resp = DescribeQuorumResponse::default();
    if let Err(denied) = ctx.check_cluster(Operation::Describe) {
        return Some(resp.with_error_code(denied));
    }
    let asks_metadata = req.topics.iter().any(|t| {
        t.topic_name.0.as_str() == CLUSTER_METADATA_TOPIC && t.partitions.iter().any(|p| p.partition_index == 0)
    });
    if !asks_metadata {
        return Some(resp.with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION));
    }
    let (tx, rx) = oneshot::channel();
    ctx.meta.do_send(MetaMsg::Status { reply: tx });
    let Ok(Ok(status)) = tokio::time::timeout(std::time::Duration::from_secs(5), rx).await else {
        return Some(resp.with_error_code(code::REQUEST_TIMED_OUT));
    };
    let image = ctx.image();
    let topic = TopicData::default()
        .with_topic_name(TopicName(sb(CLUSTER_METADATA_TOPIC)))
        .with_partitions(vec![describe(ctx.node_id, &status, &status.voters, &status.learners)]);
    let mut resp = resp.with_topics(vec![topic]);
    if version >= 2 {
        let listener = crate::security::principal::current().listener.clone();
        let nodes = image
            .brokers
            .iter()
            .map(|(id, b)| {
                let listeners = b
                    .endpoint(&listener)
                    .map(|(host, port)| {
                        vec![Listener::default()
                            .with_name(sb(listener.clone()))
                            .with_host(sb(host))
                            .with_port(u16::try_from(port).unwrap_or_default())]
                    })
                    .unwrap_or_default();
                Node::default().with_node_id(BrokerId(*id as i32)).with_listeners(listeners)
            })
            .collect();
        resp = resp.with_nodes(nodes);
    }
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(leader: u64, matches: &[(u64, u64)]) -> GroupStatus {
        GroupStatus {
            group: 0,
            role: "Follower".into(),
            leader,
            term: 4,
            commit: 90,
            applied: 90,
            last_index: 95,
            match_index: matches.iter().copied().collect(),
            voters: vec![1, 2, 3],
            learners: Vec::new(),
            voters_outgoing: Vec::new(),
        }
    }

    #[test]
    fn leader_knows_every_voter_a_follower_only_itself() {
        let on_leader = describe(1, &status(1, &[(1, 95), (2, 95), (3, 80)]), &[1, 2, 3], &[]);
        assert_eq!((on_leader.leader_id.0, on_leader.leader_epoch, on_leader.high_watermark), (1, 4, 90));
        let leos: Vec<i64> = on_leader.current_voters.iter().map(|r| r.log_end_offset).collect();
        assert_eq!(leos, vec![95, 95, 80]);
        let on_follower = describe(2, &status(1, &[]), &[1, 2, 3], &[]);
        let leos: Vec<i64> = on_follower.current_voters.iter().map(|r| r.log_end_offset).collect();
        assert_eq!(leos, vec![90, 95, -1], "the leader's: the commit index the follower knows");
        assert!(on_follower.observers.is_empty());
        assert_eq!(describe(2, &status(0, &[]), &[1, 2, 3], &[]).leader_id.0, -1);
    }
}
