//! Fetch reads of the partition actor: the actor checks the request and takes a plan of the
//! batches to return (`log/batch_plan.rs`) with the offsets and aborted transactions of the
//! moment; tokio's blocking pool reads and checks the frames and answers the fetch handler
//! itself, so a large read never holds up the groups of the actor's poller. A damaged frame it
//! meets comes back as `ReadDamage`, for the log to note (logged once, repaired from a peer).

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{FetchData, PartitionActor, PartitionMsg};
use crate::error::PartitionError;

type FetchReply = oneshot::Sender<Result<FetchData, PartitionError>>;

impl PartitionActor {
    /// `Fetch` of (offset, max_bytes, read_committed).
    pub(super) fn fetch(
        &mut self,
        ctx: &mut Context<Self>,
        (offset, max_bytes, read_committed): (i64, usize, bool),
        reply: FetchReply,
    ) {
        let data = |records, aborted| FetchData {
            records,
            aborted,
            high_watermark: self.core.high_watermark(),
            log_start: self.core.log_start(),
            last_stable_offset: self.core.last_stable_offset(),
        };
        let (plan, aborted) = match self.core.fetch_plan(offset, max_bytes, read_committed) {
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
            Ok(None) => {
                let _ = reply.send(Ok(data(bytes::Bytes::new(), Vec::new())));
                return;
            }
            Ok(Some(planned)) => planned,
        };
        let answer = data(bytes::Bytes::new(), Vec::new());
        let (addr, generation) = (ctx.address(), self.shell.generation());
        tokio::task::spawn_blocking(move || {
            let (records, damage) = plan.read();
            if let Some((index, error)) = damage {
                addr.do_send(PartitionMsg::ReadDamage { generation, index, error });
            }
            let result = records.map_err(|e| PartitionError::Storage(e.to_string())).map(|records| {
                // The aborted transactions overlapping the records returned (fewer than planned
                // when a damaged frame cut the read short).
                let aborted = match crate::partition::txn::end_of(&records) {
                    Some(upper) => aborted.into_iter().filter(|t| t.first_offset < upper).collect(),
                    None => Vec::new(),
                };
                FetchData { records, aborted, ..answer }
            });
            let _ = reply.send(result);
        });
    }

    /// See `ReadDamage`.
    pub(super) fn on_read_damage(&mut self, generation: u64, index: u64, error: crate::log::LogError) {
        if generation == self.shell.generation() {
            self.core.raft.storage().log().note_read_damage(index, error);
        }
    }
}
