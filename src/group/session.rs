//! The requests of joined members — SyncGroup, Heartbeat, LeaveGroup, the OffsetCommit check —
//! and the timers (join deadline, MEMBER_ID_REQUIRED leftovers, session expiry, members that
//! never sync) of a [`Group`].

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;

use super::state::{Group, InitialDelay};
use super::types::*;
use crate::error::code;

impl Group {
    // ---- SyncGroup ----------------------------------------------------------------------------

    /// Handles a SyncGroup; the answer arrives as an [`Effect::Sync`] for `waiter` (followers
    /// wait until the leader has sent the assignment).
    pub fn sync(&mut self, now: Instant, waiter: Waiter, req: SyncRequest, out: &mut Vec<Effect>) {
        let reply =
            |out: &mut Vec<Effect>, error| out.push(Effect::Sync { waiter, response: SyncResponse::error(error) });
        if self.state == GroupState::Dead {
            return reply(out, code::COORDINATOR_NOT_AVAILABLE);
        }
        if let Err(e) = self.validate_member(&req.member_id, req.group_instance_id.as_deref()) {
            return reply(out, e);
        }
        if req.generation_id != self.generation {
            return reply(out, code::ILLEGAL_GENERATION);
        }
        if req.protocol_type.as_ref().is_some_and(|t| Some(t) != self.protocol_type.as_ref())
            || req.protocol_name.as_ref().is_some_and(|p| Some(p) != self.protocol.as_ref())
        {
            return reply(out, code::INCONSISTENT_GROUP_PROTOCOL);
        }
        match self.state {
            GroupState::Empty => reply(out, code::UNKNOWN_MEMBER_ID),
            GroupState::PreparingRebalance => reply(out, code::REBALANCE_IN_PROGRESS),
            GroupState::CompletingRebalance => {
                self.synced(&req.member_id);
                let m = self.members.get_mut(&req.member_id).expect("validated");
                m.last_heartbeat = now;
                if let Some(old) = m.sync_waiter.replace(waiter) {
                    out.push(Effect::Sync { waiter: old, response: SyncResponse::error(code::REBALANCE_IN_PROGRESS) });
                }
                if self.leader.as_deref() == Some(req.member_id.as_str()) {
                    let mut given: BTreeMap<String, Bytes> = req.assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = given.remove(&m.id).unwrap_or_default();
                    }
                    self.transition(GroupState::Stable, now);
                    let mut then = Vec::new();
                    for m in self.members.values_mut() {
                        if let Some(w) = m.sync_waiter.take() {
                            let response = SyncResponse {
                                error: code::NONE,
                                protocol_type: self.protocol_type.clone(),
                                protocol_name: self.protocol.clone(),
                                assignment: m.assignment.clone(),
                            };
                            then.push(Effect::Sync { waiter: w, response });
                        }
                    }
                    // The assignment is answered once the new generation is stored.
                    out.push(Effect::Store { snapshot: self.snapshot(), then });
                }
            }
            GroupState::Stable => {
                self.synced(&req.member_id);
                let m = self.members.get_mut(&req.member_id).expect("validated");
                m.last_heartbeat = now;
                let response = SyncResponse {
                    error: code::NONE,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol.clone(),
                    assignment: m.assignment.clone(),
                };
                out.push(Effect::Sync { waiter, response });
            }
            GroupState::Dead => unreachable!("checked above"),
        }
    }

    fn synced(&mut self, member_id: &str) {
        self.pending_sync.remove(member_id);
        if self.pending_sync.is_empty() {
            self.sync_deadline = None;
        }
    }

    // ---- Heartbeat, LeaveGroup, OffsetCommit checks -------------------------------------------

    /// Handles a Heartbeat: refreshes the member's session; REBALANCE_IN_PROGRESS tells it to
    /// rejoin.
    pub fn heartbeat(&mut self, now: Instant, member_id: &str, instance_id: Option<&str>, generation: i32) -> i16 {
        if self.state == GroupState::Dead {
            return code::COORDINATOR_NOT_AVAILABLE;
        }
        if let Err(e) = self.validate_member(member_id, instance_id) {
            return e;
        }
        if generation != self.generation {
            return code::ILLEGAL_GENERATION;
        }
        let m = self.members.get_mut(member_id).expect("validated");
        match self.state {
            GroupState::Empty => code::UNKNOWN_MEMBER_ID,
            GroupState::PreparingRebalance => {
                m.last_heartbeat = now;
                code::REBALANCE_IN_PROGRESS
            }
            _ => {
                m.last_heartbeat = now;
                code::NONE
            }
        }
    }

    /// Handles a LeaveGroup; returns the top-level error and one error per member.
    pub fn leave(
        &mut self,
        now: Instant,
        leaving: &[LeavingMember],
        settings: &CoordinatorSettings,
        out: &mut Vec<Effect>,
    ) -> (i16, Vec<i16>) {
        if self.state == GroupState::Dead {
            return (code::COORDINATOR_NOT_AVAILABLE, vec![code::COORDINATOR_NOT_AVAILABLE; leaving.len()]);
        }
        let mut errors = Vec::with_capacity(leaving.len());
        for l in leaving {
            let instance = l.group_instance_id.as_deref();
            let error = if l.member_id.is_empty() {
                // An admin removes a static member by its instance id.
                match instance.and_then(|i| self.static_members.get(i)).cloned() {
                    Some(id) => {
                        self.remove_member(&id, now, settings, out);
                        code::NONE
                    }
                    None => code::UNKNOWN_MEMBER_ID,
                }
            } else if self.is_fenced(&l.member_id, instance) {
                code::FENCED_INSTANCE_ID
            } else if self.pending.remove(&l.member_id).is_some() {
                self.try_complete_join(now, out);
                code::NONE
            } else if self.members.contains_key(&l.member_id) {
                self.remove_member(&l.member_id, now, settings, out);
                code::NONE
            } else {
                code::UNKNOWN_MEMBER_ID
            };
            errors.push(error);
        }
        (code::NONE, errors)
    }

    /// Checks that an OffsetCommit may be applied; refreshes the committing member's session.
    pub fn validate_commit(
        &mut self,
        now: Instant,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), i16> {
        if self.state == GroupState::Dead {
            return Err(code::COORDINATOR_NOT_AVAILABLE);
        }
        if generation < 0 && self.state == GroupState::Empty {
            // Offsets stored by a consumer that assigns partitions itself.
            return Ok(());
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.validate_member(member_id, instance_id)?;
            if generation != self.generation {
                return Err(code::ILLEGAL_GENERATION);
            }
        } else {
            return Err(code::UNKNOWN_MEMBER_ID);
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(code::REBALANCE_IN_PROGRESS);
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat = now;
        }
        Ok(())
    }

    // ---- timers -------------------------------------------------------------------------------

    /// Fires every timer due at `now`: the (initial) join deadline, MEMBER_ID_REQUIRED members
    /// that never came back, expired sessions, and members that never sent SyncGroup.
    pub fn tick(&mut self, now: Instant, settings: &CoordinatorSettings, out: &mut Vec<Effect>) {
        if self.state == GroupState::Dead {
            return;
        }
        if self.state == GroupState::PreparingRebalance && self.join_deadline.is_some_and(|d| now >= d) {
            match self.initial {
                Some(InitialDelay { remaining }) if self.new_member_added && !remaining.is_zero() => {
                    let delay = settings.initial_rebalance_delay.min(remaining);
                    self.new_member_added = false;
                    self.initial = Some(InitialDelay { remaining: remaining - delay });
                    self.join_deadline = Some(now + delay);
                }
                _ => self.complete_join(now, out),
            }
        }
        let expired_pending: Vec<String> =
            self.pending.iter().filter(|(_, d)| now >= **d).map(|(id, _)| id.clone()).collect();
        if !expired_pending.is_empty() {
            for id in expired_pending {
                self.pending.remove(&id);
            }
            self.try_complete_join(now, out);
        }
        let expired: Vec<String> =
            self.members.values().filter(|m| m.expired(now, settings)).map(|m| m.id.clone()).collect();
        for id in expired {
            self.remove_member(&id, now, settings, out);
        }
        if self.sync_deadline.is_some_and(|d| now >= d)
            && matches!(self.state, GroupState::CompletingRebalance | GroupState::Stable)
        {
            self.sync_deadline = None;
            let lagging: Vec<String> = std::mem::take(&mut self.pending_sync).into_iter().collect();
            for id in &lagging {
                self.remove_member_only(id, out);
            }
            if !lagging.is_empty() {
                self.prepare_rebalance(now, settings, out);
            }
        }
    }
}
