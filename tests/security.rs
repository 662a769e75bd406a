//! In-process tests of the connection side of security: named listeners (Metadata answers with
//! the addresses of the listener a client came in on), the SASL gate (only ApiVersions and the
//! SASL APIs before authentication), PLAIN and SCRAM-SHA-512 exchanges (also as raw tokens after
//! a v0 SaslHandshake), Kafka's error codes for
//! an unknown mechanism and bad credentials, KIP-368 session expiry, and a plaintext client on a
//! TLS port (closed, the broker stays up). Certificates are made at run time with openssl.

mod common;

use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use chronik::config::Config;
use chronik::security::scram::Mechanism;
use common::{free_port, start_node, test_config, Client, TestNode};

struct Ports {
    plain: u16,
    sasl: u16,
    ssl: u16,
}

fn secure_node(dir: &Path, reauth_ms: u64) -> (TestNode, Ports) {
    common::peer_tls::self_signed(dir, "server", "/CN=localhost", Some("IP:127.0.0.1,DNS:localhost"));
    let ports = Ports { plain: free_port(), sasl: free_port(), ssl: free_port() };
    let mut config: Config = test_config(dir);
    config.kafka.listeners = vec![
        format!("PLAINTEXT://127.0.0.1:{}", ports.plain),
        format!("SASL_PLAINTEXT://127.0.0.1:{}", ports.sasl),
        format!("SSL://127.0.0.1:{}", ports.ssl),
    ];
    config.kafka.connections_max_reauth_ms = reauth_ms;
    config.tls.cert_file = Some(dir.join("server.pem"));
    config.tls.key_file = Some(dir.join("server-key.pem"));
    config.sasl.plain_users.insert("alice".into(), "alice-secret".into());
    config.validate().unwrap();
    (start_node(config), ports)
}

fn connect(port: u16) -> Client {
    Client::connect(format!("127.0.0.1:{port}").parse().unwrap())
}

fn handshake(c: &mut Client, mechanism: &'static str) -> SaslHandshakeResponse {
    c.call(
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)),
    )
}

fn authenticate(c: &mut Client, token: &[u8]) -> SaslAuthenticateResponse {
    c.call(
        ApiKey::SaslAuthenticate,
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(token)),
    )
}

fn metadata_ports(c: &mut Client) -> Vec<i32> {
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &MetadataRequest::default());
    r.brokers.iter().map(|b| b.port).collect()
}

#[test]
fn listeners_sasl_gate_plain_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (_node, ports) = secure_node(dir.path(), 0);
    // Each client is told its own listener's address.
    assert_eq!(metadata_ports(&mut connect(ports.plain)), vec![ports.plain as i32]);

    // Before authentication: ApiVersions is served, Metadata closes the connection.
    let mut c = connect(ports.sasl);
    let v: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert!(v.api_keys.iter().any(|k| k.api_key == ApiKey::SaslAuthenticate as i16 && k.max_version == 2));
    c.send(ApiKey::Metadata, 12, &MetadataRequest::default());
    assert!(c.closed_by_broker(), "a request before authentication closes the connection");

    // An unknown mechanism: UNSUPPORTED_SASL_MECHANISM with the enabled list.
    let mut c = connect(ports.sasl);
    let r = handshake(&mut c, "GSSAPI");
    assert_eq!(r.error_code, 33);
    let offered: Vec<&str> = r.mechanisms.iter().map(|m| m.as_str()).collect();
    assert_eq!(offered, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
    assert!(c.closed_by_broker());

    // PLAIN with a wrong password and with an unknown user: the same generic failure.
    for token in [&b"\0alice\0wrong"[..], b"\0mallory\0alice-secret"] {
        let mut c = connect(ports.sasl);
        assert_eq!(handshake(&mut c, "PLAIN").error_code, 0);
        let r = authenticate(&mut c, token);
        assert_eq!(r.error_code, 58);
        assert_eq!(r.error_message.as_deref(), Some("Authentication failed: Invalid username or password"));
        assert!(c.closed_by_broker());
    }

    // PLAIN that works, then the SASL listener's own address in Metadata.
    let mut c = connect(ports.sasl);
    assert_eq!(handshake(&mut c, "PLAIN").error_code, 0);
    let r = authenticate(&mut c, b"\0alice\0alice-secret");
    assert_eq!((r.error_code, r.session_lifetime_ms), (0, 0));
    assert_eq!(metadata_ports(&mut c), vec![ports.sasl as i32]);

    // DescribeConfigs shows the security configs; the PLAIN users' passwords and the private key
    // only as sensitive entries without a value.
    let req = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_static_str("1")),
    ]);
    let mut admin = connect(ports.plain);
    let corr = admin.send(ApiKey::DescribeConfigs, 4, &req);
    let raw = admin.recv_raw().expect("describe configs response");
    assert!(!raw.windows(b"alice-secret".len()).any(|w| w == b"alice-secret"), "a password in DescribeConfigs");
    let _ = corr;
    let r: DescribeConfigsResponse = admin.call(ApiKey::DescribeConfigs, 4, &req);
    let configs = &r.results[0].configs;
    let find = |n: &str| configs.iter().find(|c| c.name.as_str() == n).unwrap_or_else(|| panic!("{n} missing"));
    let jaas = find("listener.name.sasl_plaintext.plain.sasl.jaas.config");
    assert!(jaas.is_sensitive && jaas.value.is_none());
    let key = find("ssl.keystore.key");
    assert!(key.is_sensitive && key.value.is_none());
    assert!(find("listeners").value.as_deref().unwrap().contains("SASL_PLAINTEXT://"));

    // A plaintext Kafka client on the TLS port is closed; the broker stays up.
    let mut c = connect(ports.ssl);
    c.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    // rustls answers with a TLS alert record (no Kafka response), then closes.
    use std::io::Read;
    let mut rest = Vec::new();
    c.stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.stream.read_to_end(&mut rest).expect("closed, not timed out");
    assert!(rest.len() < 16 && rest.first() == Some(&0x15), "a TLS alert at most: {rest:?}");
    // TLS bytes (a ClientHello record header) on a plaintext port: closed as well.
    let mut c = connect(ports.plain);
    use std::io::Write;
    c.stream.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]).unwrap();
    assert!(c.closed_by_broker());
    assert_eq!(metadata_ports(&mut connect(ports.plain)), vec![ports.plain as i32]);
}

/// A SCRAM client per RFC 5802 over the test client's SaslAuthenticate. `Err(response)` when
/// the server refused.
fn scram_login(
    c: &mut Client,
    m: Mechanism,
    user: &str,
    password: &str,
) -> Result<SaslAuthenticateResponse, SaslAuthenticateResponse> {
    assert_eq!(handshake(c, m.name()).error_code, 0);
    let mut last = None;
    let done = scram_exchange(m, user, password, |msg| {
        let r = authenticate(c, msg);
        let answer = (r.error_code == 0).then(|| r.auth_bytes.to_vec());
        last = Some(r);
        answer
    });
    let r = last.expect("a SaslAuthenticate response");
    if done {
        Ok(r)
    } else {
        Err(r)
    }
}

/// The client side of a SCRAM exchange: `step` sends one client message and returns the
/// server's answer (`None`: refused). True when the server's signature checked out.
fn scram_exchange(m: Mechanism, user: &str, password: &str, mut step: impl FnMut(&[u8]) -> Option<Vec<u8>>) -> bool {
    let bare = format!("n={user},r=clientnonce");
    let Some(first) = step(format!("n,,{bare}").as_bytes()) else {
        return false;
    };
    let server_first = String::from_utf8(first).unwrap();
    let attr = |k: &str| server_first.split(',').find_map(|a| a.strip_prefix(k)).unwrap().to_string();
    let (nonce, salt, iterations) = (attr("r="), B64.decode(attr("s=")).unwrap(), attr("i=").parse::<u32>().unwrap());
    assert!(nonce.starts_with("clientnonce") && nonce.len() > "clientnonce".len());
    let salted = m.salted_password(password.as_bytes(), &salt, iterations);
    let client_key = m.hmac(&salted, b"Client Key");
    let without = format!("c=biws,r={nonce}");
    let auth = format!("{bare},{server_first},{without}");
    let sig = m.hmac(&m.hash(&client_key), auth.as_bytes());
    let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
    let Some(last) = step(format!("{without},p={}", B64.encode(proof)).as_bytes()) else {
        return false;
    };
    let expect = format!("v={}", B64.encode(m.hmac(&m.hmac(&salted, b"Server Key"), auth.as_bytes())));
    assert_eq!(last, expect.as_bytes(), "server signature");
    true
}

/// SaslHandshake v0: the tokens that follow travel raw (no SaslAuthenticate).
fn handshake_v0(c: &mut Client, mechanism: &'static str) -> SaslHandshakeResponse {
    c.call(
        ApiKey::SaslHandshake,
        0,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)),
    )
}

/// Sends a raw size-prefixed SASL token; the server's raw answer, or `None` once it closed.
fn raw_token(c: &mut Client, token: &[u8]) -> Option<Vec<u8>> {
    c.send_raw(token);
    c.recv_raw().map(|b| b.to_vec())
}

#[test]
fn raw_sasl_tokens_after_a_v0_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let (_node, ports) = secure_node(dir.path(), 0);

    // PLAIN: the token raw, answered by an empty raw token; then Kafka requests are served.
    let mut c = connect(ports.sasl);
    let r = handshake_v0(&mut c, "PLAIN");
    assert_eq!(r.error_code, 0);
    assert_eq!(raw_token(&mut c, b"\0alice\0alice-secret"), Some(vec![]), "PLAIN's empty final token");
    assert_eq!(metadata_ports(&mut c), vec![ports.sasl as i32]);

    // SCRAM-SHA-256 (alice from the config file logs in with SCRAM too), every message raw.
    let mut c = connect(ports.sasl);
    assert_eq!(handshake_v0(&mut c, "SCRAM-SHA-256").error_code, 0);
    assert!(scram_exchange(Mechanism::Sha256, "alice", "alice-secret", |m| raw_token(&mut c, m)));
    assert_eq!(metadata_ports(&mut c), vec![ports.sasl as i32]);

    // Bad tokens: no answer (there is no header to carry an error), the connection is closed.
    let mut c = connect(ports.sasl);
    assert_eq!(handshake_v0(&mut c, "PLAIN").error_code, 0);
    assert_eq!(raw_token(&mut c, b"\0alice\0wrong"), None, "a wrong password closes the connection");
    let mut c = connect(ports.sasl);
    assert_eq!(handshake_v0(&mut c, "SCRAM-SHA-512").error_code, 0);
    assert_eq!(raw_token(&mut c, b"\xff not a SCRAM message"), None, "garbage closes the connection");
    let mut c = connect(ports.sasl);
    assert_eq!(handshake_v0(&mut c, "SCRAM-SHA-512").error_code, 0);
    assert!(!scram_exchange(Mechanism::Sha512, "alice", "wrong", |m| raw_token(&mut c, m)), "a wrong proof");
    // A Kafka request where a raw token is expected is a token too (a malformed one): closed.
    let mut c = connect(ports.sasl);
    assert_eq!(handshake_v0(&mut c, "PLAIN").error_code, 0);
    c.send(ApiKey::Metadata, 12, &MetadataRequest::default());
    assert!(c.closed_by_broker());

    // The broker stays up.
    assert_eq!(metadata_ports(&mut connect(ports.plain)), vec![ports.plain as i32]);
}

#[test]
fn scram_credentials_from_meta_and_session_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let (_node, ports) = secure_node(dir.path(), 1500);
    // Store bob's SCRAM-SHA-512 credential with AlterUserScramCredentials (salted by the client).
    let m = Mechanism::Sha512;
    let mut admin = connect(ports.plain);
    let req = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
        alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_static_str("bob"))
            .with_mechanism(m.id())
            .with_iterations(4096)
            .with_salt(Bytes::from_static(b"0123456789abcdef"))
            .with_salted_password(Bytes::from(m.salted_password(b"bob-secret", b"0123456789abcdef", 4096))),
        alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_static_str("weak"))
            .with_mechanism(m.id())
            .with_iterations(1)
            .with_salt(Bytes::from_static(b"s"))
            .with_salted_password(Bytes::from_static(b"p")),
    ]);
    let r: AlterUserScramCredentialsResponse = admin.call(ApiKey::AlterUserScramCredentials, 0, &req);
    let codes: Vec<(&str, i16)> = r.results.iter().map(|r| (r.user.as_str(), r.error_code)).collect();
    assert_eq!(codes, [("bob", 0), ("weak", 93)]);

    // SCRAM-SHA-512 as bob; a wrong password and an unknown user fail the same way.
    let mut c = connect(ports.sasl);
    let ok = scram_login(&mut c, m, "bob", "bob-secret").expect("bob logs in");
    assert_eq!(ok.session_lifetime_ms, 1500, "KIP-368 session lifetime (v1+)");
    assert_eq!(metadata_ports(&mut c), vec![ports.sasl as i32]);
    for (user, pw) in [("bob", "wrong"), ("nobody", "bob-secret")] {
        let mut c2 = connect(ports.sasl);
        let err = scram_login(&mut c2, m, user, pw).unwrap_err();
        assert_eq!(err.error_code, 58);
        let msg = err.error_message.unwrap().to_string();
        assert!(msg.contains("invalid credentials with SASL mechanism SCRAM-SHA-512"), "{msg}");
        assert!(c2.closed_by_broker());
    }
    // PLAIN accepts SCRAM's store too.
    let mut p = connect(ports.sasl);
    assert_eq!(handshake(&mut p, "PLAIN").error_code, 0);
    assert_eq!(authenticate(&mut p, b"\0bob\0bob-secret").error_code, 0);

    // Re-authentication renews the session; past its lifetime without it, a request closes.
    std::thread::sleep(Duration::from_millis(900));
    scram_login(&mut c, m, "bob", "bob-secret").expect("re-authentication");
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(metadata_ports(&mut c), vec![ports.sasl as i32], "renewed session still valid");
    std::thread::sleep(Duration::from_millis(900));
    c.send(ApiKey::Metadata, 12, &MetadataRequest::default());
    assert!(c.closed_by_broker(), "an expired session is closed");

    // A truncated exchange (client-first, then the connection drops) leaves the broker serving.
    let mut t = connect(ports.sasl);
    assert_eq!(handshake(&mut t, "SCRAM-SHA-512").error_code, 0);
    authenticate(&mut t, b"n,,n=bob,r=abc");
    drop(t);
    let r: DescribeUserScramCredentialsResponse =
        admin.call(ApiKey::DescribeUserScramCredentials, 0, &DescribeUserScramCredentialsRequest::default());
    let users: Vec<&str> = r.results.iter().map(|r| r.user.as_str()).collect();
    assert_eq!(users, ["bob"]);
}
