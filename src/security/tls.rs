//! TLS for the SSL and SASL_SSL listeners on rustls (ring provider, TLS 1.2 and 1.3 only):
//! loading PEM certificate chains and keys, a certificate resolver that re-reads the files when
//! they change (checked at most once a second, on a handshake), on SIGHUP ([`reload_on_sighup`])
//! or when asked ([`ReloadingCert::reload`]), client authentication (`none`/`requested`/`required` against a CA bundle) and the
//! principal of a client certificate: `User:` + its subject DN in RFC 2253 form, as Kafka's
//! default principal builder gives it. Key material is never logged.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use slog::Logger;

use crate::config::{ClientAuth, TlsConfig};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(String),
    #[error("`tls.cert-file` and `tls.key-file` are required for a TLS listener")]
    Missing,
}

/// The ring provider: no C/assembly toolchain beyond a C compiler (aws-lc-rs needs cmake).
/// Deprecated upstream only for lacking post-quantum key exchange.
#[allow(deprecated)]
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source })
}

/// All certificates of a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut pem.as_slice()).collect();
    let certs = certs.map_err(|e| TlsError::Pem { path: path.to_path_buf(), message: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::Pem { path: path.to_path_buf(), message: "no certificate".into() });
    }
    Ok(certs)
}

/// The first private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| TlsError::Pem { path: path.to_path_buf(), message: e.to_string() })?
        .ok_or_else(|| TlsError::Pem { path: path.to_path_buf(), message: "no private key".into() })
}

fn certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let certs = load_certs(cert)?;
    let key = provider().key_provider.load_private_key(load_key(key)?)?;
    Ok(Arc::new(CertifiedKey::new(certs, key)))
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The server certificate, re-read when its files change.
pub struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// When the files were last looked at, and their modification times then.
    checked: Mutex<(Instant, Option<SystemTime>, Option<SystemTime>)>,
    logger: Logger,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReloadingCert({})", self.cert_file.display())
    }
}

/// How often a handshake may look at the certificate files.
const CHECK_EVERY: Duration = Duration::from_secs(1);

impl ReloadingCert {
    /// Loads the files once; an error here stops start-up.
    pub fn new(cert_file: &Path, key_file: &Path, logger: Logger) -> Result<Self, TlsError> {
        let key = certified_key(cert_file, key_file)?;
        Ok(ReloadingCert {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            current: RwLock::new(key),
            checked: Mutex::new((Instant::now(), mtime(cert_file), mtime(key_file))),
            logger,
        })
    }

    /// Re-reads the files now; on an error the old certificate stays (and the error is logged).
    pub fn reload(&self) -> Result<(), TlsError> {
        self.reload_for("request")
    }

    /// Re-reads the files now because of `trigger` (for the log line), and takes their current
    /// modification times as seen, so a handshake's check does not read them again.
    pub fn reload_now(&self, trigger: &'static str) -> Result<(), TlsError> {
        let mut c = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        *c = (Instant::now(), mtime(&self.cert_file), mtime(&self.key_file));
        drop(c);
        self.reload_for(trigger)
    }

    fn reload_for(&self, trigger: &'static str) -> Result<(), TlsError> {
        match certified_key(&self.cert_file, &self.key_file) {
            Ok(k) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = k;
                slog::info!(self.logger, "TLS certificate reloaded"; "cert_file" => %self.cert_file.display(), "trigger" => trigger);
                Ok(())
            }
            Err(e) => {
                slog::warn!(self.logger, "TLS certificate reload failed, keeping the old one"; "error" => %e, "trigger" => trigger);
                Err(e)
            }
        }
    }

    /// Reloads when a file's modification time changed since the last look (at most once per
    /// [`CHECK_EVERY`] unless `force`).
    pub fn check(&self, force: bool) {
        let mut c = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        if !force && c.0.elapsed() < CHECK_EVERY {
            return;
        }
        let (cm, km) = (mtime(&self.cert_file), mtime(&self.key_file));
        c.0 = Instant::now();
        if (cm, km) != (c.1, c.2) {
            c.1 = cm;
            c.2 = km;
            drop(c);
            let _ = self.reload_for("file change");
        }
    }

    /// The certificate served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.check(false);
        Some(self.current())
    }
}

/// The same certificate as a client's (a node dialling a peer presents it), reloaded alike.
impl rustls::client::ResolvesClientCert for ReloadingCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.check(false);
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Re-reads `resolver`'s files on every SIGHUP for as long as the runtime it is spawned on runs.
/// The signal handler itself only wakes this task (tokio's signal driver); the files are read
/// on the blocking pool, so no runtime thread waits on the disk. A line is logged once the
/// handler is in place (from then on SIGHUP no longer terminates the process).
#[cfg(unix)]
pub async fn reload_on_sighup(resolver: Arc<ReloadingCert>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            slog::warn!(resolver.logger, "cannot handle SIGHUP: TLS certificates reload on file change only"; "error" => %e);
            return;
        }
    };
    slog::info!(resolver.logger, "SIGHUP reloads the TLS certificate"; "cert_file" => %resolver.cert_file.display());
    while hup.recv().await.is_some() {
        let r = resolver.clone();
        // The outcome is logged by reload_now.
        let _ = tokio::task::spawn_blocking(move || r.reload_now("SIGHUP")).await;
    }
}

/// The rustls server configuration of the TLS listeners, and its reloading certificate.
pub fn server_config(tls: &TlsConfig, logger: &Logger) -> Result<(Arc<ServerConfig>, Arc<ReloadingCert>), TlsError> {
    let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) else {
        return Err(TlsError::Missing);
    };
    let resolver = Arc::new(ReloadingCert::new(cert, key, logger.new(slog::o!("tls" => "cert")))?);
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match (tls.client_auth, &tls.ca_file) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(ca)) => {
            let mut roots = RootCertStore::empty();
            for c in load_certs(ca)? {
                roots.add(c)?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let v = if auth == ClientAuth::Requested { v.allow_unauthenticated() } else { v };
            builder.with_client_cert_verifier(v.build().map_err(|e| TlsError::Verifier(e.to_string()))?)
        }
    };
    let mut config = builder.with_cert_resolver(resolver.clone());
    config.alpn_protocols.clear();
    Ok((Arc::new(config), resolver))
}

// --- the subject DN of a certificate, RFC 2253 -----------------------------------------------

/// One DER TLV: (tag, contents, rest).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&l0, mut b) = b.split_first()?;
    let len = if l0 < 0x80 {
        l0 as usize
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let len = b[..n].iter().fold(0usize, |a, &x| (a << 8) | x as usize);
        b = &b[n..];
        len
    };
    (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
}

fn oid_text(oid: &[u8]) -> String {
    let mut parts = Vec::new();
    if let Some((&first, rest)) = oid.split_first() {
        parts.push((first / 40) as u64);
        parts.push((first % 40) as u64);
        let mut v = 0u64;
        for &x in rest {
            v = (v << 7) | (x & 0x7f) as u64;
            if x & 0x80 == 0 {
                parts.push(v);
                v = 0;
            }
        }
    }
    parts.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(".")
}

/// The keywords Java's `X500Principal.getName()` (RFC 2253) prints; others as dotted OIDs.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

fn escape(v: &str) -> String {
    let mut out = String::new();
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == n && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The subject DN of a DER certificate in RFC 2253 form (last RDN first), as Java prints it;
/// `None` if the certificate does not parse.
pub fn subject_dn(cert: &[u8]) -> Option<String> {
    let (_, cert, _) = tlv(cert)?;
    let (_, mut tbs, _) = tlv(cert)?;
    // [0] version (optional), serial, signature algorithm, issuer, validity, subject.
    let (tag, _, rest) = tlv(tbs)?;
    if tag == 0xa0 {
        tbs = rest;
    }
    for _ in 0..4 {
        tbs = tlv(tbs)?.2;
    }
    let (_, mut s, _) = tlv(tbs)?;
    let mut rdns = Vec::new();
    while !s.is_empty() {
        let (_, set, rest) = tlv(s)?;
        let mut avas = Vec::new();
        let mut a = set;
        while !a.is_empty() {
            let (_, ava, rest2) = tlv(a)?;
            let (_, oid, value) = tlv(ava)?;
            let (vtag, vbody, _) = tlv(value)?;
            let oid = oid_text(oid);
            let text = match (keyword(&oid), vtag) {
                // UTF8String, PrintableString, IA5String, T61String.
                (Some(k), 0x0c | 0x13 | 0x16 | 0x14) => format!("{k}={}", escape(&String::from_utf8_lossy(vbody))),
                _ => format!("{oid}=#{}", hex(value)),
            };
            avas.push(text);
            a = rest2;
        }
        rdns.push(avas.join("+"));
        s = rest;
    }
    rdns.reverse();
    Some(rdns.join(","))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::Command;

    fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl CLI");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// A self-signed EC certificate `<name>.pem` and key `<name>-key.pem` in `dir`, valid two
    /// days, with `subject`, made with the openssl CLI (also used by `peer_tls`'s tests).
    pub(crate) fn make_cert(dir: &Path, name: &str, subject: &str) {
        let (key, pem) = (format!("{name}-key.pem"), format!("{name}.pem"));
        let ec = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(dir, &[&ec[..], &["-days", "2", "-subj", subject, "-keyout", &key, "-out", &pem]].concat());
    }

    fn logger() -> Logger {
        Logger::root(slog::Discard, slog::o!())
    }

    #[test]
    fn subject_dn_is_rfc2253_as_java_prints_it() {
        let dir = tempfile::tempdir().unwrap();
        make_cert(dir.path(), "c", "/C=US/O=Acme, Inc./OU=eng/CN=client one");
        let der = load_certs(&dir.path().join("c.pem")).unwrap();
        assert_eq!(subject_dn(&der[0]).unwrap(), "CN=client one,OU=eng,O=Acme\\, Inc.,C=US");
        assert_eq!(subject_dn(b"\x30\x03\x02\x01"), None);
        assert_eq!(subject_dn(b""), None);
    }

    #[test]
    fn certificate_files_are_reloaded_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        make_cert(dir.path(), "s", "/CN=first");
        let (cert, key) = (dir.path().join("s.pem"), dir.path().join("s-key.pem"));
        let tls = TlsConfig { cert_file: Some(cert.clone()), key_file: Some(key.clone()), ..TlsConfig::default() };
        let (_config, resolver) = server_config(&tls, &logger()).unwrap();
        let before = resolver.current().cert[0].clone();
        assert_eq!(subject_dn(&before).unwrap(), "CN=first");
        // A broken file keeps the old certificate.
        std::fs::write(&cert, "not a certificate").unwrap();
        assert!(resolver.reload().is_err());
        assert_eq!(resolver.current().cert[0], before);
        // New files are picked up (forced check: the mtime may share a second with the old one).
        make_cert(dir.path(), "s", "/CN=second");
        let future = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options().write(true).open(&cert).unwrap().set_modified(future).unwrap();
        resolver.check(true);
        assert_eq!(subject_dn(&resolver.current().cert[0]).unwrap(), "CN=second");
        // Missing files are refused at start-up.
        let none =
            TlsConfig { cert_file: Some(dir.path().join("nope.pem")), key_file: Some(key), ..TlsConfig::default() };
        assert!(server_config(&none, &logger()).is_err());
    }
}
