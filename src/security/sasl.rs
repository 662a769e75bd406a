//! SASL authentication of one connection, without the network: the state machine behind
//! SaslHandshake and SaslAuthenticate (KIP-152) for PLAIN (RFC 4616) and SCRAM-SHA-256/512, and
//! the PLAIN message parser. The connection feeds it tokens and writes what it returns. Failure
//! messages are Kafka's generic ones: they never say whether the user exists, and nothing here
//! logs a password.

use std::collections::BTreeMap;

use crate::security::principal::Principal;
use crate::security::scram::{self, Credential, Mechanism, ServerExchange};

/// What a SASL listener offers and checks.
#[derive(Clone, Default)]
pub struct SaslSettings {
    /// `sasl.enabled-mechanisms`, in the configured order.
    pub mechanisms: Vec<String>,
    /// PLAIN users of the configuration file.
    pub plain_users: BTreeMap<String, String>,
    /// `connections.max.reauth.ms` (0: sessions never expire).
    pub reauth_ms: u64,
}

/// The SCRAM credentials the broker knows (the `__meta` image).
pub trait CredentialStore {
    fn credential(&self, user: &str, mechanism: Mechanism) -> Option<Credential>;
}

impl CredentialStore for crate::meta::MetaState {
    fn credential(&self, user: &str, mechanism: Mechanism) -> Option<Credential> {
        self.scram_credentials.get(user).and_then(|c| c.get(&mechanism)).cloned()
    }
}

/// Why a PLAIN message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlainError {
    #[error("Invalid SASL/PLAIN response: expected 3 tokens")]
    Tokens,
    #[error("Authentication failed: username not specified")]
    NoUser,
    #[error("Authentication failed: password not specified")]
    NoPassword,
    #[error("Authentication failed: Client requested an authorization id that is different from username")]
    Authzid,
}

/// Parses `[authzid] NUL authcid NUL passwd` into (user, password).
pub fn parse_plain(msg: &[u8]) -> Result<(String, String), PlainError> {
    let msg = std::str::from_utf8(msg).map_err(|_| PlainError::Tokens)?;
    let parts: Vec<&str> = msg.split('\u{0}').collect();
    let [authzid, user, password] = parts.as_slice() else {
        return Err(PlainError::Tokens);
    };
    if user.is_empty() {
        return Err(PlainError::NoUser);
    }
    if password.is_empty() {
        return Err(PlainError::NoPassword);
    }
    if !authzid.is_empty() && authzid != user {
        return Err(PlainError::Authzid);
    }
    Ok((user.to_string(), password.to_string()))
}

/// Why a SaslHandshake was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("the mechanism is not enabled")]
    Unsupported,
    #[error("a handshake in the middle of an exchange")]
    IllegalState,
}

/// What one SaslAuthenticate token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes and wait for the next token.
    Challenge(Vec<u8>),
    /// Authenticated; send these (possibly empty) bytes.
    Done { principal: Principal, reply: Vec<u8> },
    /// Send SASL_AUTHENTICATION_FAILED with this message, then close the connection.
    Failed(String),
}

#[derive(Debug)]
enum State {
    /// Waiting for SaslHandshake.
    Handshake,
    /// Waiting for the first token of the chosen mechanism.
    First(Option<Mechanism>),
    /// SCRAM: waiting for the client-final message.
    ScramFinal(Box<ServerExchange>),
}

/// The SASL state of one connection.
#[derive(Debug)]
pub struct Authenticator {
    state: State,
}

impl Default for Authenticator {
    fn default() -> Self {
        Authenticator { state: State::Handshake }
    }
}

/// Every message a failed exchange answers with: fixed texts, none of them made from what the
/// client sent (the fuzz harness checks each failure against this list).
pub fn failure_messages() -> Vec<String> {
    let mut v: Vec<String> = [PlainError::Tokens, PlainError::NoUser, PlainError::NoPassword, PlainError::Authzid]
        .iter()
        .map(|e| e.to_string())
        .collect();
    v.push("Authentication failed: Invalid username or password".to_string());
    v.push("Unexpected SaslAuthenticate before SaslHandshake".to_string());
    v.extend([Mechanism::Sha256, Mechanism::Sha512].map(scram_failed));
    v
}

fn scram_failed(m: Mechanism) -> String {
    format!("Authentication failed during authentication due to invalid credentials with SASL mechanism {}", m.name())
}

impl Authenticator {
    /// Whether the next SASL request must be a SaslHandshake.
    pub fn awaiting_handshake(&self) -> bool {
        matches!(self.state, State::Handshake)
    }

    /// SaslHandshake: `Ok` when `mechanism` is enabled (then tokens follow), else `Err` (send
    /// UNSUPPORTED_SASL_MECHANISM with the enabled list and close).
    pub fn handshake(&mut self, mechanism: &str, settings: &SaslSettings) -> Result<(), HandshakeError> {
        if !matches!(self.state, State::Handshake) {
            return Err(HandshakeError::IllegalState);
        }
        if !settings.mechanisms.iter().any(|m| m == mechanism) {
            return Err(HandshakeError::Unsupported);
        }
        self.state = match mechanism {
            "PLAIN" => State::First(None),
            m => State::First(Some(Mechanism::from_name(m).ok_or(HandshakeError::Unsupported)?)),
        };
        Ok(())
    }

    /// SaslAuthenticate: one token of the exchange.
    pub fn authenticate(&mut self, token: &[u8], settings: &SaslSettings, store: &dyn CredentialStore) -> Step {
        match std::mem::replace(&mut self.state, State::Handshake) {
            State::Handshake => Step::Failed("Unexpected SaslAuthenticate before SaslHandshake".to_string()),
            State::First(None) => match parse_plain(token) {
                Err(e) => Step::Failed(e.to_string()),
                Ok((user, password)) if plain_ok(&user, &password, settings, store) => {
                    Step::Done { principal: Principal::user(user), reply: Vec::new() }
                }
                Ok(_) => Step::Failed("Authentication failed: Invalid username or password".to_string()),
            },
            State::First(Some(m)) => match scram::parse_client_first(token) {
                Err(_) => Step::Failed(scram_failed(m)),
                Ok(first) => {
                    let cred =
                        file_credential(settings, &first.username, m).or_else(|| store.credential(&first.username, m));
                    let ex = ServerExchange::start(m, first, cred, &scram::server_nonce());
                    let reply = ex.server_first().as_bytes().to_vec();
                    self.state = State::ScramFinal(Box::new(ex));
                    Step::Challenge(reply)
                }
            },
            State::ScramFinal(ex) => match ex.finish(token) {
                Ok(last) => Step::Done { principal: Principal::user(ex.username()), reply: last.into_bytes() },
                Err(_) => Step::Failed(scram_failed(ex.mechanism())),
            },
        }
    }
}

/// SCRAM for a user of the configuration file: the credential is derived from the file's
/// password at login, with a salt fixed per user (HMAC of the name) and Kafka's minimum of 4096
/// iterations, so the file's users log in with SCRAM-SHA-256/512 as well as PLAIN.
fn file_credential(settings: &SaslSettings, user: &str, m: Mechanism) -> Option<Credential> {
    let password = settings.plain_users.get(user)?;
    let salt = m.hmac(b"chronik file user salt", user.as_bytes());
    Some(Credential::from_password(m, password, &salt[..16], scram::MIN_ITERATIONS))
}

/// PLAIN: the file's users first, then SCRAM's store (either mechanism).
fn plain_ok(user: &str, password: &str, settings: &SaslSettings, store: &dyn CredentialStore) -> bool {
    if let Some(p) = settings.plain_users.get(user) {
        return p.len() == password.len() && p.bytes().zip(password.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0;
    }
    [Mechanism::Sha512, Mechanism::Sha256]
        .into_iter()
        .find_map(|m| store.credential(user, m).map(|c| c.matches_password(m, password)))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Store(BTreeMap<(String, Mechanism), Credential>);
    impl CredentialStore for Store {
        fn credential(&self, user: &str, m: Mechanism) -> Option<Credential> {
            self.0.get(&(user.to_string(), m)).cloned()
        }
    }

    fn settings() -> SaslSettings {
        SaslSettings {
            mechanisms: vec!["PLAIN".into(), "SCRAM-SHA-512".into()],
            plain_users: [("alice".to_string(), "alice-secret".to_string())].into(),
            reauth_ms: 0,
        }
    }

    #[test]
    fn plain_messages_parse_as_rfc4616() {
        assert_eq!(parse_plain(b"\0alice\0pw").unwrap(), ("alice".into(), "pw".into()));
        assert_eq!(parse_plain(b"alice\0alice\0pw").unwrap(), ("alice".into(), "pw".into()));
        assert_eq!(parse_plain(b"bob\0alice\0pw"), Err(PlainError::Authzid));
        assert_eq!(parse_plain(b"\0\0pw"), Err(PlainError::NoUser));
        assert_eq!(parse_plain(b"\0alice\0"), Err(PlainError::NoPassword));
        for bad in [&b""[..], b"alice", b"\0alice", b"\0a\0b\0c", b"\0a\0\xff"] {
            assert!(parse_plain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn plain_checks_file_users_then_scram_store() {
        let cred = Credential::from_password(Mechanism::Sha512, "bob-secret", b"salt", 4096);
        let store = Store([(("bob".to_string(), Mechanism::Sha512), cred)].into());
        let s = settings();
        let run = |token: &[u8]| {
            let mut a = Authenticator::default();
            a.handshake("PLAIN", &s).unwrap();
            a.authenticate(token, &s, &store)
        };
        assert_eq!(run(b"\0alice\0alice-secret"), Step::Done { principal: Principal::user("alice"), reply: vec![] });
        assert_eq!(run(b"\0bob\0bob-secret"), Step::Done { principal: Principal::user("bob"), reply: vec![] });
        for bad in [&b"\0alice\0wrong"[..], b"\0bob\0wrong", b"\0nobody\0x"] {
            let Step::Failed(msg) = run(bad) else { panic!("accepted {bad:?}") };
            assert_eq!(msg, "Authentication failed: Invalid username or password");
        }
    }

    /// A client's final message for `first` (what a SCRAM client computes from the password).
    fn client_final(m: Mechanism, password: &[u8], bare: &str, server_first: &str) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let field = |k: &str| server_first.split(',').find_map(|f| f.strip_prefix(k)).unwrap().to_string();
        let salt = b64.decode(field("s=")).unwrap();
        let salted = m.salted_password(password, &salt, field("i=").parse().unwrap());
        let client_key = m.hmac(&salted, b"Client Key");
        let without_proof = format!("c=biws,r={}", field("r="));
        let sig = m.hmac(&m.hash(&client_key), format!("{bare},{server_first},{without_proof}").as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        format!("{without_proof},p={}", b64.encode(proof))
    }

    #[test]
    fn file_users_log_in_with_scram_too() {
        let s = settings();
        let store = Store(BTreeMap::new());
        for (password, ok) in [(&b"alice-secret"[..], true), (b"wrong", false)] {
            let mut a = Authenticator::default();
            a.handshake("SCRAM-SHA-512", &s).unwrap();
            let bare = "n=alice,r=clientnonce";
            let Step::Challenge(first) = a.authenticate(format!("n,,{bare}").as_bytes(), &s, &store) else {
                panic!("no challenge")
            };
            let first = String::from_utf8(first).unwrap();
            let fin = client_final(Mechanism::Sha512, password, bare, &first);
            match a.authenticate(fin.as_bytes(), &s, &store) {
                Step::Done { principal, .. } => assert!(ok && principal == Principal::user("alice")),
                Step::Failed(_) => assert!(!ok, "the file's password is refused"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn handshake_refuses_mechanisms_not_enabled() {
        let s = settings();
        assert!(Authenticator::default().handshake("SCRAM-SHA-256", &s).is_err());
        assert!(Authenticator::default().handshake("GSSAPI", &s).is_err());
        let mut a = Authenticator::default();
        assert!(a.awaiting_handshake());
        a.handshake("SCRAM-SHA-512", &s).unwrap();
        assert!(!a.awaiting_handshake());
        assert!(a.handshake("PLAIN", &s).is_err(), "a second handshake mid-exchange");
    }

    #[test]
    fn scram_unknown_user_and_truncated_exchange_fail_generically() {
        let s = settings();
        let store = Store(BTreeMap::new());
        let mut a = Authenticator::default();
        a.handshake("SCRAM-SHA-512", &s).unwrap();
        let Step::Challenge(first) = a.authenticate(b"n,,n=ghost,r=abc", &s, &store) else { panic!() };
        let first = String::from_utf8(first).unwrap();
        assert!(first.starts_with("r=abc") && first.contains(",s=") && first.contains(",i=4096"), "{first}");
        let nonce = first.split(',').next().unwrap();
        let Step::Failed(msg) = a.authenticate(format!("c=biws,{nonce},p=AAAA").as_bytes(), &s, &store) else {
            panic!()
        };
        assert!(msg.contains("invalid credentials with SASL mechanism SCRAM-SHA-512"), "{msg}");
        let mut b = Authenticator::default();
        b.handshake("SCRAM-SHA-512", &s).unwrap();
        assert!(matches!(b.authenticate(b"n,,n=ghost", &s, &store), Step::Failed(_)));
    }
}
