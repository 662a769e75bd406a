//! Accepts connections from peers. Each connection reads length-prefixed frames, checks that the
//! frame is addressed to this node and comes from a configured peer, and routes every message
//! to its group. Garbage closes that connection only; a message for a group this node does not
//! host is dropped with a log line (once per group).

use std::collections::HashSet;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use slog::Logger;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::frame;
use super::transport::{Faults, Router};

/// Accepts peer connections forever. With `tls` (mutual TLS), a peer must present a
/// certificate naming a node (`CN=node-N`), and every frame on that connection must come from
/// that node (a node not yet a member may send only its own join); a refused peer is logged
/// and closed.
pub async fn run(
    listener: TcpListener,
    me: u64,
    peers: super::transport::KnownPeers,
    router: Router,
    faults: Arc<Faults>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    logger: Logger,
) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let logger = logger.new(slog::o!("peer_addr" => addr.to_string()));
                let (router, peers, faults, tls) = (router.clone(), peers.clone(), faults.clone(), tls.clone());
                actix::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let result = match tls {
                        None => serve(stream, me, &peers, &router, &faults, None, &logger).await,
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(tls) => {
                                let node = tls
                                    .get_ref()
                                    .1
                                    .peer_certificates()
                                    .and_then(|c| c.first())
                                    .and_then(|c| crate::security::peer_tls::cert_node(c));
                                // A node not (yet) known may only join: its Raft frames fail
                                // `check_frame`, and a join must be for the node its certificate names.
                                match node {
                                    Some(n) => serve(tls, me, &peers, &router, &faults, Some(n), &logger).await,
                                    None => Err("refusing peer: its certificate names no node (CN=node-N)".to_string()),
                                }
                            }
                            Err(e) => Err(format!("refusing peer: TLS handshake failed: {e}")),
                        },
                    };
                    if let Err(reason) = result {
                        slog::warn!(logger, "closing peer connection"; "reason" => reason);
                    }
                });
            }
            Err(e) => {
                slog::warn!(logger, "peer accept failed"; "error" => %e);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// A frame that passed the listener's checks.
#[derive(Debug)]
pub struct Accepted {
    pub from: u64,
    pub messages: Vec<(crate::raft::GroupId, raft::eraftpb::Message)>,
    pub repairs: Vec<frame::Repair>,
    pub snapshots: Vec<frame::SnapshotPeerMsg>,
    pub txn_markers: Vec<frame::TxnMarkerPeerMsg>,
}

/// Decodes a frame body (after the length prefix) and checks that it is addressed to node `me`,
/// comes from one of its configured `peers`, and that every Raft message in it claims the
/// frame's sender and is addressed to `me`. `Err` says why the connection must be closed.
pub fn check_frame(body: Bytes, me: u64, peers: &HashSet<u64>) -> Result<Accepted, String> {
    let (from, to, messages, extras) = frame::decode_full(body).map_err(|e| e.to_string())?;
    if to != me || !peers.contains(&from) {
        return Err(format!("frame from node {from} to node {to}: not a configured peer of node {me}"));
    }
    for (group, msg) in &messages {
        if msg.from != from || msg.to != me {
            return Err(format!(
                "message of group {group} from {} to {} in a frame from {from} to {me}",
                msg.from, msg.to
            ));
        }
    }
    Ok(Accepted {
        from,
        messages,
        repairs: extras.repairs,
        snapshots: extras.snapshots,
        txn_markers: extras.txn_markers,
    })
}

async fn serve<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    me: u64,
    known: &super::transport::KnownPeers,
    router: &Router,
    faults: &Faults,
    cert_node: Option<u64>,
    logger: &Logger,
) -> Result<(), String> {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut unknown_groups = HashSet::new();
    loop {
        while let Some(len) = frame::frame_len(&buf).map_err(|e| e.to_string())? {
            if buf.len() < 4 + len {
                break;
            }
            let body = buf.split_to(4 + len).freeze().slice(4..);
            let peers = known.read().unwrap_or_else(|p| p.into_inner()).clone();
            let checked = check_frame(body.clone(), me, &peers);
            let Accepted { from, messages, repairs, snapshots, txn_markers } = match checked {
                Ok(a) => a,
                Err(e) => match frame::decode_join(&body) {
                    Some((Some(req), _)) => {
                        if cert_node.is_some_and(|n| n != req.node_id) {
                            return Err(format!(
                                "refusing a join of node {}: the certificate names another node",
                                req.node_id
                            ));
                        }
                        let reply = router.join(req).await;
                        stream
                            .write_all(&frame::encode_join(me, None, Some(reply)))
                            .await
                            .map_err(|e| e.to_string())?;
                        continue;
                    }
                    _ => return Err(e),
                },
            };
            if cert_node.is_some_and(|n| n != from) {
                return Err(format!(
                    "refusing peer: its certificate names node-{}, its frame claims node {from}",
                    cert_node.unwrap_or_default()
                ));
            }
            if faults.dropping_from(from) {
                continue;
            }
            router.heard(from);
            for (group, msg) in messages {
                if !router.route(group, msg) && unknown_groups.insert(group) {
                    slog::info!(logger, "holding messages for a group this node does not host (yet); they are dropped unless it starts within seconds"; "group" => group, "from" => from);
                }
            }
            for r in repairs {
                let group = r.group;
                if !router.route_repair(from, r) && unknown_groups.insert(group) {
                    slog::warn!(logger, "dropping a repair for a group this node does not host"; "group" => group, "from" => from);
                }
            }
            for m in txn_markers {
                router.route_txn_marker(from, m);
            }
            for m in snapshots {
                let group = m.group();
                if !router.route_snapshot(from, m) && unknown_groups.insert(group) {
                    slog::warn!(logger, "dropping a snapshot chunk for a group this node does not host"; "group" => group, "from" => from);
                }
            }
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::{Message, MessageType};

    fn hb(from: u64, to: u64) -> Message {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgHeartbeat);
        (m.from, m.to) = (from, to);
        m
    }

    #[test]
    fn frames_are_checked_for_sender_addressee_and_claims() {
        let peers: HashSet<u64> = [2, 3].into();
        let check =
            |from, to, msgs: &[(u64, Message)]| check_frame(frame::encode(from, to, msgs).slice(4..), 1, &peers);
        let ok = check(2, 1, &[(0, hb(2, 1)), (7, hb(2, 1))]).unwrap();
        assert_eq!((ok.from, ok.messages.len()), (2, 2));
        assert!(check(9, 1, &[(0, hb(9, 1))]).unwrap_err().contains("not a configured peer"));
        assert!(check(1, 1, &[]).unwrap_err().contains("not a configured peer"), "itself is no peer");
        assert!(check(2, 3, &[(0, hb(2, 3))]).is_err(), "addressed to another node");
        assert!(check(2, 1, &[(0, hb(3, 1))]).unwrap_err().contains("from 3"), "claims another sender");
        assert!(check(2, 1, &[(0, hb(2, 3))]).is_err(), "message for another node");
        assert!(check_frame(Bytes::from_static(&[0xff, 0x01, 0x02]), 1, &peers).unwrap_err().contains("undecodable"));
    }
}
