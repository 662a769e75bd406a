//! Raft membership changes of one group, as a pure planner: which single step moves the group's
//! configuration toward a target replica set (partition reassignment, `meta::reassign`).
//!
//! The leader of the group asks [`next_step`] after every round while a target is set and
//! carries out the answer; every step is one Raft entry (or a leader transfer), and the next one
//! is planned only once the previous one is applied (`pending` is raft-rs's
//! `pending_conf_index > applied`: raft-rs would turn a second conf change into an empty entry).
//! The order, as TiKV's raftstore drives a ConfChangeV2:
//! 1. leave a joint configuration with an empty ConfChangeV2 (`transition: Explicit` is used to
//!    enter it, so the leader leaves it itself), but only while the leader is an incoming voter:
//!    leaving makes the incoming voters the configuration, and raft-rs keeps a removed leader
//!    leading (`post_conf_change`), so it transfers the leadership to a caught-up incoming voter
//!    first;
//! 2. remove learners the target does not hold (a cancelled reassignment), one per entry;
//! 3. add each missing replica as a learner, one per entry (a simple change);
//! 4. wait until every learner of the target has matched within `gap` entries of the leader's
//!    last index (and answered at all: a matched index of 0 is never caught up, so a learner on a
//!    node that is down is not promoted even when the whole log is shorter than `gap`);
//! 5. when the leader's own replica leaves, transfer the leadership to a caught-up voter of the
//!    target first, if one exists (else it happens in the joint configuration, step 1);
//! 6. promote with ONE joint ConfChangeV2: add the target's learners as voters, remove the
//!    voters outside the target.
//!
//! A cancel is the same planner with the original replicas as the target: added learners are
//! removed (2); from a joint configuration the revert leaves it first (1) and then moves back
//! with another change (3-6).

use std::collections::{BTreeMap, BTreeSet};

use raft::eraftpb::{ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState};

/// How close to the leader's last index a learner must be before it is promoted.
pub const CATCH_UP_GAP: u64 = 64;

/// What the leader sees of its group.
#[derive(Debug, Clone)]
pub struct GroupView<'a> {
    /// This node, the leader.
    pub leader: u64,
    pub conf: &'a ConfState,
    /// Each replica's matched index (the leader's progress).
    pub matched: &'a BTreeMap<u64, u64>,
    pub last_index: u64,
    /// A conf change is proposed and not yet applied.
    pub pending: bool,
    pub gap: u64,
}

/// Why nothing can be done now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// A conf change is in flight.
    Pending,
    /// These learners are more than `gap` entries behind.
    CatchUp(Vec<u64>),
    /// The leader must hand over, and no voter of the target has caught up yet.
    NoTransferee,
}

/// The one next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The configuration's voters are the target and nothing else is left.
    Done,
    Wait(Wait),
    AddLearner(u64),
    RemoveLearner(u64),
    /// Enter the joint configuration: these voters added (learners promoted), these removed.
    Promote {
        add: Vec<u64>,
        remove: Vec<u64>,
    },
    LeaveJoint,
    TransferLeader(u64),
}

impl Step {
    /// The entry to propose for this step (`None` for the steps that are not a conf change).
    pub fn conf_change(&self) -> Option<ConfChangeV2> {
        let single =
            |id: u64, t: ConfChangeType| ConfChangeSingle { node_id: id, change_type: t, ..Default::default() };
        let mut cc = ConfChangeV2::default();
        match self {
            Step::AddLearner(id) => cc.mut_changes().push(single(*id, ConfChangeType::AddLearnerNode)),
            Step::RemoveLearner(id) => cc.mut_changes().push(single(*id, ConfChangeType::RemoveNode)),
            Step::Promote { add, remove } => {
                cc.set_transition(ConfChangeTransition::Explicit);
                for id in add {
                    cc.mut_changes().push(single(*id, ConfChangeType::AddNode));
                }
                for id in remove {
                    cc.mut_changes().push(single(*id, ConfChangeType::RemoveNode));
                }
            }
            // An empty ConfChangeV2 (transition Auto) leaves the joint configuration.
            Step::LeaveJoint => {}
            Step::Done | Step::Wait(_) | Step::TransferLeader(_) => return None,
        }
        Some(cc)
    }
}

/// True when `cs` is a joint configuration.
pub fn is_joint(cs: &ConfState) -> bool {
    !cs.voters_outgoing.is_empty()
}

/// Every replica `cs` names (voters of both halves and learners).
pub fn members(cs: &ConfState) -> BTreeSet<u64> {
    cs.voters.iter().chain(&cs.voters_outgoing).chain(&cs.learners).chain(&cs.learners_next).copied().collect()
}

/// The next step from `view` toward voters = `target` (see the module docs).
pub fn next_step(view: &GroupView<'_>, target: &[u64]) -> Step {
    next_step_keeping(view, target, &[])
}

/// [`next_step`] for a group that also keeps learners: `keep` (outside `target`) are added as
/// learners and never removed nor promoted (`__meta`'s learners, `meta::members`).
pub fn next_step_keeping(view: &GroupView<'_>, target: &[u64], keep: &[u64]) -> Step {
    if view.pending {
        return Step::Wait(Wait::Pending);
    }
    let target: BTreeSet<u64> = target.iter().copied().collect();
    let cs = view.conf;
    let voters: BTreeSet<u64> = cs.voters.iter().copied().collect();
    // A replica that never answered (matched 0) is never caught up, however short the log.
    let caught_up = |id: &u64| view.matched.get(id).is_some_and(|m| *m > 0 && m + view.gap >= view.last_index);
    // A transferee: a caught-up voter (of the incoming half), preferring the target's, most
    // advanced first, ties by lower id.
    let transferee = |within: &dyn Fn(&u64) -> bool| {
        voters
            .iter()
            .filter(|id| **id != view.leader && within(id) && caught_up(id))
            .max_by_key(|id| (view.matched.get(*id).copied().unwrap_or(0), std::cmp::Reverse(**id)))
            .copied()
    };
    if is_joint(cs) {
        if voters.contains(&view.leader) {
            return Step::LeaveJoint;
        }
        return match transferee(&|id| target.contains(id)).or_else(|| transferee(&|_| true)) {
            Some(to) => Step::TransferLeader(to),
            None => Step::Wait(Wait::NoTransferee),
        };
    }
    if let Some(stray) = cs.learners.iter().find(|id| !target.contains(id) && !keep.contains(id)) {
        return Step::RemoveLearner(*stray);
    }
    let all = members(cs);
    if let Some(missing) = target.iter().chain(keep).find(|id| !all.contains(id)) {
        return Step::AddLearner(*missing);
    }
    if voters == target {
        return Step::Done;
    }
    let learners: Vec<u64> = cs.learners.iter().copied().filter(|id| target.contains(id)).collect();
    let behind: Vec<u64> = learners.iter().copied().filter(|id| !caught_up(id)).collect();
    if !behind.is_empty() {
        return Step::Wait(Wait::CatchUp(behind));
    }
    if !target.contains(&view.leader) {
        if let Some(to) = transferee(&|id| target.contains(id)) {
            return Step::TransferLeader(to);
        }
    }
    let remove = voters.iter().copied().filter(|id| !target.contains(id)).collect();
    Step::Promote { add: learners, remove }
}

#[cfg(test)]
#[path = "membership_tests.rs"]
mod tests;
