//! The logger raft-rs gets for a partition group: raft-rs logs a dozen INFO lines per group at
//! start-up and per election (`newRaft`, `switched to configuration`, `became follower`,
//! `broadcasting vote request`, `received votes response`, ...), which is 900,000 lines per node
//! when 10,000 groups start and overflows the async log channel. [`for_partition`] keeps
//! raft-rs's warnings and errors and, at INFO, only the election lines the operators and the
//! interop tests read ([`KEPT`]: a campaign, a candidacy, a won election, a vote cast); the rest
//! of raft-rs's INFO lines of partition groups are dropped. chronik's own one-line-per-event
//! logs ("partition started", "leader elected") do not go through it, and `__meta` keeps all of
//! raft-rs's lines.

use std::fmt::Write as _;

use slog::{Drain, Level, Logger, OwnedKVList, Record};

/// The raft-rs INFO messages kept for partition groups (matched at the start of the message).
pub const KEPT: &[&str] =
    &["starting a new election", "became pre-candidate", "became candidate", "became leader", "[logterm:"];

/// Whether raft-rs's message `msg` at `level` reaches the log of a partition group.
pub fn kept(level: Level, msg: &str) -> bool {
    if level.is_at_least(Level::Warning) {
        return true;
    }
    // "[logterm: ..] cast vote for" and "[logterm: ..] rejected vote from": one line per vote.
    level == Level::Info && KEPT.iter().any(|k| msg.starts_with(k)) && (!msg.starts_with('[') || msg.contains(" vote "))
}

/// Passes on the records [`kept`] keeps.
struct Filter(Logger);

impl Drain for Filter {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        let level = record.level();
        if !level.is_at_least(Level::Info) {
            return Ok(());
        }
        let keep = match record.msg().as_str() {
            Some(s) => kept(level, s),
            None => {
                let mut s = String::with_capacity(64);
                let _ = write!(s, "{}", record.msg());
                kept(level, &s)
            }
        };
        if keep {
            Drain::log(&self.0, record, values)
        } else {
            Ok(())
        }
    }
}

/// The logger for raft-rs in a partition group: `logger`, with [`kept`]'s filter.
pub fn for_partition(logger: &Logger) -> Logger {
    // The group's key-values (raft_id, partition, topic) stay with `logger`'s own.
    Logger::root(Filter(logger.clone()), slog::o!())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn keeps_warnings_and_the_election_lines_only() {
        assert!(kept(Level::Warning, "stepped down to follower since quorum is not active"));
        assert!(kept(Level::Error, "anything"));
        assert!(kept(Level::Info, "starting a new election"));
        assert!(kept(Level::Info, "became pre-candidate at term 0"));
        assert!(kept(Level::Info, "became candidate at term 1"));
        assert!(kept(Level::Info, "became leader at term 1"));
        assert!(kept(Level::Info, "[logterm: 0, index: 0, vote: 0] cast vote for 2 [logterm: 0, index: 0] at term 0"));
        assert!(!kept(Level::Info, "became follower at term 0"));
        assert!(!kept(Level::Info, "newRaft"));
        assert!(!kept(Level::Info, "switched to configuration"));
        assert!(!kept(Level::Info, "broadcasting vote request"));
        assert!(!kept(Level::Info, "received votes response"));
        assert!(!kept(Level::Info, "received a message with higher term from 2"));
        assert!(!kept(Level::Info, "[logterm: 1, index: 3] other"));
        assert!(!kept(Level::Debug, "became leader at term 1"));
    }

    /// Collects the messages that reach it.
    struct Sink(Arc<Mutex<Vec<String>>>);

    impl Drain for Sink {
        type Ok = ();
        type Err = slog::Never;
        fn log(&self, r: &Record, _: &OwnedKVList) -> Result<(), slog::Never> {
            self.0.lock().unwrap().push(r.msg().to_string());
            Ok(())
        }
    }

    #[test]
    fn the_filtered_logger_drops_start_up_lines_and_passes_elections() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let root = Logger::root(Sink(lines.clone()), slog::o!());
        let log = for_partition(&root);
        slog::info!(log, "newRaft"; "term" => 0);
        slog::info!(log, "became follower at term {term}", term = 0);
        slog::info!(log, "became leader at term {term}", term = 3);
        slog::warn!(log, "stepped down to follower since quorum is not active");
        assert_eq!(
            *lines.lock().unwrap(),
            ["became leader at term 3", "stepped down to follower since quorum is not active"]
        );
    }
}
