//! Tests of the snapshot receiver core: chunk sequencing, duplicate and newer snapshots, a
//! failed check, a lost request and a lost leader, a chunk the leader's quota holds back.

use super::*;
use crate::log::snapshot_descriptor::SnapshotFile;
use raft::eraftpb::MessageType;

const SETTINGS: ReceiverSettings = ReceiverSettings { chunk_bytes: 100, resend_ticks: 3, give_up_ticks: 10 };

fn desc(lengths: &[u64]) -> SnapshotDescriptor {
    let files = lengths
        .iter()
        .enumerate()
        .map(|(i, len)| SnapshotFile {
            base_index: i as u64 * 10 + 1,
            name: format!("f{i}.log"),
            length: *len,
            last_index: i as u64 * 10 + 10,
            last_term: 2,
            entries: 10,
        })
        .collect();
    SnapshotDescriptor { version: 1, files, ..Default::default() }
}

fn snapshot_msg(from: u64, index: u64, term: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(MessageType::MsgSnapshot);
    (m.from, m.to, m.term) = (from, 9, 5);
    let meta = m.mut_snapshot().mut_metadata();
    (meta.index, meta.term) = (index, term);
    m
}

fn chunk(req: &SnapshotChunkRequest, len: u64, eof: bool) -> SnapshotChunk {
    SnapshotChunk {
        group: req.group,
        index: req.index,
        term: req.term,
        file: req.file.clone(),
        offset: req.offset,
        data: Bytes::from(vec![7u8; len as usize]),
        eof,
        error: String::new(),
        throttled_ms: 0,
    }
}

fn sent(actions: &[Action]) -> SnapshotChunkRequest {
    match actions {
        [Action::Send { req, .. }] => req.clone(),
        other => panic!("expected one request, got {other:?}"),
    }
}

#[test]
fn pulls_every_file_in_bounded_chunks_then_hands_the_message_back() {
    let mut r = Receiver::new(4, SETTINGS);
    let req = sent(&r.on_snapshot(snapshot_msg(1, 20, 2), desc(&[150, 40])));
    assert_eq!(
        (req.group, req.index, req.term, req.file.as_str(), req.offset, req.max_len),
        (4, 20, 2, "f0.log", 0, 100)
    );
    let w = r.on_chunk(1, chunk(&req, 100, false));
    assert!(matches!(&w[..], [Action::Write { offset: 0, eof: false, .. }]), "{w:?}");
    // Nothing more is asked for while the chunk is written; a repeated chunk is ignored.
    assert!(r.on_chunk(1, chunk(&req, 100, false)).is_empty());
    let req = sent(&r.on_written(20, Ok(())));
    assert_eq!((req.offset, req.max_len), (100, 50));
    assert!(r.on_chunk(2, chunk(&req, 50, true)).is_empty(), "only from the leader it asked");
    r.on_chunk(1, chunk(&req, 50, true));
    let req = sent(&r.on_written(20, Ok(())));
    assert_eq!((req.file.as_str(), req.offset, req.max_len), ("f1.log", 0, 40));
    r.on_chunk(1, chunk(&req, 40, true));
    match &r.on_written(20, Ok(()))[..] {
        [Action::Prepare { index: 20, term: 2, desc }] => assert_eq!(desc.files.len(), 2),
        other => panic!("{other:?}"),
    }
    let (msg, actions) = r.on_prepared(20, Ok(()));
    assert!(actions.is_empty());
    assert_eq!(msg.unwrap().get_snapshot().get_metadata().index, 20);
    assert_eq!(r.in_progress(), None);
}

#[test]
fn chunks_that_do_not_fit_the_manifest_abort() {
    // Longer than asked, past the file, eof too early, an error from the leader.
    for bad in [
        |req: &SnapshotChunkRequest| chunk(req, 101, false),
        |req: &SnapshotChunkRequest| chunk(req, 60, true),
        |req: &SnapshotChunkRequest| chunk(req, 0, false),
        |req: &SnapshotChunkRequest| SnapshotChunk { error: "gone".into(), ..chunk(req, 0, false) },
    ] {
        let mut r = Receiver::new(4, SETTINGS);
        let req = sent(&r.on_snapshot(snapshot_msg(1, 20, 2), desc(&[150])));
        let a = r.on_chunk(1, bad(&req));
        assert!(matches!(&a[..], [Action::Abort { index: 20, .. }]), "{a:?}");
        assert_eq!(r.in_progress(), None);
    }
}

#[test]
fn duplicate_older_and_newer_snapshots() {
    let mut r = Receiver::new(4, SETTINGS);
    let req = sent(&r.on_snapshot(snapshot_msg(1, 20, 2), desc(&[150])));
    assert!(r.on_snapshot(snapshot_msg(1, 20, 2), desc(&[150])).is_empty(), "a duplicate is ignored");
    assert!(r.on_snapshot(snapshot_msg(1, 10, 2), desc(&[150])).is_empty(), "an older one is ignored");
    assert_eq!(r.in_progress(), Some((20, 2)));
    // The same snapshot from a new leader: the request goes to it.
    match &r.on_snapshot(snapshot_msg(3, 20, 2), desc(&[150]))[..] {
        [Action::Send { to: 3, req: again }] => assert_eq!(again, &req),
        other => panic!("{other:?}"),
    }
    // The same point from a replica whose files differ: start again from it.
    let a = r.on_snapshot(snapshot_msg(2, 20, 2), desc(&[140]));
    assert!(matches!(&a[0], Action::Abort { index: 20, .. }), "{a:?}");
    assert!(matches!(&a[1], Action::Send { to: 2, req } if req.offset == 0 && req.max_len == 100));
    // A newer one aborts the transfer and starts its own.
    let a = r.on_snapshot(snapshot_msg(3, 30, 2), desc(&[80]));
    assert!(matches!(&a[0], Action::Abort { index: 20, .. }), "{a:?}");
    assert!(matches!(&a[1], Action::Send { to: 3, req } if req.index == 30));
    assert_eq!(r.in_progress(), Some((30, 2)));
    // A late chunk of the old transfer is ignored.
    assert!(r.on_chunk(3, chunk(&req, 100, false)).is_empty());
}

#[test]
fn a_failed_check_or_write_aborts_and_cleans_up() {
    let mut r = Receiver::new(4, SETTINGS);
    let req = sent(&r.on_snapshot(snapshot_msg(1, 20, 2), desc(&[50])));
    r.on_chunk(1, chunk(&req, 50, true));
    r.on_written(20, Ok(()));
    let (msg, a) = r.on_prepared(20, Err("crc mismatch".into()));
    assert!(msg.is_none());
    assert!(matches!(&a[..], [Action::Abort { index: 20, reason }] if reason.contains("crc mismatch")));
    // The leader sends it again: a fresh transfer from the start.
    let req = sent(&r.on_snapshot(snapshot_msg(1, 20, 2), desc(&[50])));
    assert_eq!(req.offset, 0);
    r.on_chunk(1, chunk(&req, 50, true));
    let a = r.on_written(20, Err("disk full".into()));
    assert!(matches!(&a[..], [Action::Abort { index: 20, .. }]));
}

#[test]
fn a_lost_request_is_sent_again_and_a_silent_leader_is_given_up() {
    let mut r = Receiver::new(4, SETTINGS);
    let req = sent(&r.on_snapshot(snapshot_msg(1, 20, 2), desc(&[150])));
    assert!(r.on_tick().is_empty() && r.on_tick().is_empty());
    assert_eq!(sent(&r.on_tick()), req, "resent after 3 ticks");
    // The link comes back: the answer continues the transfer.
    r.on_chunk(1, chunk(&req, 100, false));
    assert!(r.on_tick().is_empty(), "no timeout while writing");
    let req = sent(&r.on_written(20, Ok(())));
    let mut aborted = None;
    for i in 0..20 {
        let a = r.on_tick();
        if let [Action::Abort { index, .. }] = &a[..] {
            aborted = Some((i, *index));
            break;
        }
    }
    assert_eq!(aborted, Some((9, 20)), "given up after 10 silent ticks");
    assert!(r.on_chunk(1, chunk(&req, 50, true)).is_empty(), "a chunk after giving up is ignored");
}

/// The leader's replication quota answers "throttled" instead of the chunk: the receiver asks
/// for the same chunk again after `resend_ticks`, and as long as such answers come it never gives
/// up, however long the pacing lasts; the chunk, when it comes, continues the transfer.
#[test]
fn a_throttled_chunk_is_asked_for_again_and_never_gives_the_transfer_up() {
    let mut r = Receiver::new(4, SETTINGS);
    let req = sent(&r.on_snapshot(snapshot_msg(1, 20, 2), desc(&[150])));
    let throttled = SnapshotChunk { data: Bytes::new(), throttled_ms: 500, ..chunk(&req, 0, false) };
    for _ in 0..10 {
        assert!(r.on_chunk(1, throttled.clone()).is_empty(), "nothing to write");
        assert!(r.on_tick().is_empty() && r.on_tick().is_empty());
        assert_eq!(sent(&r.on_tick()), req, "the same chunk asked for again");
    }
    // 40 ticks so far, four times the give-up time: still in progress.
    assert_eq!(r.in_progress(), Some((20, 2)));
    let a = r.on_chunk(1, chunk(&req, 100, false));
    assert!(matches!(&a[..], [Action::Write { offset: 0, .. }]), "{a:?}");
}
