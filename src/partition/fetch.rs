//! Fetch reads of the partition actor: the actor checks the request and takes a plan of the
//! batches to return (`log/batch_plan.rs`) with the offsets and aborted transactions of the
//! moment; tokio's blocking pool reads and checks the frames and answers the fetch handler
//! itself, so a large read never holds up the groups of the actor's poller. A damaged frame it
//! meets comes back as `ReadDamage`, for the log to note (logged once, repaired from a peer).
//! A zero-copy fetch (a plaintext listener) reads nothing: the blocking pool only holds the
//! segment files open and answers with their ranges (`BatchPlan::chain`), which the connection
//! sends with `sendfile`; a segment whose descriptor the fd budget cannot spare is read.

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{FetchData, PartitionActor, PartitionMsg};
use crate::error::PartitionError;
use crate::protocol::chain::Chain;

type FetchReply = oneshot::Sender<Result<FetchData, PartitionError>>;

impl PartitionActor {
    /// `Fetch` of (offset, max_bytes, read_committed, zero_copy).
    pub(super) fn fetch(
        &mut self,
        ctx: &mut Context<Self>,
        (offset, max_bytes, read_committed, zero_copy): (i64, usize, bool, bool),
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
                let _ = reply.send(Ok(data(Chain::default(), Vec::new())));
                return;
            }
            Ok(Some(planned)) => planned,
        };
        let answer = data(Chain::default(), Vec::new());
        let (addr, generation) = (ctx.address(), self.shell.generation());
        tokio::task::spawn_blocking(move || {
            // The records, damage found on the way, and the offset after the last batch returned.
            let (records, damage, upper) = if zero_copy {
                let read = plan.chain();
                (read.records, read.damage, Some(read.end_offset))
            } else {
                let (records, damage) = plan.read();
                let upper = records.as_ref().ok().and_then(|r| crate::partition::txn::end_of(r));
                (records.map(Chain::from), damage, upper)
            };
            if let Some((index, error)) = damage {
                addr.do_send(PartitionMsg::ReadDamage { generation, index, error });
            }
            let result = records.map_err(|e| PartitionError::Storage(e.to_string())).map(|records| {
                // The aborted transactions overlapping the records returned (fewer than planned
                // when a damaged frame cut the read short).
                let aborted = match upper {
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
