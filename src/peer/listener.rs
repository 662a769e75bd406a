//! Accepts connections from peers. Each connection reads length-prefixed frames, checks that the
//! frame is addressed to this node and comes from a configured peer, and routes every message
//! to its group. Garbage closes that connection only; a message for a group this node does not
//! host is dropped with a log line (once per group).

use std::collections::HashSet;
use std::sync::Arc;

use bytes::BytesMut;
use slog::Logger;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use super::frame;
use super::transport::{Faults, Router};

/// Accepts peer connections forever.
pub async fn run(
    listener: TcpListener,
    me: u64,
    peers: Arc<HashSet<u64>>,
    router: Router,
    faults: Arc<Faults>,
    logger: Logger,
) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let logger = logger.new(slog::o!("peer_addr" => addr.to_string()));
                let (router, peers, faults) = (router.clone(), peers.clone(), faults.clone());
                actix::spawn(async move {
                    if let Err(reason) = serve(stream, me, &peers, &router, &faults, &logger).await {
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

async fn serve(
    mut stream: TcpStream,
    me: u64,
    peers: &HashSet<u64>,
    router: &Router,
    faults: &Faults,
    logger: &Logger,
) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut unknown_groups = HashSet::new();
    loop {
        while let Some(len) = frame::frame_len(&buf).map_err(|e| e.to_string())? {
            if buf.len() < 4 + len {
                break;
            }
            let body = buf.split_to(4 + len);
            let (from, to, msgs) = frame::decode(&body[4..]).map_err(|e| e.to_string())?;
            if to != me || !peers.contains(&from) {
                return Err(format!("frame from node {from} to node {to}: not a configured peer of node {me}"));
            }
            if faults.dropping_from(from) {
                continue;
            }
            for (group, msg) in msgs {
                if msg.from != from {
                    return Err(format!("message of group {group} claims sender {} in a frame from {from}", msg.from));
                }
                if !router.route(group, msg) && unknown_groups.insert(group) {
                    slog::info!(logger, "holding messages for a group this node does not host (yet); they are dropped unless it starts within seconds"; "group" => group, "from" => from);
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
