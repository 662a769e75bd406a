//! One Kafka client connection.
//!
//! The reader reads size-prefixed frames (rejecting frames over the max request size and
//! truncated frames), dispatches each through the route table, and queues the handler future
//! for the writer. The writer runs the queued futures concurrently but writes their responses
//! strictly in request order, as Kafka requires for pipelined requests. A request that cannot be
//! answered (unknown API key, undecodable body, unsupported version) closes the connection after
//! a log line; earlier responses are still written first.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};
use slog::Logger;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::broker::routes::{dispatch, Reply};
use crate::broker::BrokerCtx;
use crate::error::ProtocolError;

/// How many requests of one connection may be in flight at once.
const MAX_IN_FLIGHT: usize = 64;

tokio::task_local! {
    /// The client's address, set for the task that runs a connection's handler futures.
    static CLIENT_ADDR: SocketAddr;
}

/// The address of the client whose request is being handled (inside a handler future).
pub fn client_addr() -> Option<SocketAddr> {
    CLIENT_ADDR.try_with(|a| *a).ok()
}

/// Serves one connection until the client closes it or sends something unanswerable.
pub async fn serve(stream: TcpStream, peer: SocketAddr, ctx: Arc<BrokerCtx>, max_request_size: usize) {
    let _ = stream.set_nodelay(true);
    let logger = ctx.logger.new(slog::o!("client" => peer.to_string()));
    let (mut rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel::<BoxFuture<'static, Reply>>(MAX_IN_FLIGHT);
    let writer = actix_rt::spawn(CLIENT_ADDR.scope(peer, write_loop(wr, rx, logger.clone())));
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
        let mut frame = BytesMut::zeroed(size as usize);
        if let Err(e) = rd.read_exact(&mut frame).await {
            slog::warn!(logger, "closing connection: truncated frame"; "expected" => size, "error" => %e);
            break;
        }
        match dispatch(&ctx, frame.freeze()) {
            Ok(fut) => {
                if tx.send(fut).await.is_err() {
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

async fn write_loop(mut wr: OwnedWriteHalf, mut rx: mpsc::Receiver<BoxFuture<'static, Reply>>, logger: Logger) {
    let mut pending: FuturesOrdered<BoxFuture<'static, Reply>> = FuturesOrdered::new();
    let mut open = true;
    loop {
        tokio::select! {
            next = rx.recv(), if open => match next {
                Some(fut) => pending.push_back(fut),
                None => open = false,
            },
            Some(reply) = pending.next(), if !pending.is_empty() => match reply {
                Ok(Some(bytes)) => {
                    if let Err(e) = wr.write_all(&bytes).await {
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
