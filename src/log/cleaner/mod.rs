//! Log compaction (`cleanup.policy=compact` and `compact,delete`), as Kafka's log cleaner defines
//! it, on a log whose entries are Raft entries. The cleaner rewrites *sealed* segments below the
//! group's applied index entry by entry: every entry keeps its frame, raft index and term, only
//! the Kafka batch inside shrinks (surviving records keep their offsets; see `rewrite.rs`), and a
//! batch with no survivor becomes an entry without a batch whose context records the offset after
//! it ([`crate::log::COMPACTED_ENTRY`]), so that offsets, the high watermark and the log end
//! offset never move. The design and why Raft replication needs nothing more is in
//! `docs/architecture.md` ("Compaction").
//!
//! | module | responsibility |
//! | --- | --- |
//! | `offset_map` | the bounded key → latest offset map (Kafka's `SkimpyOffsetMap`) |
//! | `rewrite` | one batch: surviving records, codecs, the empty batch kept for a producer |
//! | `clean` | when to clean (dirty ratio, lags) and one run over a partition |
//! | `swap` | `.cleaned` → `.swap` → segment: the crash-safe replacement and its recovery |
//! | `install` | the log side, on the group actor: what may be cleaned, installing the result |
//! | `checkpoint` | per-partition "cleaned up to" offset and first-cleaned times |
//! | `rate` | the I/O rate limit (token bucket, injected clock) |
//! | `thread` | the node's cleaner thread: its mailbox, the limit, metrics, replies |

pub mod checkpoint;
pub mod clean;
pub mod install;
pub mod offset_map;
pub mod rate;
pub mod rewrite;
pub mod swap;
pub mod thread;

#[cfg(test)]
mod tests;

pub use checkpoint::Checkpoint;
pub use clean::{clean, dirty_ratio, plan, CleanJob, CleanOutcome, TxnFacts, TxnFate};
pub use install::SegmentSummary;
pub use thread::{CleanReply, Cleaner, CleanerMsg, CleanerOptions};

/// The compaction settings of one topic (its configs, else the `[cleaner]` defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionSettings {
    /// `delete.retention.ms`: how long tombstones stay after their segment was first cleaned.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: a segment holding a batch younger than this is not cleaned.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: clean when the oldest dirty batch is older, whatever the ratio.
    pub max_compaction_lag_ms: Option<i64>,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_ratio: f64,
}

impl Default for CompactionSettings {
    fn default() -> Self {
        CompactionSettings {
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: None,
            min_cleanable_ratio: 0.5,
        }
    }
}
