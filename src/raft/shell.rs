//! The group shell: what every group's actor does around its [`RaftCore`], written once for
//! the partition groups and `__meta`, free of actix.
//!
//! An actor embeds a [`GroupShell`] and implements [`Group`] (its policy: what happens after a
//! Ready round, on a storage failure and on a reopen). Its handlers call the functions here:
//! - [`drive`]: the Ready loop. Each round hands the messages to the transport, the write job
//!   to the disk writer (which sends the job's held appends to the transport itself once they
//!   are written, and whose `Synced` answer comes back as a [`ShellEvent`] through the actor's
//!   own message enum) and the round's role change and applied index to the policy.
//! - [`on_event`]: `Synced` makes the job durable (or fails the group); `Drained` (the writer's barrier) and `Recover` (the retry timer) drive the reopen.
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
        let synced = self.notify();
        let (transport, group) = (self.transport.clone(), self.group);
        job.submit(
            &self.writer,
            move |held| transport.send(group, held),
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
        ShellEvent::Synced { generation, number, result } => {
            match g.shell().recovery.synced(generation, number, result) {
                SyncedDecision::Ignore => Next::default(),
                SyncedDecision::Persisted(number) => {
                    g.raft().on_synced(number);
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
    // Entries below the raft start are durable whatever the durable index says: a snapshot
    // install (or a cleaned prefix) fsyncs them before the raft start moves past them.
    let floor = storage.log().raft_first_index() - 1;
    if let Some(durable) = cut_after.map(|d| d.max(floor)).filter(|d| last > *d) {
        slog::warn!(logger, "dropping log entries that were written but not fsynced before the failure";
            "group" => group, "from_index" => durable + 1, "last_index" => last);
        storage.log_mut().truncate_suffix(durable + 1)?;
    }
    storage.log_mut().sync()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::{mpsc, Mutex};

    use raft::eraftpb::Entry;

    use crate::log::LogKind;
    use crate::raft::core::Durability;
    use crate::raft::storage::GroupStorage;
    use crate::raft::GroupSettings;

    fn logger() -> Logger {
        Logger::root(slog::Discard, slog::o!())
    }

    #[derive(Default)]
    struct Sm(Vec<Vec<u8>>);

    impl StateMachine for Sm {
        fn apply(&mut self, entry: &Entry) {
            self.0.push(entry.data.to_vec());
        }
    }

    fn opts() -> LogOptions {
        LogOptions { segment_bytes: 1 << 20, index_interval_bytes: 4096, kind: LogKind::Opaque }
    }

    /// A one-voter group that campaigns at once; its state machine replays the log.
    fn open_core(dir: &Path) -> RaftCore<Sm> {
        let (mut storage, _) = GroupStorage::open(dir, opts(), &logger()).unwrap();
        if storage.is_new() {
            storage.initialize_voters(&[1]).unwrap();
        }
        let cfg = GroupSettings::for_tests().raft_config(storage.log().first_index() - 1);
        let mut core = RaftCore::new(9, &cfg, storage, Sm::default(), Durability::Fsync, logger()).unwrap();
        core.campaign().unwrap();
        core
    }

    /// A group whose policy records what the shell asked of it.
    struct TestGroup {
        core: RaftCore<Sm>,
        shell: GroupShell,
        dir: PathBuf,
        rounds: usize,
        failures: Vec<DiskError>,
        reopens: Vec<Option<u64>>,
        /// Reopen attempts that fail before one succeeds.
        refuse_reopens: u32,
    }

    impl Group for TestGroup {
        type Sm = Sm;

        fn shell(&mut self) -> &mut GroupShell {
            &mut self.shell
        }

        fn raft(&mut self) -> &mut RaftCore<Sm> {
            &mut self.core
        }

        fn after_round(&mut self, _: Option<RoleInfo>, _: Option<u64>) {
            self.rounds += 1;
        }

        fn on_failure(&mut self, reason: &DiskError) {
            self.failures.push(reason.clone());
        }

        fn reopen(&mut self, cut_after: Option<u64>) -> Result<(), OpenError> {
            if self.refuse_reopens > 0 {
                self.refuse_reopens -= 1;
                return Err(LogError::io(&self.dir, std::io::Error::from_raw_os_error(28)).into());
            }
            prepare_reopen(&self.dir, opts(), cut_after, 9, &logger())?;
            self.core = open_core(&self.dir);
            self.reopens.push(cut_after);
            Ok(())
        }
    }

    fn group(dir: &Path) -> (TestGroup, mpsc::Receiver<ShellEvent>, crate::raft::writer::WriterGuard) {
        let (writer, guard) = DiskWriter::start(1, logger());
        let core = open_core(dir);
        let mut shell = GroupShell::new(9, "test", core.last_index(), true, writer, Transport::local(1), logger());
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        shell.set_notify(Arc::new(move |e| {
            let _ = tx.lock().unwrap().send(e);
        }));
        let g = TestGroup {
            core,
            shell,
            dir: dir.to_path_buf(),
            rounds: 0,
            failures: Vec::new(),
            reopens: Vec::new(),
            refuse_reopens: 0,
        };
        (g, rx, guard)
    }

    /// Delivers the writer's answers (driving when asked) until `done` holds.
    fn pump(g: &mut TestGroup, rx: &mpsc::Receiver<ShellEvent>, done: impl Fn(&mut TestGroup) -> bool) -> Vec<Next> {
        let mut nexts = Vec::new();
        while !done(g) {
            let event = rx.recv_timeout(Duration::from_secs(10)).expect("an answer from the writer");
            let next = on_event(g, event, Instant::now());
            if next.drive {
                assert_eq!(drive(g), Next::default());
            }
            nexts.push(next);
        }
        nexts
    }

    fn applied(g: &mut TestGroup, data: &[u8]) -> bool {
        g.core.sm().0.iter().any(|d| d == data)
    }

    fn no_space() -> DiskError {
        DiskError::io(DiskOp::Write, Path::new("/full/0.log"), &std::io::Error::from_raw_os_error(28))
    }

    #[test]
    fn commits_through_the_writer_then_fails_drains_backs_off_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let (mut g, rx, _guard) = group(dir.path());
        assert_eq!(drive(&mut g), Next::default());
        assert!(g.core.is_leader() && g.rounds > 0);
        g.core.propose(b"a".to_vec()).unwrap();
        assert_eq!(drive(&mut g), Next::default());
        pump(&mut g, &rx, |g| applied(g, b"a"));
        let durable = g.core.last_index();

        // A job's write fails: the group fails once, stops driving, and the barrier follows.
        g.core.propose(b"lost".to_vec()).unwrap();
        assert_eq!(drive(&mut g), Next::default());
        let number = u64::MAX;
        let failed =
            on_event(&mut g, ShellEvent::Synced { generation: 0, number, result: Err(no_space()) }, Instant::now());
        assert_eq!(failed, Next::default());
        let again =
            on_event(&mut g, ShellEvent::Synced { generation: 0, number, result: Err(no_space()) }, Instant::now());
        assert_eq!(again, Next::default());
        assert_eq!(g.failures, vec![no_space()], "the policy hears of the failure once");
        assert!(g.shell.is_failed() && g.shell.failure_reason() == Some(&no_space()));
        g.core.propose(b"during".to_vec()).unwrap();
        let rounds = g.rounds;
        assert_eq!(drive(&mut g), Next::default());
        assert_eq!(g.rounds, rounds, "a failed group does not drive");
        // Every answer of the failed core is ignored; the barrier's answer sets the first timer.
        let nexts = pump(&mut g, &rx, |g| g.shell.recovery.failure().is_some_and(|f| f.drained));
        assert_eq!(nexts.last().unwrap().timer, Some(Duration::from_millis(500)));
        assert!(nexts.iter().all(|n| !n.drive && !n.reopened));

        // The first reopen fails (the disk is still full): the next timer is twice as long.
        g.refuse_reopens = 1;
        let next = on_event(&mut g, ShellEvent::Recover, Instant::now());
        assert_eq!(next, Next { timer: Some(Duration::from_secs(1)), ..Next::default() });
        assert!(g.shell.is_failed() && g.reopens.is_empty());
        // The second goes through: cut back to what was fsynced, next generation.
        let next = on_event(&mut g, ShellEvent::Recover, Instant::now());
        assert_eq!(next, Next { reopened: true, ..Next::default() });
        assert_eq!(g.reopens, vec![Some(durable)]);
        assert!(!g.shell.is_failed());
        assert_eq!(g.shell.generation(), 1);
        let late = ShellEvent::Synced { generation: 0, number: 1, result: Err(no_space()) };
        assert_eq!(on_event(&mut g, late, Instant::now()), Next::default(), "a late answer of the old core");
        assert!(!g.shell.is_failed());

        // The reopened group replays what was committed, never what failed, and commits again.
        assert_eq!(drive(&mut g), Next::default());
        g.core.propose(b"b".to_vec()).unwrap();
        assert_eq!(drive(&mut g), Next::default());
        pump(&mut g, &rx, |g| applied(g, b"b"));
        assert!(applied(&mut g, b"a"));
        assert!(!applied(&mut g, b"lost") && !applied(&mut g, b"during"));
    }

    #[test]
    fn a_reopen_never_cuts_below_the_raft_start() {
        let dir = tempfile::tempdir().unwrap();
        let o = LogOptions { segment_bytes: 300, index_interval_bytes: 256, kind: LogKind::KafkaBatches };
        let (mut log, _) = crate::log::PartitionLog::open(dir.path(), o.clone(), &logger()).unwrap();
        crate::log::partition_log::tests::fill(&mut log, 1, 7, 1); // [1,2] [3,4] [5,6] [7]
        log.sync().unwrap();
        assert!(log.set_raft_start(5).unwrap());
        drop(log);
        // A durable index from before an install (2) would cut inside the sealed prefix.
        prepare_reopen(dir.path(), o.clone(), Some(2), 9, &logger()).unwrap();
        let (log, _) = crate::log::PartitionLog::open(dir.path(), o, &logger()).unwrap();
        assert_eq!((log.first_index(), log.raft_first_index(), log.last_index()), (1, 5, 4));
    }
}
