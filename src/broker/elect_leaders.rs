//! ElectLeaders (key 43, `kafka-leader-election.sh`): moves the leadership of partitions to
//! their preferred replica (the first of the replica list, as Kafka) with a Raft leader transfer.
//!
//! The handler proposes one `ElectPreferred` command to `__meta`; the node of each preferred
//! replica sees it applied and asks the group's leader for a transfer (`node.rs`,
//! `PartitionMsg::ElectSelf`), and the handler waits, up to the request's `timeout_ms`, until
//! the new leader has reported itself. Kafka's answers per partition:
//! - ELECTION_NOT_NEEDED when the preferred replica already leads (with `topic_partitions` null,
//!   meaning every partition, such partitions are left out of the answer, as Kafka does);
//! - PREFERRED_LEADER_NOT_AVAILABLE when the preferred replica is not a registered broker, or did
//!   not take over within the timeout (down, or not caught up: Raft only transfers to a replica
//!   whose log matches the leader's);
//! - UNKNOWN_TOPIC_OR_PARTITION for a topic or partition that does not exist.
//!
//! UNCLEAN: Raft never elects a leader that may lack committed entries, so an unclean election
//! never happens. A partition with a leader answers ELECTION_NOT_NEEDED (as Kafka does for a led
//! partition); one without a leader ELIGIBLE_LEADERS_NOT_AVAILABLE (Raft elects one as soon as a
//! quorum of replicas is up). Any broker answers (Kafka 4 brokers forward to the controller; here
//! the proposal goes through `__meta`), so NOT_CONTROLLER is never returned. ACL: ALTER on CLUSTER.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, RequestHeader, TopicName};

use super::{meta_error_code, sb, BrokerCtx};
use crate::error::code;
use crate::meta::command::{Cmd, ElectPreferred, MetaCommand};
use crate::meta::MetaState;
use crate::security::acl::Operation;

/// ElectionType PREFERRED (0) and UNCLEAN (1).
const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

/// The longest a request waits for its transfers, whatever its `timeout_ms`.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// One partition's answer: an error code and message, or `None` while its transfer is pending.
type Outcome = Option<(i16, Option<String>)>;

/// What the request decides for one partition before any transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do: this code (and message) is the answer.
    Answer(i16, Option<String>),
    /// Move the leadership of `group` to `preferred`.
    Transfer { group: u64, preferred: u64 },
}

/// The decision for partition `p` of `topic`; `leader` is its known leader, if any.
pub fn decide(image: &MetaState, election_type: i8, topic: &str, p: i32, leader: Option<u64>) -> Decision {
    let Some(info) = image.topics.get(topic).and_then(|t| usize::try_from(p).ok().and_then(|i| t.partitions.get(i)))
    else {
        return Decision::Answer(code::UNKNOWN_TOPIC_OR_PARTITION, Some("no such topic or partition".into()));
    };
    match election_type {
        UNCLEAN => match leader {
            Some(_) => Decision::Answer(code::ELECTION_NOT_NEEDED, Some("the partition has a leader".into())),
            None => Decision::Answer(
                code::ELIGIBLE_LEADERS_NOT_AVAILABLE,
                Some("Raft elects no unclean leader; a leader is elected once a quorum of replicas is up".into()),
            ),
        },
        PREFERRED => {
            let Some(&preferred) = info.replicas.first() else {
                return Decision::Answer(code::PREFERRED_LEADER_NOT_AVAILABLE, None);
            };
            if leader == Some(preferred) {
                Decision::Answer(code::ELECTION_NOT_NEEDED, None)
            } else if !image.brokers.contains_key(&preferred) {
                Decision::Answer(
                    code::PREFERRED_LEADER_NOT_AVAILABLE,
                    Some(format!("the preferred replica {preferred} is not a registered broker")),
                )
            } else {
                Decision::Transfer { group: info.group, preferred }
            }
        }
        other => Decision::Answer(code::INVALID_REQUEST, Some(format!("unknown election type {other}"))),
    }
}

pub async fn handle(ctx: Arc<BrokerCtx>, h: RequestHeader, req: ElectLeadersRequest) -> Option<ElectLeadersResponse> {
    let version = h.request_api_version;
    let election_type = if version >= 1 { req.election_type } else { PREFERRED };
    let image = ctx.image();
    let all = req.topic_partitions.is_none();
    // (topic, partition) in request order, deduplicated.
    let mut wanted: Vec<(String, i32)> = Vec::new();
    match &req.topic_partitions {
        None => {
            for (name, t) in &image.topics {
                wanted.extend((0..t.partitions.len() as i32).map(|p| (name.clone(), p)));
            }
        }
        Some(tps) => {
            for t in tps {
                for p in &t.partitions {
                    let key = (t.topic.0.to_string(), *p);
                    if !wanted.contains(&key) {
                        wanted.push(key);
                    }
                }
            }
        }
    }
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(wanted.len());
    let mut transfers: BTreeMap<usize, (String, i32, u64)> = BTreeMap::new();
    let mut groups: Vec<u64> = Vec::new();
    let mut top_error = code::NONE;
    if let Err(denied) = ctx.check_cluster(Operation::Alter) {
        top_error = denied;
        outcomes.extend(wanted.iter().map(|_| Some((denied, None))));
    } else {
        for (i, (topic, p)) in wanted.iter().enumerate() {
            let leader = super::topics::leader_of(&ctx, &image, topic, *p).map(|(l, _)| l);
            match decide(&image, election_type, topic, *p, leader) {
                Decision::Answer(code, message) => outcomes.push(Some((code, message))),
                Decision::Transfer { group, preferred } => {
                    transfers.insert(i, (topic.clone(), *p, preferred));
                    groups.push(group);
                    outcomes.push(None);
                }
            }
        }
    }
    if !transfers.is_empty() {
        let cmd = MetaCommand::new(Cmd::ElectPreferred(ElectPreferred { groups }));
        match ctx.propose(cmd).await {
            Err(e) => {
                let c = meta_error_code(&e);
                for i in transfers.keys() {
                    outcomes[*i] = Some((c, Some(e.to_string())));
                }
            }
            Ok(_) => wait_for_transfers(&ctx, &transfers, &mut outcomes, req.timeout_ms).await,
        }
    }
    let mut by_topic: Vec<ReplicaElectionResult> = Vec::new();
    for ((topic, p), outcome) in wanted.into_iter().zip(outcomes) {
        let (error_code, message) = outcome.unwrap_or((code::NONE, None));
        if all && error_code == code::ELECTION_NOT_NEEDED {
            continue;
        }
        let result = PartitionResult::default()
            .with_partition_id(p)
            .with_error_code(error_code)
            .with_error_message(message.map(sb));
        match by_topic.iter_mut().find(|r| r.topic.0.as_str() == topic) {
            Some(r) => r.partition_result.push(result),
            None => by_topic.push(
                ReplicaElectionResult::default().with_topic(TopicName(sb(topic))).with_partition_result(vec![result]),
            ),
        }
    }
    let mut resp = ElectLeadersResponse::default().with_replica_election_results(by_topic);
    if version >= 1 {
        resp = resp.with_error_code(top_error);
    }
    Some(resp)
}

/// Waits until the preferred replica of every pending partition leads it (answer NONE), or the
/// timeout passes (PREFERRED_LEADER_NOT_AVAILABLE). An admin path: it checks every 20 ms.
async fn wait_for_transfers(
    ctx: &BrokerCtx,
    transfers: &BTreeMap<usize, (String, i32, u64)>,
    outcomes: &mut [Outcome],
    timeout_ms: i32,
) {
    let wait = Duration::from_millis(timeout_ms.max(0) as u64).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let image = ctx.image();
        let mut pending = false;
        for (i, (topic, p, preferred)) in transfers {
            if outcomes[*i].is_some() {
                continue;
            }
            if super::topics::leader_of(ctx, &image, topic, *p).is_some_and(|(l, _)| l == *preferred) {
                outcomes[*i] = Some((code::NONE, None));
            } else {
                pending = true;
            }
        }
        if !pending {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            for (i, (_, _, preferred)) in transfers {
                if outcomes[*i].is_none() {
                    outcomes[*i] = Some((
                        code::PREFERRED_LEADER_NOT_AVAILABLE,
                        Some(format!("replica {preferred} did not take the leadership over in {wait:?}")),
                    ));
                }
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> MetaState {
        crate::meta::test_image::image(&[None; 3], 3, 3)
    }

    #[test]
    fn preferred_decisions() {
        let s = image();
        let p0 = &s.topics["t"].partitions[0];
        let preferred = p0.replicas[0];
        let other = p0.replicas[1];
        assert_eq!(decide(&s, PREFERRED, "t", 0, Some(preferred)), Decision::Answer(code::ELECTION_NOT_NEEDED, None));
        assert_eq!(decide(&s, PREFERRED, "t", 0, Some(other)), Decision::Transfer { group: p0.group, preferred });
        assert_eq!(decide(&s, PREFERRED, "t", 0, None), Decision::Transfer { group: p0.group, preferred });
        for (topic, p) in [("t", 3), ("t", -1), ("nope", 0)] {
            assert!(matches!(
                decide(&s, PREFERRED, topic, p, None),
                Decision::Answer(code::UNKNOWN_TOPIC_OR_PARTITION, _)
            ));
        }
        let mut gone = s.clone();
        gone.brokers.remove(&preferred);
        assert!(matches!(
            decide(&gone, PREFERRED, "t", 0, Some(other)),
            Decision::Answer(code::PREFERRED_LEADER_NOT_AVAILABLE, _)
        ));
    }

    #[test]
    fn unclean_is_never_an_unclean_election() {
        let s = image();
        assert!(matches!(decide(&s, UNCLEAN, "t", 1, Some(2)), Decision::Answer(code::ELECTION_NOT_NEEDED, _)));
        assert!(matches!(decide(&s, UNCLEAN, "t", 1, None), Decision::Answer(code::ELIGIBLE_LEADERS_NOT_AVAILABLE, _)));
        assert!(matches!(decide(&s, 7, "t", 1, None), Decision::Answer(code::INVALID_REQUEST, _)));
    }
}
