//! AlterPartitionReassignments (key 45, `kafka-reassign-partitions.sh --execute|--cancel`):
//! starts or cancels the reassignment of partitions among the registered brokers.
//!
//! Checked here as Kafka's `ReplicationControlManager.alterPartitionReassignment` does, per
//! partition: an unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION; a target with an
//! unregistered broker, a broker twice or no broker is INVALID_REPLICA_ASSIGNMENT (the messages
//! of `validateManualPartitionAssignment`, `meta::assignment`); v1 with
//! `allow_replication_factor_change` false and a target of another size is
//! INVALID_REPLICATION_FACTOR; a cancel (null replicas) of a partition without a reassignment is
//! NO_REASSIGNMENT_IN_PROGRESS. The valid ones go to `__meta` in one `AlterReassignments`
//! command (`meta::reassign`), answered once it is applied; the move itself then runs in the
//! partition group (`partition::reassign`). ACL: ALTER on CLUSTER.

use std::sync::Arc;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, RequestHeader,
};

use super::{meta_error_code, sb, BrokerCtx};
use crate::error::code;
use crate::meta::command::{Cmd, MetaCommand};
use crate::meta::reassign::{AlterReassignments, ReassignItem};
use crate::meta::MetaState;
use crate::security::acl::Operation;

/// Kafka's NO_REASSIGNMENT_IN_PROGRESS.
pub const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;

/// A partition's answer: error code and message; `None` while its command is pending.
type Outcome = Option<(i16, Option<String>)>;

/// One partition's check: the item to apply, or its error code and message.
pub fn check(
    image: &MetaState,
    topic: &str,
    partition: i32,
    replicas: Option<&[i32]>,
    allow_rf_change: bool,
) -> Result<ReassignItem, (i16, String)> {
    let Some(p) =
        image.topics.get(topic).and_then(|t| usize::try_from(partition).ok().and_then(|i| t.partitions.get(i)))
    else {
        return Err((code::UNKNOWN_TOPIC_OR_PARTITION, format!("Unable to find partition {topic}-{partition}.")));
    };
    let running = image.reassignments.get(&p.group).filter(|r| !r.cancelled);
    let Some(replicas) = replicas else {
        return match running {
            Some(_) => Ok(ReassignItem { group: p.group, target: Vec::new(), cancel: true }),
            None => Err((NO_REASSIGNMENT_IN_PROGRESS, "No partition reassignment is in progress.".into())),
        };
    };
    let target = crate::meta::assignment::validate_replicas(&image.brokers, replicas, None)?;
    let current = image.reassignments.get(&p.group).map_or(p.replicas.len(), |r| r.original.len());
    if !allow_rf_change && target.len() != current {
        return Err((
            code::INVALID_REPLICATION_FACTOR,
            format!(
                "The replication factor is changed from {current} to {} but allowReplicationFactorChange is false",
                target.len()
            ),
        ));
    }
    Ok(ReassignItem { group: p.group, target, cancel: false })
}

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    h: RequestHeader,
    req: AlterPartitionReassignmentsRequest,
) -> Option<AlterPartitionReassignmentsResponse> {
    let version = h.request_api_version;
    let allow_rf_change = version < 1 || req.allow_replication_factor_change;
    let image = ctx.image();
    let denied = ctx.check_cluster(Operation::Alter).err();
    // (topic, partition, outcome) in request order; `None` while the command is pending.
    let mut rows: Vec<(String, i32, Outcome)> = Vec::new();
    let mut items: Vec<(usize, ReassignItem)> = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            let topic = t.name.0.to_string();
            let replicas: Option<Vec<i32>> = p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect());
            let outcome = match denied {
                Some(c) => Some((c, None)),
                None => match check(&image, &topic, p.partition_index, replicas.as_deref(), allow_rf_change) {
                    Ok(item) => {
                        items.push((rows.len(), item));
                        None
                    }
                    Err((c, m)) => Some((c, Some(m))),
                },
            };
            rows.push((topic, p.partition_index, outcome));
        }
    }
    if !items.is_empty() {
        let cmd = AlterReassignments { items: items.iter().map(|(_, i)| i.clone()).collect() };
        let result = ctx.propose(MetaCommand::new(Cmd::AlterReassignments(cmd))).await;
        for (row, _) in &items {
            rows[*row].2 = Some(match &result {
                Ok(_) => (code::NONE, None),
                Err(e) => (meta_error_code(e), Some(e.to_string())),
            });
        }
    }
    let mut responses: Vec<ReassignableTopicResponse> = Vec::new();
    for (topic, partition, outcome) in rows {
        let (error_code, message) = outcome.unwrap_or((code::NONE, None));
        let r = ReassignablePartitionResponse::default()
            .with_partition_index(partition)
            .with_error_code(error_code)
            .with_error_message(message.map(sb));
        match responses.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partitions.push(r),
            None => responses
                .push(ReassignableTopicResponse::default().with_name(sb(&topic).into()).with_partitions(vec![r])),
        }
    }
    let mut resp = AlterPartitionReassignmentsResponse::default()
        .with_error_code(denied.unwrap_or(code::NONE))
        .with_responses(responses);
    if version >= 1 {
        resp = resp.with_allow_replication_factor_change(req.allow_replication_factor_change);
    }
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_codes_for_bad_input() {
        let mut image = crate::meta::test_image::image(&[None; 4], 1, 3);
        let current = image.topics["t"].partitions[0].replicas.clone();
        let (bad, msg) = check(&image, "t", 0, Some(&[1, 9, 2]), true).unwrap_err();
        assert_eq!(
            (bad, msg.as_str()),
            (39, "The manual partition assignment includes broker 9, but no such broker is registered.")
        );
        assert_eq!(check(&image, "t", 0, Some(&[1, 1, 2]), true).unwrap_err().0, 39);
        assert_eq!(check(&image, "t", 0, Some(&[]), true).unwrap_err().0, 39);
        assert_eq!(check(&image, "t", 5, Some(&[1, 2, 3]), true).unwrap_err().0, 3);
        assert_eq!(check(&image, "nope", 0, Some(&[1, 2, 3]), true).unwrap_err().0, 3);
        assert_eq!(
            check(&image, "t", 0, None, true).unwrap_err(),
            (85, "No partition reassignment is in progress.".into())
        );
        assert_eq!(check(&image, "t", 0, Some(&[1, 2]), false).unwrap_err().0, 38);
        let item = check(&image, "t", 0, Some(&[2, 3, 4]), false).unwrap();
        assert_eq!((item.target, item.cancel), (vec![2, 3, 4], false));
        let start = AlterReassignments { items: vec![check(&image, "t", 0, Some(&[4, 3, 2]), true).unwrap()] };
        image.apply(&MetaCommand::new(Cmd::AlterReassignments(start)));
        assert!(check(&image, "t", 0, None, true).unwrap().cancel);
        assert_ne!(current, image.topics["t"].partitions[0].replicas, "the union while in progress");
    }
}
