//! Logging setup: slog to stderr through an async drain, filtered by level.

use slog::{Drain, Level, Logger};

/// A terminal logger at `level` ("error", "warn", "info", "debug", "trace").
pub fn terminal(level: &str) -> Logger {
    let level = match level {
        "error" => Level::Error,
        "warn" | "warning" => Level::Warning,
        "debug" => Level::Debug,
        "trace" => Level::Trace,
        _ => Level::Info,
    };
    let decorator = slog_term::PlainDecorator::new(std::io::stderr());
    let drain = slog_term::FullFormat::new(decorator).build().fuse();
    let drain = slog_async::Async::new(drain).chan_size(65536).build().fuse();
    Logger::root(drain.filter_level(level).fuse(), slog::o!())
}

/// A logger that drops everything (tests).
pub fn discard() -> Logger {
    Logger::root(slog::Discard, slog::o!())
}
