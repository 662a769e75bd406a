//! SIGHUP re-reads the TLS certificate files (a test binary of its own: signals are
//! process-wide). The certificate files are replaced keeping their modification times, so the
//! on-change detection cannot be what picks them up; after SIGHUP the listener serves the new
//! certificate, one line is logged per reload (without key material), and a broken file on
//! SIGHUP keeps the old certificate. The served certificate is read with `openssl s_client`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use chronik::config::Config;
use common::peer_tls::openssl;
use common::{free_port, spawn_node_logged, test_config, CapturedLog};

/// The subject line of the certificate the listener on `port` serves now.
/// Writes a self-signed `server.pem` / `server-key.pem` for 127.0.0.1 with subject CN=`cn`.
fn make_cert(dir: &Path, cn: &str) {
    common::peer_tls::self_signed(dir, "server", &format!("/CN={cn}"), Some("IP:127.0.0.1"));
}

fn served_subject(dir: &Path, port: u16) -> String {
    let out = openssl(dir, &["s_client", "-connect", &format!("127.0.0.1:{port}"), "-showcerts"]);
    let subject = out.lines().find(|l| l.trim_start().starts_with("subject=") || l.contains(" s:"));
    subject.unwrap_or_else(|| panic!("no subject in s_client output:\n{out}")).to_string()
}

fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::options().write(true).open(path).unwrap().set_modified(t).unwrap();
}

#[test]
fn sighup_reloads_the_tls_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_cert(d, "first");
    let (cert, key) = (d.join("server.pem"), d.join("server-key.pem"));
    let port = free_port();
    let mut config: Config = test_config(d);
    config.kafka.listeners = vec![format!("SSL://127.0.0.1:{port}")];
    config.tls.cert_file = Some(cert.clone());
    config.tls.key_file = Some(key.clone());
    config.validate().unwrap();
    let log = CapturedLog::default();
    let _node = spawn_node_logged(config, Some(log.clone())).wait();
    // Until the handler is in place SIGHUP would end this process: wait for its line.
    log.wait_for(&["SIGHUP reloads the TLS certificate"], Duration::from_secs(30));
    assert!(served_subject(d, port).contains("first"));

    // New files with the old modification times: the on-change check sees nothing new.
    let mtimes =
        (std::fs::metadata(&cert).unwrap().modified().unwrap(), std::fs::metadata(&key).unwrap().modified().unwrap());
    make_cert(d, "second");
    set_mtime(&cert, mtimes.0);
    set_mtime(&key, mtimes.1);
    std::thread::sleep(Duration::from_millis(1100)); // past the check interval
    let before = served_subject(d, port);
    assert!(before.contains("first"), "reloaded without SIGHUP: {before}");
    assert!(log.lines_with(&["TLS certificate reloaded"]).is_empty());

    let hup = |n: usize| {
        let out = Command::new("kill").args(["-HUP", &std::process::id().to_string()]).output().expect("kill");
        assert!(out.status.success());
        log.wait_for(
            &[if n == 1 { "TLS certificate reloaded" } else { "reload failed" }, "SIGHUP"],
            Duration::from_secs(10),
        );
    };
    hup(1);
    let after = served_subject(d, port);
    assert!(after.contains("second"), "not the new certificate after SIGHUP: {after}");
    assert_eq!(log.lines_with(&["TLS certificate reloaded"]).len(), 1, "one line per reload");

    // A broken file on SIGHUP keeps the certificate served.
    std::fs::write(&cert, "not a certificate").unwrap();
    hup(2);
    assert!(served_subject(d, port).contains("second"));
    let lines = log.lines_with(&["TLS certificate"]);
    assert!(lines.iter().all(|l| !l.contains("PRIVATE KEY") && !l.contains("BEGIN")), "key material logged: {lines:?}");
}
