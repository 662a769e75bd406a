//! The node-wide tick actor: one timer that drives every Raft group of the node.
//!
//! All groups tick together at the configured tick interval, so their heartbeats leave together
//! and can share a frame per peer. The tick handler only `do_send`s a tick to each group: it never
//! waits for a group, for apply or for the disk, so a slow group cannot delay the others' ticks.
//! Three quarters of a tick after each tick (the beat) it tells every peer link to send the
//! heartbeats queued since: that is how the heartbeats of all groups bound to one node leave in
//! one frame. The groups have that long to turn the tick into heartbeats while they also append,
//! apply and answer (what a link does with heartbeats that miss it: `peer::actor`).
//!
//! A quiet group (`raft::hibernate`) is skipped: one atomic load, no message. Once per tick the
//! ticker asks the node's liveness which peers were silent for an election timeout; a quiet
//! group that watches one of them is ticked, which wakes it.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::peer::liveness::Liveness;
use crate::raft::hibernate::QuietCell;
use crate::raft::GroupId;

/// When the beat follows a tick: late enough that busy groups have produced their heartbeats,
/// early enough to come before the next tick.
pub fn beat_offset(tick: Duration) -> Duration {
    tick * 3 / 4
}

/// Drops catch-up ticks: a tick that comes less than half an interval after the last one taken.
/// The ticker applies it to its timer (after a stall the timer fires every missed tick at once,
/// [`TickGate::admit`]) and every partition group to the ticks it handles
/// ([`TickGate::admit_tick`]): a group whose mailbox fell behind gets its queued ticks in one
/// burst, while the answers of its peers wait in the same queue. Counting either stall as time
/// would make followers count it as their leader's silence and leaders as their followers'
/// (CheckQuorum), and start elections. A group drops only a stale tick (the ticker has issued a
/// later one since), so the ordinary jitter of a tick's delivery never slows its clock.
#[derive(Debug, Clone, Copy)]
pub struct TickGate {
    interval: Duration,
    last: Option<std::time::Instant>,
}

impl TickGate {
    pub fn new(interval: Duration) -> Self {
        TickGate { interval, last: None }
    }

    /// Whether a tick at `now` counts.
    pub fn admit(&mut self, now: std::time::Instant) -> bool {
        if self.last.is_some_and(|last| now.saturating_duration_since(last) < self.interval / 2) {
            return false;
        }
        self.last = Some(now);
        true
    }

    /// Whether tick `n`, handled at `now` when the ticker's latest tick is `latest`, counts: the
    /// latest always does; an older one (a backlog) only half an interval after the last taken.
    pub fn admit_tick(&mut self, now: std::time::Instant, n: u64, latest: u64) -> bool {
        if n >= latest {
            self.last = Some(now);
            return true;
        }
        self.admit(now)
    }
}

/// Sends one tick to a group; returns false when the group has stopped.
/// The argument is the node-wide tick number, which groups use to keep heartbeats in phase.
pub type TickFn = Box<dyn Fn(u64) -> bool + Send>;

/// The ticker's one message enum.
#[derive(Message)]
#[rtype(result = "()")]
pub enum TickerMsg {
    /// Start ticking a group.
    Register(GroupId, TickFn),
    /// Start ticking a group that may go quiet: skipped while its cell says so.
    RegisterQuiet(GroupId, TickFn, Arc<QuietCell>),
    /// The node's peer liveness (which watches every peer the node has a link to, joined
    /// members too) and the election timeout: quiet groups watching a peer silent that long are
    /// ticked (woken).
    Liveness(Arc<Liveness>, Duration),
    /// Stop ticking a group.
    Unregister(GroupId),
    /// A peer link to flush heartbeats on, at the beat after every tick.
    RegisterPeer(TickFn),
}

/// The tick actor.
pub struct Ticker {
    interval: Duration,
    groups: BTreeMap<GroupId, (TickFn, Option<Arc<QuietCell>>)>,
    peers: Vec<TickFn>,
    liveness: Option<(Arc<Liveness>, Duration)>,
    ticks: u64,
    gate: TickGate,
}

impl Ticker {
    pub fn new(interval: Duration) -> Self {
        Ticker {
            interval,
            groups: BTreeMap::new(),
            peers: Vec::new(),
            liveness: None,
            ticks: 0,
            gate: TickGate::new(interval),
        }
    }

    /// Returns false for a catch-up tick: after a stall (the process was descheduled, the
    /// machine overloaded) the interval timer fires every missed tick at once; delivering them
    /// would make followers count the stall as silence from their leaders and start elections.
    fn tick_all(&mut self) -> bool {
        let now = std::time::Instant::now();
        if !self.gate.admit(now) {
            return false;
        }
        self.ticks += 1;
        let n = self.ticks;
        if let Some((l, _)) = &self.liveness {
            l.set_latest_tick(n);
        }
        let silent = match &self.liveness {
            Some((l, timeout)) => l.silent_watched(*timeout, now),
            None => Vec::new(),
        };
        let mut ticked = 0u64;
        self.groups.retain(|_, (tick, cell)| {
            if cell.as_ref().is_some_and(|c| !c.needs_tick(&silent)) {
                return true;
            }
            ticked += 1;
            tick(n)
        });
        if let Some((l, _)) = &self.liveness {
            l.ticked().fetch_add(ticked, Ordering::Relaxed);
        }
        true
    }
}

impl Actor for Ticker {
    type Context = Context<Self>;

    /// Every tick: tick all groups; three quarters of a tick later (the beat), let every peer
    /// link send the heartbeats the groups produced, all groups' in one frame per peer.
    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.interval, |this, ctx| {
            if !this.tick_all() {
                return;
            }
            let n = this.ticks;
            ctx.run_later(beat_offset(this.interval), move |this, _| this.peers.retain(|flush| flush(n)));
        });
    }
}

impl Handler<TickerMsg> for Ticker {
    type Result = ();

    fn handle(&mut self, msg: TickerMsg, _: &mut Self::Context) {
        match msg {
            TickerMsg::Register(id, f) => {
                self.groups.insert(id, (f, None));
            }
            TickerMsg::RegisterQuiet(id, f, cell) => {
                self.groups.insert(id, (f, Some(cell)));
            }
            TickerMsg::Liveness(l, timeout) => self.liveness = Some((l, timeout)),
            TickerMsg::Unregister(id) => {
                self.groups.remove(&id);
            }
            TickerMsg::RegisterPeer(f) => self.peers.push(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_drops_ticks_that_come_in_a_burst() {
        let ms = Duration::from_millis;
        let t0 = std::time::Instant::now();
        let mut gate = TickGate::new(ms(50));
        assert!(gate.admit(t0));
        assert!(gate.admit(t0 + ms(50)));
        // A backlog of queued ticks handled at once: only the first counts.
        assert!(gate.admit(t0 + ms(2000)));
        assert!(!gate.admit(t0 + ms(2001)));
        assert!(!gate.admit(t0 + ms(2024)));
        assert!(gate.admit(t0 + ms(2025)), "half an interval later");
        assert!(gate.admit(t0 + ms(2075)));
    }

    #[test]
    fn a_group_drops_only_stale_ticks_that_come_in_a_burst() {
        let ms = Duration::from_millis;
        let t0 = std::time::Instant::now();
        let mut gate = TickGate::new(ms(50));
        assert!(gate.admit_tick(t0, 1, 1));
        // Jitter: the latest tick counts however soon after the last one it is handled.
        assert!(gate.admit_tick(t0 + ms(10), 2, 2));
        // A backlog: ticks 3..=40 handled at once while the ticker is at 41.
        assert!(gate.admit_tick(t0 + ms(2000), 3, 41), "the first of a burst");
        assert!((4..=40).all(|n| !gate.admit_tick(t0 + ms(2001), n, 41)), "the rest of the burst");
        assert!(gate.admit_tick(t0 + ms(2002), 41, 41), "the latest tick");
        // A steady lag: every tick is stale, but they come an interval apart.
        assert!(gate.admit_tick(t0 + ms(2052), 42, 43));
        assert!(gate.admit_tick(t0 + ms(2102), 43, 44));
    }
}
