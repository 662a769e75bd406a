//! `[authorizer]`: whether the broker checks ACLs (Kafka's `authorizer.class.name`), its
//! super-users (`super.users`) and `allow.everyone.if.no.acl.found`, with their serde defaults
//! and validation.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::security::authorizer::AuthorizerSettings;
use crate::security::principal::Principal;

/// `[authorizer]`: ACL checks on every Kafka request and the admin API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct AuthorizerConfig {
    /// Check ACLs (Kafka's StandardAuthorizer rules). Default: `false` (everything allowed).
    pub enabled: bool,
    /// Principals allowed everything, as `User:name`. Default: `[]`.
    pub super_users: Vec<String>,
    /// Allow a request on a resource no ACL covers. Default: `false`.
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerConfig {
    /// Every super-user must be a `Type:name` principal.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for u in &self.super_users {
            if Principal::parse(u).is_none() {
                return Err(ConfigError::invalid(
                    "authorizer.super-users",
                    format!("{u:?} is not a principal of the form User:name"),
                ));
            }
        }
        Ok(())
    }

    /// The settings the authorizer runs with.
    pub fn settings(&self) -> AuthorizerSettings {
        AuthorizerSettings {
            enabled: self.enabled,
            super_users: self.super_users.iter().filter_map(|u| Principal::parse(u)).collect(),
            allow_everyone_if_no_acl_found: self.allow_everyone_if_no_acl_found,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn super_users_must_be_principals() {
        let mut c = AuthorizerConfig { enabled: true, super_users: vec!["User:admin".into()], ..Default::default() };
        assert!(c.validate().is_ok());
        assert_eq!(c.settings().super_users, vec![Principal::user("admin")]);
        c.super_users.push("admin".into());
        assert!(c.validate().unwrap_err().to_string().contains("authorizer.super-users"));
    }
}
