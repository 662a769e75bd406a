//! The coordinator core: every classic group of this node by id, the checks that come before a
//! group is found (group id, session timeout bounds), member-id generation, and the effects
//! collected from the groups for the shell to deliver. Plain and deterministic: time comes in
//! as `now`, randomness from an injected [`RandomSource`].

use std::collections::BTreeMap;
use std::time::Instant;

use super::state::Group;
use super::types::*;
use crate::clock::RandomSource;
use crate::error::code;
use crate::meta::command::StoreGroup;

/// All groups coordinated by this node.
pub struct Coordinator {
    settings: CoordinatorSettings,
    groups: BTreeMap<String, Group>,
    random: Box<dyn RandomSource>,
    effects: Vec<Effect>,
}

impl Coordinator {
    pub fn new(settings: CoordinatorSettings, random: Box<dyn RandomSource>) -> Self {
        Coordinator { settings, groups: BTreeMap::new(), random, effects: Vec::new() }
    }

    pub fn settings(&self) -> &CoordinatorSettings {
        &self.settings
    }

    /// The answers to parked requests produced since the last call.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.get(id)
    }

    /// Forgets every group (this node no longer coordinates them).
    pub fn clear(&mut self) {
        self.groups.clear();
        self.effects.clear();
    }

    /// Takes a group stored in `__meta` into memory, unless it is already there (this node's
    /// copy is then the newer one).
    pub fn restore(&mut self, now: Instant, stored: &StoreGroup) {
        if !self.groups.contains_key(&stored.group) && !stored.group.is_empty() {
            self.groups.insert(stored.group.clone(), Group::restore(stored, now));
        }
    }

    /// Handles a JoinGroup; the answer comes as an effect for `waiter`.
    pub fn join(&mut self, now: Instant, waiter: Waiter, req: JoinRequest) {
        let fail = |me: &mut Self, error, member_id: &str| {
            me.effects.push(Effect::Join { waiter, response: JoinResponse::error(error, member_id) })
        };
        if req.group_id.is_empty() {
            return fail(self, code::INVALID_GROUP_ID, &req.member_id);
        }
        if req.session_timeout < self.settings.min_session_timeout
            || req.session_timeout > self.settings.max_session_timeout
        {
            return fail(self, code::INVALID_SESSION_TIMEOUT, &req.member_id);
        }
        if !req.member_id.is_empty() && !self.groups.contains_key(&req.group_id) {
            return fail(self, code::UNKNOWN_MEMBER_ID, &req.member_id);
        }
        let group = self.groups.entry(req.group_id.clone()).or_insert_with(|| Group::new(req.group_id.clone(), now));
        let random = &mut self.random;
        let mut new_id = |prefix: &str| {
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&random.next_u64().to_be_bytes());
            bytes[8..].copy_from_slice(&random.next_u64().to_be_bytes());
            format!("{prefix}-{}", uuid::Uuid::from_bytes(bytes).hyphenated())
        };
        group.join(now, waiter, req, &self.settings, &mut new_id, &mut self.effects);
    }

    /// Handles a SyncGroup; the answer comes as an effect for `waiter`.
    pub fn sync(&mut self, now: Instant, waiter: Waiter, req: SyncRequest) {
        if req.group_id.is_empty() {
            let response = SyncResponse::error(code::INVALID_GROUP_ID);
            return self.effects.push(Effect::Sync { waiter, response });
        }
        match self.groups.get_mut(&req.group_id) {
            Some(g) => g.sync(now, waiter, req, &mut self.effects),
            None => self.effects.push(Effect::Sync { waiter, response: SyncResponse::error(code::UNKNOWN_MEMBER_ID) }),
        }
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(&mut self, now: Instant, who: &MemberRef) -> i16 {
        if who.group_id.is_empty() {
            return code::INVALID_GROUP_ID;
        }
        match self.groups.get_mut(&who.group_id) {
            Some(g) => g.heartbeat(now, &who.member_id, who.group_instance_id.as_deref(), who.generation_id),
            None => code::UNKNOWN_MEMBER_ID,
        }
    }

    /// Handles a LeaveGroup: the top-level error and one error per member.
    pub fn leave(&mut self, now: Instant, group: &str, members: &[LeavingMember]) -> (i16, Vec<i16>) {
        if group.is_empty() {
            return (code::INVALID_GROUP_ID, vec![code::INVALID_GROUP_ID; members.len()]);
        }
        match self.groups.get_mut(group) {
            Some(g) => g.leave(now, members, &self.settings, &mut self.effects),
            None => (code::NONE, vec![code::UNKNOWN_MEMBER_ID; members.len()]),
        }
    }

    /// Checks an OffsetCommit against the group's membership and generation.
    pub fn validate_commit(&mut self, now: Instant, who: &MemberRef) -> Result<(), i16> {
        match self.groups.get_mut(&who.group_id) {
            Some(g) => g.validate_commit(now, &who.member_id, who.group_instance_id.as_deref(), who.generation_id),
            // A group that manages its own assignment only stores offsets.
            None if who.generation_id < 0 => Ok(()),
            // Group state is not persisted: after a restart, members must rejoin first.
            None => Err(code::ILLEGAL_GENERATION),
        }
    }

    /// The group as DescribeGroups reports it, if this node knows it.
    pub fn describe(&self, group: &str) -> Option<GroupDescription> {
        self.groups.get(group).map(Group::describe)
    }

    /// Every group this node knows.
    pub fn list(&self) -> Vec<GroupListing> {
        self.groups.values().map(Group::listing).collect()
    }

    /// DeleteGroups for one group: only an empty group can be deleted. `has_offsets` tells
    /// whether `__meta` holds offsets for it (a group with offsets but no members exists).
    /// NONE means: delete its offsets now.
    pub fn delete(&mut self, group: &str, has_offsets: bool) -> i16 {
        match self.groups.get_mut(group) {
            Some(g) if g.state() == GroupState::Dead => code::GROUP_ID_NOT_FOUND,
            Some(g) if g.state() != GroupState::Empty => code::NON_EMPTY_GROUP,
            Some(g) => {
                g.mark_dead();
                self.groups.remove(group);
                code::NONE
            }
            None if has_offsets => code::NONE,
            None if group.is_empty() => code::INVALID_GROUP_ID,
            None => code::GROUP_ID_NOT_FOUND,
        }
    }

    /// Fires the timers of every group; forgets groups that have been empty for a while.
    pub fn tick(&mut self, now: Instant) {
        for g in self.groups.values_mut() {
            g.tick(now, &self.settings, &mut self.effects);
        }
        let retention = self.settings.empty_group_retention;
        self.groups.retain(|_, g| !g.idle_since(now, retention));
    }
}
