//! Dynamic broker configs kept in `__meta`: Kafka's replication throttle rates, which Kafka's
//! tools set at run time (`kafka-reassign-partitions.sh --throttle`, `kafka-configs.sh
//! --entity-type brokers --alter`) and every node must agree on.
//!
//! A value is set for one broker (entity `"N"`) or as the cluster default (entity `""`); a
//! broker's own value wins, as in Kafka. Every other broker config is static (the TOML).
//! This file has the command, how it applies, its snapshot form, and what a node makes of it
//! together with the topics' throttled-replica lists ([`throttle_config`], read by
//! `peer::throttle`).

use std::collections::{BTreeMap, HashSet};

use crate::meta::state::MetaState;
use crate::meta::topic_config::list_items;
use crate::peer::throttle::ThrottleConfig;

pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
/// Kafka's throttle of moves between log directories of one broker. chronik keeps one data
/// directory per node, so there is nothing for it to slow; it is stored and described.
pub const ALTER_LOG_DIRS_RATE: &str = "replica.alter.log.dirs.io.max.bytes.per.second";
/// The broker configs that can be altered at run time.
pub const DYNAMIC_KEYS: [&str; 3] = [LEADER_RATE, FOLLOWER_RATE, ALTER_LOG_DIRS_RATE];
/// Kafka's default for the three rates (`Long.MAX_VALUE`: no throttle).
pub const UNLIMITED: &str = "9223372036854775807";
pub const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

/// Dynamic broker configs by entity (`""`: the cluster default; `"N"`: broker N).
pub type BrokerConfigs = BTreeMap<String, BTreeMap<String, String>>;

/// Set and delete dynamic configs of one entity (IncrementalAlterConfigs on a BROKER resource).
/// The handler validated it; applying skips any key or value that is not valid, so every
/// replica ends with the same state.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AlterBrokerConfigs {
    #[prost(string, tag = "1")]
    pub entity: String,
    #[prost(btree_map = "string, string", tag = "2")]
    pub set: BTreeMap<String, String>,
    #[prost(string, repeated, tag = "3")]
    pub delete: Vec<String>,
}

/// One entity's configs in a `__meta` snapshot.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapBrokerConfigs {
    #[prost(string, tag = "1")]
    pub entity: String,
    #[prost(btree_map = "string, string", tag = "2")]
    pub configs: BTreeMap<String, String>,
}

/// Kafka's check of a dynamic broker config value (the three are LONG, at least 0).
pub fn validate(key: &str, value: &str) -> Result<(), String> {
    if !DYNAMIC_KEYS.contains(&key) {
        return Err(format!("Cannot update these configs dynamically: Set({key})"));
    }
    match value.trim().parse::<i64>() {
        Ok(v) if v >= 0 => Ok(()),
        Ok(_) => Err(format!("Invalid value {value} for configuration {key}: Value must be at least 0")),
        Err(_) => Err(format!("Invalid value {value} for configuration {key}: Not a number of type LONG")),
    }
}

/// Whether `entity` names a BROKER resource Kafka accepts: the default or a broker id.
pub fn valid_entity(entity: &str) -> bool {
    entity.is_empty() || entity.parse::<i32>().is_ok_and(|id| id >= 0)
}

/// Applies an alteration.
pub fn apply(configs: &mut BrokerConfigs, c: &AlterBrokerConfigs) {
    if !valid_entity(&c.entity) {
        return;
    }
    let entry = configs.entry(c.entity.clone()).or_default();
    for k in &c.delete {
        entry.remove(k);
    }
    for (k, v) in &c.set {
        if validate(k, v).is_ok() {
            entry.insert(k.clone(), v.trim().to_string());
        }
    }
    if entry.is_empty() {
        configs.remove(&c.entity);
    }
}

/// A dynamic value for `node` and whether it is the node's own (true) or the cluster default.
pub fn dynamic_value<'a>(configs: &'a BrokerConfigs, node: u64, key: &str) -> Option<(&'a str, bool)> {
    let own = configs.get(&node.to_string()).and_then(|c| c.get(key)).map(|v| (v.as_str(), true));
    own.or_else(|| configs.get("").and_then(|c| c.get(key)).map(|v| (v.as_str(), false)))
}

/// A rate in bytes per second for `node` (None: unlimited).
fn rate(configs: &BrokerConfigs, node: u64, key: &str) -> Option<u64> {
    let (v, _) = dynamic_value(configs, node, key)?;
    v.parse::<u64>().ok().filter(|r| *r < i64::MAX as u64)
}

/// The partitions a throttled-replicas list names for `node` (Kafka's `partition:broker` pairs,
/// or `*` for every partition), out of `partitions`.
fn listed_partitions(value: &str, node: u64, partitions: usize) -> Vec<usize> {
    let items = list_items(value);
    if items == ["*"] {
        return (0..partitions).collect();
    }
    items
        .iter()
        .filter_map(|i| i.split_once(':'))
        .filter(|(_, b)| b.trim().parse::<u64>().is_ok_and(|b| b == node))
        .filter_map(|(p, _)| p.trim().parse::<usize>().ok())
        .filter(|p| *p < partitions)
        .collect()
}

/// What an image says about the replication throttles on `node`.
pub fn throttle_config(image: &MetaState, node: u64) -> ThrottleConfig {
    let (mut leader_groups, mut follower_groups) = (HashSet::new(), HashSet::new());
    for topic in image.topics.values() {
        for (key, groups) in [(LEADER_REPLICAS, &mut leader_groups), (FOLLOWER_REPLICAS, &mut follower_groups)] {
            if let Some(v) = topic.configs.get(key) {
                groups.extend(
                    listed_partitions(v, node, topic.partitions.len()).into_iter().map(|p| topic.partitions[p].group),
                );
            }
        }
    }
    ThrottleConfig {
        leader_rate: rate(&image.broker_configs, node, LEADER_RATE),
        follower_rate: rate(&image.broker_configs, node, FOLLOWER_RATE),
        leader_groups,
        follower_groups,
    }
}

/// The snapshot form.
pub fn to_snapshot(configs: &BrokerConfigs) -> Vec<SnapBrokerConfigs> {
    configs.iter().map(|(e, c)| SnapBrokerConfigs { entity: e.clone(), configs: c.clone() }).collect()
}

/// Back from the snapshot form.
pub fn from_snapshot(snap: &[SnapBrokerConfigs]) -> BrokerConfigs {
    snap.iter().filter(|s| !s.configs.is_empty()).map(|s| (s.entity.clone(), s.configs.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::command::{Cmd, MetaCommand};

    fn alter(entity: &str, set: &[(&str, &str)], delete: &[&str]) -> MetaCommand {
        MetaCommand::new(Cmd::AlterBrokerConfigs(AlterBrokerConfigs {
            entity: entity.into(),
            set: set.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            delete: delete.iter().map(|k| k.to_string()).collect(),
        }))
    }

    #[test]
    fn values_are_kafkas_longs_of_at_least_zero_on_the_three_dynamic_keys() {
        assert!(validate(LEADER_RATE, "1000000").is_ok());
        assert!(validate(FOLLOWER_RATE, "0").is_ok());
        assert_eq!(
            validate(LEADER_RATE, "-1").unwrap_err(),
            "Invalid value -1 for configuration leader.replication.throttled.rate: Value must be at least 0"
        );
        assert!(validate(LEADER_RATE, "fast").unwrap_err().contains("LONG"));
        assert!(validate("num.partitions", "3").unwrap_err().contains("Cannot update these configs dynamically"));
        assert!(valid_entity("") && valid_entity("3") && !valid_entity("-1") && !valid_entity("b1"));
    }

    #[test]
    fn a_brokers_own_value_wins_over_the_default_and_deletes_fall_back() {
        let mut s = MetaState::default();
        s.apply(&alter("", &[(LEADER_RATE, "500")], &[]));
        s.apply(&alter("2", &[(LEADER_RATE, "700"), (FOLLOWER_RATE, "800")], &[]));
        // Invalid values and keys never enter the state.
        s.apply(&alter("2", &[(ALTER_LOG_DIRS_RATE, "-5"), ("num.partitions", "3")], &[]));
        assert_eq!(dynamic_value(&s.broker_configs, 2, LEADER_RATE), Some(("700", true)));
        assert_eq!(dynamic_value(&s.broker_configs, 1, LEADER_RATE), Some(("500", false)));
        assert_eq!(dynamic_value(&s.broker_configs, 2, ALTER_LOG_DIRS_RATE), None);
        s.apply(&alter("2", &[], &[LEADER_RATE, FOLLOWER_RATE]));
        assert_eq!(dynamic_value(&s.broker_configs, 2, LEADER_RATE), Some(("500", false)));
        s.apply(&alter("", &[], &[LEADER_RATE]));
        assert!(s.broker_configs.is_empty(), "empty entities are dropped");
        // The round trip through a snapshot keeps them.
        s.apply(&alter("1", &[(FOLLOWER_RATE, "9")], &[]));
        assert_eq!(from_snapshot(&to_snapshot(&s.broker_configs)), s.broker_configs);
    }

    #[test]
    fn the_throttle_config_lists_this_nodes_groups_of_each_side() {
        use crate::meta::command::CreateTopic;
        let mut s = MetaState::default();
        for id in 1..=3 {
            s.apply(&MetaCommand::new(Cmd::RegisterBroker(crate::meta::command::RegisterBroker {
                node_id: id,
                host: "127.0.0.1".into(),
                port: 9092,
                cluster_id: "c1".into(),
                ..Default::default()
            })));
        }
        let created = s.apply(&MetaCommand::new(Cmd::CreateTopic(CreateTopic {
            name: "t".into(),
            topic_id: vec![7; 16],
            partitions: 3,
            replication_factor: 3,
            configs: [
                (LEADER_REPLICAS.to_string(), "0:1,2:1,1:2".to_string()),
                (FOLLOWER_REPLICAS.to_string(), "*".to_string()),
            ]
            .into(),
            ..Default::default()
        })));
        assert_eq!(created, crate::meta::state::MetaResult::Done);
        let groups: Vec<_> = s.topics["t"].partitions.iter().map(|p| p.group).collect();
        // No rate: the lists alone throttle nothing, but they are read.
        let c = throttle_config(&s, 1);
        assert_eq!((c.leader_rate, c.follower_rate), (None, None));
        assert_eq!(c.leader_groups, [groups[0], groups[2]].into());
        assert_eq!(c.follower_groups, groups.iter().copied().collect());
        assert_eq!(throttle_config(&s, 2).leader_groups, [groups[1]].into());
        assert!(throttle_config(&s, 3).leader_groups.is_empty());
        s.apply(&alter("", &[(LEADER_RATE, "1000"), (FOLLOWER_RATE, UNLIMITED)], &[]));
        let c = throttle_config(&s, 1);
        assert_eq!((c.leader_rate, c.follower_rate), (Some(1000), None), "Long.MAX_VALUE is no throttle");
    }
}
