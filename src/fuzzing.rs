//! Fuzz harnesses: one function per decoder of untrusted bytes, shared by the cargo-fuzz targets
//! in `fuzz/` (libFuzzer, nightly) and by `tests/fuzz_corpus.rs`, which runs the committed seed
//! corpus and every saved crash input through the same functions on stable. A harness may only
//! fail by panicking: each one also checks a few invariants of what the decoder accepted.
//!
//! | target | input | code under test |
//! | --- | --- | --- |
//! | `kafka_request` | one request frame without its size prefix | [`routes::route_frame`] (header) and the route's body decoder |
//! | `request_body` | route selector, version selector, body | every route's body decoder at every served version |
//! | `record_batch` | a Produce `records` field | [`batch::validate_batches`], [`batch::records`], the codecs of `protocol::compression`, the produce policy of a compacted, recompressing topic, the log's offset parser |
//! | `peer_frame` | a peer frame with its length prefix | [`peer::frame`] and the listener's checks |
//! | `meta_command` | a sequence of `__meta` entries | [`MetaCommand::decode`] and [`MetaState::apply_once`] |
//! | `sasl` | selector byte, then SASL tokens split at `0xff` | [`sasl::parse_plain`], [`scram::parse_client_first`], [`scram::parse_client_final`], the [`sasl::Authenticator`] exchange |

use std::collections::{BTreeSet, HashSet};

use bytes::Bytes;

use crate::broker::routes::{self, Routed, ROUTES};
use crate::log::batch;
use crate::meta::command::{MetaCommand, ProposalId};
use crate::meta::MetaState;
use crate::peer;
use crate::security::{sasl, scram};

/// Names of the fuzz targets, as in `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/`.
pub const TARGETS: &[&str] = &["kafka_request", "request_body", "record_batch", "peer_frame", "meta_command", "sasl"];

/// Runs the harness of target `name` on `data`. Panics on an unknown name.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "kafka_request" => kafka_request(data),
        "request_body" => request_body(data),
        "record_batch" => record_batch(data),
        "peer_frame" => peer_frame(data),
        "meta_command" => meta_command(data),
        "sasl" => sasl(data),
        other => panic!("no fuzz target {other:?}"),
    }
}

/// A Kafka request frame (after the 4-byte size prefix): header, route, then the body with the
/// decoder of that route, exactly as the connection does before calling the handler.
pub fn kafka_request(data: &[u8]) {
    if let Ok(Routed::Request { route, header, body }) = routes::route_frame(Bytes::copy_from_slice(data)) {
        assert_eq!(header.request_api_key, route.key as i16);
        assert!((route.min..=route.max).contains(&header.request_api_version));
        let _ = (route.decode)(body, header.request_api_version);
    }
}

/// Any route's body decoder at any version it serves: byte 0 picks the route, byte 1 the
/// version within the route's range, the rest is the body.
pub fn request_body(data: &[u8]) {
    let [r, v, body @ ..] = data else {
        return;
    };
    let route = &ROUTES[usize::from(*r) % ROUTES.len()];
    let span = (route.max - route.min + 1) as u8;
    let version = route.min + i16::from(*v % span);
    let _ = (route.decode)(Bytes::copy_from_slice(body), version);
}

/// The `records` field of a Produce partition. Whatever validates must also decode record by
/// record, and, once stamped with an offset, be accepted by the log's offset parser.
pub fn record_batch(data: &[u8]) {
    const MAX: usize = 1 << 20;
    let _ = batch::records(data);
    for codec in 0..=5 {
        let _ = crate::protocol::compression::decompress(codec, data, MAX);
    }
    let Ok(batches) = batch::validate_batches(data, MAX) else {
        return;
    };
    let mut next = 0i64;
    for (range, header) in batches {
        let mut b = data[range].to_vec();
        assert_eq!(b.len(), header.total_len());
        if header.compression() == 0 {
            let recs = batch::records(&b).expect("a validated batch decodes");
            assert_eq!(recs.len() as i64, i64::from(header.record_count));
        }
        // The produce policy of a compacted topic that recompresses: reads (and decompresses)
        // every record; what it accepts is still a valid batch with the same record count.
        let policy = policy_for_fuzzing();
        let mut copy = bytes::BytesMut::from(&b[..]);
        if let Ok(h) = policy.apply(&mut copy, header, 0, "t", 0) {
            assert_eq!(batch::validate_batch(&copy, usize::MAX), Ok(h));
            assert_eq!(h.record_count, header.record_count);
        }
        batch::stamp_base_offset(&mut b, next);
        batch::stamp_leader_epoch(&mut b, 7);
        assert_eq!(batch::validate_batch(&b, MAX).map(|h| h.base_offset), Ok(next), "stamping keeps the crc");
        let o = crate::log::offsets::entry_offsets(true, raft::eraftpb::EntryType::EntryNormal, &b, &[], next)
            .expect("a validated, stamped batch is a valid log entry");
        assert_eq!(o.offset_end, next + i64::from(header.record_count));
        next = o.offset_end;
    }
}

fn policy_for_fuzzing() -> crate::broker::produce_policy::TopicPolicy {
    let configs =
        [("cleanup.policy", "compact"), ("compression.type", "lz4"), ("message.timestamp.type", "LogAppendTime")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    crate::broker::produce_policy::TopicPolicy::resolve(&configs, &Default::default())
}

/// A peer frame with its length prefix, through the listener's checks (node 1 hosting peers 2
/// and 3). A frame that decodes re-encodes to a frame that decodes to the same sender, addressee
/// and messages. Messages are compared by their known fields (their text form): protobuf 2 keeps
/// unknown fields in a hash map, so neither `==` (an empty map is not "none") nor the bytes (map
/// order) are stable, and raft-rs never reads them.
pub fn peer_frame(data: &[u8]) {
    let peers: HashSet<u64> = [2, 3].into();
    let Ok(Some(len)) = peer::frame::frame_len(data) else {
        return;
    };
    let Some(body) = data.get(4..4 + len) else {
        return;
    };
    if let Ok((from, to, msgs)) = peer::frame::decode(body) {
        let again = peer::frame::encode(from, to, &msgs);
        let (from2, to2, msgs2) = peer::frame::decode(&again[4..]).expect("a re-encoded frame decodes");
        assert_eq!((from2, to2), (from, to), "re-encoded frame changed its ends");
        let known =
            |m: &[(u64, raft::eraftpb::Message)]| m.iter().map(|(g, m)| format!("{g} {m:?}")).collect::<Vec<_>>();
        assert_eq!(known(&msgs2), known(&msgs), "re-encoded frame changed its messages");
    }
    if let Ok(accepted) = peer::listener::check_frame(bytes::Bytes::copy_from_slice(body), 1, &peers) {
        assert!(peers.contains(&accepted.from));
        assert!(accepted.messages.iter().all(|(_, m)| m.from == accepted.from));
    }
}

/// A sequence of `__meta` entries: each is `ctx_len u8 | ctx | data_len u8 | data` (a context of
/// 16 bytes is a proposal id). Every entry that decodes is applied to two states, which must stay
/// equal (apply is deterministic) and consistent: replicas are distinct registered brokers, every
/// partition has its own group below `next_group_id`, and group 0 (`__meta`) is never handed out.
pub fn meta_command(data: &[u8]) {
    let (mut a, mut b) = (MetaState::new(), MetaState::new());
    let mut rest = data;
    while let Some((&ctx_len, r)) = rest.split_first() {
        let (ctx, r) = r.split_at(usize::from(ctx_len).min(r.len()));
        let Some((&data_len, r)) = r.split_first() else {
            break;
        };
        let (entry, r) = r.split_at(usize::from(data_len).min(r.len()));
        rest = r;
        let Ok(cmd) = MetaCommand::decode(entry) else {
            continue;
        };
        let id = ProposalId::decode(ctx);
        let ra = a.apply_once(id, &cmd);
        let rb = b.apply_once(id, &cmd);
        assert_eq!(ra, rb, "apply is deterministic");
    }
    assert_eq!(a, b, "same log, same state");
    let mut groups = BTreeSet::new();
    for (name, t) in &a.topics {
        assert!(crate::meta::state::valid_topic_name(name), "{name:?}");
        assert!(!t.partitions.is_empty());
        for p in &t.partitions {
            assert!(p.group != crate::raft::META_GROUP && p.group < a.next_group_id);
            assert!(groups.insert(p.group), "group {} used twice", p.group);
            let distinct: BTreeSet<_> = p.replicas.iter().collect();
            assert_eq!(distinct.len(), p.replicas.len(), "replicas are distinct");
            assert!(!p.replicas.is_empty() && p.replicas.iter().all(|r| a.brokers.contains_key(r)));
        }
    }
}

/// SASL messages from an unauthenticated client: byte 0 picks the mechanism, the rest is up to
/// three tokens separated by `0xff`, fed to a fresh [`sasl::Authenticator`] (user `u` with
/// password `p` exists in both stores). Each parser also sees every token alone. A token may
/// only succeed as the right user, and a failure is one of the fixed messages
/// (`sasl::failure_messages`), so it never echoes the token.
pub fn sasl(data: &[u8]) {
    let [sel, rest @ ..] = data else {
        return;
    };
    let mechanism = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"][usize::from(*sel) % 3];
    let settings = sasl::SaslSettings {
        mechanisms: vec![mechanism.to_string()],
        plain_users: [("u".to_string(), "p".to_string())].into(),
        reauth_ms: 0,
    };
    let mut store = MetaState::default();
    for m in [scram::Mechanism::Sha256, scram::Mechanism::Sha512] {
        let c = scram::Credential::from_password(m, "p", b"salt", scram::MIN_ITERATIONS);
        store.scram_credentials.entry("u".to_string()).or_default().insert(m, c);
    }
    let mut auth = sasl::Authenticator::default();
    assert!(auth.handshake(mechanism, &settings).is_ok());
    for token in rest.split(|b| *b == 0xff).take(3) {
        let _ = sasl::parse_plain(token);
        let _ = scram::parse_client_first(token);
        let _ = scram::parse_client_final(token);
        match auth.authenticate(token, &settings, &store) {
            sasl::Step::Done { principal, .. } => {
                assert_eq!(principal.to_string(), "User:u");
                break;
            }
            sasl::Step::Failed(msg) => {
                // Failure messages are generic: one of the fixed texts, never made from what the
                // client sent. (A token may still be a piece of a fixed text: the fuzzer found
                // "SL mechanism SCRAM-SHA-51", which an echo check took for an echo.)
                assert!(sasl::failure_messages().contains(&msg), "{msg:?}");
                break;
            }
            sasl::Step::Challenge(c) => assert!(c.starts_with(b"r=")),
        }
    }
}
