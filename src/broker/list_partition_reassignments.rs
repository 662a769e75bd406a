//! ListPartitionReassignments (key 46, `kafka-reassign-partitions.sh --verify|--list`): the
//! reassignments in progress (`meta::reassign`) with Kafka's fields: `replicas` (the target
//! followed by the replicas leaving, as Metadata shows them meanwhile), `adding_replicas` and
//! `removing_replicas`. A cancelled reassignment (reverting to its original replicas) is no
//! longer listed, as in Kafka. `topics` null lists every partition; a named partition without a
//! reassignment (or one that does not exist) is left out. ACL: DESCRIBE on CLUSTER.

use std::sync::Arc;

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, RequestHeader,
};

use super::{sb, BrokerCtx};
use crate::error::code;
use crate::meta::MetaState;
use crate::security::acl::Operation;

/// The ongoing reassignments of `image`, for the partitions `wanted` names (`None`: all).
pub fn list(image: &MetaState, wanted: Option<&[(String, Vec<i32>)]>) -> Vec<OngoingTopicReassignment> {
    let ids = |v: &[u64]| v.iter().map(|b| BrokerId(*b as i32)).collect::<Vec<_>>();
    let mut out = Vec::new();
    for (name, t) in &image.topics {
        let asked: Option<&Vec<i32>> = match wanted {
            None => None,
            Some(w) => match w.iter().find(|(n, _)| n == name) {
                Some((_, parts)) => Some(parts),
                None => continue,
            },
        };
        let mut partitions = Vec::new();
        for (i, p) in t.partitions.iter().enumerate() {
            if asked.is_some_and(|a| !a.contains(&(i as i32))) {
                continue;
            }
            let Some(r) = image.reassignments.get(&p.group).filter(|r| !r.cancelled) else { continue };
            partitions.push(
                OngoingPartitionReassignment::default()
                    .with_partition_index(i as i32)
                    .with_replicas(ids(&p.replicas))
                    .with_adding_replicas(ids(&r.adding()))
                    .with_removing_replicas(ids(&r.removing())),
            );
        }
        if !partitions.is_empty() {
            out.push(OngoingTopicReassignment::default().with_name(sb(name).into()).with_partitions(partitions));
        }
    }
    out
}

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    _h: RequestHeader,
    req: ListPartitionReassignmentsRequest,
) -> Option<ListPartitionReassignmentsResponse> {
    if let Err(denied) = ctx.check_cluster(Operation::Describe) {
        return Some(ListPartitionReassignmentsResponse::default().with_error_code(denied));
    }
    let wanted: Option<Vec<(String, Vec<i32>)>> =
        req.topics.as_ref().map(|ts| ts.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect());
    let topics = list(&ctx.image(), wanted.as_deref());
    Some(ListPartitionReassignmentsResponse::default().with_error_code(code::NONE).with_topics(topics))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::command::{Cmd, MetaCommand};
    use crate::meta::reassign::{AlterReassignments, ReassignItem};

    #[test]
    fn lists_the_union_with_adding_and_removing_and_not_a_cancelled_one() {
        let mut image = crate::meta::test_image::image(&[None; 4], 2, 3);
        assert!(list(&image, None).is_empty());
        let p = image.topics["t"].partitions[0].clone();
        let new = *[1, 2, 3, 4].iter().find(|b| !p.replicas.contains(b)).unwrap();
        let target = vec![new, p.replicas[1], p.replicas[2]];
        let item = ReassignItem { group: p.group, target: target.clone(), cancel: false };
        image.apply(&MetaCommand::new(Cmd::AlterReassignments(AlterReassignments { items: vec![item] })));
        let l = list(&image, None);
        assert_eq!(l.len(), 1);
        let o = &l[0].partitions[0];
        assert_eq!(o.partition_index, 0);
        let want: Vec<i32> = target.iter().chain([&p.replicas[0]]).map(|b| *b as i32).collect();
        assert_eq!(o.replicas.iter().map(|b| b.0).collect::<Vec<_>>(), want);
        assert_eq!((o.adding_replicas[0].0, o.removing_replicas[0].0), (new as i32, p.replicas[0] as i32));
        assert!(list(&image, Some(&[("t".into(), vec![1])])).is_empty(), "partition 1 has none");
        let cancel = ReassignItem { group: p.group, target: Vec::new(), cancel: true };
        image.apply(&MetaCommand::new(Cmd::AlterReassignments(AlterReassignments { items: vec![cancel] })));
        assert!(list(&image, None).is_empty());
    }
}
