//! The authorizer (Kafka's `StandardAuthorizer` semantics), a pure core over the ACL set of the
//! published `__meta` image: super-users may do anything; otherwise the ACLs whose pattern
//! covers the resource decide, DENY wins over ALLOW, ALLOW of READ/WRITE/DELETE/ALTER grants
//! DESCRIBE and ALLOW of ALTER_CONFIGS grants DESCRIBE_CONFIGS, `User:*` and host `*` are
//! wildcards, and a resource no ACL covers is allowed only with `allow-everyone-if-no-acl-found`.
//! Decisions are cached per ACL set: the cache is dropped as soon as the image carries another
//! set (any CreateAcls/DeleteAcls). A denied request is written to the audit log (principal,
//! operation, resource, host), never with a secret. Disabled (the default), it allows
//! everything and changes nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use slog::Logger;

use super::acl::{AclSet, Operation, Permission, ResourceType};
use super::principal::{Principal, Session};

/// `[authorizer]` as the broker uses it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerSettings {
    pub enabled: bool,
    pub super_users: Vec<Principal>,
    pub allow_everyone_if_no_acl_found: bool,
}

/// The most cached decisions before the cache starts over.
const CACHE_CAPACITY: usize = 65_536;

type CacheKey = (Principal, String, Operation, ResourceType, String);

#[derive(Default)]
struct Cache {
    /// The ACL set the cached decisions were made against.
    acls: Option<AclSet>,
    decisions: HashMap<CacheKey, bool>,
}

/// The authorizer of one node.
pub struct Authorizer {
    settings: AuthorizerSettings,
    cache: Mutex<Cache>,
    audit: Logger,
}

/// Kafka's decision for one request, without a cache (the pure rule).
pub fn decide(
    settings: &AuthorizerSettings,
    acls: &AclSet,
    principal: &Principal,
    host: &str,
    op: Operation,
    rt: ResourceType,
    name: &str,
) -> bool {
    if !settings.enabled || settings.super_users.contains(principal) {
        return true;
    }
    let principal_text = principal.to_string();
    let covering: Vec<_> = acls.iter().filter(|b| b.resource_type() == rt && b.covers(name)).collect();
    if covering.is_empty() {
        return settings.allow_everyone_if_no_acl_found;
    }
    let applies = |b: &&&super::acl::AclBinding| {
        (b.principal == principal_text || b.principal == super::acl::WILDCARD_PRINCIPAL)
            && (b.host == host || b.host == super::acl::WILDCARD)
    };
    let mine: Vec<_> = covering.iter().filter(applies).collect();
    let denied = mine
        .iter()
        .any(|b| b.permission() == Permission::Deny && (b.operation() == op || b.operation() == Operation::All));
    if denied {
        return false;
    }
    let granted = op.granted_by();
    mine.iter().any(|b| b.permission() == Permission::Allow && granted.contains(&b.operation()))
}

impl Authorizer {
    pub fn new(settings: AuthorizerSettings, logger: Logger) -> Self {
        Authorizer {
            settings,
            cache: Mutex::new(Cache::default()),
            audit: logger.new(slog::o!("audit" => "authorizer")),
        }
    }

    /// An authorizer that allows everything (the authorizer is off).
    pub fn disabled(logger: Logger) -> Self {
        Authorizer::new(AuthorizerSettings::default(), logger)
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    pub fn settings(&self) -> &AuthorizerSettings {
        &self.settings
    }

    /// May `session` do `op` on the resource? Cached per ACL set; no audit line.
    pub fn allowed(&self, acls: &AclSet, session: &Session, op: Operation, rt: ResourceType, name: &str) -> bool {
        if !self.settings.enabled {
            return true;
        }
        let key = (session.principal.clone(), session.host.clone(), op, rt, name.to_string());
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if !cache.acls.as_ref().is_some_and(|a| Arc::ptr_eq(a, acls)) {
            cache.acls = Some(acls.clone());
            cache.decisions.clear();
        }
        if let Some(d) = cache.decisions.get(&key) {
            return *d;
        }
        let d = decide(&self.settings, acls, &session.principal, &session.host, op, rt, name);
        if cache.decisions.len() >= CACHE_CAPACITY {
            cache.decisions.clear();
        }
        cache.decisions.insert(key, d);
        d
    }

    /// Like [`Authorizer::allowed`], and a denial writes one audit line.
    pub fn authorize(&self, acls: &AclSet, session: &Session, op: Operation, rt: ResourceType, name: &str) -> bool {
        let ok = self.allowed(acls, session, op, rt, name);
        if !ok {
            slog::info!(self.audit, "authorization denied";
                "principal" => %session.principal, "operation" => op.name(),
                "resource_type" => rt.name(), "resource" => name, "host" => &session.host);
        }
        ok
    }

    /// Kafka's `authorizeByResourceType`: is `op` allowed on at least one resource of type `rt`
    /// (some ALLOW ACL for the principal, not overridden by a DENY of the same pattern)? Used by
    /// InitProducerId without a transactional id (IDEMPOTENT_WRITE or WRITE on any topic).
    pub fn allowed_on_any(&self, acls: &AclSet, session: &Session, op: Operation, rt: ResourceType) -> bool {
        if !self.settings.enabled || self.settings.super_users.contains(&session.principal) {
            return true;
        }
        let principal = session.principal.to_string();
        let applies = |b: &super::acl::AclBinding| {
            b.resource_type() == rt
                && (b.principal == principal || b.principal == super::acl::WILDCARD_PRINCIPAL)
                && (b.host == session.host || b.host == super::acl::WILDCARD)
        };
        let denied = |name: &str| {
            acls.iter().any(|d| {
                applies(d)
                    && d.permission() == Permission::Deny
                    && (d.operation() == op || d.operation() == Operation::All)
                    && d.covers(name)
            })
        };
        let allowed = acls.iter().any(|b| {
            applies(b)
                && b.permission() == Permission::Allow
                && op.granted_by().contains(&b.operation())
                && !denied(&b.resource_name)
        });
        allowed || (self.settings.allow_everyone_if_no_acl_found && !acls.iter().any(|b| b.resource_type() == rt))
    }

    /// Kafka's `authorized_operations` bit field for a resource: bit `code` set for each
    /// supported operation the session may perform.
    pub fn authorized_operations(&self, acls: &AclSet, session: &Session, rt: ResourceType, name: &str) -> i32 {
        Operation::supported_by(rt)
            .iter()
            .filter(|op| self.allowed(acls, session, **op, rt, name))
            .fold(0, |bits, op| bits | (1 << op.code()))
    }

    /// How many decisions are cached (tests).
    pub fn cached(&self) -> usize {
        self.cache.lock().map(|c| c.decisions.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::acl::{binding, AclBinding, PatternType};
    use super::*;
    use Operation::*;
    use ResourceType::*;

    fn on() -> AuthorizerSettings {
        AuthorizerSettings { enabled: true, super_users: vec![Principal::user("admin")], ..Default::default() }
    }

    fn session(user: &str, host: &str) -> Session {
        Session { principal: Principal::user(user), listener: "PLAINTEXT".into(), host: host.into() }
    }

    fn allow(rt: ResourceType, name: &str, pt: PatternType, who: &str, op: Operation) -> AclBinding {
        binding(rt, name, pt, who, "*", op, Permission::Allow)
    }

    fn deny(rt: ResourceType, name: &str, pt: PatternType, who: &str, op: Operation) -> AclBinding {
        binding(rt, name, pt, who, "*", op, Permission::Deny)
    }

    fn set(v: Vec<AclBinding>) -> AclSet {
        Arc::new(v.into_iter().collect::<BTreeSet<_>>())
    }

    fn may(s: &AuthorizerSettings, acls: &AclSet, user: &str, op: Operation, rt: ResourceType, name: &str) -> bool {
        decide(s, acls, &Principal::user(user), "127.0.0.1", op, rt, name)
    }

    /// The matrix of issue 13: READ on topic `a` and group `g` only.
    #[test]
    fn read_only_principal_matrix() {
        let s = on();
        let acls = set(vec![
            allow(Topic, "a", PatternType::Literal, "User:reader", Read),
            allow(Group, "g", PatternType::Literal, "User:reader", Read),
        ]);
        let m = |op, rt, name| may(&s, &acls, "reader", op, rt, name);
        // Consuming `a` with `g`: READ and (implied) DESCRIBE on both.
        assert!(m(Read, Topic, "a") && m(Describe, Topic, "a"));
        assert!(m(Read, Group, "g") && m(Describe, Group, "g"));
        // Refused: produce to `a`, anything on `b`, another group, admin operations.
        assert!(!m(Write, Topic, "a"));
        for op in [Read, Write, Describe, Create, Delete, Alter, DescribeConfigs, AlterConfigs] {
            assert!(!m(op, Topic, "b"), "{op} on b");
        }
        assert!(!m(Read, Group, "other") && !m(Describe, Group, "other"));
        assert!(!m(Create, Cluster, "kafka-cluster") && !m(Create, Topic, "a"));
        assert!(!m(Delete, Topic, "a"), "DeleteTopics and DeleteRecords need DELETE");
        assert!(!m(AlterConfigs, Topic, "a") && !m(DescribeConfigs, Topic, "a"));
        assert!(!m(Delete, Group, "g"));
        // Another principal has no ACL at all.
        assert!(!may(&s, &acls, "stranger", Read, Topic, "a"));
    }

    #[test]
    fn implication_rules_are_kafkas() {
        let s = on();
        for (granted, implied) in [(Read, Describe), (Write, Describe), (Delete, Describe), (Alter, Describe)] {
            let acls = set(vec![allow(Topic, "t", PatternType::Literal, "User:u", granted)]);
            assert!(may(&s, &acls, "u", implied, Topic, "t"), "{granted} implies {implied}");
            assert!(!may(&s, &acls, "u", DescribeConfigs, Topic, "t"));
        }
        let acls = set(vec![allow(Topic, "t", PatternType::Literal, "User:u", AlterConfigs)]);
        assert!(may(&s, &acls, "u", DescribeConfigs, Topic, "t"));
        assert!(!may(&s, &acls, "u", Describe, Topic, "t"));
        let acls = set(vec![allow(Topic, "t", PatternType::Literal, "User:u", Describe)]);
        assert!(!may(&s, &acls, "u", Read, Topic, "t"), "DESCRIBE grants nothing else");
        let acls = set(vec![allow(Topic, "t", PatternType::Literal, "User:u", All)]);
        for op in [Read, Write, Create, Delete, Alter, Describe, DescribeConfigs, AlterConfigs] {
            assert!(may(&s, &acls, "u", op, Topic, "t"));
        }
    }

    #[test]
    fn deny_wins_and_is_not_implied() {
        let s = on();
        let acls = set(vec![
            allow(Topic, "*", PatternType::Literal, "User:*", All),
            deny(Topic, "secret", PatternType::Literal, "User:eve", Read),
        ]);
        assert!(!may(&s, &acls, "eve", Read, Topic, "secret"));
        assert!(may(&s, &acls, "eve", Describe, Topic, "secret"), "DENY READ does not deny DESCRIBE");
        assert!(may(&s, &acls, "eve", Read, Topic, "public"));
        assert!(may(&s, &acls, "bob", Read, Topic, "secret"));
        let acls = set(vec![
            allow(Topic, "t", PatternType::Literal, "User:eve", Read),
            deny(Topic, "t", PatternType::Literal, "User:*", All),
        ]);
        assert!(!may(&s, &acls, "eve", Read, Topic, "t"), "DENY ALL for everyone beats ALLOW");
    }

    #[test]
    fn prefixed_and_wildcards() {
        let s = on();
        let acls = set(vec![
            allow(Topic, "pay-", PatternType::Prefixed, "User:u", Write),
            deny(Topic, "pay-secret", PatternType::Prefixed, "User:u", Write),
        ]);
        assert!(may(&s, &acls, "u", Write, Topic, "pay-in"));
        assert!(!may(&s, &acls, "u", Write, Topic, "pay-secret-1"));
        assert!(!may(&s, &acls, "u", Write, Topic, "pa"));
        assert!(!may(&s, &acls, "u", Write, Topic, "other"));
        let by_host =
            set(vec![binding(Topic, "t", PatternType::Literal, "User:u", "10.0.0.1", Read, Permission::Allow)]);
        assert!(!decide(&s, &by_host, &Principal::user("u"), "127.0.0.1", Read, Topic, "t"));
        assert!(decide(&s, &by_host, &Principal::user("u"), "10.0.0.1", Read, Topic, "t"));
    }

    #[test]
    fn super_users_no_acl_and_disabled() {
        let s = on();
        let empty = set(vec![]);
        assert!(may(&s, &empty, "admin", Delete, Topic, "x"));
        assert!(!may(&s, &empty, "u", Describe, Topic, "x"), "allow-everyone-if-no-acl-found defaults to false");
        let open = AuthorizerSettings { allow_everyone_if_no_acl_found: true, ..on() };
        assert!(may(&open, &empty, "u", Describe, Topic, "x"));
        let acls = set(vec![allow(Topic, "x", PatternType::Literal, "User:v", Read)]);
        assert!(!may(&open, &acls, "u", Read, Topic, "x"), "an ACL on the resource ends the free-for-all");
        assert!(may(&open, &acls, "u", Read, Topic, "y"));
        assert!(may(&AuthorizerSettings::default(), &empty, "u", Delete, Cluster, "kafka-cluster"));
    }

    #[test]
    fn the_cache_follows_the_acl_set() {
        let a = Authorizer::new(on(), slog::Logger::root(slog::Discard, slog::o!()));
        let s = session("u", "127.0.0.1");
        let none = set(vec![]);
        assert!(!a.authorize(&none, &s, Read, Topic, "t"));
        assert!(!a.allowed(&none, &s, Read, Topic, "t"));
        assert_eq!(a.cached(), 1);
        let granted = set(vec![allow(Topic, "t", PatternType::Literal, "User:u", Read)]);
        assert!(a.allowed(&granted, &s, Read, Topic, "t"), "a new ACL set drops old decisions");
        assert_eq!(a.cached(), 1);
        assert!(!a.allowed(&none, &s, Read, Topic, "t"));
    }

    #[test]
    fn by_resource_type_and_operation_bits() {
        let a = Authorizer::new(on(), slog::Logger::root(slog::Discard, slog::o!()));
        let s = session("u", "127.0.0.1");
        let acls = set(vec![allow(Topic, "t", PatternType::Literal, "User:u", Write)]);
        assert!(a.allowed_on_any(&acls, &s, Write, Topic));
        assert!(!a.allowed_on_any(&acls, &s, Read, Topic));
        assert!(!a.allowed_on_any(&acls, &session("v", "h"), Write, Topic));
        let denied = set(vec![
            allow(Topic, "t", PatternType::Literal, "User:u", Write),
            deny(Topic, "t", PatternType::Literal, "User:u", Write),
        ]);
        assert!(!a.allowed_on_any(&denied, &s, Write, Topic));
        let bits = a.authorized_operations(&acls, &s, Topic, "t");
        assert_eq!(bits, (1 << Write.code()) | (1 << Describe.code()));
        assert_eq!(a.authorized_operations(&acls, &session("admin", "h"), Group, "g"), 0b1_0100_1000);
    }
}
