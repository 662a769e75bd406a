//! The peer frame: `u32 length | prost PeerFrame`. One frame carries the Raft messages of any
//! number of groups from one node to another, so heartbeats of all groups bound to a node share
//! a frame; beside them, entry repairs and snapshot chunk requests and chunks. Decoding never panics: a short, oversized or undecodable frame is an error and the
//! connection that sent it is closed.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use protobuf::Message as _;
use raft::eraftpb::Message;
use thiserror::Error;

use crate::raft::GroupId;

/// Largest frame accepted from a peer.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// One Raft message for one group.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupMessage {
    #[prost(uint64, tag = "1")]
    pub group: u64,
    /// The raft-rs `eraftpb::Message`, protobuf-encoded.
    #[prost(bytes = "bytes", tag = "2")]
    pub raft: Bytes,
}

/// A request for a copy of one stored entry (`entry` empty), or the copy (`entry` is the raft
/// `Entry`, protobuf-encoded): how a replica replaces an entry that is damaged on its disk.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Repair {
    #[prost(uint64, tag = "1")]
    pub group: u64,
    #[prost(uint64, tag = "2")]
    pub index: u64,
    #[prost(uint64, tag = "3")]
    pub term: u64,
    #[prost(bytes = "bytes", tag = "4")]
    pub entry: Bytes,
}

/// A follower's request for bytes `offset..offset + max_len` of `file`, one of the segment files
/// of the snapshot at `index` (term `term`) that the leader sent it (`partition::snapshot`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotChunkRequest {
    #[prost(uint64, tag = "1")]
    pub group: u64,
    #[prost(uint64, tag = "2")]
    pub index: u64,
    #[prost(uint64, tag = "3")]
    pub term: u64,
    #[prost(string, tag = "4")]
    pub file: String,
    #[prost(uint64, tag = "5")]
    pub offset: u64,
    #[prost(uint64, tag = "6")]
    pub max_len: u64,
}

/// The leader's answer: the bytes from `offset` (at most the request's `max_len`), `eof` when
/// they reach the end of the file, or `error` (the file cannot be served: the follower gives up
/// this transfer).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotChunk {
    #[prost(uint64, tag = "1")]
    pub group: u64,
    #[prost(uint64, tag = "2")]
    pub index: u64,
    #[prost(uint64, tag = "3")]
    pub term: u64,
    #[prost(string, tag = "4")]
    pub file: String,
    #[prost(uint64, tag = "5")]
    pub offset: u64,
    #[prost(bytes = "bytes", tag = "6")]
    pub data: Bytes,
    #[prost(bool, tag = "7")]
    pub eof: bool,
    #[prost(string, tag = "8")]
    pub error: String,
    /// No data: the leader's replication quota (`leader.replication.throttled.rate`) holds this
    /// chunk back; the receiver asks again later and counts the answer as a sign of life.
    /// Absent (0) from an older leader.
    #[prost(uint64, tag = "9")]
    pub throttled_ms: u64,
}

/// A snapshot transfer message, either way.
/// The transaction coordinator asks the leader of partition group `group` to write a COMMIT or
/// ABORT marker (`txn::markers`); the node turns it into `PartitionMsg::WriteTxnMarker`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct TxnMarkerRequest {
    #[prost(uint64, tag = "1")]
    pub request_id: u64,
    #[prost(uint64, tag = "2")]
    pub group: u64,
    #[prost(int64, tag = "3")]
    pub producer_id: i64,
    #[prost(int32, tag = "4")]
    pub producer_epoch: i32,
    #[prost(bool, tag = "5")]
    pub commit: bool,
    #[prost(int32, tag = "6")]
    pub coordinator_epoch: i32,
}

/// The partition's answer: a Kafka error code, and the marker's offset on success.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct TxnMarkerResponse {
    #[prost(uint64, tag = "1")]
    pub request_id: u64,
    #[prost(int32, tag = "2")]
    pub error_code: i32,
    #[prost(int64, tag = "3")]
    pub offset: i64,
}

/// A marker request or its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnMarkerPeerMsg {
    Request(TxnMarkerRequest),
    Response(TxnMarkerResponse),
}

#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotPeerMsg {
    Request(SnapshotChunkRequest),
    Chunk(SnapshotChunk),
}

impl SnapshotPeerMsg {
    /// The group it belongs to.
    pub fn group(&self) -> u64 {
        match self {
            SnapshotPeerMsg::Request(r) => r.group,
            SnapshotPeerMsg::Chunk(c) => c.group,
        }
    }

    /// Bytes of data it carries.
    pub fn data_len(&self) -> usize {
        match self {
            SnapshotPeerMsg::Request(_) => 0,
            SnapshotPeerMsg::Chunk(c) => c.data.len(),
        }
    }
}

/// A node asks to join the cluster (`--join`, `meta::members`): sent alone in a frame to
/// node 0 on a connection of its own, to any member's Raft port; answered by a [`JoinReply`]
/// frame on the same connection.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct JoinRequest {
    #[prost(uint64, tag = "1")]
    pub node_id: u64,
    #[prost(string, tag = "2")]
    pub raft_addr: String,
    #[prost(string, tag = "3")]
    pub kafka_addr: String,
}

/// The answer: `error` (refused, nothing changed; `retriable` when only because `__meta` could
/// not apply it yet), or the `__meta` configuration the new node starts its replica from (as
/// applied at `conf_index`) and every member's Raft address.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct JoinReply {
    #[prost(string, tag = "1")]
    pub error: String,
    #[prost(uint64, repeated, tag = "2")]
    pub voters: Vec<u64>,
    #[prost(uint64, repeated, tag = "3")]
    pub learners: Vec<u64>,
    #[prost(uint64, tag = "4")]
    pub conf_index: u64,
    #[prost(btree_map = "uint64, string", tag = "5")]
    pub peers: std::collections::BTreeMap<u64, String>,
    /// Set with `error` when `__meta` could not apply the join yet (no leader, not applied in
    /// time): asking again may succeed. Absent (false) in an older member's reply.
    #[prost(bool, tag = "6")]
    pub retriable: bool,
}

/// A frame carrying only a join request (to node 0) or its answer.
pub fn encode_join(from: u64, request: Option<JoinRequest>, reply: Option<JoinReply>) -> Bytes {
    let f = PeerFrame { from, join: request, join_reply: reply, ..Default::default() };
    let body = prost::Message::encode_to_vec(&f);
    let mut out = BytesMut::with_capacity(4 + body.len());
    out.put_u32(body.len() as u32);
    out.put_slice(&body);
    out.freeze()
}

/// The join request or answer of a frame body, if it carries one.
pub fn decode_join(body: &[u8]) -> Option<(Option<JoinRequest>, Option<JoinReply>)> {
    let f = <PeerFrame as prost::Message>::decode(body).ok()?;
    (f.join.is_some() || f.join_reply.is_some()).then_some((f.join, f.join_reply))
}

/// Everything one node sends another in one write.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PeerFrame {
    #[prost(uint64, tag = "1")]
    pub from: u64,
    #[prost(uint64, tag = "2")]
    pub to: u64,
    #[prost(message, repeated, tag = "3")]
    pub messages: Vec<GroupMessage>,
    #[prost(message, repeated, tag = "4")]
    pub repairs: Vec<Repair>,
    #[prost(message, repeated, tag = "5")]
    pub chunk_requests: Vec<SnapshotChunkRequest>,
    #[prost(message, repeated, tag = "6")]
    pub chunks: Vec<SnapshotChunk>,
    #[prost(message, repeated, tag = "7")]
    pub txn_marker_requests: Vec<TxnMarkerRequest>,
    #[prost(message, repeated, tag = "8")]
    pub txn_marker_responses: Vec<TxnMarkerResponse>,
    #[prost(message, optional, tag = "9")]
    pub join: Option<JoinRequest>,
    #[prost(message, optional, tag = "10")]
    pub join_reply: Option<JoinReply>,
}

/// What a frame carries besides Raft messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extras {
    pub repairs: Vec<Repair>,
    pub snapshots: Vec<SnapshotPeerMsg>,
    pub txn_markers: Vec<TxnMarkerPeerMsg>,
}

impl Extras {
    pub fn is_empty(&self) -> bool {
        self.repairs.is_empty() && self.snapshots.is_empty() && self.txn_markers.is_empty()
    }

    pub fn len(&self) -> usize {
        self.repairs.len() + self.snapshots.len() + self.txn_markers.len()
    }
}

/// Why a frame was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("undecodable frame: {0}")]
    Decode(String),
    #[error("undecodable raft message for group {group}: {reason}")]
    Raft { group: u64, reason: String },
}

/// Encodes a frame with its length prefix.
pub fn encode(from: u64, to: u64, messages: &[(GroupId, Message)]) -> Bytes {
    encode_with_repairs(from, to, messages, Vec::new())
}

/// Encodes a frame that also carries repair requests or copies.
pub fn encode_with_repairs(from: u64, to: u64, messages: &[(GroupId, Message)], repairs: Vec<Repair>) -> Bytes {
    encode_full(from, to, messages, Extras { repairs, ..Default::default() })
}

/// Encodes a frame with everything it may carry.
pub fn encode_full(from: u64, to: u64, messages: &[(GroupId, Message)], extras: Extras) -> Bytes {
    let (mut chunk_requests, mut chunks) = (Vec::new(), Vec::new());
    for m in extras.snapshots {
        match m {
            SnapshotPeerMsg::Request(r) => chunk_requests.push(r),
            SnapshotPeerMsg::Chunk(c) => chunks.push(c),
        }
    }
    let repairs = extras.repairs;
    let (mut txn_marker_requests, mut txn_marker_responses) = (Vec::new(), Vec::new());
    for m in extras.txn_markers {
        match m {
            TxnMarkerPeerMsg::Request(r) => txn_marker_requests.push(r),
            TxnMarkerPeerMsg::Response(r) => txn_marker_responses.push(r),
        }
    }
    let frame = PeerFrame {
        from,
        to,
        messages: messages
            .iter()
            .map(|(g, m)| GroupMessage { group: *g, raft: Bytes::from(m.write_to_bytes().unwrap_or_default()) })
            .collect(),
        repairs,
        chunk_requests,
        chunks,
        txn_marker_requests,
        txn_marker_responses,
        ..Default::default()
    };
    let len = prost::Message::encoded_len(&frame);
    let mut buf = BytesMut::with_capacity(4 + len);
    buf.put_u32(len as u32);
    prost::Message::encode(&frame, &mut buf).expect("buffer has capacity");
    buf.freeze()
}

/// Reads the length prefix; `None` if fewer than 4 bytes are buffered.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = (&buf[..4]).get_u32() as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    Ok(Some(len))
}

/// A decoded frame: sender, addressee, and the messages by group.
pub type Decoded = (u64, u64, Vec<(GroupId, Message)>);
/// A decoded frame with everything it carries besides Raft messages.
pub type DecodedFull = (u64, u64, Vec<(GroupId, Message)>, Extras);
/// A decoded frame with its repair requests and copies.
pub type DecodedWithRepairs = (u64, u64, Vec<(GroupId, Message)>, Vec<Repair>);

/// Decodes a frame body (without the prefix) and the Raft messages in it.
pub fn decode(body: &[u8]) -> Result<Decoded, FrameError> {
    decode_with_repairs(body).map(|(from, to, msgs, _)| (from, to, msgs))
}

/// [`decode`], with the repair requests and copies the frame carries.
pub fn decode_with_repairs(body: &[u8]) -> Result<DecodedWithRepairs, FrameError> {
    decode_full(Bytes::copy_from_slice(body)).map(|(from, to, msgs, extras)| (from, to, msgs, extras.repairs))
}

/// [`decode`], with everything else the frame carries. Zero-copy: the messages' byte fields
/// (entries' data and context) are slices of `body`, which stays allocated while any is alive
/// (until the entries are written, for a follower).
pub fn decode_full(body: Bytes) -> Result<DecodedFull, FrameError> {
    let frame = <PeerFrame as prost::Message>::decode(body).map_err(|e| FrameError::Decode(e.to_string()))?;
    let mut out = Vec::with_capacity(frame.messages.len());
    for gm in frame.messages {
        let m = Message::parse_from_carllerche_bytes(&gm.raft)
            .map_err(|e| FrameError::Raft { group: gm.group, reason: e.to_string() })?;
        out.push((gm.group, m));
    }
    let mut snapshots: Vec<SnapshotPeerMsg> = frame.chunk_requests.into_iter().map(SnapshotPeerMsg::Request).collect();
    snapshots.extend(frame.chunks.into_iter().map(SnapshotPeerMsg::Chunk));
    let mut txn_markers: Vec<TxnMarkerPeerMsg> =
        frame.txn_marker_requests.into_iter().map(TxnMarkerPeerMsg::Request).collect();
    txn_markers.extend(frame.txn_marker_responses.into_iter().map(TxnMarkerPeerMsg::Response));
    Ok((frame.from, frame.to, out, Extras { repairs: frame.repairs, snapshots, txn_markers }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::MessageType;

    #[test]
    fn round_trip_many_groups() {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgHeartbeat);
        m.from = 1;
        m.to = 2;
        m.term = 7;
        let msgs: Vec<_> = (0..100).map(|g| (g, m.clone())).collect();
        let bytes = encode(1, 2, &msgs);
        let len = frame_len(&bytes).unwrap().unwrap();
        assert_eq!(len + 4, bytes.len());
        let (from, to, back) = decode(&bytes[4..]).unwrap();
        assert_eq!((from, to), (1, 2));
        assert_eq!(back, msgs);
    }

    #[test]
    fn snapshot_chunks_round_trip() {
        let req = SnapshotChunkRequest { group: 7, index: 40, term: 2, file: "x.log".into(), offset: 9, max_len: 100 };
        let chunk = SnapshotChunk {
            group: 7,
            index: 40,
            term: 2,
            file: "x.log".into(),
            offset: 9,
            data: Bytes::from_static(b"abc"),
            eof: true,
            error: String::new(),
            throttled_ms: 0,
        };
        let extras = Extras {
            repairs: vec![],
            snapshots: vec![SnapshotPeerMsg::Request(req), SnapshotPeerMsg::Chunk(chunk)],
            txn_markers: vec![
                TxnMarkerPeerMsg::Request(TxnMarkerRequest {
                    request_id: 9,
                    group: 4,
                    producer_id: 77,
                    producer_epoch: 2,
                    commit: true,
                    coordinator_epoch: 3,
                }),
                TxnMarkerPeerMsg::Response(TxnMarkerResponse { request_id: 8, error_code: 6, offset: -1 }),
            ],
        };
        let bytes = encode_full(1, 2, &[], extras.clone());
        let (from, to, msgs, back) = decode_full(bytes.slice(4..)).unwrap();
        assert_eq!((from, to, msgs.len()), (1, 2, 0));
        assert_eq!(back, extras);
        assert_eq!(back.snapshots[1].data_len(), 3);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode(&[0xff, 0xff, 0xff, 0x01]).is_err());
        assert_eq!(frame_len(&[0xff, 0xff, 0xff, 0xff]), Err(FrameError::TooLarge(u32::MAX as usize)));
        assert_eq!(frame_len(&[0, 0]), Ok(None));
    }

    #[test]
    fn decoded_entries_are_slices_of_the_frame_not_copies() {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppend);
        (m.from, m.to) = (1, 2);
        let e = raft::eraftpb::Entry { data: Bytes::from(vec![7u8; 4096]), ..Default::default() };
        m.entries = vec![e].into();
        let body = encode(1, 2, &[(5, m.clone())]).slice(4..);
        let (_, _, back, _) = decode_full(body.clone()).unwrap();
        assert_eq!(back, vec![(5, m)]);
        let data = &back[0].1.entries[0].data;
        let range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
        assert!(range.contains(&(data.as_ptr() as usize)), "the entry's data points into the frame");
    }
}
