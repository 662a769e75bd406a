//! Security on the connection side: who a connection is ([`principal`]), SASL authentication
//! (`sasl`: PLAIN and SCRAM over SaslHandshake/SaslAuthenticate), SCRAM itself (`scram`), TLS
//! server configuration with certificate reload and the client certificate's principal (`tls`).
//! See docs/security.md.

pub mod peer_tls;
pub mod principal;
pub mod sasl;
pub mod scram;
pub mod tls;
