//! The values that go in and out of the group state machine: settings, requests, responses
//! and the effects (responses to parked requests) it asks its shell to deliver.

use std::time::Duration;

use bytes::Bytes;

use crate::meta::command::StoreGroup;

/// A parked request: the shell maps it to the reply channel of the request that waits.
pub type Waiter = u64;

/// Kafka's broker-side group settings (`group.*`), with Kafka's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorSettings {
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout: Duration,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout: Duration,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group waits
    /// for more members (extended by the same delay while members keep arriving, up to the
    /// rebalance timeout).
    pub initial_rebalance_delay: Duration,
    /// `group.max.size`: a new member beyond this many gets GROUP_MAX_SIZE_REACHED.
    pub max_size: usize,
    /// A new member parked in JoinGroup longer than this is dropped (Kafka: 5 minutes).
    pub new_member_join_timeout: Duration,
    /// How long an Empty group without members is kept in memory (its committed offsets live in
    /// `__meta` regardless).
    pub empty_group_retention: Duration,
}

impl CoordinatorSettings {
    /// Kafka's defaults with the `[groups]` bounds of the configuration.
    pub fn from_config(groups: &crate::config::GroupsConfig) -> Self {
        CoordinatorSettings {
            min_session_timeout: groups.min_session_timeout,
            max_session_timeout: groups.max_session_timeout,
            initial_rebalance_delay: groups.initial_rebalance_delay,
            max_size: groups.max_size as usize,
            ..CoordinatorSettings::default()
        }
    }
}

impl Default for CoordinatorSettings {
    fn default() -> Self {
        CoordinatorSettings {
            min_session_timeout: Duration::from_millis(6_000),
            max_session_timeout: Duration::from_millis(1_800_000),
            initial_rebalance_delay: Duration::from_millis(3_000),
            max_size: i32::MAX as usize,
            new_member_join_timeout: Duration::from_secs(300),
            empty_group_retention: Duration::from_secs(600),
        }
    }
}

/// The states of a classic group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka reports (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// One protocol a member supports, with its metadata (the subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    pub name: String,
    pub metadata: Bytes,
}

/// A JoinGroup request, version-independent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    pub group_id: String,
    /// Empty for a member without an id yet.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<Protocol>,
    /// v4+: a new dynamic member first gets MEMBER_ID_REQUIRED and an id to rejoin with.
    pub require_known_member_id: bool,
}

/// A member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// The answer to a JoinGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    pub error: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only the leader gets the members (with the metadata of the selected protocol).
    pub members: Vec<JoinMember>,
    /// A static leader that rejoined a stable group must not assign again (v9+).
    pub skip_assignment: bool,
}

impl JoinResponse {
    /// An error answer.
    pub fn error(error: i16, member_id: impl Into<String>) -> Self {
        JoinResponse {
            error,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.into(),
            members: Vec::new(),
            skip_assignment: false,
        }
    }
}

/// A SyncGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    /// v5+: checked against the group's when present.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The leader's assignment: member id → assignment bytes.
    pub assignments: Vec<(String, Bytes)>,
}

/// The answer to a SyncGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResponse {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    /// An error answer.
    pub fn error(error: i16) -> Self {
        SyncResponse { error, protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

/// A member of a LeaveGroup request (v0-2 carry one member id, v3+ a batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeavingMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// What the state machine asks its shell to do: deliver the answer to a parked request, or store
/// the group's membership in `__meta` and deliver some answers only once it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Join { waiter: Waiter, response: JoinResponse },
    Sync { waiter: Waiter, response: SyncResponse },
    Store { snapshot: StoreGroup, then: Vec<Effect> },
}

/// A member as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Metadata of the selected protocol (only while Stable).
    pub metadata: Bytes,
    /// The member's assignment (only while Stable).
    pub assignment: Bytes,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: GroupState,
    pub protocol_type: String,
    /// The selected protocol (only while Stable).
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: GroupState,
}

/// Who sends a Heartbeat or an OffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
}
