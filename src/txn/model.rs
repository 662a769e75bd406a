//! The transaction coordinator's data: one [`TxnMeta`] per transactional id (Kafka's
//! `TransactionMetadata`), kept in the `__meta` state and snapshot as the same prost message, and
//! the [`TxnCommand`]s that change it (entries of the `__meta` log). Commands carry the
//! proposer's wall-clock time, so every replica computes the same state.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::meta::command::OffsetEntry;

/// Kafka's `TransactionState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TxnState {
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
    Dead = 6,
    PrepareEpochFence = 7,
}

impl TxnState {
    /// Every state, in Kafka's order.
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    /// From the stored number (an unknown number reads as Dead).
    pub fn from_i32(v: i32) -> TxnState {
        Self::ALL.get(v as usize).copied().filter(|_| v >= 0).unwrap_or(TxnState::Dead)
    }

    /// Kafka's state name (DescribeTransactions, ListTransactions, `kafka-transactions.sh`).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// By Kafka's name.
    pub fn from_name(name: &str) -> Option<TxnState> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// One transactional id's state (Kafka's `TransactionMetadata`, without the pending in-memory
/// transition: a transition is one `__meta` entry, applied atomically).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct TxnMeta {
    #[prost(string, tag = "1")]
    pub transactional_id: String,
    #[prost(int64, tag = "2")]
    pub producer_id: i64,
    /// An `i16`, stored widened.
    #[prost(int32, tag = "3")]
    pub producer_epoch: i32,
    /// The producer id before the last rotation (-1: none), for KIP-360 retries.
    #[prost(int64, tag = "4")]
    pub last_producer_id: i64,
    /// The epoch before the last bump (-1: none), for KIP-360 retries.
    #[prost(int32, tag = "5")]
    pub last_producer_epoch: i32,
    #[prost(int32, tag = "6")]
    pub timeout_ms: i32,
    /// A [`TxnState`] number.
    #[prost(int32, tag = "7")]
    pub state: i32,
    /// The partitions of the ongoing (or preparing) transaction, topic by topic, sorted.
    #[prost(message, repeated, tag = "8")]
    pub partitions: Vec<TxnTopic>,
    /// Consumer groups whose offsets the transaction commits (AddOffsetsToTxn), sorted.
    #[prost(string, repeated, tag = "9")]
    pub groups: Vec<String>,
    /// TxnOffsetCommit offsets, committed by the command that completes a commit.
    #[prost(message, repeated, tag = "10")]
    pub pending_offsets: Vec<PendingOffsets>,
    /// When the transaction started (its first AddPartitions/AddOffsets); -1: none.
    #[prost(int64, tag = "11")]
    pub start_ms: i64,
    #[prost(int64, tag = "12")]
    pub last_update_ms: i64,
}

impl TxnMeta {
    pub fn state(&self) -> TxnState {
        TxnState::from_i32(self.state)
    }

    pub fn epoch(&self) -> i16 {
        self.producer_epoch as i16
    }

    /// Whether `topic`/`partition` is part of the transaction.
    pub fn has_partition(&self, topic: &str, partition: i32) -> bool {
        self.partitions.iter().any(|t| t.topic == topic && t.partitions.binary_search(&partition).is_ok())
    }

    /// Number of partitions in the transaction.
    pub fn partition_count(&self) -> usize {
        self.partitions.iter().map(|t| t.partitions.len()).sum()
    }

    /// Adds partitions, keeping topics and partitions sorted and unique.
    pub fn add_partitions(&mut self, add: &[TxnTopic]) {
        let mut all: BTreeMap<String, std::collections::BTreeSet<i32>> = BTreeMap::new();
        for t in self.partitions.iter().chain(add) {
            all.entry(t.topic.clone()).or_default().extend(t.partitions.iter().copied());
        }
        self.partitions =
            all.into_iter().map(|(topic, p)| TxnTopic { topic, partitions: p.into_iter().collect() }).collect();
    }
}

/// Some partitions of one topic.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct TxnTopic {
    #[prost(string, tag = "1")]
    pub topic: String,
    #[prost(int32, repeated, tag = "2")]
    pub partitions: Vec<i32>,
}

/// A group's offsets committed inside a transaction.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PendingOffsets {
    #[prost(string, tag = "1")]
    pub group: String,
    #[prost(message, repeated, tag = "2")]
    pub offsets: Vec<OffsetEntry>,
}

/// Every transactional id's state. Each entry is an `Arc`, so publishing a new `__meta` image
/// copies only the transaction that changed.
pub type TxnTable = BTreeMap<String, Arc<TxnMeta>>;

/// One change to transaction state (Cmd::Txn in the `__meta` log).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TxnCommand {
    #[prost(oneof = "TxnOp", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub op: Option<TxnOp>,
    /// The proposer's wall clock (ms since the epoch).
    #[prost(int64, tag = "15")]
    pub now_ms: i64,
}

/// The transitions.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum TxnOp {
    #[prost(message, tag = "1")]
    Init(InitTxn),
    #[prost(message, tag = "2")]
    AddPartitions(AddPartitions),
    #[prost(message, tag = "3")]
    AddGroup(AddGroup),
    #[prost(message, tag = "4")]
    CommitOffsets(TxnCommitOffsets),
    #[prost(message, tag = "5")]
    End(EndTxn),
    #[prost(message, tag = "6")]
    Complete(CompleteTxn),
    #[prost(message, tag = "7")]
    Expire(ExpireTxnIds),
}

/// InitProducerId with a transactional id.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InitTxn {
    #[prost(string, tag = "1")]
    pub transactional_id: String,
    #[prost(int32, tag = "2")]
    pub timeout_ms: i32,
    /// KIP-360: the producer id and epoch the producer had (-1/-1: none).
    #[prost(int64, tag = "3")]
    pub expected_producer_id: i64,
    #[prost(int32, tag = "4")]
    pub expected_epoch: i32,
}

/// AddPartitionsToTxn.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AddPartitions {
    #[prost(string, tag = "1")]
    pub transactional_id: String,
    #[prost(int64, tag = "2")]
    pub producer_id: i64,
    #[prost(int32, tag = "3")]
    pub producer_epoch: i32,
    #[prost(message, repeated, tag = "4")]
    pub partitions: Vec<TxnTopic>,
}

/// AddOffsetsToTxn.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AddGroup {
    #[prost(string, tag = "1")]
    pub transactional_id: String,
    #[prost(int64, tag = "2")]
    pub producer_id: i64,
    #[prost(int32, tag = "3")]
    pub producer_epoch: i32,
    #[prost(string, tag = "4")]
    pub group: String,
}

/// TxnOffsetCommit: offsets kept pending until the transaction commits.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TxnCommitOffsets {
    #[prost(string, tag = "1")]
    pub transactional_id: String,
    #[prost(int64, tag = "2")]
    pub producer_id: i64,
    #[prost(int32, tag = "3")]
    pub producer_epoch: i32,
    #[prost(string, tag = "4")]
    pub group: String,
    #[prost(message, repeated, tag = "5")]
    pub offsets: Vec<OffsetEntry>,
}

/// EndTxn from a client, or the coordinator's own abort (`from_client` false): of a timed-out
/// transaction, or of an ongoing one when a new producer initialises; `fence` bumps the epoch.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EndTxn {
    #[prost(string, tag = "1")]
    pub transactional_id: String,
    #[prost(int64, tag = "2")]
    pub producer_id: i64,
    #[prost(int32, tag = "3")]
    pub producer_epoch: i32,
    #[prost(bool, tag = "4")]
    pub commit: bool,
    #[prost(bool, tag = "5")]
    pub from_client: bool,
    #[prost(bool, tag = "6")]
    pub fence: bool,
}

/// Every partition has the marker: PrepareCommit → CompleteCommit, PrepareAbort → CompleteAbort.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CompleteTxn {
    #[prost(string, tag = "1")]
    pub transactional_id: String,
    #[prost(int64, tag = "2")]
    pub producer_id: i64,
    #[prost(int32, tag = "3")]
    pub producer_epoch: i32,
    #[prost(bool, tag = "4")]
    pub commit: bool,
}

/// Remove idle transactional ids (`transactional.id.expiration.ms`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExpireTxnIds {
    #[prost(message, repeated, tag = "1")]
    pub ids: Vec<ExpireTxnId>,
}

/// One id to remove, if it was not updated since the check.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExpireTxnId {
    #[prost(string, tag = "1")]
    pub transactional_id: String,
    #[prost(int64, tag = "2")]
    pub last_update_ms: i64,
}

/// What applying a transaction command answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnReply {
    /// A Kafka error code (NONE on success).
    pub error: i16,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The transaction after the command (None: it does not exist).
    pub txn: Option<Arc<TxnMeta>>,
}
