//! Kafka's ACL vocabulary and matching rules, without any I/O: resource types, pattern types,
//! operations and permissions with Kafka's wire codes (`AclOperation`, `ResourceType`,
//! `PatternType`, `AclPermissionType`), an [`AclBinding`] (Kafka's `AclBinding`: a
//! `ResourcePattern` plus an `AccessControlEntry`) as stored in `__meta`, and an
//! [`AclBindingFilter`] (DescribeAcls/DeleteAcls) with Kafka's `matches` semantics, including
//! the MATCH pattern type (every literal, wildcard and prefixed pattern that applies to a name).

use std::collections::BTreeSet;
use std::sync::Arc;

/// The name of the one CLUSTER resource (Kafka's `Resource.CLUSTER_NAME`).
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The wildcard resource name, principal and host.
pub const WILDCARD: &str = "*";
/// The wildcard principal (`User:*`).
pub const WILDCARD_PRINCIPAL: &str = "User:*";

macro_rules! kafka_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $code:expr, $text:expr;)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),* }

        impl $name {
            /// Every value, in code order.
            pub const ALL_VALUES: &'static [$name] = &[$($name::$variant),*];

            /// Kafka's wire code.
            pub fn code(self) -> i8 {
                match self { $($name::$variant => $code),* }
            }

            /// From Kafka's wire code; `None` for codes Kafka does not define.
            pub fn from_code(code: i8) -> Option<Self> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }

            /// Kafka's name (`READ`, `PREFIXED`, ...).
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

kafka_enum!(
    /// Kafka's `ResourceType`.
    ResourceType {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
        DelegationToken = 6, "DELEGATION_TOKEN";
        User = 7, "USER";
    }
);

kafka_enum!(
    /// Kafka's `PatternType`.
    PatternType {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        Match = 2, "MATCH";
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
);

kafka_enum!(
    /// Kafka's `AclOperation`.
    Operation {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        CreateTokens = 13, "CREATE_TOKENS";
        DescribeTokens = 14, "DESCRIBE_TOKENS";
    }
);

kafka_enum!(
    /// Kafka's `AclPermissionType`.
    Permission {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
);

impl Operation {
    /// The operations whose ALLOW grants this one (Kafka's implication rules): DESCRIBE is
    /// granted by READ, WRITE, DELETE or ALTER; DESCRIBE_CONFIGS by ALTER_CONFIGS; and ALL
    /// grants everything.
    pub fn granted_by(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            Describe => &[Describe, Read, Write, Delete, Alter, All],
            DescribeConfigs => &[DescribeConfigs, AlterConfigs, All],
            Read => &[Read, All],
            Write => &[Write, All],
            Create => &[Create, All],
            Delete => &[Delete, All],
            Alter => &[Alter, All],
            ClusterAction => &[ClusterAction, All],
            AlterConfigs => &[AlterConfigs, All],
            IdempotentWrite => &[IdempotentWrite, All],
            CreateTokens => &[CreateTokens, All],
            DescribeTokens => &[DescribeTokens, All],
            Unknown | Any | All => &[All],
        }
    }

    /// The operations that can be asked of a resource type (for `authorized_operations`).
    pub fn supported_by(rt: ResourceType) -> &'static [Operation] {
        use Operation::*;
        match rt {
            ResourceType::Topic => &[Read, Write, Create, Delete, Alter, Describe, DescribeConfigs, AlterConfigs],
            ResourceType::Group => &[Read, Delete, Describe],
            ResourceType::Cluster => {
                &[Create, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite]
            }
            ResourceType::TransactionalId => &[Write, Describe],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
            _ => &[],
        }
    }
}

/// One ACL as `__meta` stores it: a resource pattern and an access control entry. Codes are
/// Kafka's; a stored binding always has concrete values (no ANY/MATCH/UNKNOWN).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
pub struct AclBinding {
    #[prost(int32, tag = "1")]
    pub resource_type: i32,
    #[prost(string, tag = "2")]
    pub resource_name: String,
    #[prost(int32, tag = "3")]
    pub pattern_type: i32,
    /// `Type:name`, e.g. `User:alice`, or `User:*`.
    #[prost(string, tag = "4")]
    pub principal: String,
    /// An IP address, or `*`.
    #[prost(string, tag = "5")]
    pub host: String,
    #[prost(int32, tag = "6")]
    pub operation: i32,
    #[prost(int32, tag = "7")]
    pub permission: i32,
}

/// Every ACL of the cluster, shared between the published images.
pub type AclSet = Arc<BTreeSet<AclBinding>>;

fn code_of<T>(v: i32, from: fn(i8) -> Option<T>) -> Option<T> {
    i8::try_from(v).ok().and_then(from)
}

impl AclBinding {
    pub fn resource_type(&self) -> ResourceType {
        code_of(self.resource_type, ResourceType::from_code).unwrap_or(ResourceType::Unknown)
    }
    pub fn pattern_type(&self) -> PatternType {
        code_of(self.pattern_type, PatternType::from_code).unwrap_or(PatternType::Unknown)
    }
    pub fn operation(&self) -> Operation {
        code_of(self.operation, Operation::from_code).unwrap_or(Operation::Unknown)
    }
    pub fn permission(&self) -> Permission {
        code_of(self.permission, Permission::from_code).unwrap_or(Permission::Unknown)
    }

    /// Why this binding cannot be created (Kafka's `CreateAcls` validation), or `None`.
    pub fn invalid(&self) -> Option<String> {
        let rt = self.resource_type();
        if matches!(rt, ResourceType::Unknown | ResourceType::Any) {
            return Some(format!("invalid resource type {}", self.resource_type));
        }
        if !matches!(self.pattern_type(), PatternType::Literal | PatternType::Prefixed) {
            return Some(format!("invalid pattern type {}", self.pattern_type));
        }
        if matches!(self.operation(), Operation::Unknown | Operation::Any) {
            return Some(format!("invalid operation {}", self.operation));
        }
        if !matches!(self.permission(), Permission::Allow | Permission::Deny) {
            return Some(format!("invalid permission type {}", self.permission));
        }
        if self.resource_name.is_empty() {
            return Some("resource name must not be empty".to_string());
        }
        if rt == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return Some(format!("the cluster resource is named {CLUSTER_NAME}"));
        }
        if crate::security::principal::Principal::parse(&self.principal).is_none() {
            return Some(format!("could not parse principal {:?}", self.principal));
        }
        if self.host.is_empty() {
            return Some("host must not be empty".to_string());
        }
        None
    }

    /// True if this binding's pattern covers the resource `name` of its type (LITERAL: equal
    /// or `*`; PREFIXED: `name` starts with the pattern).
    pub fn covers(&self, name: &str) -> bool {
        match self.pattern_type() {
            PatternType::Literal => self.resource_name == name || self.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(self.resource_name.as_str()),
            _ => false,
        }
    }
}

/// A DescribeAcls/DeleteAcls filter (Kafka's `AclBindingFilter`): `None` strings and ANY codes
/// match everything; pattern type MATCH matches every pattern that applies to the name.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct AclBindingFilter {
    #[prost(int32, tag = "1")]
    pub resource_type: i32,
    #[prost(string, optional, tag = "2")]
    pub resource_name: Option<String>,
    #[prost(int32, tag = "3")]
    pub pattern_type: i32,
    #[prost(string, optional, tag = "4")]
    pub principal: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub host: Option<String>,
    #[prost(int32, tag = "6")]
    pub operation: i32,
    #[prost(int32, tag = "7")]
    pub permission: i32,
}

impl AclBindingFilter {
    /// Why this filter is not acceptable (UNKNOWN values), or `None`.
    pub fn invalid(&self) -> Option<String> {
        let rt = code_of(self.resource_type, ResourceType::from_code);
        let pt = code_of(self.pattern_type, PatternType::from_code);
        let op = code_of(self.operation, Operation::from_code);
        let perm = code_of(self.permission, Permission::from_code);
        match (rt, pt, op, perm) {
            (None | Some(ResourceType::Unknown), ..) => Some(format!("invalid resource type {}", self.resource_type)),
            (_, None | Some(PatternType::Unknown), ..) => Some(format!("invalid pattern type {}", self.pattern_type)),
            (_, _, None | Some(Operation::Unknown), _) => Some(format!("invalid operation {}", self.operation)),
            (.., None | Some(Permission::Unknown)) => Some(format!("invalid permission type {}", self.permission)),
            _ => None,
        }
    }

    /// Kafka's `AclBindingFilter.matches`.
    pub fn matches(&self, b: &AclBinding) -> bool {
        let any = |v: i32, any: i8| v == i32::from(any);
        if !any(self.resource_type, ResourceType::Any.code()) && self.resource_type != b.resource_type {
            return false;
        }
        let pt = code_of(self.pattern_type, PatternType::from_code).unwrap_or(PatternType::Unknown);
        let name_ok = match (pt, &self.resource_name) {
            (PatternType::Any, None) => true,
            (PatternType::Any, Some(n)) => &b.resource_name == n,
            (PatternType::Match, None) => true,
            (PatternType::Match, Some(n)) => match b.pattern_type() {
                PatternType::Literal => &b.resource_name == n || b.resource_name == WILDCARD,
                PatternType::Prefixed => n.starts_with(b.resource_name.as_str()),
                _ => false,
            },
            (_, name) => b.pattern_type == self.pattern_type && name.as_ref().is_none_or(|n| &b.resource_name == n),
        };
        name_ok
            && self.principal.as_ref().is_none_or(|p| &b.principal == p)
            && self.host.as_ref().is_none_or(|h| &b.host == h)
            && (any(self.operation, Operation::Any.code()) || self.operation == b.operation)
            && (any(self.permission, Permission::Any.code()) || self.permission == b.permission)
    }
}

/// The set after CreateAcls: `set` plus every valid binding of `new` (deterministic; always a
/// new `Arc`, so that decision caches start over).
pub fn with_created(set: &AclSet, new: &[AclBinding]) -> AclSet {
    let mut next = (**set).clone();
    next.extend(new.iter().filter(|b| b.invalid().is_none()).cloned());
    Arc::new(next)
}

/// The set after DeleteAcls: without every binding one of `filters` matches.
pub fn with_deleted(set: &AclSet, filters: &[AclBindingFilter]) -> AclSet {
    Arc::new(set.iter().filter(|b| !filters.iter().any(|f| f.matches(b))).cloned().collect())
}

/// Builds a binding from typed values (tests, handlers).
pub fn binding(
    rt: ResourceType,
    name: &str,
    pt: PatternType,
    principal: &str,
    host: &str,
    op: Operation,
    perm: Permission,
) -> AclBinding {
    AclBinding {
        resource_type: rt.code().into(),
        resource_name: name.to_string(),
        pattern_type: pt.code().into(),
        principal: principal.to_string(),
        host: host.to_string(),
        operation: op.code().into(),
        permission: perm.code().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResourceType::*;

    fn filter(rt: ResourceType, name: Option<&str>, pt: PatternType) -> AclBindingFilter {
        AclBindingFilter {
            resource_type: rt.code().into(),
            resource_name: name.map(str::to_string),
            pattern_type: pt.code().into(),
            principal: None,
            host: None,
            operation: Operation::Any.code().into(),
            permission: Permission::Any.code().into(),
        }
    }

    #[test]
    fn codes_are_kafkas() {
        assert_eq!(Operation::Read.code(), 3);
        assert_eq!(Operation::IdempotentWrite.code(), 12);
        assert_eq!(Operation::from_code(10), Some(Operation::DescribeConfigs));
        assert_eq!(Operation::from_code(15), None);
        assert_eq!(ResourceType::TransactionalId.code(), 5);
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(Permission::Allow.code(), 3);
        assert_eq!(Permission::Deny.name(), "DENY");
    }

    #[test]
    fn validation_refuses_what_kafka_refuses() {
        let ok = binding(Topic, "a", PatternType::Literal, "User:x", "*", Operation::Read, Permission::Allow);
        assert_eq!(ok.invalid(), None);
        let mut b = ok.clone();
        b.pattern_type = PatternType::Match.code().into();
        assert!(b.invalid().is_some());
        let mut b = ok.clone();
        b.operation = Operation::Any.code().into();
        assert!(b.invalid().is_some());
        let mut b = ok.clone();
        b.principal = "alice".into();
        assert!(b.invalid().is_some());
        let b = binding(Cluster, "x", PatternType::Literal, "User:x", "*", Operation::Alter, Permission::Allow);
        assert!(b.invalid().is_some());
        let mut b = ok;
        b.resource_type = 99;
        assert!(b.invalid().is_some());
    }

    #[test]
    fn filters_match_as_kafka() {
        let lit = binding(Topic, "abc", PatternType::Literal, "User:x", "*", Operation::Read, Permission::Allow);
        let wild = binding(Topic, "*", PatternType::Literal, "User:x", "*", Operation::Read, Permission::Allow);
        let pre = binding(Topic, "ab", PatternType::Prefixed, "User:x", "*", Operation::Read, Permission::Allow);
        let grp = binding(Group, "abc", PatternType::Literal, "User:x", "*", Operation::Read, Permission::Allow);
        let all = [&lit, &wild, &pre, &grp];
        let hits = |f: &AclBindingFilter| all.iter().filter(|b| f.matches(b)).count();
        assert_eq!(hits(&filter(Any, None, PatternType::Any)), 4);
        assert_eq!(hits(&filter(Topic, None, PatternType::Any)), 3);
        assert_eq!(hits(&filter(Topic, Some("abc"), PatternType::Any)), 1);
        assert_eq!(hits(&filter(Topic, Some("abc"), PatternType::Match)), 3);
        assert_eq!(hits(&filter(Topic, Some("abc"), PatternType::Literal)), 1);
        assert_eq!(hits(&filter(Topic, None, PatternType::Prefixed)), 1);
        assert_eq!(hits(&filter(Topic, Some("ab"), PatternType::Prefixed)), 1);
        assert_eq!(hits(&filter(Topic, Some("xyz"), PatternType::Match)), 1);
        let mut f = filter(Any, None, PatternType::Any);
        f.principal = Some("User:y".into());
        assert_eq!(hits(&f), 0);
        f.principal = None;
        f.permission = Permission::Deny.code().into();
        assert_eq!(hits(&f), 0);
        assert!(filter(Unknown, None, PatternType::Any).invalid().is_some());
        assert!(filter(Any, None, PatternType::Any).invalid().is_none());
    }

    #[test]
    fn create_and_delete_apply_deterministically() {
        let a = binding(Topic, "a", PatternType::Literal, "User:x", "*", Operation::Read, Permission::Allow);
        let bad = binding(Topic, "a", PatternType::Match, "User:x", "*", Operation::Read, Permission::Allow);
        let g = binding(Group, "g", PatternType::Literal, "User:x", "*", Operation::Read, Permission::Allow);
        let empty: AclSet = Arc::default();
        let s = with_created(&empty, &[a.clone(), bad, g.clone(), a.clone()]);
        assert_eq!(s.iter().cloned().collect::<Vec<_>>(), vec![a.clone(), g.clone()]);
        let s2 = with_deleted(&s, &[filter(Group, None, PatternType::Any)]);
        assert_eq!(s2.iter().cloned().collect::<Vec<_>>(), vec![a]);
        assert!(!Arc::ptr_eq(&s, &with_created(&s, &[])), "every change is a new set");
    }

    #[test]
    fn prefixed_and_literal_cover() {
        let pre = binding(Topic, "pay-", PatternType::Prefixed, "User:x", "*", Operation::Read, Permission::Allow);
        assert!(pre.covers("pay-in") && pre.covers("pay-") && !pre.covers("pa"));
        let w = binding(Topic, "*", PatternType::Literal, "User:x", "*", Operation::Read, Permission::Allow);
        assert!(w.covers("anything"));
    }
}
