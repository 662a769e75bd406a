//! One classic consumer group: the state machine of Kafka's group protocol (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup) as a plain struct. Time comes in as `now`; responses to
//! parked requests go out as [`Effect`]s, so the tests drive it with a manual clock and no
//! threads.
//!
//! This file holds the group, its members and the join phase; `session.rs` the requests of
//! joined members (SyncGroup, Heartbeat, LeaveGroup, OffsetCommit checks) and the timers;
//! `snapshot.rs` what DescribeGroups/ListGroups report and what is stored in `__meta`.
//!
//! States: `Empty` (no members) → `PreparingRebalance` (waiting for members to (re)join, until
//! all have or the rebalance timeout passes) → `CompletingRebalance` (joined; waiting for the
//! leader's SyncGroup) → `Stable`; any membership change goes back to `PreparingRebalance`.
//! `Dead` is a deleted group.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::types::*;
use crate::error::code;

/// One member of a group.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<Protocol>,
    pub assignment: Bytes,
    /// Its parked JoinGroup, while it (re)joins.
    pub join_waiter: Option<Waiter>,
    /// Its parked SyncGroup, while it waits for the leader's assignment.
    pub sync_waiter: Option<Waiter>,
    pub last_heartbeat: Instant,
    /// Joined but not yet through a completed join (new members get a longer join timeout).
    pub is_new: bool,
}

impl Member {
    pub(super) fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|p| p.name == protocol).map(|p| p.metadata.clone()).unwrap_or_default()
    }

    /// Whether the session has expired at `now` (parked members are kept alive).
    pub(super) fn expired(&self, now: Instant, settings: &CoordinatorSettings) -> bool {
        if self.join_waiter.is_some() {
            self.is_new && now >= self.last_heartbeat + settings.new_member_join_timeout
        } else if self.sync_waiter.is_some() {
            false
        } else {
            now >= self.last_heartbeat + self.session_timeout
        }
    }
}

/// The first rebalance of an empty group waits `initial_rebalance_delay` for more members.
#[derive(Debug, Clone, Copy)]
pub(super) struct InitialDelay {
    /// How much of the rebalance timeout is left for further extensions.
    pub(super) remaining: Duration,
}

/// One classic group.
#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub(super) state: GroupState,
    pub(super) generation: i32,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol: Option<String>,
    pub(super) leader: Option<String>,
    pub(super) members: BTreeMap<String, Member>,
    /// group.instance.id → member id.
    pub(super) static_members: BTreeMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the deadline to rejoin.
    pub(super) pending: BTreeMap<String, Instant>,
    /// Members of the current generation that have not sent SyncGroup yet.
    pub(super) pending_sync: BTreeSet<String>,
    pub(super) sync_deadline: Option<Instant>,
    pub(super) join_deadline: Option<Instant>,
    pub(super) initial: Option<InitialDelay>,
    pub(super) new_member_added: bool,
    pub(super) empty_since: Option<Instant>,
}

impl Group {
    /// A new, empty group.
    pub fn new(id: String, now: Instant) -> Self {
        Group {
            id,
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            sync_deadline: None,
            join_deadline: None,
            initial: None,
            new_member_added: false,
            empty_since: Some(now),
        }
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.get(id)
    }

    pub fn member_ids(&self) -> Vec<String> {
        self.members.keys().cloned().collect()
    }

    pub fn is_pending(&self, id: &str) -> bool {
        self.pending.contains_key(id)
    }

    /// True when the group has been empty (no members, nothing pending) since before
    /// `now - retention`.
    pub fn idle_since(&self, now: Instant, retention: Duration) -> bool {
        self.state == GroupState::Empty
            && self.pending.is_empty()
            && self.empty_since.is_some_and(|t| now >= t + retention)
    }

    /// Marks the group deleted: it can no longer be joined.
    pub fn mark_dead(&mut self) {
        self.state = GroupState::Dead;
    }

    pub(super) fn transition(&mut self, to: GroupState, now: Instant) {
        self.state = to;
        self.empty_since = (to == GroupState::Empty).then_some(now);
    }

    pub(super) fn rebalance_timeout(&self) -> Duration {
        self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or_default()
    }

    /// Whether a member with this protocol type and protocols may join: an empty group takes
    /// anything non-empty; otherwise the type must match and one protocol must be supported by
    /// every member.
    pub(super) fn supports(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|p| self.members.values().all(|m| m.protocols.iter().any(|q| q.name == p.name)))
    }

    /// The protocol for the next generation: among the protocols every member supports, each
    /// member votes for the first in its own preference order; most votes wins (ties go to the
    /// leader's preference).
    pub fn select_protocol(&self) -> Option<String> {
        let leader = self.leader.as_ref().and_then(|l| self.members.get(l)).or_else(|| self.members.values().next())?;
        let candidates: Vec<&str> = leader
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| self.members.values().all(|m| m.protocols.iter().any(|q| q.name == *name)))
            .collect();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(p) = m.protocols.iter().find(|p| candidates.contains(&p.name.as_str())) {
                *votes.entry(p.name.as_str()).or_default() += 1;
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for c in &candidates {
            let v = votes.get(c).copied().unwrap_or(0);
            if best.is_none_or(|(_, b)| v > b) {
                best = Some((c, v));
            }
        }
        best.map(|(name, _)| name.to_string())
    }

    /// Checks a member's identity: with an instance id the static mapping decides (unknown
    /// instance: UNKNOWN_MEMBER_ID; another member id holds it: FENCED_INSTANCE_ID).
    pub(super) fn validate_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), i16> {
        match instance_id {
            Some(instance) => match self.static_members.get(instance) {
                None => Err(code::UNKNOWN_MEMBER_ID),
                Some(id) if id != member_id => Err(code::FENCED_INSTANCE_ID),
                Some(_) => Ok(()),
            },
            None if self.members.contains_key(member_id) => Ok(()),
            None => Err(code::UNKNOWN_MEMBER_ID),
        }
    }

    pub(super) fn is_fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        instance_id.and_then(|i| self.static_members.get(i)).is_some_and(|id| id != member_id)
    }

    // ---- JoinGroup ----------------------------------------------------------------------------

    /// Handles a JoinGroup. `new_id` makes a member id (client id or instance id + random part).
    /// The answer arrives as an [`Effect::Join`] for `waiter`, now or when the join completes.
    pub fn join(
        &mut self,
        now: Instant,
        waiter: Waiter,
        req: JoinRequest,
        settings: &CoordinatorSettings,
        new_id: &mut dyn FnMut(&str) -> String,
        out: &mut Vec<Effect>,
    ) {
        let reply = |out: &mut Vec<Effect>, response| out.push(Effect::Join { waiter, response });
        if self.state == GroupState::Dead {
            return reply(out, JoinResponse::error(code::COORDINATOR_NOT_AVAILABLE, req.member_id));
        }
        if req.member_id.is_empty() {
            if !self.supports(&req.protocol_type, &req.protocols) {
                return reply(out, JoinResponse::error(code::INCONSISTENT_GROUP_PROTOCOL, ""));
            }
            let known_static = req.group_instance_id.as_ref().is_some_and(|i| self.static_members.contains_key(i));
            if !known_static && self.members.len() + self.pending.len() >= settings.max_size {
                return reply(out, JoinResponse::error(code::GROUP_MAX_SIZE_REACHED, ""));
            }
            let prefix = req.group_instance_id.as_deref().unwrap_or(&req.client_id).to_string();
            let id = new_id(&prefix);
            match req.group_instance_id.as_ref().and_then(|i| self.static_members.get(i)).cloned() {
                Some(old) => self.replace_static_member(now, waiter, (&old, id), req, settings, out),
                None if req.require_known_member_id && req.group_instance_id.is_none() => {
                    self.pending.insert(id.clone(), now + req.session_timeout);
                    reply(out, JoinResponse::error(code::MEMBER_ID_REQUIRED, id));
                }
                None => self.add_member(now, waiter, id, req, settings, out),
            }
            return;
        }
        if self.pending.contains_key(&req.member_id) {
            if !self.supports(&req.protocol_type, &req.protocols) {
                return reply(out, JoinResponse::error(code::INCONSISTENT_GROUP_PROTOCOL, req.member_id));
            }
            self.pending.remove(&req.member_id);
            let id = req.member_id.clone();
            return self.add_member(now, waiter, id, req, settings, out);
        }
        let instance = req.group_instance_id.as_deref();
        if self.is_fenced(&req.member_id, instance) {
            return reply(out, JoinResponse::error(code::FENCED_INSTANCE_ID, req.member_id));
        }
        if !self.members.contains_key(&req.member_id) || instance.is_some_and(|i| !self.static_members.contains_key(i))
        {
            return reply(out, JoinResponse::error(code::UNKNOWN_MEMBER_ID, req.member_id));
        }
        if !self.supports(&req.protocol_type, &req.protocols) {
            return reply(out, JoinResponse::error(code::INCONSISTENT_GROUP_PROTOCOL, req.member_id));
        }
        let member = &self.members[&req.member_id];
        let same = member.protocols == req.protocols;
        let is_leader = self.leader.as_deref() == Some(req.member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => self.update_member(now, waiter, req, settings, out),
            // The member probably lost the first answer: give it the same one again.
            GroupState::CompletingRebalance if same => {
                let response = self.join_response(&req.member_id, is_leader, false);
                reply(out, response)
            }
            GroupState::Stable if same && !is_leader => {
                let response = self.join_response(&req.member_id, false, false);
                reply(out, response)
            }
            GroupState::CompletingRebalance | GroupState::Stable => self.update_member(now, waiter, req, settings, out),
            GroupState::Empty | GroupState::Dead => {
                reply(out, JoinResponse::error(code::UNKNOWN_MEMBER_ID, req.member_id))
            }
        }
    }

    /// The JoinGroup answer for `member_id` in the current generation.
    pub(super) fn join_response(&self, member_id: &str, with_members: bool, skip_assignment: bool) -> JoinResponse {
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinResponse {
            error: code::NONE,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if with_members {
                self.members
                    .values()
                    .map(|m| JoinMember {
                        member_id: m.id.clone(),
                        group_instance_id: m.instance_id.clone(),
                        metadata: m.metadata_for(&protocol),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            skip_assignment,
        }
    }

    fn add_member(
        &mut self,
        now: Instant,
        waiter: Waiter,
        id: String,
        req: JoinRequest,
        settings: &CoordinatorSettings,
        out: &mut Vec<Effect>,
    ) {
        if self.state == GroupState::PreparingRebalance && self.generation == 0 {
            self.new_member_added = true;
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if let Some(instance) = &req.group_instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        self.members.insert(
            id.clone(),
            Member {
                id,
                instance_id: req.group_instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                session_timeout: req.session_timeout,
                rebalance_timeout: req.rebalance_timeout,
                protocol_type: req.protocol_type,
                protocols: req.protocols,
                assignment: Bytes::new(),
                join_waiter: Some(waiter),
                sync_waiter: None,
                last_heartbeat: now,
                is_new: true,
            },
        );
        self.maybe_prepare_rebalance(now, settings, out);
        self.try_complete_join(now, out);
    }

    fn update_member(
        &mut self,
        now: Instant,
        waiter: Waiter,
        req: JoinRequest,
        settings: &CoordinatorSettings,
        out: &mut Vec<Effect>,
    ) {
        let m = self.members.get_mut(&req.member_id).expect("checked by the caller");
        if let Some(old) = m.join_waiter.replace(waiter) {
            // A retried JoinGroup replaces the one parked before; answer the old one.
            out.push(Effect::Join {
                waiter: old,
                response: JoinResponse::error(code::REBALANCE_IN_PROGRESS, req.member_id.clone()),
            });
        }
        m.protocols = req.protocols;
        m.session_timeout = req.session_timeout;
        m.rebalance_timeout = req.rebalance_timeout;
        m.last_heartbeat = now;
        self.maybe_prepare_rebalance(now, settings, out);
        self.try_complete_join(now, out);
    }

    /// A static member rejoined without its member id (e.g. after a restart): it takes a new
    /// member id and the old one is fenced. A stable group whose protocol does not change
    /// answers at once, without a rebalance.
    fn replace_static_member(
        &mut self,
        now: Instant,
        waiter: Waiter,
        (old_id, new_id): (&str, String),
        req: JoinRequest,
        settings: &CoordinatorSettings,
        out: &mut Vec<Effect>,
    ) {
        let mut m = self.members.remove(old_id).expect("static members are members");
        if let Some(w) = m.join_waiter.take() {
            out.push(Effect::Join { waiter: w, response: JoinResponse::error(code::FENCED_INSTANCE_ID, old_id) });
        }
        if let Some(w) = m.sync_waiter.take() {
            out.push(Effect::Sync { waiter: w, response: SyncResponse::error(code::FENCED_INSTANCE_ID) });
        }
        m.protocols = req.protocols;
        m.id = new_id.clone();
        m.client_id = req.client_id;
        m.client_host = req.client_host;
        m.session_timeout = req.session_timeout;
        m.rebalance_timeout = req.rebalance_timeout;
        m.last_heartbeat = now;
        m.join_waiter = Some(waiter);
        let instance = m.instance_id.clone().expect("static member");
        self.members.insert(new_id.clone(), m);
        self.static_members.insert(instance, new_id.clone());
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        match self.state {
            GroupState::Stable if self.select_protocol() == self.protocol => {
                let is_leader = self.leader.as_deref() == Some(new_id.as_str());
                let response = self.join_response(&new_id, is_leader, is_leader);
                let m = self.members.get_mut(&new_id).expect("inserted");
                m.join_waiter = None;
                // Answer once the new member id is stored, so that it survives a restart.
                out.push(Effect::Store { snapshot: self.snapshot(), then: vec![Effect::Join { waiter, response }] });
            }
            // Stable: the selected protocol would change. CompletingRebalance: the leader may
            // already have assigned to the old member id. Either way, rebalance.
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now, settings, out),
            GroupState::PreparingRebalance => self.try_complete_join(now, out),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    pub(super) fn maybe_prepare_rebalance(
        &mut self,
        now: Instant,
        settings: &CoordinatorSettings,
        out: &mut Vec<Effect>,
    ) {
        if matches!(self.state, GroupState::Empty | GroupState::Stable | GroupState::CompletingRebalance) {
            self.prepare_rebalance(now, settings, out);
        }
    }

    /// Starts a rebalance: members waiting for an assignment are told REBALANCE_IN_PROGRESS; the
    /// join completes when every member has rejoined or the rebalance timeout passes.
    pub(super) fn prepare_rebalance(&mut self, now: Instant, settings: &CoordinatorSettings, out: &mut Vec<Effect>) {
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(w) = m.sync_waiter.take() {
                    out.push(Effect::Sync { waiter: w, response: SyncResponse::error(code::REBALANCE_IN_PROGRESS) });
                }
            }
        }
        self.pending_sync.clear();
        self.sync_deadline = None;
        let timeout = self.rebalance_timeout();
        if self.state == GroupState::Empty && !settings.initial_rebalance_delay.is_zero() {
            let delay = settings.initial_rebalance_delay;
            self.initial = Some(InitialDelay { remaining: timeout.saturating_sub(delay) });
            self.join_deadline = Some(now + delay);
        } else {
            self.initial = None;
            self.join_deadline = Some(now + timeout);
        }
        self.transition(GroupState::PreparingRebalance, now);
        self.try_complete_join(now, out);
    }

    fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.join_waiter.is_some())
    }

    pub(super) fn try_complete_join(&mut self, now: Instant, out: &mut Vec<Effect>) {
        if self.state == GroupState::PreparingRebalance && self.initial.is_none() && self.all_joined() {
            self.complete_join(now, out);
        }
    }

    /// Ends the join phase: dynamic members that did not rejoin are removed, the generation
    /// advances, and every joined member gets its answer (the leader with the member list).
    pub(super) fn complete_join(&mut self, now: Instant, out: &mut Vec<Effect>) {
        self.initial = None;
        self.new_member_added = false;
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove_member_only(&id, out);
        }
        if !self.members.is_empty() && !self.elect_joined_leader() {
            // Only static members that have not rejoined are left: wait for them (or for
            // their sessions to expire).
            self.join_deadline = Some(now + self.rebalance_timeout());
            return;
        }
        self.join_deadline = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.transition(GroupState::Empty, now);
            out.push(Effect::Store { snapshot: self.snapshot(), then: Vec::new() });
            return;
        }
        self.protocol = self.select_protocol();
        self.transition(GroupState::CompletingRebalance, now);
        self.pending_sync = self.members.keys().cloned().collect();
        self.sync_deadline = Some(now + self.rebalance_timeout());
        let leader = self.leader.clone().unwrap_or_default();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let response = self.join_response(&id, id == leader, false);
            let m = self.members.get_mut(&id).expect("listed");
            m.is_new = false;
            m.last_heartbeat = now;
            if let Some(waiter) = m.join_waiter.take() {
                out.push(Effect::Join { waiter, response });
            }
        }
    }

    /// Keeps the leader if it rejoined, else picks a member that did. False if none did.
    fn elect_joined_leader(&mut self) -> bool {
        if self.leader.as_ref().and_then(|l| self.members.get(l)).is_some_and(|m| m.join_waiter.is_some()) {
            return true;
        }
        match self.members.values().find(|m| m.join_waiter.is_some()) {
            Some(m) => {
                self.leader = Some(m.id.clone());
                true
            }
            None => false,
        }
    }

    /// Removes a member and answers its parked requests; no state transition.
    pub(super) fn remove_member_only(&mut self, id: &str, out: &mut Vec<Effect>) {
        let Some(mut m) = self.members.remove(id) else {
            return;
        };
        if let Some(w) = m.join_waiter.take() {
            out.push(Effect::Join { waiter: w, response: JoinResponse::error(code::UNKNOWN_MEMBER_ID, "") });
        }
        if let Some(w) = m.sync_waiter.take() {
            out.push(Effect::Sync { waiter: w, response: SyncResponse::error(code::UNKNOWN_MEMBER_ID) });
        }
        if let Some(instance) = &m.instance_id {
            if self.static_members.get(instance).is_some_and(|s| s == id) {
                self.static_members.remove(instance);
            }
        }
        self.pending_sync.remove(id);
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.keys().next().cloned();
        }
    }

    /// Removes a member (left, expired, or fenced) and rebalances the rest.
    pub(super) fn remove_member(
        &mut self,
        id: &str,
        now: Instant,
        settings: &CoordinatorSettings,
        out: &mut Vec<Effect>,
    ) {
        self.remove_member_only(id, out);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now, settings, out),
            GroupState::PreparingRebalance => self.try_complete_join(now, out),
            GroupState::Empty | GroupState::Dead => {}
        }
    }
}
