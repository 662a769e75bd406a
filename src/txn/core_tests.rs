//! Tests of the coordinator's state machine, through the `__meta` state it lives in (so the
//! offsets a commit completes, the shared producer-id counter and the snapshot are covered).

use std::time::Duration;

use super::code;
use super::core::{self, offset};
use super::model::*;
use crate::clock::ManualClock;
use crate::meta::command::*;
use crate::meta::state::{MetaResult, MetaState};

struct World {
    state: MetaState,
    clock: ManualClock,
}

impl World {
    fn new() -> Self {
        let mut state = MetaState::new();
        state.apply(&MetaCommand::new(Cmd::RegisterBroker(RegisterBroker {
            node_id: 1,
            host: "h".into(),
            port: 9092,
            cluster_id: "c".into(),
            ..Default::default()
        })));
        state.apply(&MetaCommand::new(Cmd::CreateTopic(CreateTopic {
            name: "t".into(),
            topic_id: vec![1; 16],
            partitions: 6,
            replication_factor: 1,
            configs: Default::default(),
            assignment: Vec::new(),
            placement: 0,
        })));
        World { state, clock: ManualClock::new(1_000_000) }
    }

    fn run(&mut self, op: TxnOp) -> TxnReply {
        let now_ms = self.clock.shared().unix_millis();
        match self.state.apply(&MetaCommand::new(Cmd::Txn(TxnCommand { op: Some(op), now_ms }))) {
            MetaResult::Txn(r) => r,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn init(&mut self, id: &str, expected: (i64, i32)) -> TxnReply {
        self.run(TxnOp::Init(InitTxn {
            transactional_id: id.into(),
            timeout_ms: 60_000,
            expected_producer_id: expected.0,
            expected_epoch: expected.1,
        }))
    }

    fn add(&mut self, id: &str, r: &TxnReply, partitions: &[i32]) -> TxnReply {
        self.run(TxnOp::AddPartitions(AddPartitions {
            transactional_id: id.into(),
            producer_id: r.producer_id,
            producer_epoch: r.producer_epoch.into(),
            partitions: vec![TxnTopic { topic: "t".into(), partitions: partitions.to_vec() }],
        }))
    }

    fn end(&mut self, id: &str, r: &TxnReply, commit: bool) -> TxnReply {
        self.run(TxnOp::End(EndTxn {
            transactional_id: id.into(),
            producer_id: r.producer_id,
            producer_epoch: r.producer_epoch.into(),
            commit,
            from_client: true,
            fence: false,
        }))
    }

    fn complete(&mut self, t: &TxnMeta, commit: bool) -> TxnReply {
        self.run(TxnOp::Complete(CompleteTxn {
            transactional_id: t.transactional_id.clone(),
            producer_id: t.producer_id,
            producer_epoch: t.producer_epoch,
            commit,
        }))
    }

    fn txn(&self, id: &str) -> &TxnMeta {
        &self.state.transactions[id]
    }
}

#[test]
fn begin_add_commit_makes_offsets_visible_only_on_completion() {
    let mut w = World::new();
    let p = w.init("tx", (-1, -1));
    assert_eq!((p.error, p.producer_epoch), (code::NONE, 0));
    assert_eq!(w.txn("tx").state(), TxnState::Empty);
    assert_eq!(w.add("tx", &p, &[3, 1]).error, code::NONE);
    assert_eq!(w.add("tx", &p, &[1, 5]).error, code::NONE);
    assert_eq!(w.txn("tx").partitions, vec![TxnTopic { topic: "t".into(), partitions: vec![1, 3, 5] }]);
    assert_eq!(w.txn("tx").start_ms, 1_000_000);
    let group = |p: &TxnReply| {
        TxnOp::AddGroup(AddGroup {
            transactional_id: "tx".into(),
            producer_id: p.producer_id,
            producer_epoch: p.producer_epoch.into(),
            group: "g".into(),
        })
    };
    let commit_offsets = |p: &TxnReply, group: &str, o: i64| {
        TxnOp::CommitOffsets(TxnCommitOffsets {
            transactional_id: "tx".into(),
            producer_id: p.producer_id,
            producer_epoch: p.producer_epoch.into(),
            group: group.into(),
            offsets: vec![offset("t", 0, o)],
        })
    };
    // Offsets of a group not added with AddOffsetsToTxn are refused.
    assert_eq!(w.run(commit_offsets(&p, "g", 7)).error, code::INVALID_TXN_STATE);
    assert_eq!(w.run(group(&p)).error, code::NONE);
    assert_eq!(w.run(commit_offsets(&p, "g", 7)).error, code::NONE);
    assert_eq!(w.run(commit_offsets(&p, "g", 9)).error, code::NONE);
    assert!(w.state.committed("g", "t", 0).is_none(), "pending offsets are not visible");
    w.clock.advance(Duration::from_millis(5));
    let prepared = w.end("tx", &p, true);
    assert_eq!(prepared.error, code::NONE);
    let t = prepared.txn.unwrap();
    assert_eq!(t.state(), TxnState::PrepareCommit);
    assert_eq!(core::preparing(&w.state.transactions).count(), 1);
    assert!(w.state.committed("g", "t", 0).is_none(), "not visible while the markers are written");
    // A retry while preparing, and a conflicting abort.
    assert_eq!(w.end("tx", &p, true).error, code::CONCURRENT_TRANSACTIONS);
    assert_eq!(w.end("tx", &p, false).error, code::INVALID_TXN_STATE);
    assert_eq!(w.add("tx", &p, &[0]).error, code::CONCURRENT_TRANSACTIONS);
    // Completing with the wrong result changes nothing.
    assert_eq!(w.complete(&t, false).error, code::INVALID_TXN_STATE);
    assert_eq!(w.complete(&t, true).error, code::NONE);
    let c = w.state.committed("g", "t", 0).unwrap();
    assert_eq!((c.offset, c.commit_timestamp), (9, 1_000_005));
    let t = w.txn("tx");
    assert_eq!(t.state(), TxnState::CompleteCommit);
    assert!(t.partitions.is_empty() && t.groups.is_empty() && t.pending_offsets.is_empty());
    assert_eq!(w.end("tx", &p, true).error, code::NONE, "a retried commit succeeds");
    assert_eq!(w.end("tx", &p, false).error, code::INVALID_TXN_STATE);
    // The next transaction starts afresh.
    assert_eq!(w.add("tx", &p, &[2]).error, code::NONE);
    assert_eq!(w.txn("tx").partition_count(), 1);
}

#[test]
fn abort_drops_pending_offsets() {
    let mut w = World::new();
    let p = w.init("tx", (-1, -1));
    w.add("tx", &p, &[0]);
    w.run(TxnOp::AddGroup(AddGroup {
        transactional_id: "tx".into(),
        producer_id: p.producer_id,
        producer_epoch: 0,
        group: "g".into(),
    }));
    w.run(TxnOp::CommitOffsets(TxnCommitOffsets {
        transactional_id: "tx".into(),
        producer_id: p.producer_id,
        producer_epoch: 0,
        group: "g".into(),
        offsets: vec![offset("t", 0, 4)],
    }));
    let t = w.end("tx", &p, false).txn.unwrap();
    assert_eq!(t.state(), TxnState::PrepareAbort);
    assert_eq!(w.complete(&t, false).error, code::NONE);
    assert_eq!(w.txn("tx").state(), TxnState::CompleteAbort);
    assert!(w.state.committed("g", "t", 0).is_none());
    assert!(!w.state.offsets.contains_key("g"));
}

#[test]
fn bad_input_gets_kafkas_codes_and_changes_nothing() {
    let mut w = World::new();
    let p = w.init("tx", (-1, -1));
    let before = w.state.clone();
    // EndTxn without a transaction.
    assert_eq!(w.end("tx", &p, true).error, code::INVALID_TXN_STATE);
    assert_eq!(w.end("tx", &p, false).error, code::INVALID_TXN_STATE);
    assert_eq!(w.end("nope", &p, true).error, code::INVALID_PRODUCER_ID_MAPPING);
    // A stale epoch, another producer id.
    let stale = TxnReply { producer_epoch: -1, ..p.clone() };
    assert_eq!(w.add("tx", &stale, &[0]).error, code::PRODUCER_FENCED);
    let other = TxnReply { producer_id: p.producer_id + 100, ..p.clone() };
    assert_eq!(w.add("tx", &other, &[0]).error, code::INVALID_PRODUCER_ID_MAPPING);
    assert_eq!(w.add("nope", &p, &[0]).error, code::INVALID_PRODUCER_ID_MAPPING);
    assert_eq!(w.state, before, "nothing was written");
    assert_eq!(core::check_timeout(900_001, 900_000), Err(code::INVALID_TRANSACTION_TIMEOUT));
    assert_eq!(core::check_timeout(0, 900_000), Err(code::INVALID_TRANSACTION_TIMEOUT));
    assert_eq!(core::check_timeout(900_000, 900_000), Ok(()));
}

#[test]
fn timed_out_transactions_are_aborted_and_their_producer_fenced() {
    let mut w = World::new();
    let p = w.init("tx", (-1, -1));
    w.add("tx", &p, &[0, 1]);
    w.clock.advance(Duration::from_secs(60));
    assert!(core::timed_out(&w.state.transactions, w.clock.shared().unix_millis()).is_empty(), "not yet");
    w.clock.advance(Duration::from_millis(1));
    let due = core::timed_out(&w.state.transactions, w.clock.shared().unix_millis());
    assert_eq!(due.len(), 1);
    let r = w.run(TxnOp::End(due[0].clone()));
    assert_eq!((r.error, r.producer_epoch), (code::NONE, 1), "the epoch is bumped");
    let t = r.txn.unwrap();
    assert_eq!(t.state(), TxnState::PrepareAbort);
    // The old producer is fenced.
    assert_eq!(w.end("tx", &p, true).error, code::PRODUCER_FENCED);
    assert_eq!(w.add("tx", &p, &[2]).error, code::PRODUCER_FENCED);
    assert_eq!(w.complete(&t, false).error, code::NONE);
    assert_eq!(w.end("tx", &p, false).error, code::PRODUCER_FENCED);
    // Applying the same timeout again (a duplicate proposal) changes nothing.
    let again = w.run(TxnOp::End(due[0].clone()));
    assert_eq!(again.error, code::PRODUCER_FENCED);
    assert_eq!(w.txn("tx").producer_epoch, 1);
}

#[test]
fn a_new_producer_fences_the_old_one_and_aborts_its_transaction() {
    let mut w = World::new();
    let old = w.init("tx", (-1, -1));
    w.add("tx", &old, &[0]);
    let first = w.init("tx", (-1, -1));
    assert_eq!(first.error, code::CONCURRENT_TRANSACTIONS);
    let t = first.txn.unwrap();
    assert_eq!((t.state(), t.producer_epoch), (TxnState::PrepareAbort, 1));
    // Retries while the abort's markers are written.
    assert_eq!(w.init("tx", (-1, -1)).error, code::CONCURRENT_TRANSACTIONS);
    w.complete(&t, false);
    let new = w.init("tx", (-1, -1));
    assert_eq!((new.error, new.producer_id, new.producer_epoch), (code::NONE, old.producer_id, 2));
    assert_eq!(w.end("tx", &old, true).error, code::PRODUCER_FENCED);
    assert_eq!(w.add("tx", &old, &[0]).error, code::PRODUCER_FENCED);
    assert_eq!(w.add("tx", &new, &[0]).error, code::NONE);
    // Ids are allocated from the same counter as idempotent producers.
    let other = w.init("other", (-1, -1));
    assert_eq!(other.producer_id, old.producer_id + 1);
    assert_eq!(w.state.next_producer_id, other.producer_id + 1);
}

#[test]
fn kip_360_retries_and_epoch_exhaustion() {
    let mut w = World::new();
    let p = w.init("tx", (-1, -1));
    // The producer re-initialises with its id and epoch: bumped, and a retry of that answers
    // the same epoch.
    let bumped = w.init("tx", (p.producer_id, 0));
    assert_eq!((bumped.error, bumped.producer_epoch), (code::NONE, 1));
    let retry = w.init("tx", (p.producer_id, 0));
    assert_eq!((retry.error, retry.producer_epoch), (code::NONE, 1));
    // A stale epoch or an unknown producer id is fenced.
    w.init("tx", (p.producer_id, 1));
    assert_eq!(w.init("tx", (p.producer_id, 0)).error, code::PRODUCER_FENCED);
    assert_eq!(w.init("tx", (p.producer_id + 7, 0)).error, code::PRODUCER_FENCED);
    // At the last epoch, a new producer id.
    let exhausted = i32::from(i16::MAX) - 1;
    let m = std::sync::Arc::make_mut(w.state.transactions.get_mut("tx").unwrap());
    m.producer_epoch = exhausted;
    let rotated = w.init("tx", (p.producer_id, exhausted));
    assert_eq!(rotated.error, code::NONE);
    assert_ne!(rotated.producer_id, p.producer_id);
    assert_eq!(rotated.producer_epoch, 0);
    assert_eq!(w.txn("tx").last_producer_id, p.producer_id);
    // The old id with its exhausted epoch is a retry, not a fence.
    assert_eq!(w.init("tx", (p.producer_id, exhausted)).error, code::NONE);
}

#[test]
fn verification_and_expiry() {
    let mut w = World::new();
    let p = w.init("tx", (-1, -1));
    w.add("tx", &p, &[1]);
    let txns = &w.state.transactions;
    assert_eq!(core::verify(txns, "tx", p.producer_id, 0, "t", &[1, 2]), vec![code::NONE, code::TRANSACTION_ABORTABLE]);
    assert_eq!(core::verify(txns, "tx", p.producer_id, 5, "t", &[1]), vec![code::PRODUCER_FENCED]);
    assert_eq!(core::verify(txns, "x", p.producer_id, 0, "t", &[1]), vec![code::INVALID_PRODUCER_ID_MAPPING]);
    let idle = w.init("idle", (-1, -1));
    assert_eq!(idle.error, code::NONE);
    let week = 7 * 24 * 3600 * 1000;
    w.clock.advance(Duration::from_millis(week as u64));
    let due = core::expired(&w.state.transactions, w.clock.shared().unix_millis(), week);
    let ids: Vec<_> = due.ids.iter().map(|i| i.transactional_id.as_str()).collect();
    assert_eq!(ids, vec!["idle"], "an ongoing transaction does not expire");
    // An id used between the check and the apply stays.
    w.init("idle", (-1, -1));
    w.run(TxnOp::Expire(due.clone()));
    assert!(w.state.transactions.contains_key("idle"));
    let due = core::expired(&w.state.transactions, w.clock.shared().unix_millis() + week, week);
    w.run(TxnOp::Expire(due));
    assert!(!w.state.transactions.contains_key("idle"));
    assert!(w.state.transactions.contains_key("tx"));
}

#[test]
fn a_restarted_or_new_coordinator_sees_prepared_transactions_in_the_snapshot() {
    let mut w = World::new();
    let p = w.init("tx", (-1, -1));
    w.add("tx", &p, &[0, 4]);
    w.run(TxnOp::AddGroup(AddGroup {
        transactional_id: "tx".into(),
        producer_id: p.producer_id,
        producer_epoch: 0,
        group: "g".into(),
    }));
    w.run(TxnOp::CommitOffsets(TxnCommitOffsets {
        transactional_id: "tx".into(),
        producer_id: p.producer_id,
        producer_epoch: 0,
        group: "g".into(),
        offsets: vec![offset("t", 3, 11)],
    }));
    w.end("tx", &p, true);
    let q = w.init("ongoing", (-1, -1));
    w.add("ongoing", &q, &[2]);
    let restored = crate::meta::snapshot::decode(&crate::meta::snapshot::encode(&w.state)).unwrap();
    assert_eq!(restored, w.state);
    let preparing: Vec<_> = core::preparing(&restored.transactions).map(|t| t.transactional_id.clone()).collect();
    assert_eq!(preparing, vec!["tx"]);
    // The restored state completes the commit and its offsets become visible.
    let mut w2 = World { state: restored, clock: w.clock };
    let t = w2.txn("tx").clone();
    assert_eq!(w2.complete(&t, true).error, code::NONE);
    assert_eq!(w2.state.committed("g", "t", 3).unwrap().offset, 11);
}

#[test]
fn the_meta_entries_of_one_transaction_are_small() {
    // What one transaction of a 24-byte id over 6 partitions of one topic adds to `__meta`:
    // AddPartitions, EndTxn and CompleteTxn (and AddGroup + TxnCommitOffsets with offsets).
    let id = "order-service-producer-7".to_string();
    let cmd = |op| MetaCommand::new(Cmd::Txn(TxnCommand { op: Some(op), now_ms: 1_700_000_000_000 })).encode_to_vec();
    let add = cmd(TxnOp::AddPartitions(AddPartitions {
        transactional_id: id.clone(),
        producer_id: 123_456,
        producer_epoch: 3,
        partitions: vec![TxnTopic { topic: "orders".into(), partitions: (0..6).collect() }],
    }));
    let end = cmd(TxnOp::End(EndTxn {
        transactional_id: id.clone(),
        producer_id: 123_456,
        producer_epoch: 3,
        commit: true,
        from_client: true,
        fence: false,
    }));
    let complete = cmd(TxnOp::Complete(CompleteTxn {
        transactional_id: id.clone(),
        producer_id: 123_456,
        producer_epoch: 3,
        commit: true,
    }));
    let total = add.len() + end.len() + complete.len();
    // docs/architecture.md quotes these sizes (62, 48 and 46 bytes).
    println!("AddPartitions {} B, EndTxn {} B, CompleteTxn {} B", add.len(), end.len(), complete.len());
    assert!(add.len() <= 64 && end.len() <= 48 && complete.len() <= 48, "{add:?}");
    assert!(total <= 160);
}
