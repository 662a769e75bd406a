//! The transaction coordinator's state machine: Kafka's `TransactionCoordinator` transitions
//! and error codes as pure functions over the [`TxnTable`]. [`apply`] runs inside the `__meta`
//! state machine (so every replica computes the same state); [`timed_out`] and [`expired`] are
//! the coordinator's timers, deciding from an image and a time what to propose. Nothing here
//! reads a clock: time comes in the command or as an argument.

use std::sync::Arc;

use super::code;
use super::model::*;
use crate::meta::command::OffsetEntry;

/// Kafka's `RecordBatch.NO_PRODUCER_EPOCH` / `NO_PRODUCER_ID`.
pub const NO_EPOCH: i32 = -1;
pub const NO_PRODUCER_ID: i64 = -1;

/// The outcome of one command: the reply, and the offsets a completed commit makes visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub reply: TxnReply,
    pub commit_offsets: Vec<PendingOffsets>,
}

/// Kafka's `isEpochExhausted`: an epoch this high cannot be bumped twice more.
pub fn epoch_exhausted(epoch: i32) -> bool {
    epoch >= i32::from(i16::MAX) - 1
}

/// `transaction.timeout.ms` must be in `1..=max` (INVALID_TRANSACTION_TIMEOUT).
pub fn check_timeout(timeout_ms: i32, max_ms: i64) -> Result<(), i16> {
    if timeout_ms <= 0 || i64::from(timeout_ms) > max_ms {
        Err(code::INVALID_TRANSACTION_TIMEOUT)
    } else {
        Ok(())
    }
}

fn reply(error: i16, txn: Option<&Arc<TxnMeta>>) -> Applied {
    Applied {
        reply: TxnReply {
            error,
            producer_id: txn.map_or(NO_PRODUCER_ID, |t| t.producer_id),
            producer_epoch: txn.map_or(-1, |t| t.epoch()),
            txn: txn.cloned(),
        },
        commit_offsets: Vec::new(),
    }
}

/// Applies one command. `next_producer_id` is `__meta`'s producer-id counter (shared with
/// idempotent producers).
pub fn apply(txns: &mut TxnTable, next_producer_id: &mut i64, cmd: &TxnCommand) -> Applied {
    let now = cmd.now_ms;
    let Some(op) = &cmd.op else { return reply(code::INVALID_REQUEST, None) };
    match op {
        TxnOp::Init(i) => init(txns, next_producer_id, i, now),
        TxnOp::AddPartitions(a) => {
            let Some(t) = txns.get_mut(&a.transactional_id) else {
                return reply(code::INVALID_PRODUCER_ID_MAPPING, None);
            };
            if let Err(e) = check_adding(t, a.producer_id, a.producer_epoch) {
                return reply(e, Some(t));
            }
            let all_in = a.partitions.iter().all(|tp| tp.partitions.iter().all(|p| t.has_partition(&tp.topic, *p)));
            if t.state() == TxnState::Ongoing && all_in {
                return reply(code::NONE, Some(t));
            }
            let m = Arc::make_mut(t);
            begin(m, now);
            m.add_partitions(&a.partitions);
            reply(code::NONE, Some(t))
        }
        TxnOp::AddGroup(a) => {
            let Some(t) = txns.get_mut(&a.transactional_id) else {
                return reply(code::INVALID_PRODUCER_ID_MAPPING, None);
            };
            if let Err(e) = check_adding(t, a.producer_id, a.producer_epoch) {
                return reply(e, Some(t));
            }
            let m = Arc::make_mut(t);
            begin(m, now);
            if let Err(at) = m.groups.binary_search(&a.group) {
                m.groups.insert(at, a.group.clone());
            }
            reply(code::NONE, Some(t))
        }
        TxnOp::CommitOffsets(c) => {
            let Some(t) = txns.get_mut(&c.transactional_id) else {
                return reply(code::INVALID_PRODUCER_ID_MAPPING, None);
            };
            if t.producer_id != c.producer_id {
                return reply(code::INVALID_PRODUCER_ID_MAPPING, Some(t));
            }
            if t.producer_epoch != c.producer_epoch {
                return reply(code::INVALID_PRODUCER_EPOCH, Some(t));
            }
            if t.state() != TxnState::Ongoing || t.groups.binary_search(&c.group).is_err() {
                return reply(code::INVALID_TXN_STATE, Some(t));
            }
            let m = Arc::make_mut(t);
            m.last_update_ms = now;
            let pending = match m.pending_offsets.iter_mut().position(|p| p.group == c.group) {
                Some(i) => &mut m.pending_offsets[i],
                None => {
                    m.pending_offsets.push(PendingOffsets { group: c.group.clone(), offsets: Vec::new() });
                    m.pending_offsets.last_mut().expect("pushed")
                }
            };
            for o in &c.offsets {
                match pending.offsets.iter_mut().find(|p| p.topic == o.topic && p.partition == o.partition) {
                    Some(p) => *p = o.clone(),
                    None => pending.offsets.push(o.clone()),
                }
            }
            reply(code::NONE, Some(t))
        }
        TxnOp::End(e) => end(txns, e, now),
        TxnOp::Complete(c) => {
            let Some(t) = txns.get_mut(&c.transactional_id) else {
                return reply(code::INVALID_PRODUCER_ID_MAPPING, None);
            };
            let expected = if c.commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
            if t.producer_id != c.producer_id || t.producer_epoch != c.producer_epoch || t.state() != expected {
                return reply(code::INVALID_TXN_STATE, Some(t));
            }
            let m = Arc::make_mut(t);
            m.state = if c.commit { TxnState::CompleteCommit } else { TxnState::CompleteAbort } as i32;
            m.partitions.clear();
            m.groups.clear();
            let offsets = std::mem::take(&mut m.pending_offsets);
            m.last_update_ms = now;
            let mut out = reply(code::NONE, Some(t));
            if c.commit {
                out.commit_offsets = offsets;
            }
            out
        }
        TxnOp::Expire(x) => {
            for id in &x.ids {
                let idle = txns.get(&id.transactional_id).is_some_and(|t| {
                    t.last_update_ms == id.last_update_ms
                        && matches!(t.state(), TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort)
                });
                if idle {
                    txns.remove(&id.transactional_id);
                }
            }
            reply(code::NONE, None)
        }
    }
}

/// Kafka's checks before AddPartitionsToTxn and AddOffsetsToTxn change anything.
fn check_adding(t: &TxnMeta, producer_id: i64, epoch: i32) -> Result<(), i16> {
    if t.producer_id != producer_id {
        Err(code::INVALID_PRODUCER_ID_MAPPING)
    } else if t.producer_epoch != epoch {
        Err(code::PRODUCER_FENCED)
    } else if matches!(t.state(), TxnState::PrepareCommit | TxnState::PrepareAbort) {
        Err(code::CONCURRENT_TRANSACTIONS)
    } else {
        Ok(())
    }
}

/// Enters (or stays in) Ongoing: a new transaction starts with empty partitions and offsets.
fn begin(m: &mut TxnMeta, now: i64) {
    if m.state() != TxnState::Ongoing {
        m.start_ms = now;
        m.partitions.clear();
        m.groups.clear();
        m.pending_offsets.clear();
    }
    m.state = TxnState::Ongoing as i32;
    m.last_update_ms = now;
}

fn allocate(next_producer_id: &mut i64) -> i64 {
    let id = *next_producer_id;
    *next_producer_id += 1;
    id
}

/// InitProducerId with a transactional id (Kafka's `handleInitProducerId`).
fn init(txns: &mut TxnTable, next_producer_id: &mut i64, i: &InitTxn, now: i64) -> Applied {
    let expected = (i.expected_producer_id != NO_PRODUCER_ID || i.expected_epoch != NO_EPOCH)
        .then_some((i.expected_producer_id, i.expected_epoch));
    let Some(t) = txns.get_mut(&i.transactional_id) else {
        let t = Arc::new(TxnMeta {
            transactional_id: i.transactional_id.clone(),
            producer_id: allocate(next_producer_id),
            producer_epoch: 0,
            last_producer_id: NO_PRODUCER_ID,
            last_producer_epoch: NO_EPOCH,
            timeout_ms: i.timeout_ms,
            state: TxnState::Empty as i32,
            start_ms: -1,
            last_update_ms: now,
            ..Default::default()
        });
        txns.insert(i.transactional_id.clone(), t.clone());
        return reply(code::NONE, Some(&t));
    };
    // KIP-360: a producer that names its old id is fenced unless it is this transaction's
    // producer (or a retry after a rotation it did not hear about).
    if let Some((pid, epoch)) = expected {
        let valid = t.producer_epoch == NO_EPOCH
            || pid == t.producer_id
            || (pid == t.last_producer_id && epoch_exhausted(epoch));
        if !valid {
            return reply(code::PRODUCER_FENCED, Some(t));
        }
    }
    match t.state() {
        TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence | TxnState::Dead => {
            reply(code::CONCURRENT_TRANSACTIONS, Some(t))
        }
        TxnState::Ongoing => {
            // Abort the pending transaction with a bumped epoch (fencing its producer); the
            // client retries on CONCURRENT_TRANSACTIONS until the abort completes.
            let m = Arc::make_mut(t);
            fence_and_abort(m, now);
            reply(code::CONCURRENT_TRANSACTIONS, Some(t))
        }
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
            let m = Arc::make_mut(t);
            if epoch_exhausted(m.producer_epoch) && expected.is_none_or(|(_, e)| e == m.producer_epoch) {
                // Rotation: a new producer id at epoch 0.
                let record = expected.is_some();
                m.last_producer_id = if record { m.producer_id } else { NO_PRODUCER_ID };
                m.last_producer_epoch = if record { m.producer_epoch } else { NO_EPOCH };
                m.producer_id = allocate(next_producer_id);
                m.producer_epoch = 0;
            } else {
                match expected.map(|(_, e)| e) {
                    None => {
                        m.producer_epoch += 1;
                        m.last_producer_epoch = NO_EPOCH;
                    }
                    Some(e) if m.producer_epoch == NO_EPOCH || e == m.producer_epoch => {
                        m.last_producer_epoch = m.producer_epoch;
                        m.producer_epoch += 1;
                    }
                    // A retry of a bump the producer did not hear about.
                    Some(e) if e == m.last_producer_epoch => {}
                    Some(_) => return reply(code::PRODUCER_FENCED, Some(t)),
                }
            }
            m.timeout_ms = i.timeout_ms;
            m.state = TxnState::Empty as i32;
            m.partitions.clear();
            m.groups.clear();
            m.pending_offsets.clear();
            m.start_ms = -1;
            m.last_update_ms = now;
            reply(code::NONE, Some(t))
        }
    }
}

/// Bumps the epoch (unless it is at the maximum) and moves an ongoing transaction to
/// PrepareAbort: Kafka's `prepareFenceProducerEpoch` followed by an abort not from the client.
fn fence_and_abort(m: &mut TxnMeta, now: i64) {
    if m.producer_epoch < i32::from(i16::MAX) {
        m.producer_epoch += 1;
    }
    m.last_producer_epoch = NO_EPOCH;
    m.state = TxnState::PrepareAbort as i32;
    m.last_update_ms = now;
}

/// EndTxn (Kafka's `handleEndTransaction`).
fn end(txns: &mut TxnTable, e: &EndTxn, now: i64) -> Applied {
    let Some(t) = txns.get_mut(&e.transactional_id) else {
        return reply(code::INVALID_PRODUCER_ID_MAPPING, None);
    };
    if t.producer_id != e.producer_id {
        return reply(code::INVALID_PRODUCER_ID_MAPPING, Some(t));
    }
    if (e.from_client && e.producer_epoch != t.producer_epoch) || e.producer_epoch < t.producer_epoch {
        return reply(code::PRODUCER_FENCED, Some(t));
    }
    match (t.state(), e.commit) {
        (TxnState::Ongoing, commit) => {
            let m = Arc::make_mut(t);
            if e.fence && !commit {
                fence_and_abort(m, now);
            } else {
                m.state = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort } as i32;
                m.last_update_ms = now;
            }
            reply(code::NONE, Some(t))
        }
        // Retries of an EndTxn that already completed.
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => reply(code::NONE, Some(t)),
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
            reply(code::CONCURRENT_TRANSACTIONS, Some(t))
        }
        _ => reply(code::INVALID_TXN_STATE, Some(t)),
    }
}

/// What the coordinator's abort timer proposes: every ongoing transaction older than its
/// timeout is aborted with a bumped epoch (Kafka's `abortTimedOutTransactions`).
pub fn timed_out(txns: &TxnTable, now: i64) -> Vec<EndTxn> {
    txns.values()
        .filter(|t| t.state() == TxnState::Ongoing && t.start_ms >= 0)
        .filter(|t| t.start_ms.saturating_add(i64::from(t.timeout_ms)) < now)
        .map(|t| EndTxn {
            transactional_id: t.transactional_id.clone(),
            producer_id: t.producer_id,
            producer_epoch: t.producer_epoch,
            commit: false,
            from_client: false,
            fence: true,
        })
        .collect()
}

/// Most ids one expiry command removes (the next run takes the rest), so one `__meta` entry
/// stays small.
pub const MAX_EXPIRED_PER_COMMAND: usize = 1000;

/// What the removal timer proposes: ids idle (Empty or complete) for `expiration_ms`, at most
/// [`MAX_EXPIRED_PER_COMMAND`].
pub fn expired(txns: &TxnTable, now: i64, expiration_ms: i64) -> ExpireTxnIds {
    ExpireTxnIds {
        ids: txns
            .values()
            .filter(|t| matches!(t.state(), TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort))
            .filter(|t| t.last_update_ms.saturating_add(expiration_ms) <= now)
            .take(MAX_EXPIRED_PER_COMMAND)
            .map(|t| ExpireTxnId { transactional_id: t.transactional_id.clone(), last_update_ms: t.last_update_ms })
            .collect(),
    }
}

/// Transactions whose markers must be written: every Prepare* one.
pub fn preparing(txns: &TxnTable) -> impl Iterator<Item = &Arc<TxnMeta>> {
    txns.values().filter(|t| matches!(t.state(), TxnState::PrepareCommit | TxnState::PrepareAbort))
}

/// KIP-890 verification (AddPartitionsToTxn v4+ `verify_only`): per partition NONE if it is in
/// the transaction, else TRANSACTION_ABORTABLE; or one error for all.
pub fn verify(txns: &TxnTable, id: &str, producer_id: i64, epoch: i32, topic: &str, partitions: &[i32]) -> Vec<i16> {
    let error = match txns.get(id) {
        None => Some(code::INVALID_PRODUCER_ID_MAPPING),
        Some(t) if t.producer_id != producer_id => Some(code::INVALID_PRODUCER_ID_MAPPING),
        Some(t) if t.producer_epoch != epoch => Some(code::PRODUCER_FENCED),
        Some(_) => None,
    };
    partitions
        .iter()
        .map(|p| match error {
            Some(e) => e,
            None if txns[id].has_partition(topic, *p) => code::NONE,
            None => code::TRANSACTION_ABORTABLE,
        })
        .collect()
}

/// An offset entry (for building TxnOffsetCommit commands in tests and handlers).
pub fn offset(topic: &str, partition: i32, offset: i64) -> OffsetEntry {
    OffsetEntry { topic: topic.into(), partition, offset, leader_epoch: -1, metadata: String::new() }
}
