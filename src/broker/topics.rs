//! Topic creation shared by CreateTopics and Metadata's auto-creation: validation, the
//! `__meta` proposal, and waiting until every new partition has a leader, so a client never
//! sees LEADER_NOT_AVAILABLE right after a successful create.

use std::collections::BTreeMap;
use std::time::Duration;

use super::BrokerCtx;
use crate::error::code;
use crate::meta::command::{Cmd, CreateTopic, MetaCommand, ReplicaList};
use crate::meta::state::{valid_topic_name, MetaResult};
use crate::meta::topic_config::{log_not_applied, validate_topic_configs};

/// A failed topic operation: Kafka error code and message.
pub type TopicError = (i16, String);

/// What to create.
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
    /// A manual assignment: each partition's replicas, preferred leader first (empty: placed by
    /// `__meta`; then `partitions` and `replication_factor` are -1).
    pub assignment: Vec<Vec<u64>>,
}

/// Checks a create request without proposing it. Returns the effective (partitions, rf).
pub fn validate(ctx: &BrokerCtx, t: &NewTopic) -> Result<(u32, u32), TopicError> {
    if !valid_topic_name(&t.name) {
        return Err((code::INVALID_TOPIC_EXCEPTION, format!("invalid topic name {:?}", t.name)));
    }
    let image = ctx.image();
    if !t.assignment.is_empty() {
        if t.assignment.len() > crate::meta::state::MAX_PARTITIONS_PER_TOPIC as usize {
            return Err((code::INVALID_PARTITIONS, format!("invalid partition count {}", t.assignment.len())));
        }
        crate::meta::assignment::check_lists(&image.brokers, &t.assignment, None)?;
    }
    let partitions = match t.partitions {
        _ if !t.assignment.is_empty() => t.assignment.len() as u32,
        -1 => ctx.settings.default_partitions,
        p if p >= 1 && p as u32 <= crate::meta::state::MAX_PARTITIONS_PER_TOPIC => p as u32,
        p => return Err((code::INVALID_PARTITIONS, format!("invalid partition count {p}"))),
    };
    let rf = match t.replication_factor {
        _ if !t.assignment.is_empty() => t.assignment[0].len() as u32,
        -1 => ctx.settings.default_replication_factor,
        r if r >= 1 => r as u32,
        r => return Err((code::INVALID_REPLICATION_FACTOR, format!("invalid replication factor {r}"))),
    };
    if image.topics.contains_key(&t.name) || super::internal_topic::is_internal(&t.name) {
        return Err((code::TOPIC_ALREADY_EXISTS, format!("topic {:?} already exists", t.name)));
    }
    if rf as usize > image.brokers.len().max(1) {
        return Err((
            code::INVALID_REPLICATION_FACTOR,
            format!("replication factor {rf} is larger than the {} available brokers", image.brokers.len()),
        ));
    }
    validate_topic_configs(&t.configs).map_err(|m| (code::INVALID_CONFIG, m))?;
    Ok((partitions, rf))
}

/// Creates a topic and waits (up to `timeout`) until every partition has a leader.
pub async fn create(ctx: &BrokerCtx, t: NewTopic, timeout: Duration) -> Result<[u8; 16], TopicError> {
    let (partitions, rf) = validate(ctx, &t)?;
    log_not_applied(&ctx.logger, &t.name, &t.configs);
    let id = *uuid::Uuid::new_v4().as_bytes();
    let cmd = MetaCommand::new(Cmd::CreateTopic(CreateTopic {
        name: t.name.clone(),
        topic_id: id.to_vec(),
        partitions,
        replication_factor: rf,
        configs: t.configs,
        assignment: t.assignment.into_iter().map(|brokers| ReplicaList { brokers }).collect(),
        placement: crate::meta::state::PLACEMENT_SHIFTED,
    }));
    match ctx.propose(cmd).await {
        Ok(MetaResult::Done) => {}
        Ok(MetaResult::Rejected { code, message }) => return Err((code, message)),
        Ok(other) => return Err((code::UNKNOWN_SERVER_ERROR, format!("unexpected result {other:?}"))),
        Err(e) => return Err((super::meta_error_code(&e), e.to_string())),
    }
    wait_for_leaders(ctx, &t.name, partitions as i32, timeout).await;
    Ok(id)
}

/// Whether partition `p` of `topic` has a known leader: from the local group if it runs here,
/// else from the leaders reported to `__meta`.
pub fn leader_of(ctx: &BrokerCtx, image: &crate::meta::MetaState, topic: &str, p: i32) -> Option<(u64, u64)> {
    if let Some(h) = ctx.partition(topic, p) {
        let leader = h.shared.leader();
        if leader != 0 {
            return Some((leader, h.shared.term()));
        }
    }
    let group = image.topics.get(topic)?.partitions.get(p as usize)?.group;
    image.leaders.get(&group).copied()
}

/// Waits until partitions 0..count of `topic` have a known leader, or until `timeout`. An
/// admin path: it checks every 20 ms.
pub async fn wait_for_leaders(ctx: &BrokerCtx, topic: &str, count: i32, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let image = ctx.image();
        if (0..count).all(|p| leader_of(ctx, &image, topic, p).is_some()) {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
