//! Deterministic tests of the group state machine: a [`ManualClock`] for time, a seeded random
//! source for member ids, no threads and no sleeps. This file: the harness, joins, syncs,
//! rebalances and timeouts; `members.rs`: static members, stored groups, offsets checks,
//! describe/list/delete.

mod members;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::coordinator::Coordinator;
use super::types::*;
use crate::clock::{Clock, ManualClock, SeededRandom};
use crate::error::code;
use crate::meta::command::StoreGroup;

const SESSION: Duration = Duration::from_secs(10);
const REBALANCE: Duration = Duration::from_secs(30);

struct Harness {
    c: Coordinator,
    clock: ManualClock,
    next: Waiter,
    joins: BTreeMap<Waiter, JoinResponse>,
    syncs: BTreeMap<Waiter, SyncResponse>,
    /// Every snapshot the core asked to store, in order.
    stored: Vec<StoreGroup>,
}

fn protocols(names: &[&str]) -> Vec<Protocol> {
    names.iter().map(|n| Protocol { name: n.to_string(), metadata: Bytes::from(format!("meta-{n}")) }).collect()
}

fn join_req(member: &str, instance: Option<&str>, protos: &[&str]) -> JoinRequest {
    JoinRequest {
        group_id: "g".into(),
        member_id: member.into(),
        group_instance_id: instance.map(str::to_string),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: SESSION,
        rebalance_timeout: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: protocols(protos),
        require_known_member_id: true,
    }
}

fn who(member: &str, generation: i32) -> MemberRef {
    MemberRef { group_id: "g".into(), member_id: member.into(), group_instance_id: None, generation_id: generation }
}

impl Harness {
    fn new() -> Self {
        Self::with(CoordinatorSettings::default())
    }

    fn with(settings: CoordinatorSettings) -> Self {
        Harness {
            c: Coordinator::new(settings, Box::new(SeededRandom::new(7))),
            clock: ManualClock::new(1_000_000),
            next: 0,
            joins: BTreeMap::new(),
            syncs: BTreeMap::new(),
            stored: Vec::new(),
        }
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn collect(&mut self) {
        let effects = self.c.take_effects();
        self.record(effects);
    }

    /// Records answers; a store "succeeds" at once and releases what waited for it.
    fn record(&mut self, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::Join { waiter, response } => assert!(self.joins.insert(waiter, response).is_none()),
                Effect::Sync { waiter, response } => assert!(self.syncs.insert(waiter, response).is_none()),
                Effect::Store { snapshot, then } => {
                    self.stored.push(snapshot);
                    self.record(then);
                }
            }
        }
    }

    /// Moves time forward in 100 ms ticks, as the actor does.
    fn advance(&mut self, by: Duration) {
        let mut left = by;
        while !left.is_zero() {
            let step = left.min(Duration::from_millis(100));
            self.clock.advance(step);
            left -= step;
            self.c.tick(self.now());
            self.collect();
        }
    }

    fn join(&mut self, req: JoinRequest) -> Waiter {
        self.next += 1;
        let w = self.next;
        self.c.join(self.now(), w, req);
        self.collect();
        w
    }

    fn join_answer(&mut self, w: Waiter) -> Option<JoinResponse> {
        self.joins.remove(&w)
    }

    /// A new dynamic member: the MEMBER_ID_REQUIRED round trip, then the parked join.
    fn join_new(&mut self, protos: &[&str]) -> (String, Waiter) {
        let w = self.join(join_req("", None, protos));
        let r = self.join_answer(w).expect("answered at once");
        assert_eq!(r.error, code::MEMBER_ID_REQUIRED);
        assert!(r.member_id.starts_with("client-"), "{}", r.member_id);
        let w = self.join(join_req(&r.member_id, None, protos));
        (r.member_id, w)
    }

    fn rejoin(&mut self, member: &str) -> Waiter {
        self.join(join_req(member, None, &["range"]))
    }

    fn sync(&mut self, member: &str, generation: i32, assignments: &[(&str, &str)]) -> Waiter {
        self.next += 1;
        let w = self.next;
        let req = SyncRequest {
            group_id: "g".into(),
            member_id: member.into(),
            group_instance_id: None,
            generation_id: generation,
            protocol_type: Some("consumer".into()),
            protocol_name: None,
            assignments: assignments.iter().map(|(m, a)| (m.to_string(), Bytes::from(a.to_string()))).collect(),
        };
        self.c.sync(self.now(), w, req);
        self.collect();
        w
    }

    fn sync_answer(&mut self, w: Waiter) -> Option<SyncResponse> {
        self.syncs.remove(&w)
    }

    fn heartbeat(&mut self, member: &str, generation: i32) -> i16 {
        self.c.heartbeat(self.now(), &who(member, generation))
    }

    fn state(&self) -> GroupState {
        self.c.group("g").map(|g| g.state()).unwrap()
    }

    /// Two members A (leader) and B, joined and synced: generation 1, Stable.
    fn stable_pair(&mut self) -> (String, String) {
        let (a, wa) = self.join_new(&["range"]);
        let (b, wb) = self.join_new(&["range"]);
        self.advance(Duration::from_secs(6));
        let ra = self.join_answer(wa).expect("a joined");
        let rb = self.join_answer(wb).expect("b joined");
        assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
        let leader = ra.leader.clone();
        let (l, f) = if leader == a { (a, b) } else { (b, a) };
        let sf = self.sync(&f, 1, &[]);
        let sl = self.sync(&l, 1, &[(&l, "for-leader"), (&f, "for-follower")]);
        assert_eq!(self.sync_answer(sf).unwrap().assignment, Bytes::from("for-follower"));
        assert_eq!(self.sync_answer(sl).unwrap().assignment, Bytes::from("for-leader"));
        assert_eq!(self.state(), GroupState::Stable);
        (l, f)
    }
}

#[test]
fn member_id_required_round_trip_then_initial_delay() {
    let mut h = Harness::new();
    let w = h.join(join_req("", None, &["range"]));
    let r = h.join_answer(w).unwrap();
    assert_eq!(r.error, code::MEMBER_ID_REQUIRED);
    assert_eq!(r.generation_id, -1);
    assert_eq!(h.state(), GroupState::Empty, "a pending member does not start a rebalance");
    assert!(h.c.group("g").unwrap().is_pending(&r.member_id));

    let w = h.join(join_req(&r.member_id, None, &["range"]));
    assert_eq!(h.state(), GroupState::PreparingRebalance);
    h.advance(Duration::from_millis(2900));
    assert!(h.join_answer(w).is_none(), "the first rebalance waits group.initial.rebalance.delay.ms");
    h.advance(Duration::from_millis(200));
    let r2 = h.join_answer(w).expect("answered after the initial delay");
    assert_eq!(r2.error, code::NONE);
    assert_eq!(r2.generation_id, 1);
    assert_eq!(r2.leader, r.member_id);
    assert_eq!(r2.member_id, r.member_id);
    assert_eq!(r2.protocol_name.as_deref(), Some("range"));
    assert_eq!(r2.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(r2.members.len(), 1);
    assert_eq!(r2.members[0].metadata, Bytes::from("meta-range"));
    assert_eq!(h.state(), GroupState::CompletingRebalance);
}

#[test]
fn old_clients_join_without_the_round_trip() {
    let mut h = Harness::with(CoordinatorSettings { initial_rebalance_delay: Duration::ZERO, ..Default::default() });
    let mut req = join_req("", None, &["range"]);
    req.require_known_member_id = false;
    let w = h.join(req);
    let r = h.join_answer(w).expect("no initial delay configured: answered at once");
    assert_eq!(r.error, code::NONE);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.leader, r.member_id);
}

#[test]
fn a_pending_member_that_never_returns_is_forgotten() {
    let mut h = Harness::new();
    let w = h.join(join_req("", None, &["range"]));
    let id = h.join_answer(w).unwrap().member_id;
    h.advance(SESSION);
    assert!(!h.c.group("g").unwrap().is_pending(&id));
    let w = h.join(join_req(&id, None, &["range"]));
    assert_eq!(h.join_answer(w).unwrap().error, code::UNKNOWN_MEMBER_ID);
}

#[test]
fn initial_delay_is_extended_while_members_keep_arriving() {
    let mut h = Harness::new();
    let (a, wa) = h.join_new(&["range"]);
    h.advance(Duration::from_secs(2));
    let (b, wb) = h.join_new(&["range"]);
    h.advance(Duration::from_millis(1500));
    assert!(h.join_answer(wa).is_none(), "a member arrived during the delay: extended");
    h.advance(Duration::from_millis(2000));
    assert!(h.join_answer(wa).is_none());
    h.advance(Duration::from_millis(1000));
    let ra = h.join_answer(wa).expect("completed after the second delay");
    let rb = h.join_answer(wb).expect("both answered together");
    assert_eq!(ra.leader, a, "the first member leads");
    assert_eq!(ra.members.len(), 2, "the leader gets every member");
    assert!(rb.members.is_empty(), "followers get no member list");
    assert_eq!(rb.member_id, b);
    assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
}

#[test]
fn sync_delivers_the_leaders_assignment_to_every_member() {
    let mut h = Harness::new();
    let (a, wa) = h.join_new(&["range"]);
    let (b, wb) = h.join_new(&["range"]);
    let (c, wc) = h.join_new(&["range"]);
    h.advance(Duration::from_secs(6));
    for w in [wa, wb, wc] {
        assert_eq!(h.join_answer(w).unwrap().generation_id, 1);
    }
    let sb = h.sync(&b, 1, &[]);
    let sc = h.sync(&c, 1, &[]);
    assert!(h.sync_answer(sb).is_none(), "followers wait for the leader");
    assert!(h.sync_answer(sc).is_none());
    assert_eq!(h.heartbeat(&b, 1), code::NONE, "heartbeats are fine while completing");
    let sa = h.sync(&a, 1, &[(&a, "A"), (&b, "B")]);
    assert_eq!(h.sync_answer(sa).unwrap().assignment, Bytes::from("A"));
    let rb = h.sync_answer(sb).unwrap();
    assert_eq!((rb.error, rb.assignment.clone()), (code::NONE, Bytes::from("B")));
    assert_eq!(rb.protocol_name.as_deref(), Some("range"));
    assert_eq!(h.sync_answer(sc).unwrap().assignment, Bytes::new(), "a member left out gets nothing");
    assert_eq!(h.state(), GroupState::Stable);
    // A late sync in Stable gets the stored assignment at once.
    let again = h.sync(&b, 1, &[]);
    assert_eq!(h.sync_answer(again).unwrap().assignment, Bytes::from("B"));
}

#[test]
fn session_expiry_removes_the_member_and_rebalances() {
    let mut h = Harness::new();
    let (l, f) = h.stable_pair();
    // The leader keeps heartbeating, the follower is silent.
    for _ in 0..9 {
        h.advance(Duration::from_secs(1));
        assert_eq!(h.heartbeat(&l, 1), code::NONE);
    }
    h.advance(Duration::from_millis(1100));
    assert!(h.c.group("g").unwrap().member(&f).is_none(), "expired after the session timeout");
    assert_eq!(h.state(), GroupState::PreparingRebalance);
    assert_eq!(h.heartbeat(&l, 1), code::REBALANCE_IN_PROGRESS);
    assert_eq!(h.heartbeat(&f, 1), code::UNKNOWN_MEMBER_ID);
    let w = h.rejoin(&l);
    let r = h.join_answer(w).expect("every member rejoined: no wait");
    assert_eq!(r.generation_id, 2);
    assert_eq!(r.members.len(), 1);
}

#[test]
fn leave_rebalances_and_v3_leaves_in_batches() {
    let mut h = Harness::new();
    let (l, f) = h.stable_pair();
    let (c, wc) = h.join_new(&["range"]);
    assert_eq!(h.heartbeat(&l, 1), code::REBALANCE_IN_PROGRESS);
    let wl = h.rejoin(&l);
    let wf = h.rejoin(&f);
    let rl = h.join_answer(wl).expect("all three joined");
    assert_eq!(rl.generation_id, 2);
    assert_eq!(rl.members.len(), 3);
    assert!(h.join_answer(wf).is_some() && h.join_answer(wc).is_some());

    let leaving = [
        LeavingMember { member_id: f.clone(), group_instance_id: None },
        LeavingMember { member_id: c.clone(), group_instance_id: None },
        LeavingMember { member_id: "nobody".into(), group_instance_id: None },
    ];
    let now = h.now();
    let (top, each) = h.c.leave(now, "g", &leaving);
    assert_eq!(top, code::NONE);
    assert_eq!(each, vec![code::NONE, code::NONE, code::UNKNOWN_MEMBER_ID]);
    assert_eq!(h.state(), GroupState::PreparingRebalance);
    let wl = h.rejoin(&l);
    let r = h.join_answer(wl).unwrap();
    assert_eq!((r.generation_id, r.members.len()), (3, 1));

    let now = h.now();
    let (_, each) = h.c.leave(now, "g", &[LeavingMember { member_id: l.clone(), group_instance_id: None }]);
    assert_eq!(each, vec![code::NONE]);
    assert_eq!(h.state(), GroupState::Empty, "the last member left");
    assert_eq!(h.c.group("g").unwrap().generation(), 4);
    let now = h.now();
    assert_eq!(h.c.leave(now, "unknown", &leaving[..1]), (code::NONE, vec![code::UNKNOWN_MEMBER_ID]));
}

#[test]
fn a_leaving_member_completes_a_pending_join() {
    let mut h = Harness::new();
    let (l, f) = h.stable_pair();
    let (_c, wc) = h.join_new(&["range"]);
    let wl = h.rejoin(&l);
    assert!(h.join_answer(wl).is_none(), "waiting for the follower");
    let now = h.now();
    h.c.leave(now, "g", &[LeavingMember { member_id: f, group_instance_id: None }]);
    h.collect();
    assert_eq!(h.join_answer(wl).unwrap().generation_id, 2);
    assert_eq!(h.join_answer(wc).unwrap().generation_id, 2);
}

#[test]
fn a_second_member_joining_mid_rebalance() {
    let mut h = Harness::new();
    let (l, f) = h.stable_pair();
    // A third member joins: the group goes back to PreparingRebalance.
    let (c, wc) = h.join_new(&["range"]);
    assert_eq!(h.state(), GroupState::PreparingRebalance);
    assert_eq!(h.heartbeat(&f, 1), code::REBALANCE_IN_PROGRESS);
    let stale = h.sync(&f, 1, &[]);
    assert_eq!(h.sync_answer(stale).unwrap().error, code::REBALANCE_IN_PROGRESS);
    let wl = h.rejoin(&l);
    // A fourth member arrives while the others rejoin.
    let (d, wd) = h.join_new(&["range"]);
    assert!(h.join_answer(wl).is_none());
    let wf = h.rejoin(&f);
    let rl = h.join_answer(wl).expect("completes once everyone is back");
    assert_eq!(rl.generation_id, 2);
    let mut ids: Vec<_> = rl.members.iter().map(|m| m.member_id.clone()).collect();
    ids.sort();
    let mut want = vec![l.clone(), f.clone(), c.clone(), d.clone()];
    want.sort();
    assert_eq!(ids, want);
    for w in [wf, wc, wd] {
        assert_eq!(h.join_answer(w).unwrap().generation_id, 2);
    }
    // While completing: a follower waits in SyncGroup, then another member joins.
    let sf = h.sync(&f, 2, &[]);
    assert!(h.sync_answer(sf).is_none());
    let (_e, _we) = h.join_new(&["range"]);
    assert_eq!(h.sync_answer(sf).unwrap().error, code::REBALANCE_IN_PROGRESS, "parked syncs are released");
    assert_eq!(h.state(), GroupState::PreparingRebalance);
}

#[test]
fn a_member_resending_join_while_completing_gets_the_same_answer() {
    let mut h = Harness::new();
    let (l, f) = h.stable_pair();
    let (_c, wc) = h.join_new(&["range"]);
    let wl = h.rejoin(&l);
    let wf = h.rejoin(&f);
    let first = h.join_answer(wl).unwrap();
    h.join_answer(wf).unwrap();
    h.join_answer(wc).unwrap();
    let again = h.rejoin(&l);
    assert_eq!(h.join_answer(again).unwrap(), first);
    assert_eq!(h.state(), GroupState::CompletingRebalance);
}

#[test]
fn stale_generations_and_unknown_members_are_rejected() {
    let mut h = Harness::new();
    let (l, f) = h.stable_pair();
    let (_c, _wc) = h.join_new(&["range"]);
    let wl = h.rejoin(&l);
    h.rejoin(&f);
    assert_eq!(h.join_answer(wl).unwrap().generation_id, 2);
    assert_eq!(h.heartbeat(&f, 1), code::ILLEGAL_GENERATION);
    let s = h.sync(&f, 1, &[]);
    assert_eq!(h.sync_answer(s).unwrap().error, code::ILLEGAL_GENERATION);
    let now = h.now();
    assert_eq!(h.c.validate_commit(now, &who(&f, 1)), Err(code::ILLEGAL_GENERATION));
    assert_eq!(h.c.validate_commit(now, &who(&f, 2)), Err(code::REBALANCE_IN_PROGRESS), "not yet synced");
    assert_eq!(h.heartbeat("stranger", 2), code::UNKNOWN_MEMBER_ID);
    let s = h.sync("stranger", 2, &[]);
    assert_eq!(h.sync_answer(s).unwrap().error, code::UNKNOWN_MEMBER_ID);
    let w = h.rejoin("stranger");
    assert_eq!(h.join_answer(w).unwrap().error, code::UNKNOWN_MEMBER_ID);
    assert_eq!(h.c.heartbeat(now, &MemberRef { group_id: "nope".into(), ..who(&l, 2) }), code::UNKNOWN_MEMBER_ID);
}

#[test]
fn rebalance_timeout_removes_members_that_do_not_rejoin() {
    let mut h = Harness::new();
    let (l, f) = h.stable_pair();
    let (c, wc) = h.join_new(&["range"]);
    let wl = h.rejoin(&l);
    // The follower keeps heartbeating but never rejoins.
    for _ in 0..29 {
        h.advance(Duration::from_secs(1));
        assert_eq!(h.heartbeat(&f, 1), code::REBALANCE_IN_PROGRESS);
    }
    assert!(h.join_answer(wl).is_none());
    h.advance(Duration::from_millis(1100));
    let r = h.join_answer(wl).expect("completed at the rebalance timeout");
    assert_eq!(r.generation_id, 2);
    let ids: Vec<_> = r.members.iter().map(|m| m.member_id.as_str()).collect();
    assert!(ids.contains(&l.as_str()) && ids.contains(&c.as_str()) && !ids.contains(&f.as_str()));
    assert!(h.join_answer(wc).is_some());
    assert_eq!(h.heartbeat(&f, 1), code::UNKNOWN_MEMBER_ID);
}

#[test]
fn members_that_never_sync_are_removed_after_the_rebalance_timeout() {
    let mut h = Harness::new();
    let (a, wa) = h.join_new(&["range"]);
    let (b, wb) = h.join_new(&["range"]);
    h.advance(Duration::from_secs(6));
    h.join_answer(wa).unwrap();
    h.join_answer(wb).unwrap();
    let sa = h.sync(&a, 1, &[(&a, "A"), (&b, "B")]);
    assert!(h.sync_answer(sa).is_some());
    for _ in 0..29 {
        h.advance(Duration::from_secs(1));
        assert_eq!(h.heartbeat(&a, 1), code::NONE);
        assert_eq!(h.heartbeat(&b, 1), code::NONE, "heartbeats alone do not count as a sync");
    }
    h.advance(Duration::from_millis(1100));
    assert!(h.c.group("g").unwrap().member(&b).is_none());
    assert_eq!(h.heartbeat(&a, 1), code::REBALANCE_IN_PROGRESS);
}

#[test]
fn inconsistent_protocols_are_refused() {
    let mut h = Harness::new();
    let (_a, _) = h.join_new(&["range", "roundrobin"]);
    let w = h.join(join_req("", None, &["sticky"]));
    assert_eq!(h.join_answer(w).unwrap().error, code::INCONSISTENT_GROUP_PROTOCOL);
    let mut other_type = join_req("", None, &["range"]);
    other_type.protocol_type = "connect".into();
    let w = h.join(other_type);
    assert_eq!(h.join_answer(w).unwrap().error, code::INCONSISTENT_GROUP_PROTOCOL);
    let w = h.join(join_req("", None, &[]));
    let r = h.join_answer(w).unwrap();
    assert_eq!(r.error, code::INCONSISTENT_GROUP_PROTOCOL);
}

#[test]
fn the_protocol_with_most_votes_is_selected() {
    let mut h = Harness::new();
    let (_a, wa) = h.join_new(&["range", "roundrobin"]);
    let (_b, _) = h.join_new(&["roundrobin", "range"]);
    let (_c, _) = h.join_new(&["roundrobin", "range", "sticky"]);
    h.advance(Duration::from_secs(6));
    assert_eq!(h.join_answer(wa).unwrap().protocol_name.as_deref(), Some("roundrobin"));
    let r = h.c.group("g").unwrap();
    assert_eq!(r.protocol(), Some("roundrobin"));
}

#[test]
fn join_checks_group_id_and_session_timeout() {
    let mut h = Harness::new();
    let mut req = join_req("", None, &["range"]);
    req.group_id = String::new();
    let w = h.join(req);
    assert_eq!(h.join_answer(w).unwrap().error, code::INVALID_GROUP_ID);
    let mut req = join_req("", None, &["range"]);
    req.session_timeout = Duration::from_millis(5999);
    let w = h.join(req);
    assert_eq!(h.join_answer(w).unwrap().error, code::INVALID_SESSION_TIMEOUT);
    let w = h.join(join_req("someone", None, &["range"]));
    assert_eq!(h.join_answer(w).unwrap().error, code::UNKNOWN_MEMBER_ID, "unknown group, known member id");
}

#[test]
fn a_new_member_parked_too_long_is_dropped() {
    let mut h = Harness::new();
    let (l, f) = h.stable_pair();
    // A new member with a long rebalance timeout joins; the others never rejoin.
    let w = h.join(join_req("", None, &["range"]));
    let id = h.join_answer(w).unwrap().member_id;
    let mut req = join_req(&id, None, &["range"]);
    req.rebalance_timeout = Duration::from_secs(900);
    let wc = h.join(req);
    for _ in 0..60 {
        h.advance(Duration::from_secs(5));
        assert_eq!(h.heartbeat(&l, 1), code::REBALANCE_IN_PROGRESS);
        assert_eq!(h.heartbeat(&f, 1), code::REBALANCE_IN_PROGRESS);
    }
    let r = h.join_answer(wc).expect("dropped after 5 minutes");
    assert_eq!(r.error, code::UNKNOWN_MEMBER_ID);
    assert!(h.c.group("g").unwrap().member(&id).is_none());
}

#[test]
fn members_that_never_sync_leave_an_empty_group() {
    let mut h = Harness::new();
    let (l, f) = h.stable_pair();
    let (c, wc) = h.join_new(&["range"]);
    let wl = h.rejoin(&l);
    let wf = h.rejoin(&f);
    assert!(h.join_answer(wl).is_some() && h.join_answer(wf).is_some() && h.join_answer(wc).is_some());
    assert!(h.c.group("g").unwrap().member(&c).is_some());
    h.advance(REBALANCE + Duration::from_secs(1));
    assert_eq!(h.state(), GroupState::Empty, "nobody synced: all removed");
    assert_eq!(h.c.group("g").unwrap().generation(), 3);
}
