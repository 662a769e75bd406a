//! Who is asking: the authenticated identity of a connection (Kafka's `KafkaPrincipal`,
//! `User:name`, or `User:ANONYMOUS` without authentication) and the listener it came in on. The
//! connection task scopes a [`Session`] around its handler futures; handlers and the authorizer read
//! it with [`current`].

use std::fmt;
use std::sync::Arc;

/// A principal as Kafka writes it: `Type:name`, e.g. `User:alice`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    pub principal_type: String,
    pub name: String,
}

impl Principal {
    /// `User:name`.
    pub fn user(name: impl Into<String>) -> Self {
        Principal { principal_type: "User".to_string(), name: name.into() }
    }

    /// `User:ANONYMOUS`, the principal of an unauthenticated connection (as Kafka).
    pub fn anonymous() -> Self {
        Principal::user("ANONYMOUS")
    }

    /// Parses `Type:name` (the name may itself contain `:`); `None` without a `:`.
    pub fn parse(s: &str) -> Option<Self> {
        let (t, n) = s.split_once(':')?;
        if t.is_empty() {
            return None;
        }
        Some(Principal { principal_type: t.to_string(), name: n.to_string() })
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

/// What the broker knows about the connection a request came in on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub principal: Principal,
    /// The listener's name (`PLAINTEXT` for the default listener).
    pub listener: String,
    /// The client's host (IP address as text), for ACL host matching.
    pub host: String,
}

impl Default for Session {
    fn default() -> Self {
        Session { principal: Principal::anonymous(), listener: "PLAINTEXT".to_string(), host: "*".to_string() }
    }
}

tokio::task_local! {
    /// The session of the connection whose handler futures run in this task.
    pub static SESSION: Arc<Session>;
}

/// The session of the request being handled; the default (anonymous, PLAINTEXT) outside one.
pub fn current() -> Arc<Session> {
    SESSION.try_with(Arc::clone).unwrap_or_else(|_| Arc::new(Session::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_parse_and_print_as_kafka_writes_them() {
        let p = Principal::parse("User:alice").unwrap();
        assert_eq!(p, Principal::user("alice"));
        assert_eq!(p.to_string(), "User:alice");
        assert_eq!(Principal::parse("User:a:b").unwrap().name, "a:b");
        assert_eq!(Principal::parse("alice"), None);
        assert_eq!(Principal::parse(":x"), None);
        assert_eq!(current().principal, Principal::anonymous());
    }
}
