//! What DescribeGroups and ListGroups report about a [`Group`], and its snapshot in `__meta`
//! (written after each rebalance, read back when a coordinator starts without the group).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::state::{Group, Member};
use super::types::*;
use crate::meta::command::{StoreGroup, StoredMember};

impl Group {
    // ---- describe -----------------------------------------------------------------------------

    /// The group as DescribeGroups reports it (metadata and assignments only while Stable).
    pub fn describe(&self) -> GroupDescription {
        let stable = self.state == GroupState::Stable;
        let protocol = if stable { self.protocol.clone().unwrap_or_default() } else { String::new() };
        GroupDescription {
            group_id: self.id.clone(),
            state: self.state,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            members: self
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable { m.metadata_for(&protocol) } else { Bytes::new() },
                    assignment: if stable { m.assignment.clone() } else { Bytes::new() },
                })
                .collect(),
            protocol,
        }
    }

    /// The group as ListGroups reports it.
    pub fn listing(&self) -> GroupListing {
        GroupListing {
            group_id: self.id.clone(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            state: self.state,
        }
    }

    /// The membership to store in `__meta` (Kafka's GroupMetadata record).
    pub fn snapshot(&self) -> StoreGroup {
        let protocol = self.protocol.clone().unwrap_or_default();
        StoreGroup {
            group: self.id.clone(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            leader: self.leader.clone().unwrap_or_default(),
            members: self
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: u32::try_from(m.session_timeout.as_millis()).unwrap_or(u32::MAX),
                    rebalance_timeout_ms: u32::try_from(m.rebalance_timeout.as_millis()).unwrap_or(u32::MAX),
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
            protocol,
            // Stamped with the wall clock by the actor when it proposes the snapshot.
            state_timestamp: 0,
        }
    }

    /// A group as stored in `__meta`: Stable with its members (whose sessions start now), or
    /// Empty. Members that are gone expire after their session timeout.
    pub fn restore(stored: &StoreGroup, now: Instant) -> Group {
        let members: BTreeMap<String, Member> = stored
            .members
            .iter()
            .map(|m| {
                let member = Member {
                    id: m.member_id.clone(),
                    instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout: Duration::from_millis(u64::from(m.session_timeout_ms)),
                    rebalance_timeout: Duration::from_millis(u64::from(m.rebalance_timeout_ms)),
                    protocol_type: stored.protocol_type.clone(),
                    protocols: vec![Protocol { name: stored.protocol.clone(), metadata: m.subscription.clone() }],
                    assignment: m.assignment.clone(),
                    join_waiter: None,
                    sync_waiter: None,
                    last_heartbeat: now,
                    is_new: false,
                };
                (m.member_id.clone(), member)
            })
            .collect();
        let mut group = Group::new(stored.group.clone(), now);
        group.generation = stored.generation;
        group.protocol_type = Some(stored.protocol_type.clone()).filter(|t| !t.is_empty());
        if !members.is_empty() {
            group.state = GroupState::Stable;
            group.empty_since = None;
            group.protocol = Some(stored.protocol.clone());
            group.leader = Some(stored.leader.clone())
                .filter(|l| members.contains_key(l))
                .or_else(|| members.keys().next().cloned());
            group.static_members =
                members.values().filter_map(|m| m.instance_id.clone().map(|i| (i, m.id.clone()))).collect();
        }
        group.members = members;
        group.pending_sync = BTreeSet::new();
        group
    }
}
