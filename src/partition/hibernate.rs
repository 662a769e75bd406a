//! Hibernation of a partition group (`raft.hibernate`): the actor's side of `raft::hibernate`.
//!
//! On each tick an awake leader checks whether it is settled (the Raft state, and nothing of the
//! actor's own in progress: produce waiters, DeleteRecords, a reassignment, a snapshot transfer,
//! a campaign retry, an elect-self, apply behind); after two election timeouts settled it sends
//! the hibernate heartbeats and goes quiet. A follower goes quiet on a hibernate heartbeat that
//! matches its log. A quiet group is woken by any Raft message (but the answers to the hibernate
//! heartbeat), by activity (produce, a transaction marker, DeleteRecords, ElectSelf, a
//! reassignment, a lost peer (a leader), a repair or snapshot message), or by a tick, which the ticker only
//! delivers to a quiet group when a node it watches was silent for an election timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use raft::eraftpb::{Message, MessageType};

use super::{PartitionActor, PartitionMsg};
use crate::clock::ThreadRandom;
use crate::raft::hibernate::{
    check_period, follower_may_sleep, idle_limit, silent_replicas, silent_ticks, starts_quiet, watched, Idle,
    QuietCell, HIBERNATE, WAKE,
};
use crate::raft::GroupSettings;

/// One group's hibernation state.
pub(super) struct Hibernation {
    enabled: bool,
    cell: Arc<QuietCell>,
    idle: Idle,
    quiet: bool,
    /// The group never had a leader when it opened, and has not slept since: its first leader
    /// sleeps after `idle_limit(true, ..)` (`raft::hibernate::idle_limit`).
    fresh: bool,
    /// The nodes whose silence wakes the group while it is quiet.
    watching: Vec<u64>,
    heartbeat_tick: usize,
    election_tick: usize,
    /// The election timeout: how long a watched node must be silent to wake the group.
    timeout: Duration,
    /// The leader's CheckQuorum period: how long a replica's node must be silent for a leader
    /// woken by silence to count it inactive.
    check_period: Duration,
    tick: Duration,
}

impl Hibernation {
    /// `never_led`: the group's log is empty at term 0 (see `raft::hibernate::starts_quiet`).
    pub(super) fn new(settings: &GroupSettings, never_led: bool) -> Self {
        Hibernation {
            enabled: settings.hibernate,
            cell: Arc::default(),
            idle: Idle::new(idle_limit(never_led, settings.heartbeat_tick, settings.election_tick)),
            quiet: false,
            fresh: never_led,
            watching: Vec::new(),
            heartbeat_tick: settings.heartbeat_tick,
            election_tick: settings.election_tick,
            timeout: settings.tick * settings.election_tick as u32,
            check_period: check_period(settings.tick, settings.heartbeat_tick, settings.election_tick),
            tick: settings.tick,
        }
    }

    /// The cell the ticker reads, when hibernation is on.
    pub(super) fn cell(&self) -> Option<Arc<QuietCell>> {
        self.enabled.then(|| self.cell.clone())
    }
}

/// Why a quiet group wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// A message from the leader: the leader is awake.
    FromLeader,
    /// Anything else: a follower asks its leader to wake too.
    Activity,
}

/// Whether a message wakes a quiet group (Raft messages are looked at in `quiet_step`; reads,
/// status and the group's own bookkeeping do not wake it).
pub(super) fn wakes(msg: &PartitionMsg) -> bool {
    matches!(
        msg,
        PartitionMsg::Produce { .. }
            | PartitionMsg::WriteTxnMarker { .. }
            | PartitionMsg::DeleteRecords { .. }
            | PartitionMsg::ElectSelf
            | PartitionMsg::Resign(_)
            | PartitionMsg::Repair { .. }
            | PartitionMsg::ReadDamage { .. }
            | PartitionMsg::Snapshot { .. }
            | PartitionMsg::Reassign(Some(_))
            | PartitionMsg::Unreachable(_)
    )
}

impl PartitionActor {
    /// Anything of the actor's own in progress (damaged entries waiting for a copy from a
    /// peer included: the repair requests go out on ticks).
    fn actor_busy(&self) -> bool {
        self.campaign_retries > 0
            || self.core.raft.storage().log().has_damage()
            || self.first_campaign.active()
            || self.elect_self_ticks > 0
            || !self.waiters.is_empty()
            || !self.deletes.is_empty()
            || self.reassign.active()
            || !self.snapshots.is_idle()
            || self.shell.is_failed()
    }

    /// Every tick the ticker delivers, before the Raft tick; false when the tick must not reach
    /// Raft. A quiet group wakes only when a node it watches has been silent for an election
    /// timeout (the ticker ticks it for that; a tick queued before it went quiet is dropped);
    /// an awake leader counts its settled ticks and goes quiet after two election timeouts.
    pub(super) fn hibernate_tick(&mut self, ctx: &mut Context<Self>) -> bool {
        if !self.hib.enabled {
            return true;
        }
        let me = self.links.transport.me();
        let liveness = self.links.transport.liveness().clone();
        let now = Instant::now();
        let replicas = self.core.raft.replicas();
        if self.hib.quiet {
            let silent = self.hib.watching.iter().any(|n| liveness.silent_for(*n, now) >= self.hib.timeout);
            if !silent {
                return false;
            }
            self.wake(ctx, Wake::Activity);
            if self.core.raft.is_leader() {
                // Woken by its replicas' silence: those silent for a CheckQuorum period count
                // as inactive, and CheckQuorum runs on this tick, as it would have by now had
                // the leader stayed awake (`raft::hibernate::silent_replicas`).
                let gone = silent_replicas(me, &replicas, self.hib.check_period, |r| liveness.silent_for(r, now));
                // (The silences are computed inside the macro: not at all where debug lines are
                // compiled out.)
                slog::debug!(self.logger, "quiet leader woken by silence"; "group" => self.core.raft.group(),
                    "inactive" => ?gone, "silent_ms" => ?replicas
                        .iter()
                        .filter(|r| **r != me)
                        .map(|r| (*r, liveness.silent_for(*r, now).as_millis()))
                        .collect::<Vec<_>>());
                self.core.raft.check_quorum_now(&gone);
            }
            return true;
        }
        if !self.core.raft.is_leader() {
            self.hib.idle.reset();
            return true;
        }
        let mut view = self.core.raft.leader_view();
        view.busy |= self.actor_busy();
        view.replicas_live = replicas.iter().all(|r| *r == me || liveness.silent_for(*r, now) < self.hib.timeout);
        if self.hib.idle.tick(view.settled()) {
            let msgs = self.core.raft.hibernate_heartbeats();
            self.links.transport.send(self.core.raft.group(), msgs);
            self.go_quiet(me);
            // Not even this tick: a heartbeat after the hibernate heartbeats would wake them.
            return false;
        }
        true
    }

    fn go_quiet(&mut self, leader: u64) {
        let me = self.links.transport.me();
        self.sleep_watching(watched(me, leader, &self.core.raft.replicas()));
        slog::debug!(self.logger, "group hibernates"; "group" => self.core.raft.group(), "leader" => leader);
    }

    fn sleep_watching(&mut self, watch: Vec<u64>) {
        if std::mem::take(&mut self.hib.fresh) {
            self.hib.idle = Idle::new(idle_limit(false, self.hib.heartbeat_tick, self.hib.election_tick));
        }
        self.hib.watching = watch.clone();
        self.hib.cell.sleep(watch);
        if !self.hib.quiet {
            self.hib.quiet = true;
            self.links.transport.liveness().count_quiet(true);
        }
    }

    /// At start: a voter of a group that never had a leader, other than its preferred replica,
    /// starts quiet watching the preferred replica's node (`raft::hibernate::starts_quiet`).
    /// Should no leader be known twenty election timeouts later (the preferred replica's node
    /// is up but its replica is not; first campaigns are paced, `raft::first_campaign`, so the
    /// wait is long), it wakes and counts toward an election of its own.
    pub(super) fn start_quiet(&mut self, never_led: bool, joining: bool, ctx: &mut Context<Self>) {
        if !self.hib.enabled {
            return;
        }
        let me = self.links.transport.me();
        let voters = self.reopen.voters.clone();
        if let Some(watch) = starts_quiet(me, &voters, never_led, joining) {
            self.sleep_watching(watch);
            ctx.run_later(self.hib.timeout * 20, |act, ctx| {
                if act.hib.quiet && act.core.raft.role().leader == 0 {
                    act.wake(ctx, Wake::Activity);
                }
            });
        }
    }

    /// Wakes a quiet group (nothing for an awake one).
    fn wake(&mut self, ctx: &mut Context<Self>, why: Wake) {
        if !self.hib.quiet {
            return;
        }
        self.hib.idle.reset();
        self.hib.quiet = false;
        self.hib.cell.wake();
        self.links.transport.liveness().count_quiet(false);
        if self.core.raft.is_leader() {
            self.core.raft.wake_leader();
        } else {
            let leader = self.core.raft.role().leader;
            let silence = self.links.transport.liveness().silent_for(leader, Instant::now());
            if leader != 0 && silence >= self.hib.timeout {
                // The leader's node is gone: the time it has been silent counts toward the
                // election timeout, as it would have had this follower kept ticking.
                self.core.raft.count_silence(
                    silent_ticks(silence, self.hib.tick),
                    self.hib.election_tick,
                    &mut ThreadRandom,
                );
            } else if why == Wake::Activity {
                if let Some(m) = self.core.raft.wake_call() {
                    self.links.transport.send(self.core.raft.group(), vec![m]);
                }
            }
        }
        slog::debug!(self.logger, "group wakes"; "group" => self.core.raft.group(), "why" => ?why);
        self.schedule_drive(ctx);
    }

    /// Activity other than a Raft message (see [`wakes`]).
    pub(super) fn wake_on(&mut self, msg: &PartitionMsg, ctx: &mut Context<Self>) {
        // A lost peer connection matters to a leader only (it probes the follower again); a
        // follower waits for its leader node's silence, so a dropped link does not wake every
        // group of the node at once.
        let follower_unreachable = matches!(msg, PartitionMsg::Unreachable(_)) && !self.core.raft.is_leader();
        if wakes(msg) && !follower_unreachable {
            self.hib.idle.reset();
            self.wake(ctx, Wake::Activity);
        }
    }

    /// Takes a Raft message from a peer while hibernation is on: a hibernate heartbeat may put
    /// this follower to sleep, the answers of sleeping followers leave a quiet leader asleep,
    /// anything else wakes the group. Returns the message to step.
    pub(super) fn quiet_step(&mut self, mut m: Message, ctx: &mut Context<Self>) -> Message {
        if !self.hib.enabled {
            return m;
        }
        let hibernate = m.context.as_ref() == HIBERNATE;
        match m.get_msg_type() {
            MessageType::MsgHeartbeat if hibernate => {
                let (told, steppable) = self.core.raft.told(&m);
                let mut view = self.core.raft.follower_view(self.actor_busy());
                view.committed = view.committed.max(told.commit);
                if steppable && follower_may_sleep(&view, &told) {
                    self.go_quiet(m.from);
                } else {
                    // Answered with the wake context, which wakes the leader.
                    m.context = WAKE.to_vec().into();
                    self.wake(ctx, Wake::FromLeader);
                }
            }
            // Answers to heartbeats sent before the leader slept, and the answers of followers
            // that slept, leave a quiet leader asleep; a follower's wake call does not.
            MessageType::MsgHeartbeatResponse if m.context.as_ref() != WAKE && self.core.raft.is_leader() => {}
            _ => {
                let from_leader = m.from == self.core.raft.role().leader;
                self.wake(ctx, if from_leader { Wake::FromLeader } else { Wake::Activity });
            }
        }
        m
    }

    /// The group stops: it no longer counts as quiet.
    pub(super) fn hibernate_stopped(&mut self) {
        if std::mem::take(&mut self.hib.quiet) {
            self.links.transport.liveness().count_quiet(false);
        }
    }
}
