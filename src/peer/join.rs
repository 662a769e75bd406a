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

/// Why a join failed, for the operator; `retriable` when the cluster answered that its
/// `__meta` could not apply the join yet ([`JoinReply::retriable`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct JoinError {
    pub message: String,
    pub retriable: bool,
}

impl From<String> for JoinError {
    fn from(message: String) -> Self {
        JoinError { message, retriable: false }
    }
}

/// Asks the member at `addr` to add `req`'s node, over mutual TLS when `tls` is the node's
/// join connector (`security::peer_tls`, peer TLS configured). `Err` says why, for the
/// operator: the address is unreachable, the TLS handshake failed (another CA, no client
/// certificate), the answer never came, or the cluster refused (nothing changed then).
pub async fn ask(
    addr: &str,
    req: JoinRequest,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> Result<JoinReply, JoinError> {
    let reply = answer(addr, &req, tls).await?;
    if !reply.error.is_empty() {
        return Err(JoinError {
            message: format!("the cluster refused node {}: {}", req.node_id, reply.error),
            retriable: retriable(&reply),
        });
    }
    Ok(reply)
}

/// The member's answer to the join, refusals included.
async fn answer(addr: &str, req: &JoinRequest, tls: Option<&tokio_rustls::TlsConnector>) -> Result<JoinReply, String> {
    let connect = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await;
    let stream = match connect {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("cannot reach the cluster at {addr}: {e}")),
        Err(_) => return Err(format!("cannot reach the cluster at {addr}: connect timed out")),
    };
    let reply = match tls {
        None => exchange(addr, stream, req).await?,
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
            let reply = exchange(addr, stream, req).await?;
            if let Some(n) = member.filter(|n| reply.error.is_empty() && !reply.peers.contains_key(n)) {
                return Err(format!("the member at {addr} presents node-{n}'s certificate, but node {n} is no member"));
            }
            reply
        }
    };
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
/// that its `__meta` did not apply the change (`retriable`): its leader is changing (e.g. it was
/// on a node that just died), which an election settles within two election timeouts. A join
/// is idempotent, so asking again is safe; every other answer is final.
pub async fn ask_retrying(
    addr: &str,
    req: JoinRequest,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> Result<JoinReply, JoinError> {
    let started = std::time::Instant::now();
    loop {
        match ask(addr, req.clone(), tls).await {
            Err(e) if e.retriable && started.elapsed() < JOIN_TIMEOUT => tokio::time::sleep(RETRY_EVERY).await,
            other => return other,
        }
    }
}

const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Whether a refusal is only because `__meta` could not apply the join yet: the member's flag;
/// a member of an older version sets none, so its two such messages (`MetaError::NotLeader`'s
/// and `RetriesExhausted`'s) are recognised too.
fn retriable(reply: &JoinReply) -> bool {
    let e = &reply.error;
    reply.retriable || e.contains("the proposal was not applied after") || e.contains("__meta has no leader reachable")
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
    use super::*;

    #[test]
    fn a_reply_is_retriable_by_its_flag_or_an_older_members_message() {
        use crate::meta::actor::MetaError;
        let reply = |error: String, retriable| JoinReply { error, retriable, ..Default::default() };
        assert!(retriable(&reply("the cluster did not record the node in time".into(), true)));
        assert!(!retriable(&reply("node id 6 is already used by 127.0.0.1:1".into(), false)));
        // An older member (no flag): its two messages.
        assert!(retriable(&reply(MetaError::RetriesExhausted(6).to_string(), false)));
        assert!(retriable(&reply(MetaError::NotLeader(0).to_string(), false)));
    }

    /// The flag is a new tagged field: an older member's reply decodes with it unset, and an
    /// older node decodes a new reply as before (the unknown field skipped).
    #[test]
    fn the_retriable_flag_is_backward_compatible() {
        #[derive(Clone, PartialEq, prost::Message)]
        struct OldJoinReply {
            #[prost(string, tag = "1")]
            error: String,
            #[prost(uint64, repeated, tag = "2")]
            voters: Vec<u64>,
        }
        let old = OldJoinReply { error: "x".into(), voters: vec![1] };
        let new: JoinReply = prost::Message::decode(&*prost::Message::encode_to_vec(&old)).unwrap();
        assert_eq!((new.error.as_str(), new.voters.as_slice(), new.retriable), ("x", &[1][..], false));
        let new = JoinReply { error: "y".into(), retriable: true, ..Default::default() };
        let seen: OldJoinReply = prost::Message::decode(&*prost::Message::encode_to_vec(&new)).unwrap();
        assert_eq!(seen.error, "y");
        let back: JoinReply = prost::Message::decode(&*prost::Message::encode_to_vec(&new)).unwrap();
        assert!(back.retriable);
    }

    /// A member that answers each join with the next of `replies`; the number of joins asked.
    async fn member(replies: Vec<JoinReply>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = asked.clone();
        tokio::spawn(async move {
            for reply in replies {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = BytesMut::new();
                while frame::frame_len(&buf).unwrap().is_none_or(|n| buf.len() < 4 + n) {
                    assert!(s.read_buf(&mut buf).await.unwrap() > 0);
                }
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                s.write_all(&frame::encode_join(1, None, Some(reply))).await.unwrap();
            }
        });
        (addr, asked)
    }

    #[tokio::test]
    async fn a_join_is_asked_again_only_while_the_member_says_retriable() {
        let req = JoinRequest { node_id: 4, raft_addr: "h:1".into(), kafka_addr: String::new() };
        let later = |error: &str| JoinReply { error: error.into(), retriable: true, ..Default::default() };
        let ok = JoinReply { voters: vec![1, 2, 3], peers: [(1, "h:0".to_string())].into(), ..Default::default() };
        // Retriable (whatever its text), then recorded: two joins, the answer is the second.
        let (addr, asked) = member(vec![later("no leader just now"), ok.clone()]).await;
        assert_eq!(ask_retrying(&addr, req.clone(), None).await, Ok(ok));
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2);
        // A final refusal, even one that reads like a transient one: asked once.
        let fin = JoinReply { error: "node id 4 was removed; no leader".into(), ..Default::default() };
        let (addr, asked) = member(vec![fin, JoinReply::default()]).await;
        let e = ask_retrying(&addr, req, None).await.unwrap_err();
        assert!(!e.retriable && e.message.contains("was removed"), "{e:?}");
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

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
        assert!(e.message.contains("cannot reach the cluster") && !e.retriable, "{e}");
    }
}
