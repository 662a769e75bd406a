//! Partition reassignment on the partition actor: the leader of the group carries out the steps
//! `raft::membership` plans toward the target `__meta` holds (the node actor hands it over with
//! `PartitionMsg::Reassign`), once per heartbeat, and reports its conf state to `__meta` after
//! every applied change (`ReassignProgress`, retried until it applies) — which lets a new replica
//! join from that conf state, and completes the reassignment once the voters are the target. A
//! new leader (the old one died, or handed over because its own replica leaves) resumes from
//! the applied conf state and the same target. A replica that joins is created with the
//! leader's reported conf state ([`prepare_join`]).

use actix::prelude::*;
use raft::eraftpb::ConfState;

use super::PartitionActor;
use crate::raft::membership::{next_step, GroupView, Step, CATCH_UP_GAP};

/// The reassignment a partition actor follows.
#[derive(Debug, Default)]
pub(super) struct Driver {
    /// The target voters while a reassignment (or its cancel) is in progress.
    target: Option<Vec<u64>>,
    /// The last (conf index, done) reported to `__meta` as leader.
    reported: Option<(u64, bool)>,
    last: Option<Step>,
}

/// Creates the storage of a replica that joins a group: the leader's conf state `cs` as applied
/// at `index`, so the entries it then receives never change its configuration twice.
pub fn prepare_join(
    dir: &std::path::Path,
    settings: &crate::raft::GroupSettings,
    (cs, index): &(ConfState, u64),
    logger: &slog::Logger,
) -> Result<(), crate::log::LogError> {
    let opts = crate::log::LogOptions {
        segment_bytes: settings.segment_bytes,
        index_interval_bytes: settings.index_interval_bytes,
        kind: crate::log::LogKind::KafkaBatches,
    };
    let (mut storage, _) = crate::raft::storage::GroupStorage::open(dir, opts, logger)?;
    if storage.is_new() {
        storage.initialize_conf(cs, *index)?;
        slog::info!(logger, "joining a group"; "conf" => ?cs, "conf_index" => index);
    }
    Ok(())
}

impl Driver {
    /// A reassignment (or its cancel) is in progress.
    pub(super) fn active(&self) -> bool {
        self.target.is_some()
    }
}

impl PartitionActor {
    /// `__meta`'s target for this group changed (`None`: no reassignment).
    pub(super) fn set_reassign_target(&mut self, target: Option<Vec<u64>>, ctx: &mut Context<Self>) {
        if self.reassign.target != target {
            slog::info!(self.logger, "reassignment target"; "target" => ?target);
            self.reassign = Driver { target, ..Default::default() };
            self.reassign_tick(ctx);
        }
    }

    /// As leader: one planned step toward the target, and the conf state reported when it changed.
    pub(super) fn reassign_tick(&mut self, ctx: &mut Context<Self>) {
        let Some(target) = self.reassign.target.clone() else { return };
        let raft = &mut self.core.raft;
        if !raft.is_leader() {
            self.reassign.reported = None;
            return;
        }
        let me = raft.id();
        let cs = raft.conf_state();
        let (matched, pending) = raft.progress();
        let view = GroupView {
            leader: me,
            conf: &cs,
            matched: &matched,
            last_index: raft.last_index(),
            pending,
            gap: CATCH_UP_GAP,
        };
        let step = next_step(&view, &target);
        if self.reassign.last.as_ref() != Some(&step) {
            slog::info!(self.logger, "reassignment step"; "step" => ?step, "conf" => ?cs);
            self.reassign.last = Some(step.clone());
        }
        match &step {
            Step::Wait(_) | Step::Done => {}
            // Fault injection (tests): the joint configuration is held.
            Step::LeaveJoint if self.links.transport.faults.holding_joint() => {}
            Step::TransferLeader(to) => {
                raft.transfer_leader(*to);
                self.schedule_drive(ctx);
            }
            s => {
                let cc = s.conf_change().expect("a conf change step");
                if let Err(e) = raft.propose_conf_change(cc) {
                    slog::warn!(self.logger, "conf change refused"; "step" => ?s, "error" => %e);
                }
                self.schedule_drive(ctx);
            }
        }
        let conf_index = self.core.raft.storage().conf_index();
        let now = (conf_index, step == Step::Done);
        if self.reassign.reported == Some(now) || (conf_index == 0 && !now.1) {
            return;
        }
        self.reassign.reported = Some(now);
        if let Some(meta) = &self.links.meta {
            use crate::meta::command::{Cmd, MetaCommand};
            let cs = self.core.raft.storage().conf_state().clone();
            let cmd = MetaCommand::new(Cmd::ReassignProgress(crate::meta::reassign::ReassignProgress {
                group: self.core.raft.group(),
                conf_index,
                voters: cs.voters,
                learners: cs.learners,
                voters_outgoing: cs.voters_outgoing,
            }));
            meta.do_send(crate::meta::MetaMsg::Propose { cmd, reply: None });
        }
    }
}
