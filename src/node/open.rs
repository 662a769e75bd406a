//! How the node actor opens partition groups: new replicas in batches of [`CREATE_BATCH`], one
//! batch at a time, each created with one sync round (`partition::create`) and published once;
//! other groups (existing directories, replicas joining a running group) one by one, at most
//! [`MAX_OPENS`] at once; a failed open is tried again [`REOPEN_AFTER`] later. Opening
//! runs on the blocking pool, so the groups already running keep ticking.

use std::sync::Arc;

use actix::prelude::*;
use slog::Logger;

use super::{Node, Running};
use crate::broker::PartitionHandle;
use crate::partition::actor::{PartitionSpec, RetentionSettings};
use crate::partition::create::NewReplica;
use crate::partition::{PartitionActor, PartitionMsg, PartitionShared};
use crate::raft::GroupId;

/// New replicas created per batch (one sync round, one publish of the partition table).
const CREATE_BATCH: usize = 500;

/// Existing groups opened at once (a restart opens every group the node holds: each open reads
/// its state files and segments and replays its log; hundreds at once exhausted a small
/// descriptor limit and thrashed the fd budget).
pub(super) const MAX_OPENS: usize = 16;

/// How long after a failed open the node tries again (while the metadata still assigns it).
const REOPEN_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// A group to open, with what the node records once it runs.
pub(super) struct Opening {
    pub(super) spec: PartitionSpec,
    pub(super) topic: String,
    pub(super) index: i32,
    pub(super) retention: RetentionSettings,
    pub(super) shared: Arc<PartitionShared>,
    pub(super) logger: Logger,
}

impl Node {
    /// Creates and opens the next batch of new replicas, unless one is under way.
    pub(super) fn next_batch(&mut self, ctx: &mut Context<Self>) {
        if self.creating || self.fresh.is_empty() {
            return;
        }
        let batch: Vec<Opening> = self.fresh.drain(..self.fresh.len().min(CREATE_BATCH)).collect();
        let create = batch
            .iter()
            .map(|o| NewReplica {
                group: o.spec.group,
                dir: o.spec.dir.clone(),
                voters: o.spec.voters.clone(),
                settings: o.spec.settings.clone(),
            })
            .collect();
        self.creating = true;
        self.open_batch(create, batch, ctx);
    }

    /// Opens the existing groups waiting in `reopen`, keeping at most [`MAX_OPENS`] under way.
    pub(super) fn next_opens(&mut self, ctx: &mut Context<Self>) {
        while self.opens_in_flight < MAX_OPENS {
            let Some(open) = self.reopen.pop_front() else { return };
            self.opens_in_flight += 1;
            self.open_batch(Vec::new(), vec![open], ctx);
        }
    }

    /// Opens `opens` on the blocking pool (opening a log reads and creates files), after creating
    /// the directories of `create` as one batch (`partition::create`), so the groups already
    /// running keep ticking while thousands of new ones are created; then starts every opened
    /// group on its poller and publishes the table once.
    pub(super) fn open_batch(&mut self, create: Vec<NewReplica>, opens: Vec<Opening>, ctx: &mut Context<Self>) {
        let (writer, ticker, links, clock) =
            (self.writer.clone(), self.ticker.clone(), self.links.clone(), self.clock.clone());
        let (groups_dir, logger) = (self.data_dir.join("groups"), self.logger.clone());
        let is_batch = !create.is_empty();
        let task = tokio::task::spawn_blocking(move || {
            let created = crate::partition::create::create_batch(&groups_dir, &create, &logger);
            opens
                .into_iter()
                .map(|o| {
                    let g = o.spec.group;
                    let res = match &created {
                        Err(e) if create.iter().any(|c| c.group == g) => Err(e.to_string()),
                        _ => PartitionActor::open(
                            o.spec,
                            o.shared.clone(),
                            writer.clone(),
                            ticker.clone(),
                            links.clone(),
                            clock.clone(),
                            o.logger,
                        )
                        .map_err(|e| e.to_string()),
                    };
                    (g, o.topic, o.index, o.retention, o.shared, res)
                })
                .collect::<Vec<_>>()
        });
        ctx.spawn(task.into_actor(self).map(move |res, act, ctx| {
            if is_batch {
                act.creating = false;
                act.next_batch(ctx);
            } else {
                act.opens_in_flight -= 1;
                act.next_opens(ctx);
            }
            let opened = match res {
                Ok(opened) => opened,
                Err(e) => {
                    slog::error!(act.logger, "partition open panicked"; "error" => %e);
                    return;
                }
            };
            let mut started = false;
            let mut failed = false;
            for (g, topic, index, retention, shared, res) in opened {
                failed |= res.is_err();
                started |= act.opened(g, topic, index, retention, shared, res);
            }
            if failed {
                // A failed open (out of descriptors, a transient I/O error) is tried again while
                // the metadata still assigns the group: the next reconcile opens what is missing.
                ctx.run_later(REOPEN_AFTER, |act, ctx| {
                    if let Some(image) = act.image.clone() {
                        act.reconcile(&image, ctx);
                    }
                });
            }
            if started {
                act.publish();
            }
        }));
    }

    /// One group's open finished: starts it (true) unless it failed or is no longer wanted.
    fn opened(
        &mut self,
        g: GroupId,
        topic: String,
        index: i32,
        retention: RetentionSettings,
        shared: Arc<PartitionShared>,
        res: Result<PartitionActor, String>,
    ) -> bool {
        self.opening.remove(&g);
        let actor = match res {
            Ok(actor) => actor,
            Err(e) => {
                slog::error!(self.logger, "cannot open partition"; "topic" => &topic, "partition" => index, "group" => g, "error" => %e);
                return false;
            }
        };
        if !self.wanted.contains(&g) {
            // Deleted while it was being opened.
            let dir = actor.dir.clone();
            drop(actor);
            let _ = std::fs::remove_dir_all(dir);
            return false;
        }
        let addr = self.pollers.start(g, actor);
        slog::info!(self.logger, "partition started"; "topic" => &topic, "partition" => index, "group" => g);
        let target = self.targets.get(&g).cloned();
        if target.is_some() {
            addr.do_send(PartitionMsg::Reassign(target.clone()));
        }
        let handle = PartitionHandle { addr, shared, group: g };
        self.running.insert(g, Running { topic, index, handle, retention, target });
        true
    }
}
