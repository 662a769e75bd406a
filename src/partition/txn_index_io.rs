//! The partition actor's side of the aborted-transactions index files
//! (`partition/txn_index_files.rs`): after an apply, a cleaner install and a time-based roll it
//! asks the core for the next due file, runs the job on tokio's blocking pool (never on the
//! actor: no tick, heartbeat or apply waits for it) and takes the answer back as a
//! [`PartitionMsg::TxnIndex`] message, one job at a time.

use actix::prelude::*;

use super::{PartitionActor, PartitionMsg};
use crate::partition::core::TxnIndexJob;

/// A finished index job, for the core (of `generation`) that asked for it.
pub struct TxnIndexDone {
    generation: u64,
    job: TxnIndexJob,
    result: Result<(), String>,
}

impl PartitionActor {
    /// Starts the next index job, if one is due and none is running.
    pub(super) fn store_txn_indexes(&mut self, ctx: &mut Context<Self>) {
        if self.shell.is_failed() {
            return;
        }
        if let Some(job) = self.core.txn_index_job() {
            self.run_txn_index_job(job, ctx);
        }
    }

    fn run_txn_index_job(&mut self, job: TxnIndexJob, ctx: &mut Context<Self>) {
        let (addr, generation) = (ctx.address(), self.shell.generation());
        tokio::task::spawn_blocking(move || {
            let result = job.run();
            addr.do_send(PartitionMsg::TxnIndex(TxnIndexDone { generation, job, result }));
        });
    }

    /// A job finished: its follow-up, or the next due file. A job of an earlier core (before a
    /// reopen) may have written an old copy: that segment's file is written again.
    pub(super) fn on_txn_index_done(&mut self, done: TxnIndexDone, ctx: &mut Context<Self>) {
        if done.generation != self.shell.generation() {
            self.core.forget_txn_indexes(&[done.job.base()]);
        } else if let Some(next) = self.core.txn_index_done(&done.job, done.result) {
            return self.run_txn_index_job(next, ctx);
        }
        self.store_txn_indexes(ctx);
    }
}
