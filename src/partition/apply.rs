//! The apply actor of one partition: applies committed entries in order, off the group's actor.
//!
//! The group actor hands committed entries over with `do_send` and goes on ticking and
//! heartbeating; this actor re-checks each batch (diagnostic point 3), moves the high watermark,
//! and reports `Applied { index, high_watermark }` back by message. Apply actors run on the
//! node's apply arbiter, so a slow apply (the `faults.apply-delay` setting simulates one) delays
//! acknowledgements and reads, never a tick or a heartbeat.

use std::time::Duration;

use actix::prelude::*;

use super::actor::{PartitionActor, PartitionMsg};
use super::core::{ApplyItem, ApplyState};

/// The apply actor's one message enum.
#[derive(Message)]
#[rtype(result = "()")]
pub enum ApplyMsg {
    /// Committed items, in log order.
    Apply(Vec<ApplyItem>),
}

/// Applies one partition's committed entries.
pub struct ApplyActor {
    state: ApplyState,
    group: Addr<PartitionActor>,
    delay: Duration,
    /// The generation of the group's core this actor applies for (see `PartitionMsg::Applied`).
    generation: u64,
}

impl ApplyActor {
    pub fn new(state: ApplyState, group: Addr<PartitionActor>, delay: Duration, generation: u64) -> Self {
        ApplyActor { state, group, delay, generation }
    }
}

impl Actor for ApplyActor {
    type Context = Context<Self>;
}

impl Handler<ApplyMsg> for ApplyActor {
    type Result = ();

    fn handle(&mut self, msg: ApplyMsg, _: &mut Self::Context) {
        let ApplyMsg::Apply(items) = msg;
        for item in &items {
            if !self.delay.is_zero() {
                // Fault injection: a slow state machine. This blocks the apply arbiter only.
                std::thread::sleep(self.delay);
            }
            self.state.apply(item);
        }
        self.group.do_send(PartitionMsg::Applied {
            generation: self.generation,
            index: self.state.applied,
            high_watermark: self.state.high_watermark,
        });
    }
}
