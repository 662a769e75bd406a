//! The security sections and keys of the configuration: Kafka's named listeners
//! (`kafka.listeners`, `kafka.advertised-listeners`, `kafka.listener-security-protocol-map`)
//! resolved into [`ListenerSpec`]s, `[tls]` (certificate files and client authentication) and
//! `[sasl]` (enabled mechanisms, PLAIN users). Secrets here are never rendered or logged.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::sections::{check_host, KafkaConfig};
use super::ConfigError;

/// A listener's security protocol (Kafka's `SecurityProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// From Kafka's name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    /// Whether the listener speaks TLS.
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether clients authenticate with SASL before anything else.
    pub fn sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        })
    }
}

/// One resolved listener: where it binds, what it speaks, what clients are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    pub name: String,
    pub protocol: SecurityProtocol,
    /// `host:port` to bind.
    pub bind: String,
    /// Advertised host; `None` derives it from `bind` (loopback for a wildcard address).
    pub advertised_host: Option<String>,
    /// Advertised port; `None` uses the bound port.
    pub advertised_port: Option<u16>,
}

/// Splits `NAME://host:port` (an IPv6 host in brackets).
pub fn parse_listener(key: &str, s: &str) -> Result<(String, String, u16), ConfigError> {
    let bad = |m: &str| ConfigError::invalid(key, format!("has {s:?}: {m} (expected NAME://host:port)"));
    let (name, addr) = s.trim().split_once("://").ok_or_else(|| bad("no `://`"))?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(bad("bad listener name"));
    }
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    check_host(host).map_err(|e| bad(&e))?;
    Ok((name.to_ascii_uppercase(), host.to_string(), port))
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl KafkaConfig {
    /// The listener's security protocol by the protocol map (Kafka's default maps the four
    /// protocol names to themselves).
    pub fn protocol_of(&self, name: &str) -> Option<SecurityProtocol> {
        match self.listener_security_protocol_map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            Some((_, p)) => SecurityProtocol::parse(&p.to_ascii_uppercase()),
            None => SecurityProtocol::parse(name),
        }
    }

    /// The listeners to serve: `listeners` if set, else one PLAINTEXT listener on `listen`
    /// advertised as `advertised-host`/`advertised-port` (the configuration before listeners);
    /// then `advertised-listeners` override the advertised address of the listeners they name.
    pub fn resolved_listeners(&self) -> Result<Vec<ListenerSpec>, ConfigError> {
        let mut out: Vec<ListenerSpec> = Vec::new();
        if self.listeners.is_empty() {
            out.push(ListenerSpec {
                name: "PLAINTEXT".to_string(),
                protocol: SecurityProtocol::Plaintext,
                bind: self.listen.clone(),
                advertised_host: Some(self.effective_advertised_host()?),
                advertised_port: self.advertised_port,
            });
        }
        for l in &self.listeners {
            let (name, host, port) = parse_listener("kafka.listeners", l)?;
            if out.iter().any(|o| o.name == name) {
                return Err(ConfigError::invalid("kafka.listeners", format!("names listener {name} twice")));
            }
            let protocol = self.protocol_of(&name).ok_or_else(|| {
                ConfigError::invalid(
                    "kafka.listener-security-protocol-map",
                    format!("gives no known security protocol for listener {name} (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)"),
                )
            })?;
            out.push(ListenerSpec {
                name,
                protocol,
                bind: join_host_port(&host, port),
                advertised_host: None,
                advertised_port: None,
            });
        }
        for a in &self.advertised_listeners {
            let (name, host, port) = parse_listener("kafka.advertised-listeners", a)?;
            let Some(l) = out.iter_mut().find(|o| o.name == name) else {
                return Err(ConfigError::invalid(
                    "kafka.advertised-listeners",
                    format!("names listener {name}, which `kafka.listeners` does not have"),
                ));
            };
            if host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_unspecified()) {
                return Err(ConfigError::invalid(
                    "kafka.advertised-listeners",
                    format!("advertises {a:?}, which clients cannot connect to"),
                ));
            }
            l.advertised_host = Some(host);
            l.advertised_port = Some(port).filter(|p| *p != 0);
        }
        for (name, p) in &self.listener_security_protocol_map {
            if SecurityProtocol::parse(&p.to_ascii_uppercase()).is_none() {
                return Err(ConfigError::invalid(
                    "kafka.listener-security-protocol-map",
                    format!("maps {name} to {p:?}, not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
                ));
            }
        }
        Ok(out)
    }
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    #[default]
    None,
    Requested,
    Required,
}

/// `[tls]`: the certificate of every TLS listener (SSL, SASL_SSL).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain (server certificate first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// PEM CA bundle that client certificates must chain to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Kafka's `ssl.client.auth`: none, requested or required. Default: `none`.
    pub client_auth: ClientAuth,
}

/// `[sasl]`: the mechanisms SASL listeners offer and the PLAIN users of the file.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct SaslConfig {
    /// Kafka's `sasl.enabled.mechanisms`. Default: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512.
    pub enabled_mechanisms: Vec<String>,
    /// PLAIN users: name → password. Users not here are checked against the SCRAM store.
    pub plain_users: BTreeMap<String, String>,
}

impl fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslConfig")
            .field("enabled_mechanisms", &self.enabled_mechanisms)
            .field("plain_users", &self.plain_users.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The SASL mechanisms chronik implements.
pub const SUPPORTED_MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

impl Default for SaslConfig {
    fn default() -> Self {
        SaslConfig {
            enabled_mechanisms: SUPPORTED_MECHANISMS.iter().map(|s| s.to_string()).collect(),
            plain_users: BTreeMap::new(),
        }
    }
}

/// Checks the security keys against each other (called from `Config::validate`).
pub(super) fn validate_security(
    kafka: &KafkaConfig,
    tls: &TlsConfig,
    sasl: &SaslConfig,
    raft: &super::RaftConfig,
) -> Result<(), ConfigError> {
    let listeners = kafka.resolved_listeners()?;
    if listeners.iter().any(|l| l.protocol.tls()) && (tls.cert_file.is_none() || tls.key_file.is_none()) {
        return Err(ConfigError::invalid(
            "tls.cert-file",
            "and `tls.key-file` are needed by the SSL/SASL_SSL listeners",
        ));
    }
    if listeners.iter().any(|l| l.protocol.tls()) && tls.client_auth != ClientAuth::None && tls.ca_file.is_none() {
        return Err(ConfigError::invalid("tls.ca-file", "is needed when `tls.client-auth` is requested or required"));
    }
    for m in &sasl.enabled_mechanisms {
        if !SUPPORTED_MECHANISMS.contains(&m.as_str()) {
            return Err(ConfigError::invalid(
                "sasl.enabled-mechanisms",
                format!("has {m:?}; chronik supports {}", SUPPORTED_MECHANISMS.join(", ")),
            ));
        }
    }
    let raft_tls = [&raft.tls_cert_file, &raft.tls_key_file, &raft.tls_ca_file];
    if raft_tls.iter().any(|f| f.is_some()) && !raft_tls.iter().all(|f| f.is_some()) {
        return Err(ConfigError::invalid(
            "raft.tls-cert-file",
            "`raft.tls-cert-file`, `raft.tls-key-file` and `raft.tls-ca-file` are set together (peer TLS) or not at all",
        ));
    }
    if listeners.iter().any(|l| l.protocol.sasl()) && sasl.enabled_mechanisms.is_empty() {
        return Err(ConfigError::invalid("sasl.enabled-mechanisms", "is empty but a SASL listener is configured"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka(listeners: &[&str], adv: &[&str]) -> KafkaConfig {
        KafkaConfig {
            listeners: listeners.iter().map(|s| s.to_string()).collect(),
            advertised_listeners: adv.iter().map(|s| s.to_string()).collect(),
            ..KafkaConfig::default()
        }
    }

    #[test]
    fn listeners_resolve_with_kafka_rules() {
        let d = KafkaConfig::default().resolved_listeners().unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].name.as_str(), d[0].protocol, d[0].bind.as_str()),
            ("PLAINTEXT", SecurityProtocol::Plaintext, "127.0.0.1:9092")
        );
        let k = kafka(&["PLAINTEXT://127.0.0.1:9092", "SASL_SSL://0.0.0.0:9093"], &["SASL_SSL://broker1:19093"]);
        let l = k.resolved_listeners().unwrap();
        assert_eq!(l[1].protocol, SecurityProtocol::SaslSsl);
        assert_eq!(l[1].advertised_host.as_deref(), Some("broker1"));
        assert_eq!(l[1].advertised_port, Some(19093));
        // Names are unique.
        assert!(kafka(&["PLAINTEXT://127.0.0.1:1", "PLAINTEXT://127.0.0.1:2"], &[]).resolved_listeners().is_err());
        // A custom name needs the protocol map.
        let mut k = kafka(&["CLIENT://127.0.0.1:1"], &[]);
        let err = k.resolved_listeners().unwrap_err().to_string();
        assert!(err.contains("listener-security-protocol-map"), "{err}");
        k.listener_security_protocol_map.insert("CLIENT".into(), "SASL_PLAINTEXT".into());
        assert_eq!(k.resolved_listeners().unwrap()[0].protocol, SecurityProtocol::SaslPlaintext);
        k.listener_security_protocol_map.insert("CLIENT".into(), "KERBEROS".into());
        assert!(k.resolved_listeners().is_err());
        // Advertised listeners name existing listeners (the default one is PLAINTEXT).
        let d = kafka(&[], &["PLAINTEXT://broker1:19092"]).resolved_listeners().unwrap();
        assert_eq!((d[0].advertised_host.as_deref(), d[0].advertised_port), (Some("broker1"), Some(19092)));
        let err = kafka(&["SSL://127.0.0.1:1"], &["SASL_SSL://h:1"]).resolved_listeners().unwrap_err().to_string();
        assert!(err.contains("does not have"), "{err}");
        for bad in ["127.0.0.1:1", "SSL://127.0.0.1", "SSL://:1", "://h:1", "SSL://h:x"] {
            assert!(kafka(&[bad], &[]).resolved_listeners().is_err(), "{bad}");
        }
    }

    #[test]
    fn tls_and_sasl_keys_are_checked() {
        let k = kafka(&["SSL://127.0.0.1:1"], &[]);
        assert!(validate_security(&k, &TlsConfig::default(), &SaslConfig::default(), &Default::default()).is_err());
        let tls = TlsConfig { cert_file: Some("c".into()), key_file: Some("k".into()), ..TlsConfig::default() };
        validate_security(&k, &tls, &SaslConfig::default(), &Default::default()).unwrap();
        let tls2 = TlsConfig { client_auth: ClientAuth::Required, ..tls.clone() };
        assert!(validate_security(&k, &tls2, &SaslConfig::default(), &Default::default()).is_err());
        let sasl = SaslConfig { enabled_mechanisms: vec!["GSSAPI".into()], ..SaslConfig::default() };
        assert!(validate_security(&k, &tls, &sasl, &Default::default()).is_err());
        let raft = crate::config::RaftConfig { tls_cert_file: Some("c".into()), ..Default::default() };
        let err = validate_security(&k, &tls, &SaslConfig::default(), &raft).unwrap_err().to_string();
        assert!(err.contains("raft.tls-key-file"), "{err}");
        let shown = format!(
            "{:?}",
            SaslConfig { plain_users: [("alice".into(), "s3cr3t".into())].into(), ..SaslConfig::default() }
        );
        assert!(shown.contains("alice") && !shown.contains("s3cr3t"), "{shown}");
    }
}
