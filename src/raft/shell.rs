//! The group shell: what every group's actor does around its [`RaftCore`], written once for
//! the partition groups and `__meta`, free of actix.
//!
//! An actor embeds a [`GroupShell`] and implements [`Group`] (its policy: what happens after a
//! Ready round, on a storage failure and on a reopen). Its handlers call the functions here:
//! - [`drive`]: the Ready loop. Each round hands the messages to the transport, the write job
//!   to the disk writer (whose `Written`/`Synced` answers come back as [`ShellEvent`]s through
//!   the actor's own message enum) and the round's role change and applied index to the policy.
//! - [`on_event`]: `Written` lets held appends go; `Synced` makes the job durable (or fails the
//!   group); `Drained` (the writer's barrier) and `Recover` (the retry timer) drive the reopen.
//! - [`fail`]: a storage failure stops the group: its queued jobs are poisoned (the writer skips
//!   them), the policy fails what waits, and a barrier is sent to the writer; only once it is
//!   answered — no write of the failed core can land any more — is the storage reopened, cut
//!   back to the durable index ([`prepare_reopen`]), as a restart of the group would.
//!
//! The decisions (generation, durable index, backoff) live in [`Recovery`]; the shell carries
//! them out. What needs the actor's context (scheduling a `Drive`, a timer, restarting helper
//! actors) comes back as [`Next`].

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slog::Logger;

use crate::log::{LogError, LogOptions};
use crate::peer::Transport;
use crate::raft::core::{OpenError, RaftCore, ReadyOutcome, RoleInfo, StateMachine, WriteJob};
use crate::raft::disk_error::{DiskError, DiskOp};
use crate::raft::recovery::{Attempt, Recovery, SyncedDecision};
use crate::raft::writer::DiskWriter;
use crate::raft::GroupId;

/// The disk writer's answers and the retry timer, carried by each actor's message enum.
#[derive(Debug)]
pub enum ShellEvent {
    /// The writer has written (not yet fsynced) Ready `number` of core `generation`.
    Written { generation: u64, number: u64 },
    /// The writer finished (writes and fsync) Ready `number` of core `generation`.
    Synced { generation: u64, number: u64, result: Result<(), DiskError> },
    /// The writer answered everything queued before the failure of core `generation`.
    Drained { generation: u64 },
    /// Try to reopen the storage (the retry timer).
    Recover,
}

/// How the writer's answers reach the actor: a `do_send` of the actor's message.
pub type Notify = Arc<dyn Fn(ShellEvent) + Send + Sync>;

/// What the actor must do after a shell call.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Next {
    /// Schedule a `Drive`.
    pub drive: bool,
    /// Send `ShellEvent::Recover` to itself after this delay.
    pub timer: Option<Duration>,
    /// The core was reopened: start what runs beside it, then drive at once.
    pub reopened: bool,
}

/// One group's policy, implemented by its actor.
pub trait Group {
    type Sm: StateMachine;

    fn shell(&mut self) -> &mut GroupShell;

    fn raft(&mut self) -> &mut RaftCore<Self::Sm>;

    /// One Ready (a partition also keeps its leader view in step).
    fn handle_ready(&mut self) -> Result<ReadyOutcome, LogError> {
        self.raft().handle_ready()
    }

    /// After each Ready round, with the round's role change and applied index.
    fn after_round(&mut self, role: Option<RoleInfo>, applied: Option<u64>);

    /// The storage failed (once per core): fail what waits and stop answering as leader.
    fn on_failure(&mut self, reason: &DiskError);

    /// Replaces the core with one opened from disk, its log first cut back after `cut_after`
    /// (see [`prepare_reopen`]). Helpers of the new core start when the shell says `reopened`.
    fn reopen(&mut self, cut_after: Option<u64>) -> Result<(), OpenError>;
}

/// The state every group's shell keeps.
pub struct GroupShell {
    group: GroupId,
    /// `partition` or `__meta`, in log lines.
    kind: &'static str,
    recovery: Recovery<DiskError>,
    writer: DiskWriter,
    transport: Transport,
    notify: Option<Notify>,
    drive_scheduled: bool,
    logger: Logger,
}

impl GroupShell {
    /// The shell of group `group`, whose log ends at `last_index` (all of it on disk).
    pub fn new(
        group: GroupId,
        kind: &'static str,
        last_index: u64,
        fsync: bool,
        writer: DiskWriter,
        transport: Transport,
        logger: Logger,
    ) -> Self {
        let recovery = Recovery::new(last_index, fsync);
        GroupShell { group, kind, recovery, writer, transport, notify: None, drive_scheduled: false, logger }
    }

    /// Wires the writer's answers to the actor (when it starts).
    pub fn set_notify(&mut self, notify: Notify) {
        self.notify = Some(notify);
    }

    /// True when a `Drive` should be scheduled now (none is yet).
    pub fn want_drive(&mut self) -> bool {
        !std::mem::replace(&mut self.drive_scheduled, true)
    }

    /// True while the storage is failed: the group neither ticks nor steps nor writes.
    pub fn is_failed(&self) -> bool {
        self.recovery.is_failed()
    }

    /// Why the storage failed, while it is failed.
    pub fn failure_reason(&self) -> Option<&DiskError> {
        self.recovery.failure().map(|f| &f.reason)
    }

    /// The generation of the current core (helpers tag their answers with it).
    pub fn generation(&self) -> u64 {
        self.recovery.generation()
    }

    /// The node's transport.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The node's disk writer.
    pub fn writer(&self) -> &DiskWriter {
        &self.writer
    }

    /// On stop: the last job, whatever is queued and an fsync of every dirty file (not waited
    /// for). Nothing after a failure.
    pub fn final_flush<M: StateMachine>(&self, core: &mut RaftCore<M>) {
        if !self.is_failed() {
            self.writer.submit(core.flush_job(true));
        }
    }

    fn notify(&self) -> Notify {
        self.notify.clone().unwrap_or_else(|| Arc::new(|_| {}))
    }

    fn submit(&mut self, job: WriteJob) {
        self.recovery.submitted(job.number, job.rewrites_from, job.last_index);
        let generation = self.recovery.generation();
        let (written, synced) = (self.notify(), self.notify());
        job.submit(
            &self.writer,
            move |number| written(ShellEvent::Written { generation, number }),
            move |number, result| synced(ShellEvent::Synced { generation, number, result }),
        );
    }
}

/// Runs the Ready loop until raft-rs has nothing more to do right now.
pub fn drive<G: Group>(g: &mut G) -> Next {
    g.shell().drive_scheduled = false;
    if g.shell().is_failed() {
        return Next::default();
    }
    loop {
        let out = match g.handle_ready() {
            Ok(out) => out,
            Err(e) => {
                // An operation of the log on this actor (a segment roll, a state file): the
                // writer and syncer report their own failures, this one is reported here.
                let e = DiskError::from_log(DiskOp::Open, &e);
                let shell = g.shell();
                e.report(shell.transport.me(), &shell.logger);
                return fail(g, e);
            }
        };
        let shell = g.shell();
        shell.transport.send(shell.group, out.messages);
        if let Some(job) = out.write {
            shell.submit(job);
        }
        g.after_round(out.role, out.applied);
        if !g.raft().has_ready() {
            return Next::default();
        }
    }
}

/// Handles the writer's answers and the retry timer.
pub fn on_event<G: Group>(g: &mut G, event: ShellEvent, now: Instant) -> Next {
    match event {
        ShellEvent::Written { generation, number } => {
            if g.shell().recovery.written(generation) {
                let msgs = g.raft().on_written(number);
                let shell = g.shell();
                shell.transport.send(shell.group, msgs);
            }
            Next::default()
        }
        ShellEvent::Synced { generation, number, result } => {
            match g.shell().recovery.synced(generation, number, result) {
                SyncedDecision::Ignore => Next::default(),
                SyncedDecision::Persisted(number) => {
                    let msgs = g.raft().on_synced(number);
                    let shell = g.shell();
                    shell.transport.send(shell.group, msgs);
                    Next { drive: true, ..Next::default() }
                }
                SyncedDecision::Fail(e) => fail(g, e),
            }
        }
        ShellEvent::Drained { generation } => Next { timer: g.shell().recovery.drained(generation), ..Next::default() },
        ShellEvent::Recover => match g.shell().recovery.timer_fired(now) {
            Some(a) => attempt(g, a),
            None => Next::default(),
        },
    }
}

/// A request found the group failed: reopen at once if due (at most once a second).
pub fn retry_now<G: Group>(g: &mut G, now: Instant) -> Next {
    match g.shell().recovery.attempt_due(now) {
        Some(a) => attempt(g, a),
        None => Next::default(),
    }
}

/// The storage failed: stop taking part in Raft, fail what waits, poison the queued writes and
/// send the writer a barrier; the reopen waits for its answer.
pub fn fail<G: Group>(g: &mut G, reason: DiskError) -> Next {
    let shell = g.shell();
    if !shell.recovery.fail(reason.clone()) {
        return Next::default();
    }
    slog::error!(shell.logger, "{} storage failed; the group stops serving until its storage can be reopened", shell.kind;
        "group" => shell.group, "error" => %reason, "durable_index" => shell.recovery.durable_index());
    let (notify, generation) = (shell.notify(), shell.recovery.generation());
    // No queued write of this core may land after the reopen: the writer skips them from now
    // on, and the reopen waits until it has answered everything queued so far.
    g.raft().poison_writes();
    g.on_failure(&reason);
    g.shell().writer.barrier(move || notify(ShellEvent::Drained { generation }));
    Next::default()
}

fn attempt<G: Group>(g: &mut G, a: Attempt<DiskError>) -> Next {
    match g.reopen(a.cut_after) {
        Ok(()) => {
            let last = g.raft().last_index();
            let shell = g.shell();
            shell.recovery.reopened(last);
            slog::warn!(shell.logger, "{} storage reopened after a failure; the group serves again", shell.kind;
                "group" => shell.group, "attempt" => a.number, "failure" => %a.reason, "last_index" => last);
            Next { reopened: true, ..Next::default() }
        }
        Err(e) => {
            let shell = g.shell();
            slog::warn!(shell.logger, "{} storage still failing", shell.kind; "group" => shell.group,
                "attempt" => a.number, "error" => %e);
            Next { timer: shell.recovery.reopen_failed(), ..Next::default() }
        }
    }
}

/// Readies a failed group's directory for a reopen: a probe write and fsync must go through
/// (reading needs no space, writing does, so a group on a full disk does not flap between
/// leading and failing), then the log is cut back after `cut_after` (anything after it was never
/// fsynced, hence never acknowledged) and fsynced. The caller then opens the group as at start.
pub fn prepare_reopen(
    dir: &Path,
    opts: LogOptions,
    cut_after: Option<u64>,
    group: GroupId,
    logger: &Logger,
) -> Result<(), OpenError> {
    let probe = dir.join("storage-probe.tmp");
    let wrote = std::fs::File::create(&probe)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &[0u8; 64 * 1024]).and_then(|_| f.sync_all()));
    let _ = std::fs::remove_file(&probe);
    wrote.map_err(|e| LogError::io(&probe, e))?;
    let (mut storage, _) = crate::raft::storage::GroupStorage::open(dir, opts, logger)?;
    let last = storage.log().last_index();
    if let Some(durable) = cut_after.filter(|d| last > *d) {
        slog::warn!(logger, "dropping log entries that were written but not fsynced before the failure";
            "group" => group, "from_index" => durable + 1, "last_index" => last);
        storage.log_mut().truncate_suffix(durable + 1)?;
    }
    storage.log_mut().sync()?;
    Ok(())
}
