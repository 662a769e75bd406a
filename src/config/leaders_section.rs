//! `[leaders]`: the automatic leader balancer, Kafka's `auto.leader.rebalance.enable`,
//! `leader.imbalance.check.interval.seconds` and `leader.imbalance.per.broker.percentage` with
//! Kafka's defaults (`meta::balancer`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::durations::duration_str;
use super::ConfigError;

/// `[leaders]`: the automatic leader balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct LeadersConfig {
    /// Kafka's `auto.leader.rebalance.enable`: the `__meta` leader moves the leadership of
    /// partitions back to their preferred replica. Default: `true`.
    pub auto_rebalance_enable: bool,
    /// Kafka's `leader.imbalance.check.interval.seconds`: how often the balancer looks.
    /// Default: `"300s"`.
    #[serde(with = "duration_str")]
    pub imbalance_check_interval: Duration,
    /// Kafka's `leader.imbalance.per.broker.percentage`: a broker's partitions move back when
    /// more than this share of those it is the preferred replica of are led elsewhere.
    /// Default: `10`.
    pub imbalance_per_broker_percentage: u32,
}

impl Default for LeadersConfig {
    fn default() -> Self {
        LeadersConfig {
            auto_rebalance_enable: true,
            imbalance_check_interval: Duration::from_secs(300),
            imbalance_per_broker_percentage: 10,
        }
    }
}

impl LeadersConfig {
    /// Kafka's ranges: the interval at least 1 s; the percentage 0..=100.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.imbalance_check_interval < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "leaders.imbalance-check-interval",
                "must be at least 1s (Kafka's leader.imbalance.check.interval.seconds >= 1)",
            ));
        }
        if self.imbalance_per_broker_percentage > 100 {
            return Err(ConfigError::invalid("leaders.imbalance-per-broker-percentage", "must be between 0 and 100"));
        }
        Ok(())
    }

    /// The balancer's settings.
    pub fn settings(&self) -> crate::meta::balancer::BalancerSettings {
        crate::meta::balancer::BalancerSettings {
            enabled: self.auto_rebalance_enable,
            interval: self.imbalance_check_interval,
            per_broker_percentage: self.imbalance_per_broker_percentage,
            max_per_round: crate::meta::balancer::MAX_ELECTIONS_PER_ROUND,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;
    use crate::config::Config;

    #[test]
    fn leaders_section_loads_and_validates() {
        let load = |t: &str| from_toml(t).and_then(|c| c.validate().map(|_| c));
        let d = Config::default().leaders;
        assert!(d.auto_rebalance_enable);
        assert_eq!(d.imbalance_check_interval, Duration::from_secs(300));
        assert_eq!(d.imbalance_per_broker_percentage, 10);
        let c = load(
            "[leaders]\nauto-rebalance-enable = false\nimbalance-check-interval = \"2s\"\nimbalance-per-broker-percentage = 0\n",
        )
        .unwrap();
        assert!(!c.leaders.settings().enabled);
        assert_eq!(c.leaders.settings().interval, Duration::from_secs(2));
        assert_eq!(c.leaders.imbalance_per_broker_percentage, 0);
        assert!(load("[leaders]\nimbalance-check-interval = \"500ms\"\n").is_err());
        assert!(load("[leaders]\nimbalance-per-broker-percentage = 101\n").is_err());
        assert!(load("[leaders]\nbogus = 1\n").is_err());
    }
}
