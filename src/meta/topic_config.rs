//! Kafka's topic configs: validation of names and values (types, ranges, enumerations, the
//! cross-field rules of `LogConfig.validateValues`), the list operations of
//! IncrementalAlterConfigs (APPEND/SUBTRACT), effective values with their source, and the
//! one-time log line for configs chronik accepts but does not apply. The table itself is in
//! [`super::topic_config_table`]. Error messages are Kafka's own (`Invalid value X for
//! configuration K: ...`), so a client sees the key and the rule.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, OnceLock};

pub use super::topic_config_table::{INTERNAL_TOPIC_CONFIG_DEFS, TOPIC_CONFIG_DEFS};

/// Kafka's `ConfigDef.Type`, with the `config_type` code DescribeConfigs v3+ answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Boolean,
    Str,
    Int,
    Long,
    Double,
    List,
    /// A secret (broker configs only: passwords, private keys).
    Password,
}

impl Kind {
    /// DescribeConfigs' `config_type` (BOOLEAN=1, STRING=2, INT=3, SHORT=4, LONG=5, DOUBLE=6,
    /// LIST=7, PASSWORD=9).
    pub fn code(self) -> i8 {
        match self {
            Kind::Boolean => 1,
            Kind::Str => 2,
            Kind::Int => 3,
            Kind::Long => 5,
            Kind::Double => 6,
            Kind::List => 7,
            Kind::Password => 9,
        }
    }

    /// Kafka's upper-case name, as in "Not a number of type LONG".
    pub fn name(self) -> &'static str {
        match self {
            Kind::Boolean => "BOOLEAN",
            Kind::Str => "STRING",
            Kind::Int => "INT",
            Kind::Long => "LONG",
            Kind::Double => "DOUBLE",
            Kind::List => "LIST",
            Kind::Password => "PASSWORD",
        }
    }
}

/// A config's validator (Kafka's `ConfigDef.Validator`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// Any value of the type.
    Unbounded,
    /// `Range.atLeast(n)`.
    AtLeast(i64),
    /// `Range.between(lo, hi)`.
    Between(i64, i64),
    /// `Range.between(0, 1)` of a DOUBLE.
    Ratio,
    /// `ValidString.in(...)`.
    OneOf(&'static [&'static str]),
    /// `ValidList.in(...)`: every element one of these (an empty list is valid).
    ListOf(&'static [&'static str]),
    /// `ThrottledReplicaListValidator`: `*` or `partition:broker,...`.
    ThrottledReplicas,
    /// gzip levels: 1..=9 or -1.
    GzipLevel,
    /// `remote.storage.enable`: chronik has no tiered storage, so `true` is refused as Kafka
    /// refuses it on a broker without `remote.log.storage.system.enable`.
    NoTieredStorage,
}

/// Whether chronik honours a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Enforced by the broker (produce path, retention, segment size).
    Applied,
    /// Read by the log cleaner (compaction and segment rolling of compacted topics).
    Cleaner,
    /// Accepted, stored and described; logged once as not applied.
    NotApplied,
    /// `unclean.leader.election.enable`: accepted, but a Raft group never elects a replica
    /// that lacks committed entries, whatever the value.
    NeverUnclean,
}

impl Status {
    /// How docs/configuration.md names the status.
    pub fn describe(self) -> &'static str {
        match self {
            Status::Applied => "applied",
            Status::Cleaner => "applied by the log cleaner",
            Status::NotApplied => "accepted, not applied",
            Status::NeverUnclean => "accepted; Raft never elects uncleanly",
        }
    }
}

/// One topic config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub kind: Kind,
    /// Kafka's default, as DescribeConfigs prints it.
    pub default: &'static str,
    pub rule: Rule,
    /// The broker config that supplies the default (`log.retention.ms` for `retention.ms`).
    pub synonym: Option<&'static str>,
    pub status: Status,
    /// The first sentence of Kafka's documentation of the config.
    pub doc: &'static str,
}

/// The definition of a topic config, if Kafka has one by that name (internal ones included).
pub fn def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIG_DEFS.iter().chain(INTERNAL_TOPIC_CONFIG_DEFS).find(|d| d.name == name)
}

/// Every config a topic may describe, as Kafka orders DescribeConfigs: the internal ones first
/// (they appear only when set: [`effective`] has no default for them), then the rest.
pub fn described_defs() -> impl Iterator<Item = &'static TopicConfigDef> {
    INTERNAL_TOPIC_CONFIG_DEFS.iter().chain(TOPIC_CONFIG_DEFS)
}

/// Kafka's default of a topic config; `None` for an internal config, which has none.
pub fn default_value(name: &str) -> Option<&'static str> {
    TOPIC_CONFIG_DEFS.iter().find(|d| d.name == name).map(|d| d.default)
}

/// The segment size of a topic as Kafka's `LogConfig.segmentSize()`: `internal.segment.bytes`
/// when set (any INT, so possibly 0 or negative), else `segment.bytes`, else the broker's
/// `topics.segment-bytes`. Produce refuses a partition's batches larger than it
/// (RECORD_BATCH_TOO_LARGE, as Kafka's `UnifiedLog.append`).
pub fn segment_size(configs: &BTreeMap<String, String>, broker_default: i64) -> i64 {
    let int = |k: &str| configs.get(k).and_then(|v| v.trim().parse::<i32>().ok());
    match (int("internal.segment.bytes"), int("segment.bytes")) {
        (Some(v), _) => i64::from(v),
        (None, Some(v)) => i64::from(v),
        _ => broker_default,
    }
}

/// The size a topic's partitions roll their segments at: [`segment_size`], at least 1 (a
/// value below 1 rolls after every entry; Produce refuses every batch on such a topic anyway).
pub fn segment_bytes(configs: &BTreeMap<String, String>, broker_default: u64) -> u64 {
    let broker = i64::try_from(broker_default).unwrap_or(i64::MAX);
    segment_size(configs, broker).max(1) as u64
}

/// Kafka's `ConfigDef` list parsing: split on commas, trim; an empty (or blank) string is the
/// empty list.
pub fn list_items(value: &str) -> Vec<&str> {
    if value.trim().is_empty() {
        return Vec::new();
    }
    value.split(',').map(str::trim).collect()
}

fn invalid(key: &str, value: &str, why: impl std::fmt::Display) -> String {
    format!("Invalid value {value} for configuration {key}: {why}")
}

/// Checks one topic config: the name is one of Kafka's, the value parses as its type and obeys
/// its validator. The message is Kafka's.
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), String> {
    let Some(d) = def(key) else {
        return Err(format!("Unknown topic config name: {key}"));
    };
    let v = value.trim();
    let not_a = || invalid(key, value, format_args!("Not a number of type {}", d.kind.name()));
    let num = match d.kind {
        Kind::Int => Some(v.parse::<i32>().map_err(|_| not_a())? as i64),
        Kind::Long => Some(v.parse::<i64>().map_err(|_| not_a())?),
        Kind::Double => {
            let x = v.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(not_a)?;
            if d.rule == Rule::Ratio && !(0.0..=1.0).contains(&x) {
                let why = if x < 0.0 { "Value must be at least 0" } else { "Value must be no more than 1" };
                return Err(invalid(key, value, why));
            }
            None
        }
        Kind::Boolean => {
            let b = match v.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(invalid(key, value, "Expected value to be either true or false")),
            };
            if b && d.rule == Rule::NoTieredStorage {
                return Err("Tiered Storage functionality is disabled in the broker. \
                            Topic cannot be configured with remote log storage."
                    .to_string());
            }
            None
        }
        Kind::Str | Kind::List | Kind::Password => None,
    };
    match (d.rule, num) {
        (Rule::AtLeast(min), Some(n)) if n < min => {
            Err(invalid(key, value, format_args!("Value must be at least {min}")))
        }
        (Rule::Between(lo, _), Some(n)) if n < lo => {
            Err(invalid(key, value, format_args!("Value must be at least {lo}")))
        }
        (Rule::Between(_, hi), Some(n)) if n > hi => {
            Err(invalid(key, value, format_args!("Value must be no more than {hi}")))
        }
        (Rule::GzipLevel, Some(n)) if n != -1 && !(1..=9).contains(&n) => {
            Err(invalid(key, value, "Value must be between 1 and 9 or equal to -1"))
        }
        (Rule::OneOf(allowed), _) if !allowed.contains(&v) => {
            Err(invalid(key, value, format_args!("String must be one of: {}", allowed.join(", "))))
        }
        (Rule::ListOf(allowed), _) => match list_items(value).into_iter().find(|i| !allowed.contains(i)) {
            Some(bad) => Err(invalid(key, bad, format_args!("String must be one of: {}", allowed.join(", ")))),
            None => Ok(()),
        },
        (Rule::ThrottledReplicas, _) => {
            let items = list_items(value);
            let pair = |s: &str| {
                s.split_once(':').is_some_and(|(p, b)| {
                    !p.is_empty() && !b.is_empty() && p.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
                })
            };
            if items == ["*"] || items.iter().all(|i| pair(i)) {
                Ok(())
            } else {
                Err(invalid(
                    key,
                    &format!("[{}]", items.join(", ")),
                    format_args!(
                        "{key} must be the literal '*' or a list of replicas in the following format: \
                         [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                    ),
                ))
            }
        }
        _ => Ok(()),
    }
}

/// Checks a topic's whole config map: every entry, then the cross-field rules Kafka applies
/// to the effective values (`min.compaction.lag.ms` <= `max.compaction.lag.ms`).
pub fn validate_topic_configs(configs: &BTreeMap<String, String>) -> Result<(), String> {
    for (k, v) in configs {
        validate_topic_config(k, v)?;
    }
    let long = |k: &str| {
        configs.get(k).map(String::as_str).or(default_value(k)).and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(0)
    };
    let (min, max) = (long("min.compaction.lag.ms"), long("max.compaction.lag.ms"));
    if min > max {
        return Err(format!(
            "conflict topic config setting min.compaction.lag.ms ({min}) > max.compaction.lag.ms ({max})"
        ));
    }
    Ok(())
}

/// IncrementalAlterConfigs' list operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListOp {
    Append,
    Subtract,
}

/// APPEND or SUBTRACT `operand` (a comma-separated list) to or from the current value of a
/// LIST config (the topic's setting, else Kafka's default), as Kafka's controller does:
/// appended items not already present go at the end; subtracted items are removed.
pub fn apply_list_op(key: &str, current: Option<&str>, operand: &str, op: ListOp) -> Result<String, String> {
    let d = def(key).ok_or_else(|| format!("Unknown topic config name: {key}"))?;
    if d.kind != Kind::List {
        let verb = if op == ListOp::Append { "APPEND" } else { "SUBTRACT" };
        return Err(format!("Can't {verb} to key {key} because its type is not LIST."));
    }
    let mut items: Vec<String> = list_items(current.unwrap_or(d.default)).into_iter().map(str::to_string).collect();
    for item in list_items(operand) {
        match op {
            ListOp::Append if !items.iter().any(|i| i == item) => items.push(item.to_string()),
            ListOp::Subtract => items.retain(|i| i != item),
            ListOp::Append => {}
        }
    }
    Ok(items.join(","))
}

/// Where an effective value comes from (Kafka's DescribeConfigs `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Set on the topic (DYNAMIC_TOPIC_CONFIG = 1).
    Topic,
    /// Set at run time for this broker (DYNAMIC_BROKER_CONFIG = 2).
    DynamicBroker,
    /// Set at run time as the cluster default (DYNAMIC_DEFAULT_BROKER_CONFIG = 3).
    DynamicDefaultBroker,
    /// The broker's configuration file sets the default (STATIC_BROKER_CONFIG = 4).
    StaticBroker,
    /// Kafka's default (DEFAULT_CONFIG = 5).
    Default,
}

impl Source {
    pub fn code(self) -> i8 {
        match self {
            Source::Topic => 1,
            Source::DynamicBroker => 2,
            Source::DynamicDefaultBroker => 3,
            Source::StaticBroker => 4,
            Source::Default => 5,
        }
    }
}

/// Topic-config defaults that the broker's configuration file changes (by topic config name,
/// e.g. `retention.ms` from `[topics] retention`). Only values that differ from Kafka's
/// default are listed, so the rest describe as DEFAULT_CONFIG.
pub type BrokerTopicDefaults = BTreeMap<&'static str, String>;

/// The effective value of `key` for a topic with `configs`, and its source.
pub fn effective(
    key: &'static str,
    configs: &BTreeMap<String, String>,
    broker: &BrokerTopicDefaults,
) -> Option<(String, Source)> {
    if let Some(v) = configs.get(key) {
        return Some((v.clone(), Source::Topic));
    }
    if let Some(v) = broker.get(key) {
        return Some((v.clone(), Source::StaticBroker));
    }
    default_value(key).map(|v| (v.to_string(), Source::Default))
}

/// Logs, once per key per process, each config in `configs` that chronik accepts but does not
/// apply.
pub fn log_not_applied(logger: &slog::Logger, topic: &str, configs: &BTreeMap<String, String>) {
    static LOGGED: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let logged = LOGGED.get_or_init(Default::default);
    for k in configs.keys() {
        let Some(d) = def(k) else { continue };
        let what = match d.status {
            Status::NotApplied => "topic config accepted and stored but not applied by chronik",
            Status::NeverUnclean => "topic config accepted; Raft never elects a replica that lacks committed entries",
            Status::Applied | Status::Cleaner => continue,
        };
        let first = logged.lock().map(|mut l| l.insert(d.name)).unwrap_or(false);
        if first {
            slog::info!(logger, "{}", what; "config" => d.name, "topic" => topic);
        }
    }
}

#[cfg(test)]
#[path = "topic_config_tests.rs"]
mod tests;
