//! The node-wide tick actor: one timer that drives every Raft group of the node.
//!
//! All groups tick together at the configured tick interval, so their heartbeats leave together
//! and can share a frame per peer. The tick handler only `do_send`s a tick to each group: it never
//! waits for a group, for apply or for the disk, so a slow group cannot delay the others' ticks.

use std::collections::BTreeMap;
use std::time::Duration;

use actix::prelude::*;

use crate::raft::GroupId;

/// Sends one tick to a group; returns false when the group has stopped.
pub type TickFn = Box<dyn Fn() -> bool + Send>;

/// The ticker's one message enum.
#[derive(Message)]
#[rtype(result = "()")]
pub enum TickerMsg {
    /// Start ticking a group.
    Register(GroupId, TickFn),
    /// Stop ticking a group.
    Unregister(GroupId),
}

/// The tick actor.
pub struct Ticker {
    interval: Duration,
    groups: BTreeMap<GroupId, TickFn>,
    ticks: u64,
}

impl Ticker {
    pub fn new(interval: Duration) -> Self {
        Ticker { interval, groups: BTreeMap::new(), ticks: 0 }
    }

    fn tick_all(&mut self) {
        self.ticks += 1;
        self.groups.retain(|_, tick| tick());
    }
}

impl Actor for Ticker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.interval, |this, _| this.tick_all());
    }
}

impl Handler<TickerMsg> for Ticker {
    type Result = ();

    fn handle(&mut self, msg: TickerMsg, _: &mut Self::Context) {
        match msg {
            TickerMsg::Register(id, f) => {
                self.groups.insert(id, f);
            }
            TickerMsg::Unregister(id) => {
                self.groups.remove(&id);
            }
        }
    }
}
