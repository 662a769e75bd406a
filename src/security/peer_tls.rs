//! Mutual TLS between nodes (`raft.tls-cert-file`, `raft.tls-key-file`, `raft.tls-ca-file`):
//! the raft listener's server configuration (client certificates required, chained to the CA)
//! and the peers' client configuration (the server must present a certificate for
//! `node-<id>` of the node dialled), and the node a peer certificate names. Node N's certificate
//! carries `CN=node-N` and the subject alternative name `DNS:node-N` (see docs/security.md).
//! A joining node (`raft.join`) dials a member whose id it does not know yet: its join
//! connector accepts a certificate chained to the CA that is valid for `node-N`, N being the
//! node its CN names ([`AnyNodeVerifier`]), the same check as a peer link's once N is known.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use slog::Logger;

use crate::config::RaftConfig;
use crate::security::tls::{load_certs, provider, subject_dn, ReloadingCert, TlsError};

/// The TLS settings of the peer transport.
#[derive(Clone)]
pub struct PeerTls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub connector: tokio_rustls::TlsConnector,
    /// The client side of a join (`peer::join::ask`): the same certificate and CA, any member.
    pub join: tokio_rustls::TlsConnector,
    /// The node's certificate, served and presented by both sides: re-read when its files
    /// change and on SIGHUP ([`crate::security::tls::reload_on_sighup`]).
    pub cert: Arc<ReloadingCert>,
}

/// The name node `id`'s certificate carries (CN and DNS SAN).
pub fn node_name(id: u64) -> String {
    format!("node-{id}")
}

/// The server name a peer dials node `id` with.
pub fn server_name(id: u64) -> Option<ServerName<'static>> {
    ServerName::try_from(node_name(id)).ok()
}

/// The node a certificate names: its subject's CN `node-N`; `None` otherwise.
pub fn cert_node(cert: &[u8]) -> Option<u64> {
    let dn = subject_dn(cert)?;
    dn.split(',').find_map(|rdn| rdn.strip_prefix("CN=node-")).and_then(|n| n.parse().ok())
}

fn roots(ca: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in load_certs(ca)? {
        roots.add(c)?;
    }
    Ok(Arc::new(roots))
}

/// Builds both sides when the three `raft.tls-*` files are set; `None` when none is.
pub fn peer_tls(raft: &RaftConfig, logger: &Logger) -> Result<Option<PeerTls>, TlsError> {
    let (Some(cert), Some(key), Some(ca)) = (&raft.tls_cert_file, &raft.tls_key_file, &raft.tls_ca_file) else {
        return Ok(None);
    };
    let roots = roots(ca)?;
    let server_verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let resolver = Arc::new(ReloadingCert::new(cert, key, logger.new(slog::o!("tls" => "raft")))?);
    let versions: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
    let server = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver.clone());
    let client = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)?
        .with_root_certificates(roots)
        .with_client_cert_resolver(resolver.clone());
    let join = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyNodeVerifier(server_verifier)))
        .with_client_cert_resolver(resolver.clone());
    Ok(Some(PeerTls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
        connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
        join: tokio_rustls::TlsConnector::from(Arc::new(join)),
        cert: resolver,
    }))
}

/// Verifies a member's certificate for a join, when the joiner does not know the member's id:
/// the certificate must name a node by its CN (`node-N`) and pass the peer links' own check
/// (chained to the CA, valid now, valid for the name `node-N`). The server name dialled is
/// ignored: a join address is only `HOST:PORT`.
#[derive(Debug)]
pub struct AnyNodeVerifier(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for AnyNodeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let name = cert_node(end_entity)
            .and_then(server_name)
            .ok_or_else(|| rustls::Error::General("the member's certificate names no node (CN=node-N)".to_string()))?;
        self.0.verify_server_cert(end_entity, intermediates, &name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::tls::tests::make_cert;

    #[test]
    fn certificates_name_their_node_by_cn() {
        let dir = tempfile::tempdir().unwrap();
        for (name, subj) in [("n", "/O=chronik/CN=node-7"), ("x", "/CN=localhost")] {
            make_cert(dir.path(), name, subj);
        }
        let n = load_certs(&dir.path().join("n.pem")).unwrap();
        assert_eq!(cert_node(&n[0]), Some(7));
        let x = load_certs(&dir.path().join("x.pem")).unwrap();
        assert_eq!(cert_node(&x[0]), None);
        assert_eq!(server_name(3).map(|s| s.to_str().to_string()), Some("node-3".to_string()));
    }

    /// The certificate a node presents when it dials a peer is the reloading one: after the
    /// files are replaced and reloaded (as SIGHUP does), the client side presents the new one.
    #[test]
    fn the_client_side_presents_the_reloaded_certificate() {
        let dir = tempfile::tempdir().unwrap();
        make_cert(dir.path(), "node", "/CN=node-1");
        make_cert(dir.path(), "next", "/O=renewed/CN=node-1");
        let raft = RaftConfig {
            tls_cert_file: Some(dir.path().join("node.pem")),
            tls_key_file: Some(dir.path().join("node-key.pem")),
            tls_ca_file: Some(dir.path().join("node.pem")),
            ..RaftConfig::default()
        };
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let t = peer_tls(&raft, &logger).unwrap().expect("all three files set");
        let presented = |t: &PeerTls| {
            let k = rustls::client::ResolvesClientCert::resolve(&*t.cert, &[], &[]).expect("a certificate");
            k.cert[0].as_ref().to_vec()
        };
        let first = load_certs(&dir.path().join("node.pem")).unwrap();
        assert_eq!(presented(&t), first[0].as_ref());
        std::fs::copy(dir.path().join("next.pem"), dir.path().join("node.pem")).unwrap();
        std::fs::copy(dir.path().join("next-key.pem"), dir.path().join("node-key.pem")).unwrap();
        t.cert.reload_now("test").unwrap();
        let next = load_certs(&dir.path().join("next.pem")).unwrap();
        assert_ne!(first[0].as_ref(), next[0].as_ref());
        assert_eq!(presented(&t), next[0].as_ref());
        assert_eq!(cert_node(&presented(&t)), Some(1));
    }
}
