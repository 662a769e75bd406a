//! Mutual TLS between test nodes: a throw-away CA and `node-N` certificates made at run time
//! with the openssl CLI, the `raft.tls-*` keys that point a node at them, and a probe that
//! proves a node's raft listener speaks mutual TLS (a handshake with a peer's client
//! configuration, the node's certificate naming `node-N`). `cluster_configs` uses them when
//! `CHRONIK_TEST_PEER_TLS` is set, so every in-process cluster test can run over peer mTLS.

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use chronik::config::Config;

/// The environment variable that turns peer mTLS on in `cluster_configs`.
pub const ENV: &str = "CHRONIK_TEST_PEER_TLS";

/// True when `CHRONIK_TEST_PEER_TLS` is set to something other than empty or `0`.
pub fn enabled_by_env() -> bool {
    std::env::var(ENV).map(|v| !v.is_empty() && v != "0").unwrap_or(false)
}

/// Runs the openssl CLI in `dir` (stdin closed); its stdout. Panics when it fails.
pub fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl CLI");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A self-signed EC certificate `<name>.pem` and key `<name>-key.pem` in `dir`, valid two days,
/// with `subject` (e.g. `/CN=localhost`) and, when given, the subject alternative names `san`
/// (e.g. `IP:127.0.0.1,DNS:localhost`).
pub fn self_signed(dir: &Path, name: &str, subject: &str, san: Option<&str>) {
    let (key, pem) = (format!("{name}-key.pem"), format!("{name}.pem"));
    let mut args = vec!["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    args.extend(["-days", "2", "-subj", subject, "-keyout", &key, "-out", &pem]);
    let ext = san.map(|s| format!("subjectAltName={s}"));
    if let Some(ext) = &ext {
        args.extend(["-addext", ext]);
    }
    openssl(dir, &args);
}

/// A CA (`ca.pem`) and certificates `node-1.pem`..`node-n.pem` (keys `node-N-key.pem`) with CN
/// and DNS SAN `node-N`, in `dir`.
pub fn make_node_certs(dir: &Path, n: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &["-days", "2", "-subj", "/CN=chronik-test-ca", "-keyout", "ca-key.pem", "-out", "ca.pem"],
        ]
        .concat(),
    );
    for id in 1..=n {
        let name = format!("node-{id}");
        std::fs::write(dir.join(format!("{name}.ext")), format!("subjectAltName=DNS:{name}\n")).unwrap();
        let (key, csr, pem, ext) =
            (format!("{name}-key.pem"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
        let subj = format!("/CN={name}");
        openssl(dir, &[&["req"][..], &ec, &["-subj", &subj, "-keyout", &key, "-out", &csr]].concat());
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &pem,
            ],
        );
    }
}

/// Points each config's `raft.tls-*` keys at the certificates in `dir`: node N presents the
/// certificate of node `cert_of(N)`.
pub fn with_tls(configs: &mut [Config], dir: &Path, cert_of: impl Fn(u64) -> u64) {
    for c in configs.iter_mut() {
        let n = cert_of(c.node_id);
        c.raft.tls_cert_file = Some(dir.join(format!("node-{n}.pem")));
        c.raft.tls_key_file = Some(dir.join(format!("node-{n}-key.pem")));
        c.raft.tls_ca_file = Some(dir.join("ca.pem"));
        c.validate().unwrap();
    }
}

/// Proves that node `target`'s raft listener serves mutual TLS: dials it with the client
/// configuration node `from` uses for its peers (`from`'s certificate, the CA as the only
/// root, server name `node-<target>`), completes the handshake, and checks that the
/// certificate presented names `node-<target>`. Panics otherwise.
pub fn assert_peer_listener_is_tls(from: &Config, target: &Config) {
    let tls = chronik::security::peer_tls::peer_tls(&from.raft, &chronik::logging::discard())
        .expect("peer TLS files load")
        .expect("the raft.tls-* keys are set");
    let config: Arc<rustls::ClientConfig> = tls.connector.config().clone();
    let name = chronik::security::peer_tls::server_name(target.node_id).unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut sock = TcpStream::connect(&target.raft.listen).expect("dial the raft listener");
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).unwrap_or_else(|e| {
            panic!(
                "node {}'s raft listener {} did not complete a TLS handshake: {e}",
                target.node_id, target.raft.listen
            )
        });
    }
    let cert = conn.peer_certificates().and_then(|c| c.first()).expect("the node presented a certificate");
    assert_eq!(
        chronik::security::peer_tls::cert_node(cert),
        Some(target.node_id),
        "node {}'s raft listener presents another node's certificate",
        target.node_id
    );
    // A clean close, so the node logs no unexpected EOF.
    conn.send_close_notify();
    let _ = conn.complete_io(&mut sock);
}
