//! `[transactions]`: the transaction coordinator's settings, Kafka's `transaction.*` and
//! `transactional.id.*` broker configs with Kafka's defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::durations::duration_str;
use super::ConfigError;

/// `[transactions]`: the transaction coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct TransactionsConfig {
    /// Kafka's `transaction.max.timeout.ms`: the largest `transaction.timeout.ms` a producer
    /// may ask for. Default: `"15m"`.
    #[serde(with = "duration_str")]
    pub max_timeout: Duration,
    /// Kafka's `transactional.id.expiration.ms`: an idle transactional id is removed after
    /// this long. Default: `"7d"`.
    #[serde(with = "duration_str")]
    pub id_expiration: Duration,
    /// Kafka's `transaction.abort.timed.out.transaction.cleanup.interval.ms`. Default: `"10s"`.
    #[serde(with = "duration_str")]
    pub abort_timed_out_interval: Duration,
    /// Kafka's `transaction.remove.expired.transaction.cleanup.interval.ms`. Default: `"1h"`.
    #[serde(with = "duration_str")]
    pub remove_expired_interval: Duration,
    /// Kafka's `transaction.partition.verification.enable` (KIP-890): a partition leader accepts
    /// a transactional batch only if the partition is in the producer's ongoing transaction.
    /// Default: `true`.
    pub partition_verification: bool,
}

impl Default for TransactionsConfig {
    fn default() -> Self {
        let d = crate::txn::actor::TxnSettings::default();
        TransactionsConfig {
            max_timeout: d.max_timeout,
            id_expiration: d.id_expiration,
            abort_timed_out_interval: d.abort_timed_out_interval,
            remove_expired_interval: d.remove_expired_interval,
            partition_verification: true,
        }
    }
}

impl TransactionsConfig {
    /// The cross-field rules of `[transactions]`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ms = |d: Duration| d.as_millis();
        if ms(self.max_timeout) < 1 || ms(self.max_timeout) > i32::MAX as u128 {
            return Err(ConfigError::invalid("transactions.max-timeout", "must be between 1ms and 2147483647ms"));
        }
        if ms(self.id_expiration) < 1 || ms(self.id_expiration) > i32::MAX as u128 {
            return Err(ConfigError::invalid("transactions.id-expiration", "must be between 1ms and 2147483647ms"));
        }
        for (key, d) in [
            ("transactions.abort-timed-out-interval", self.abort_timed_out_interval),
            ("transactions.remove-expired-interval", self.remove_expired_interval),
        ] {
            if ms(d) < 1 || ms(d) > i32::MAX as u128 {
                return Err(ConfigError::invalid(key, "must be between 1ms and 2147483647ms"));
            }
        }
        Ok(())
    }

    /// The coordinator's settings.
    pub fn settings(&self) -> crate::txn::actor::TxnSettings {
        crate::txn::actor::TxnSettings {
            max_timeout: self.max_timeout,
            id_expiration: self.id_expiration,
            abort_timed_out_interval: self.abort_timed_out_interval,
            remove_expired_interval: self.remove_expired_interval,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;
    use crate::config::Config;

    #[test]
    fn transactions_section_loads_and_validates() {
        let load = |t: &str| from_toml(t).and_then(|c| c.validate().map(|_| c));
        let c = load("[transactions]\nmax-timeout = \"1m\"\nid-expiration = \"1h\"\n").unwrap();
        assert_eq!(c.transactions.max_timeout, Duration::from_secs(60));
        assert_eq!(c.transactions.settings().id_expiration, Duration::from_secs(3600));
        let d = Config::default().transactions;
        assert_eq!(d.max_timeout, Duration::from_millis(900_000));
        assert_eq!(d.id_expiration, Duration::from_millis(604_800_000));
        assert_eq!(d.abort_timed_out_interval, Duration::from_millis(10_000));
        assert_eq!(d.remove_expired_interval, Duration::from_millis(3_600_000));
        assert!(load("[transactions]\nmax-timeout = \"0s\"\n").is_err());
        assert!(load("[transactions]\nid-expiration = \"30d\"\n").is_err(), "beyond Kafka's int range");
        assert!(load("[transactions]\nbogus = 1\n").is_err());
    }
}
