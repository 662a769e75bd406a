//! Security: who is asking ([`principal`], set per connection by the listener) and what they
//! may do ([`acl`]: Kafka's ACL model; [`authorizer`]: the decision, its cache and audit log;
//! [`quota`]: client quotas and their throttle).

pub mod acl;
pub mod authorizer;
pub mod principal;
pub mod quota;
