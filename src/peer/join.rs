//! Joining a running cluster (`raft.join`, `--join HOST:PORT`): the new node sends one
//! [`JoinRequest`] frame to any member's Raft port on a connection of its own and waits for the
//! [`JoinReply`] (the member's `__meta` records the node, `meta::members`), over the peer
//! links' mutual TLS when it is configured (`security::peer_tls`); and the address
//! book a joined node keeps in its data directory (`meta/peers`), so that it finds the cluster
//! again after a restart without `--join` or `--peers`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::frame::{self, JoinReply, JoinRequest};

/// How long a join may take: connecting, and the cluster recording the node.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Asks the member at `addr` to add `req`'s node, over mutual TLS when `tls` is the node's
/// join connector (`security::peer_tls`, peer TLS configured). `Err` says why, for the
/// operator: the address is unreachable, the TLS handshake failed (another CA, no client
/// certificate), the answer never came, or the cluster refused (nothing changed then).
pub async fn ask(addr: &str, req: JoinRequest, tls: Option<&tokio_rustls::TlsConnector>) -> Result<JoinReply, String> {
    let connect = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await;
    let stream = match connect {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("cannot reach the cluster at {addr}: {e}")),
        Err(_) => return Err(format!("cannot reach the cluster at {addr}: connect timed out")),
    };
    let reply = match tls {
        None => exchange(addr, stream, &req).await?,
        Some(connector) => {
            // Any name: the join connector checks the certificate against the node it names.
            let name = rustls::pki_types::ServerName::try_from("chronik-member").expect("a valid DNS name");
            let handshake = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, stream)).await;
            let stream = match handshake {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    return Err(format!(
                        "joining through {addr}: the peer TLS handshake failed ({e}); the raft.tls-* files must \
                         come from the cluster's CA and the member must speak peer TLS"
                    ))
                }
                Err(_) => return Err(format!("joining through {addr}: the peer TLS handshake timed out")),
            };
            let member = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| crate::security::peer_tls::cert_node(c));
            let reply = exchange(addr, stream, &req).await?;
            if let Some(n) = member.filter(|n| reply.error.is_empty() && !reply.peers.contains_key(n)) {
                return Err(format!("the member at {addr} presents node-{n}'s certificate, but node {n} is no member"));
            }
            reply
        }
    };
    if !reply.error.is_empty() {
        return Err(format!("the cluster refused node {}: {}", req.node_id, reply.error));
    }
    Ok(reply)
}

const CLOSED: &str = "the member closed the connection (is HOST:PORT a chronik Raft port? With peer TLS, the \
                      certificate must name the joining node; the member's log says why)";

/// Sends the join frame on `stream` and reads the answer.
async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    addr: &str,
    mut stream: S,
    req: &JoinRequest,
) -> Result<JoinReply, String> {
    let exchange = async {
        stream.write_all(&frame::encode_join(req.node_id, Some(req.clone()), None)).await.map_err(|e| e.to_string())?;
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            if buf.len() >= 2 && matches!(buf[0], 0x15 | 0x16) && buf[1] == 0x03 {
                // A TLS record (alert or handshake) where a frame was expected.
                return Err("the member speaks TLS: a cluster with peer TLS needs raft.tls-* here too".to_string());
            }
            if let Some(len) = frame::frame_len(&buf).map_err(|e| e.to_string())? {
                if buf.len() >= 4 + len {
                    let body = buf.split_to(4 + len).freeze().slice(4..);
                    return match frame::decode_join(&body) {
                        Some((_, Some(reply))) => Ok(reply),
                        _ => Err("the member answered something other than a join reply".to_string()),
                    };
                }
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) => return Err(CLOSED.into()),
                Ok(_) => {}
                // A TLS peer that closes without close_notify: the member refused the request.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(CLOSED.into()),
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    tokio::time::timeout(JOIN_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("the cluster at {addr} did not answer the join within {JOIN_TIMEOUT:?}"))?
        .map_err(|e| format!("joining through {addr}: {e}"))
}

/// [`ask`], asked again (every second, for up to [`JOIN_TIMEOUT`]) while the cluster answers
/// that its `__meta` did not apply the change: its leader is changing (e.g. it was on a node
/// that just died), which an election settles within two election timeouts. A join is
/// idempotent, so asking again is safe; every other answer is final.
pub async fn ask_retrying(
    addr: &str,
    req: JoinRequest,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> Result<JoinReply, String> {
    let started = std::time::Instant::now();
    loop {
        match ask(addr, req.clone(), tls).await {
            Err(e) if is_transient(&e) && started.elapsed() < JOIN_TIMEOUT => {
                tokio::time::sleep(Duration::from_secs(1)).await
            }
            other => return other,
        }
    }
}

/// Whether a join failed only because `__meta` could not apply it yet.
fn is_transient(e: &str) -> bool {
    // `MetaError::RetriesExhausted`'s and `NotLeader`'s messages, as the member's answer carries them.
    e.contains("the proposal was not applied after") || e.contains("__meta has no leader reachable")
}

const BOOK: &str = "peers";

/// Writes the address book (`id addr` lines) into `dir`, atomically.
pub fn save_book(dir: &Path, book: &BTreeMap<u64, String>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let text: String = book.iter().map(|(id, a)| format!("{id} {a}\n")).collect();
    let tmp = dir.join(format!("{BOOK}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join(BOOK))
}

/// The address book saved in `dir` (empty if none; bad lines are skipped).
pub fn load_book(dir: &Path) -> BTreeMap<u64, String> {
    let Ok(text) = std::fs::read_to_string(dir.join(BOOK)) else { return BTreeMap::new() };
    text.lines()
        .filter_map(|l| {
            let (id, addr) = l.split_once(' ')?;
            Some((id.parse().ok()?, addr.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_meta_that_could_not_apply_the_join_yet_is_asked_again() {
        use crate::meta::actor::MetaError;
        let refused = |e: MetaError| format!("the cluster refused node 6: {e}");
        assert!(super::is_transient(&refused(MetaError::RetriesExhausted(6))));
        assert!(super::is_transient(&refused(MetaError::NotLeader(0))));
        assert!(!super::is_transient("the cluster refused node 6: node id 6 is already used by 127.0.0.1:1"));
        assert!(!super::is_transient("cannot reach the cluster at 127.0.0.1:1: Connection refused (os error 111)"));
    }

    use super::*;

    #[test]
    fn the_address_book_round_trips_and_skips_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_book(dir.path()).is_empty());
        let book: BTreeMap<u64, String> = [(1, "127.0.0.1:9192".to_string()), (4, "h:1".to_string())].into();
        save_book(dir.path(), &book).unwrap();
        assert_eq!(load_book(dir.path()), book);
        std::fs::write(dir.path().join(BOOK), "x y\n2 a:1\n").unwrap();
        assert_eq!(load_book(dir.path()), [(2, "a:1".to_string())].into());
    }

    #[test]
    fn join_frames_round_trip() {
        let req = JoinRequest { node_id: 4, raft_addr: "h:1".into(), kafka_addr: "h:2".into() };
        let f = frame::encode_join(4, Some(req.clone()), None);
        assert_eq!(frame::decode_join(&f[4..]), Some((Some(req), None)));
        let reply = JoinReply { voters: vec![1, 2, 3], conf_index: 7, ..Default::default() };
        let f = frame::encode_join(1, None, Some(reply.clone()));
        assert_eq!(frame::decode_join(&f[4..]), Some((None, Some(reply))));
        // An ordinary frame carries no join.
        assert_eq!(frame::decode_join(&frame::encode(1, 2, &[])[4..]), None);
    }

    #[tokio::test]
    async fn an_unreachable_member_is_a_clear_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let req = JoinRequest { node_id: 4, raft_addr: "h:1".into(), kafka_addr: String::new() };
        let e = ask(&addr, req, None).await.unwrap_err();
        assert!(e.contains("cannot reach the cluster"), "{e}");
    }
}
