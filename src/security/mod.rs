//! Security: who is asking ([`principal`], set per connection by the listener), how they prove
//! it (`sasl`: PLAIN and SCRAM over SaslHandshake/SaslAuthenticate; `scram`; `tls`: the server
//! configuration with certificate reload and the client certificate's principal; `peer_tls`:
//! mutual TLS between nodes) and what they may do ([`acl`]: Kafka's ACL model; [`authorizer`]:
//! the decision, its cache and audit log; [`quota`]: client quotas and their throttle). See
//! docs/security.md.

pub mod acl;
pub mod authorizer;
pub mod peer_tls;
pub mod principal;
pub mod quota;
pub mod sasl;
pub mod scram;
pub mod tls;
