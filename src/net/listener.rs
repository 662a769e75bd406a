//! The Kafka listeners: each configured listener (`kafka.listeners`, or the default PLAINTEXT
//! one) is bound at start-up with its security protocol; its accept loop refuses connections
//! past the configured maximum, backs off when accept fails, runs the TLS handshake on SSL and
//! SASL_SSL listeners (a client that fails it is closed, the broker goes on) and serves each
//! connection on the network arbiter.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::broker::BrokerCtx;
use crate::config::{ListenerSpec, SecurityProtocol};
use crate::net::connection;
use crate::net::request_pool::RequestPool;
use crate::net::sink::Wire;
use crate::security::principal::Principal;
use crate::security::sasl::SaslSettings;

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a connection needs to know about the listener it came in on.
pub struct ListenerCtx {
    pub name: String,
    pub protocol: SecurityProtocol,
    /// Set on SSL and SASL_SSL listeners.
    pub tls: Option<TlsAcceptor>,
    pub sasl: Arc<SaslSettings>,
    pub max_request_size: usize,
    pub max_connections: usize,
    /// The node's request memory pool, shared by every listener.
    pub pool: Arc<RequestPool>,
}

/// A bound listener, not yet serving.
pub struct Bound {
    pub spec: ListenerSpec,
    pub listener: std::net::TcpListener,
    pub addr: SocketAddr,
}

impl Bound {
    /// The address clients are told: the advertised host and port, else the bound address
    /// (loopback for a wildcard address).
    pub fn advertised(&self) -> (String, u16) {
        let host = self.spec.advertised_host.clone().unwrap_or_else(|| match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
            IpAddr::V6(ip) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.to_string(),
            ip => ip.to_string(),
        });
        (host, self.spec.advertised_port.unwrap_or(self.addr.port()))
    }
}

/// Binds every listener (non-blocking, ready for tokio).
pub fn bind_all(specs: &[ListenerSpec]) -> Result<Vec<Bound>, (String, std::io::Error)> {
    specs
        .iter()
        .map(|spec| {
            let err = |e| (spec.bind.clone(), e);
            let listener = std::net::TcpListener::bind(&spec.bind).map_err(err)?;
            listener.set_nonblocking(true).map_err(err)?;
            let addr = listener.local_addr().map_err(err)?;
            Ok(Bound { spec: spec.clone(), listener, addr })
        })
        .collect()
}

/// Accepts connections forever.
pub async fn run(listener: TcpListener, ctx: Arc<BrokerCtx>, lctx: Arc<ListenerCtx>) {
    let open = Arc::new(AtomicUsize::new(0));
    let mut backoff = Duration::from_millis(10);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                if open.load(Ordering::Acquire) >= lctx.max_connections {
                    slog::warn!(ctx.logger, "refusing connection: too many open"; "client" => %peer, "max" => lctx.max_connections);
                    drop(stream);
                    continue;
                }
                open.fetch_add(1, Ordering::AcqRel);
                let _ = stream.set_nodelay(true);
                let (ctx, lctx, open) = (ctx.clone(), lctx.clone(), open.clone());
                actix_rt::spawn(async move {
                    match &lctx.tls {
                        None => {
                            let (rd, wr) = stream.into_split();
                            connection::serve(rd, Wire(wr), peer, ctx, lctx.clone(), None).await
                        }
                        Some(acceptor) => {
                            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(tls)) => {
                                    let principal = tls
                                        .get_ref()
                                        .1
                                        .peer_certificates()
                                        .and_then(|c| c.first())
                                        .and_then(|c| crate::security::tls::subject_dn(c))
                                        .map(Principal::user);
                                    let (rd, wr) = tokio::io::split(tls);
                                    connection::serve(rd, Wire(wr), peer, ctx, lctx.clone(), principal).await
                                }
                                Ok(Err(e)) => {
                                    slog::info!(ctx.logger, "closing connection: TLS handshake failed"; "client" => %peer, "listener" => &lctx.name, "error" => %e)
                                }
                                Err(_) => {
                                    slog::info!(ctx.logger, "closing connection: TLS handshake timed out"; "client" => %peer, "listener" => &lctx.name)
                                }
                            }
                        }
                    }
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
