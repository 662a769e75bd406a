//! Client networking: the listeners (one per configured Kafka listener, TLS on SSL/SASL_SSL, its
//! certificate re-read on SIGHUP) accept Kafka connections; each connection gates SASL listeners on authentication (`sasl`),
//! reserves each request's bytes from the node's request memory pool (`request_pool`), reads frames, dispatches them through the route table inside its session and writes
//! responses in request order, through a `sink` (plaintext: Fetch batches with `sendfile`).

pub mod connection;
pub mod listener;
pub mod request_pool;
pub mod sasl;
pub mod sink;

use std::sync::Arc;

use actix::Arbiter;
use slog::Logger;

use crate::broker::BrokerCtx;
use crate::config::Config;
use crate::security::sasl::SaslSettings;

/// Serves every bound listener on the network arbiter `net` (TLS set up once for all TLS
/// listeners). `Err`: the TLS files could not be loaded.
pub fn serve_listeners(
    config: &Config,
    bound: Vec<listener::Bound>,
    ctx: &Arc<BrokerCtx>,
    net: &Arbiter,
    logger: &Logger,
) -> Result<(), String> {
    let tls = match bound.iter().any(|b| b.spec.protocol.tls()) {
        true => {
            let (server, resolver) =
                crate::security::tls::server_config(&config.tls, logger).map_err(|e| e.to_string())?;
            #[cfg(unix)]
            net.spawn(crate::security::tls::reload_on_sighup(resolver));
            #[cfg(not(unix))]
            drop(resolver);
            Some(tokio_rustls::TlsAcceptor::from(server))
        }
        false => None,
    };
    let sasl = Arc::new(SaslSettings {
        mechanisms: config.sasl.enabled_mechanisms.clone(),
        plain_users: config.sasl.plain_users.clone(),
        reauth_ms: config.kafka.connections_max_reauth_ms,
    });
    let pool = crate::net::request_pool::RequestPool::new(config.kafka.queued_max_request_bytes);
    crate::metrics::set_request_pool(config.node_id, pool.clone());
    for b in bound {
        let lctx = Arc::new(listener::ListenerCtx {
            name: b.spec.name.clone(),
            protocol: b.spec.protocol,
            tls: if b.spec.protocol.tls() { tls.clone() } else { None },
            sasl: sasl.clone(),
            max_request_size: config.kafka.max_request_size as usize,
            max_connections: config.kafka.max_connections,
            pool: pool.clone(),
        });
        let ctx = ctx.clone();
        let std_listener = b.listener;
        slog::info!(logger, "serving Kafka clients"; "listener" => &b.spec.name, "protocol" => %b.spec.protocol, "listen" => %b.addr);
        net.spawn(async move {
            match tokio::net::TcpListener::from_std(std_listener) {
                Ok(l) => listener::run(l, ctx, lctx).await,
                Err(e) => slog::crit!(ctx.logger, "cannot serve the Kafka port"; "error" => %e),
            }
        });
    }
    Ok(())
}
