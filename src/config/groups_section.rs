//! `[groups]`: the consumer group coordinator's bounds, Kafka's `group.*` broker configs
//! (`group.min.session.timeout.ms`, `group.max.session.timeout.ms`,
//! `group.initial.rebalance.delay.ms`, `group.max.size`), with Kafka's defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::durations::duration_str;
use super::ConfigError;

/// `[groups]`: consumer group bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupsConfig {
    /// Smallest session timeout a member may ask for. Default: `"6s"`.
    #[serde(with = "duration_str")]
    pub min_session_timeout: Duration,
    /// Largest session timeout a member may ask for. Default: `"30m"`.
    #[serde(with = "duration_str")]
    pub max_session_timeout: Duration,
    /// How long the first rebalance of an empty group waits for more members. Default: `"3s"`.
    #[serde(with = "duration_str")]
    pub initial_rebalance_delay: Duration,
    /// Most members in one group. Default: `2147483647`.
    pub max_size: u32,
}

impl Default for GroupsConfig {
    fn default() -> Self {
        GroupsConfig {
            min_session_timeout: Duration::from_millis(6_000),
            max_session_timeout: Duration::from_millis(1_800_000),
            initial_rebalance_delay: Duration::from_millis(3_000),
            max_size: i32::MAX as u32,
        }
    }
}

impl GroupsConfig {
    /// The cross-field rules of `[groups]`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.min_session_timeout.is_zero() {
            return Err(ConfigError::invalid("groups.min-session-timeout", "must be greater than zero"));
        }
        if self.max_session_timeout < self.min_session_timeout {
            return Err(ConfigError::invalid(
                "groups.max-session-timeout",
                "must be at least groups.min-session-timeout",
            ));
        }
        if self.max_session_timeout.as_millis() > i32::MAX as u128 {
            return Err(ConfigError::invalid("groups.max-session-timeout", "must be at most 2147483647ms"));
        }
        if self.initial_rebalance_delay.as_millis() > i32::MAX as u128 {
            return Err(ConfigError::invalid("groups.initial-rebalance-delay", "must be at most 2147483647ms"));
        }
        if self.max_size == 0 || self.max_size > i32::MAX as u32 {
            return Err(ConfigError::invalid("groups.max-size", "must be between 1 and 2147483647"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;

    #[test]
    fn groups_section_loads_and_validates() {
        let load = |t: &str| from_toml(t).and_then(|c| c.validate().map(|_| c));
        let c = load("[groups]\nmin-session-timeout = \"1s\"\nmax-size = 5\n").unwrap();
        assert_eq!(c.groups.min_session_timeout, Duration::from_secs(1));
        assert_eq!(c.groups.max_size, 5);
        assert!(load("[groups]\nmin-session-timeout = \"1h\"\n").is_err(), "min above max");
        assert!(load("[groups]\nmax-size = 0\n").is_err());
        assert!(load("[groups]\nbogus = 1\n").is_err());
    }
}
