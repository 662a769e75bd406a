//! The Kafka listener: accepts client connections and serves each on the network arbiter,
//! refusing connections past the configured maximum and backing off when accept fails.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::broker::BrokerCtx;
use crate::net::connection;

/// Accepts connections forever.
pub async fn run(listener: TcpListener, ctx: Arc<BrokerCtx>, max_request_size: usize, max_connections: usize) {
    let open = Arc::new(AtomicUsize::new(0));
    let mut backoff = Duration::from_millis(10);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                if open.load(Ordering::Acquire) >= max_connections {
                    slog::warn!(ctx.logger, "refusing connection: too many open"; "client" => %peer, "max" => max_connections);
                    drop(stream);
                    continue;
                }
                open.fetch_add(1, Ordering::AcqRel);
                let (ctx, open) = (ctx.clone(), open.clone());
                actix_rt::spawn(async move {
                    connection::serve(stream, peer, ctx, max_request_size).await;
                    open.fetch_sub(1, Ordering::AcqRel);
                });
            }
            Err(e) => {
                slog::warn!(ctx.logger, "accept failed"; "error" => %e, "retry_in" => ?backoff);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}
