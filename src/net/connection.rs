//! One Kafka client connection.
//!
//! The reader reads size-prefixed frames (rejecting frames over the max request size and
//! truncated frames), dispatches each through the route table, and queues the handler future
//! for the writer. The writer runs the queued futures concurrently but writes their responses
//! strictly in request order, as Kafka requires for pipelined requests. A request that cannot be
//! answered (unknown API key, undecodable body, unsupported version) closes the connection after
//! a log line; earlier responses are still written first.
//!
//! Every handler future runs inside the connection's [`Session`] (principal, listener, client
//! host). On a SASL listener the reader answers SaslHandshake/SaslAuthenticate itself (see
//! `net::sasl`), and after a v0 SaslHandshake the raw SASL tokens that follow it (frames without
//! a Kafka header, as clients before KIP-152 send them); before authentication only those and ApiVersions are served, anything else
//! closes the connection, as does any request other than re-authentication once the session
//! has outlived `connections.max.reauth.ms` (KIP-368).
//!
//! A request's bytes are reserved from the node's [`RequestPool`](crate::net::request_pool::RequestPool) (Kafka's
//! `queued.max.request.bytes`) before its body is read and given back when its handler has
//! finished, so all connections together hold a bounded amount of request memory.
//!
//! Quotas mute the channel (KIP-219, `broker::throttle`): a handler that throttles the client
//! answers at once and mutes the connection's [`Channel`]; the reader dispatches no further
//! request of that connection until the mute is over.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};
use slog::Logger;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::broker::produce_order::{self, ProduceOrder};
use crate::broker::routes::{dispatch, Reply};
use crate::broker::throttle::{Channel, CHANNEL};
use crate::broker::BrokerCtx;
use crate::error::ProtocolError;
use crate::net::listener::ListenerCtx;
use crate::net::sasl::{self, SaslReply};
use crate::net::sink::Sink;
use crate::protocol::chain::Chain;
use crate::security::principal::{Principal, Session, SESSION};
use crate::security::sasl::Authenticator;

/// How many requests of one connection may be in flight at once.
const MAX_IN_FLIGHT: usize = 64;

tokio::task_local! {
    /// The client's address, set for the task that runs a connection's handler futures.
    static CLIENT_ADDR: SocketAddr;
    /// Whether the connection's sink sends file ranges itself (`net::sink`), set for each
    /// handler future.
    static SENDS_FILES: bool;
}

/// Whether the connection whose request is being handled sends file ranges without reading
/// them (a plaintext listener): Fetch then asks its partitions for ranges, not bytes.
pub fn sends_files() -> bool {
    SENDS_FILES.try_with(|s| *s).unwrap_or(false)
}

/// The address of the client whose request is being handled (inside a handler future).
pub fn client_addr() -> Option<SocketAddr> {
    CLIENT_ADDR.try_with(|a| *a).ok()
}

/// Kafka's API keys the SASL gate looks at.
const API_VERSIONS: i16 = 18;

/// Serves one connection, read from `rd` and answered through `wr`, until the client closes
/// it or sends something unanswerable. `tls_principal`: the principal of a verified client
/// certificate.
pub async fn serve<R, W>(
    mut rd: R,
    wr: W,
    peer: SocketAddr,
    ctx: Arc<BrokerCtx>,
    lctx: Arc<ListenerCtx>,
    tls_principal: Option<Principal>,
) where
    R: AsyncRead + Unpin,
    W: Sink,
{
    let logger = ctx.logger.new(slog::o!("client" => peer.to_string(), "listener" => lctx.name.clone()));
    let sends_files = wr.sends_files();
    let (tx, rx) = mpsc::channel::<BoxFuture<'static, Reply>>(MAX_IN_FLIGHT);
    let writer = actix_rt::spawn(CLIENT_ADDR.scope(peer, write_loop(wr, rx, logger.clone())));
    let mut session = Arc::new(Session {
        principal: tls_principal.unwrap_or_else(Principal::anonymous),
        listener: lctx.name.clone(),
        host: peer.ip().to_string(),
    });
    let sasl_listener = lctx.protocol.sasl();
    let mut auth = Authenticator::default();
    let mut authenticated = !sasl_listener;
    let mut expires: Option<Instant> = None;
    // Set between a v0 SaslHandshake and the end of its exchange: frames are raw SASL tokens.
    let mut raw_tokens = false;
    let max_request_size = lctx.max_request_size;
    let channel = Arc::new(Channel::default());
    let mut produce_order = ProduceOrder::default();
    loop {
        let mut len = [0u8; 4];
        match rd.read_exact(&mut len).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => {
                slog::debug!(logger, "read failed"; "error" => %e);
                break;
            }
        }
        let size = i32::from_be_bytes(len);
        if size < 0 || size as usize > max_request_size {
            let e = ProtocolError::FrameTooLarge { size: size.max(0) as usize, max: max_request_size };
            slog::warn!(logger, "closing connection"; "reason" => %e);
            break;
        }
        // The node's request memory pool (`queued-max-request-bytes`): wait for room before the
        // body is read; the bytes go back when the request's handler has finished.
        let reservation = lctx.pool.reserve(size as usize).await;
        let mut frame = BytesMut::zeroed(size as usize);
        if let Err(e) = rd.read_exact(&mut frame).await {
            slog::warn!(logger, "closing connection: truncated frame"; "expected" => size, "error" => %e);
            break;
        }
        let frame = frame.freeze();
        // A throttled channel is muted: the request waits (unread, for Kafka) until it opens.
        channel.unmuted().await;
        if sasl_listener {
            let reauth = authenticated.then(|| session.principal.clone());
            let (key, reply) = if raw_tokens {
                // After a v0 SaslHandshake the client sends raw SASL tokens, without a Kafka
                // header, until the exchange ends (Kafka's `enableKafkaSaslAuthenticateHeaders`).
                (None, Some(Ok(sasl::handle_raw(&frame, &mut auth, &lctx.sasl, &ctx.image(), reauth.as_ref()))))
            } else {
                let peek = match crate::protocol::peek_request(&frame) {
                    Ok(p) => p,
                    Err(e) => {
                        slog::warn!(logger, "closing connection"; "reason" => %e);
                        break;
                    }
                };
                let reply = sasl::is_sasl_api(peek.api_key)
                    .then(|| sasl::handle(frame.clone(), &mut auth, &lctx.sasl, &ctx.image(), reauth.as_ref()));
                (Some(peek), reply)
            };
            if let Some(reply) = reply {
                let handshake_v0 = key.is_some_and(|p| p.api_key == sasl::SASL_HANDSHAKE && p.api_version == 0);
                raw_tokens = matches!(reply, Ok(SaslReply::Continue(_))) && (raw_tokens || handshake_v0);
                let (bytes, close) = match reply {
                    Ok(SaslReply::Continue(b)) => (Some(b), false),
                    Ok(SaslReply::Authenticated { bytes, principal }) => {
                        if !authenticated || principal != session.principal {
                            let framing = if key.is_none() { "raw tokens" } else { "SaslAuthenticate" };
                            slog::info!(logger, "authenticated"; "principal" => %principal, "framing" => framing);
                        }
                        session = Arc::new(Session { principal, ..(*session).clone() });
                        authenticated = true;
                        expires = (lctx.sasl.reauth_ms > 0)
                            .then(|| Instant::now() + std::time::Duration::from_millis(lctx.sasl.reauth_ms));
                        (Some(bytes), false)
                    }
                    Ok(SaslReply::Close { bytes, reason }) => {
                        slog::info!(logger, "closing connection: SASL authentication failed"; "reason" => reason);
                        (bytes, true)
                    }
                    Err(e) => {
                        slog::warn!(logger, "closing connection"; "reason" => %e);
                        (None, true)
                    }
                };
                if let Some(b) = bytes {
                    if tx.send(Box::pin(async move { Ok(Some(Chain::from(b))) })).await.is_err() {
                        break;
                    }
                }
                if close {
                    break;
                }
                continue;
            }
            let key = key.map_or(-1, |p| p.api_key);
            if key != API_VERSIONS {
                if !authenticated {
                    slog::info!(logger, "closing connection: request before SASL authentication"; "api_key" => key);
                    break;
                }
                if expires.is_some_and(|t| Instant::now() >= t) {
                    slog::info!(logger, "closing connection: SASL session expired (connections.max.reauth.ms)");
                    break;
                }
            }
        }
        let frame_api_key = frame.get(..2).map(|k| i16::from_be_bytes([k[0], k[1]]));
        match dispatch(&ctx, frame) {
            Ok(fut) => {
                // A request header opens with its API key; Produce is 0.
                let fut = if frame_api_key == Some(0) {
                    Box::pin(produce_order::scope(produce_order.next_turn(), fut))
                } else {
                    fut
                };
                let fut = CHANNEL.scope(channel.clone(), SESSION.scope(session.clone(), fut));
                let fut = SENDS_FILES.scope(sends_files, fut);
                let fut = async move {
                    let reply = fut.await;
                    drop(reservation);
                    reply
                };
                if tx.send(Box::pin(fut)).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                slog::warn!(logger, "closing connection"; "reason" => %e);
                break;
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

async fn write_loop<W: Sink>(mut wr: W, mut rx: mpsc::Receiver<BoxFuture<'static, Reply>>, logger: Logger) {
    let mut pending: FuturesOrdered<BoxFuture<'static, Reply>> = FuturesOrdered::new();
    let mut open = true;
    loop {
        tokio::select! {
            // At most MAX_IN_FLIGHT requests are served at once: a client that does not wait for
            // answers (acks=0) is read only as fast as its requests finish.
            next = rx.recv(), if open && pending.len() < MAX_IN_FLIGHT => match next {
                Some(fut) => pending.push_back(fut),
                None => open = false,
            },
            Some(reply) = pending.next(), if !pending.is_empty() => match reply {
                Ok(Some(chain)) => {
                    if let Err(e) = wr.write_chain(chain).await {
                        slog::debug!(logger, "write failed"; "error" => %e);
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    slog::warn!(logger, "closing connection"; "reason" => %e);
                    let _ = wr.shutdown().await;
                    return;
                }
            },
            else => break,
        }
        if !open && pending.is_empty() {
            break;
        }
    }
    let _ = wr.shutdown().await;
}
