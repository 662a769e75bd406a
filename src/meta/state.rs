//! The metadata state machine: brokers, topics (with ids, configs and partition assignments),
//! the producer-id counter, the committed offsets of consumer groups and transaction state. A plain struct: [`MetaState::apply`] is deterministic, so every
//! `__meta` replica that applies the same log holds the same state.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::code;
use crate::meta::command::{Cmd, CommitOffsets, MetaCommand, StoreGroup};
use crate::raft::GroupId;

/// A broker's Kafka address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub host: String,
    pub port: i32,
    /// Admin HTTP address, if the broker registered one.
    pub admin: Option<String>,
    /// Advertised address per listener name (empty: only `host`/`port`, the PLAINTEXT one).
    pub listeners: BTreeMap<String, (String, i32)>,
    /// Kafka's `broker.rack`, if the broker registered one.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// The address to give a client that came in on `listener`: that listener's advertised
    /// address; the registered `host`/`port` for a broker that registered no listeners; `None`
    /// when the broker lacks that listener (Kafka leaves such brokers out of Metadata).
    pub fn endpoint(&self, listener: &str) -> Option<(String, i32)> {
        if self.listeners.is_empty() {
            return Some((self.host.clone(), self.port));
        }
        self.listeners.get(listener).cloned()
    }
}

/// One partition: its Raft group and the replicas (the group's voters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub group: GroupId,
    pub replicas: Vec<u64>,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub id: [u8; 16],
    pub partitions: Vec<PartitionInfo>,
    pub configs: BTreeMap<String, String>,
}

/// The outcome of applying one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaResult {
    Done,
    ProducerIds {
        start: i64,
    },
    /// A transaction command's answer (`txn::core`).
    Txn(crate::txn::model::TxnReply),
    Rejected {
        code: i16,
        message: String,
    },
}

/// Everything `__meta` knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaState {
    pub cluster_id: String,
    pub brokers: BTreeMap<u64, BrokerInfo>,
    pub topics: BTreeMap<String, TopicInfo>,
    pub next_group_id: GroupId,
    pub next_producer_id: i64,
    /// The last reported leader and term of each partition group.
    pub leaders: BTreeMap<GroupId, (u64, u64)>,
    /// How many preferred leader elections were asked for each group (ElectLeaders, the
    /// leader balancer): the preferred replica's node transfers the leadership when it rises.
    pub elections: BTreeMap<GroupId, u64>,
    /// Partition reassignments in progress (`meta::reassign`), by group.
    pub reassignments: BTreeMap<GroupId, crate::meta::reassign::Reassignment>,
    /// The cluster's nodes and removed ids (`meta::members`).
    pub members: crate::meta::members::Members,
    /// Recently applied proposal ids per node (bounded), so a retried proposal applies once.
    pub seen: BTreeMap<u64, std::collections::VecDeque<u64>>,
    /// Committed offsets by consumer group. Each group's map sits behind an `Arc`, so that
    /// publishing a new image after a commit copies only the group that changed.
    pub offsets: BTreeMap<String, Arc<GroupOffsets>>,
    /// The membership of each consumer group as of its last rebalance.
    pub consumer_groups: BTreeMap<String, Arc<StoreGroup>>,
    /// SCRAM credentials by user and mechanism (salt, stored key, server key, iterations).
    /// A snapshot of the state must include this map.
    pub scram_credentials:
        BTreeMap<String, BTreeMap<crate::security::scram::Mechanism, crate::security::scram::Credential>>,
    /// Every ACL binding (CreateAcls/DeleteAcls). A new `Arc` on every change, which is what
    /// invalidates the authorizers' decision caches.
    pub acls: crate::security::acl::AclSet,
    /// Client quota values by entity (AlterClientQuotas).
    pub client_quotas: crate::security::quota::QuotaSet,
    /// Dynamic broker configs (the replication throttle rates), by entity (`meta::broker_config`).
    pub broker_configs: crate::meta::broker_config::BrokerConfigs,
    /// Transaction coordinator state by transactional id (`txn`).
    pub transactions: crate::txn::model::TxnTable,
}

/// A group's committed offsets: topic → partition → offset.
pub type GroupOffsets = BTreeMap<String, BTreeMap<i32, CommittedOffset>>;

/// One committed offset (OffsetCommit's fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

/// How many proposal ids per node are remembered for de-duplication.
const SEEN_PER_NODE: usize = 1024;

/// The most partitions a topic may have. Every partition is a Raft group with its own directory
/// and actors, and the state machine allocates them when it applies a command, so an unchecked
/// count from a client (CreateTopics with 2^31 partitions) would make every replica of `__meta`
/// run out of memory, again on every restart.
pub const MAX_PARTITIONS_PER_TOPIC: u32 = 10_000;

pub use super::topic_config::validate_topic_config;

/// Kafka's topic-name rule: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

impl MetaState {
    /// A new state: group ids start after `__meta` (0), producer ids at 0.
    pub fn new() -> Self {
        MetaState { next_group_id: 1, ..Default::default() }
    }

    /// Applies a command that carries a proposal id: a retry of an id already applied returns
    /// `None` and changes nothing.
    pub fn apply_once(
        &mut self,
        id: Option<crate::meta::command::ProposalId>,
        cmd: &MetaCommand,
    ) -> Option<MetaResult> {
        if let Some(id) = id {
            let seen = self.seen.entry(id.node).or_default();
            if seen.contains(&id.seq) {
                return None;
            }
            seen.push_back(id.seq);
            if seen.len() > SEEN_PER_NODE {
                seen.pop_front();
            }
        }
        Some(self.apply(cmd))
    }

    /// Applies one command.
    pub fn apply(&mut self, cmd: &MetaCommand) -> MetaResult {
        let Some(cmd) = &cmd.cmd else {
            return reject(code::INVALID_REQUEST, "empty metadata command");
        };
        match cmd {
            Cmd::RegisterBroker(b) if self.members.removed.contains(&b.node_id) => {
                reject(code::INVALID_REQUEST, format!("node {} was removed from the cluster", b.node_id))
            }
            Cmd::RegisterBroker(b) => {
                if self.cluster_id.is_empty() {
                    self.cluster_id = b.cluster_id.clone();
                }
                self.brokers.insert(
                    b.node_id,
                    BrokerInfo {
                        host: b.host.clone(),
                        port: b.port,
                        admin: b.admin.clone(),
                        listeners: parse_endpoints(&b.listeners),
                        rack: b.rack.clone(),
                    },
                );
                MetaResult::Done
            }
            Cmd::AlterScramCredentials(a) => {
                use crate::security::scram::{Credential, Mechanism};
                for d in &a.deletions {
                    let Some(m) = Mechanism::from_id(d.mechanism as i8) else { continue };
                    if let Some(creds) = self.scram_credentials.get_mut(&d.user) {
                        creds.remove(&m);
                        if creds.is_empty() {
                            self.scram_credentials.remove(&d.user);
                        }
                    }
                }
                for u in &a.upsertions {
                    let Some(m) = Mechanism::from_id(u.mechanism as i8) else {
                        return reject(
                            code::UNSUPPORTED_SASL_MECHANISM,
                            format!("unknown SCRAM mechanism {}", u.mechanism),
                        );
                    };
                    let cred = Credential {
                        salt: u.salt.clone(),
                        stored_key: u.stored_key.clone(),
                        server_key: u.server_key.clone(),
                        iterations: u.iterations,
                    };
                    self.scram_credentials.entry(u.user.clone()).or_default().insert(m, cred);
                }
                MetaResult::Done
            }
            Cmd::CreateTopic(t) => {
                if !valid_topic_name(&t.name) {
                    return reject(code::INVALID_TOPIC_EXCEPTION, format!("invalid topic name {:?}", t.name));
                }
                if self.topics.contains_key(&t.name) {
                    return reject(code::TOPIC_ALREADY_EXISTS, format!("topic {:?} already exists", t.name));
                }
                let count = if t.assignment.is_empty() {
                    t.partitions
                } else {
                    u32::try_from(t.assignment.len()).unwrap_or(u32::MAX)
                };
                if count == 0 || count > MAX_PARTITIONS_PER_TOPIC {
                    return reject(
                        code::INVALID_PARTITIONS,
                        format!("partitions must be 1..={MAX_PARTITIONS_PER_TOPIC}, got {count}"),
                    );
                }
                if t.replication_factor == 0 || t.replication_factor as usize > self.brokers.len() {
                    return reject(
                        code::INVALID_REPLICATION_FACTOR,
                        format!("replication factor {} with {} brokers", t.replication_factor, self.brokers.len()),
                    );
                }
                let Ok(id) = <[u8; 16]>::try_from(t.topic_id.as_slice()) else {
                    return reject(code::INVALID_REQUEST, "topic id must be 16 bytes");
                };
                let partitions = if t.assignment.is_empty() {
                    let seed = self.topics.len();
                    (0..t.partitions as usize)
                        .map(|p| self.new_partition(seed + p, t.replication_factor as usize, t.placement))
                        .collect()
                } else {
                    let lists: Vec<Vec<u64>> = t.assignment.iter().map(|r| r.brokers.clone()).collect();
                    if let Err((code, message)) = super::assignment::check_lists(&self.brokers, &lists, None) {
                        return reject(code, message);
                    }
                    lists.into_iter().map(|replicas| self.partition_on(replicas)).collect()
                };
                self.topics.insert(t.name.clone(), TopicInfo { id, partitions, configs: t.configs.clone() });
                MetaResult::Done
            }
            Cmd::DeleteTopic(t) => match self.topics.remove(&t.name) {
                Some(info) => {
                    for p in &info.partitions {
                        self.leaders.remove(&p.group);
                        self.elections.remove(&p.group);
                        self.reassignments.remove(&p.group);
                    }
                    self.drop_topic_offsets(&t.name);
                    MetaResult::Done
                }
                None => reject(code::UNKNOWN_TOPIC_OR_PARTITION, format!("no topic {:?}", t.name)),
            },
            Cmd::CreatePartitions(c) => {
                let Some(topic) = self.topics.get(&c.name) else {
                    return reject(code::UNKNOWN_TOPIC_OR_PARTITION, format!("no topic {:?}", c.name));
                };
                let have = topic.partitions.len();
                if (c.total as usize) <= have {
                    return reject(
                        code::INVALID_PARTITIONS,
                        format!("topic has {have} partitions; {} is not more", c.total),
                    );
                }
                if c.total > MAX_PARTITIONS_PER_TOPIC {
                    return reject(
                        code::INVALID_PARTITIONS,
                        format!("{} partitions exceed the limit of {MAX_PARTITIONS_PER_TOPIC}", c.total),
                    );
                }
                let rf = topic.partitions.first().map(|p| p.replicas.len()).unwrap_or(1);
                let new: Vec<_> = if c.assignment.is_empty() {
                    (have..c.total as usize).map(|p| self.new_partition(p, rf, c.placement)).collect()
                } else {
                    let lists: Vec<Vec<u64>> = c.assignment.iter().map(|r| r.brokers.clone()).collect();
                    if lists.len() != c.total as usize - have {
                        return reject(
                            code::INVALID_REPLICA_ASSIGNMENT,
                            format!("{} assignments for {} new partitions", lists.len(), c.total as usize - have),
                        );
                    }
                    if let Err((code, message)) = super::assignment::check_lists(&self.brokers, &lists, Some(rf)) {
                        return reject(code, message);
                    }
                    lists.into_iter().map(|replicas| self.partition_on(replicas)).collect()
                };
                self.topics.get_mut(&c.name).expect("checked").partitions.extend(new);
                MetaResult::Done
            }
            Cmd::AlterTopicConfigs(a) => {
                let Some(topic) = self.topics.get_mut(&a.name) else {
                    return reject(code::UNKNOWN_TOPIC_OR_PARTITION, format!("no topic {:?}", a.name));
                };
                if a.replace_all {
                    topic.configs = a.set.clone();
                } else {
                    topic.configs.extend(a.set.clone());
                    for k in &a.delete {
                        topic.configs.remove(k);
                    }
                }
                MetaResult::Done
            }
            Cmd::SetLeader(l) => {
                let newer = self.leaders.get(&l.group).is_none_or(|(_, term)| l.term >= *term);
                if newer {
                    self.leaders.insert(l.group, (l.leader, l.term));
                }
                MetaResult::Done
            }
            Cmd::AlterReassignments(a) => crate::meta::reassign::alter(self, a),
            Cmd::ReassignProgress(p) => crate::meta::reassign::progress(self, p),
            Cmd::AddNode(a) => crate::meta::members::add(self, a),
            Cmd::RemoveNode(r) => crate::meta::members::remove(self, r),
            Cmd::ElectPreferred(e) => {
                let known: std::collections::BTreeSet<GroupId> =
                    self.topics.values().flat_map(|t| t.partitions.iter().map(|p| p.group)).collect();
                for g in e.groups.iter().filter(|g| known.contains(g)) {
                    *self.elections.entry(*g).or_default() += 1;
                }
                MetaResult::Done
            }
            Cmd::AllocateProducerIds(a) => {
                let start = self.next_producer_id;
                self.next_producer_id += i64::from(a.count.max(1));
                MetaResult::ProducerIds { start }
            }
            Cmd::CommitOffsets(c) => {
                // Offsets of partitions that do not exist (any more) are not stored; the handler
                // answers UNKNOWN_TOPIC_OR_PARTITION for those it can see before proposing.
                let valid: Vec<_> = c
                    .offsets
                    .iter()
                    .filter(|o| {
                        self.topics
                            .get(&o.topic)
                            .is_some_and(|t| o.partition >= 0 && (o.partition as usize) < t.partitions.len())
                    })
                    .collect();
                if valid.is_empty() {
                    return MetaResult::Done;
                }
                let group = Arc::make_mut(self.offsets.entry(c.group.clone()).or_default());
                for o in valid {
                    group.entry(o.topic.clone()).or_default().insert(
                        o.partition,
                        CommittedOffset {
                            offset: o.offset,
                            leader_epoch: o.leader_epoch,
                            metadata: o.metadata.clone(),
                            commit_timestamp: c.commit_timestamp,
                        },
                    );
                }
                MetaResult::Done
            }
            Cmd::DeleteGroups(d) => {
                for g in &d.groups {
                    self.offsets.remove(g);
                    self.consumer_groups.remove(g);
                }
                MetaResult::Done
            }
            Cmd::StoreGroup(g) => {
                self.consumer_groups.insert(g.group.clone(), Arc::new(g.clone()));
                MetaResult::Done
            }
            Cmd::DeleteOffsets(d) => {
                self.delete_offsets(d);
                MetaResult::Done
            }
            Cmd::CreateAcls(c) => {
                self.acls = crate::security::acl::with_created(&self.acls, &c.acls);
                MetaResult::Done
            }
            Cmd::DeleteAcls(d) => {
                self.acls = crate::security::acl::with_deleted(&self.acls, &d.filters);
                MetaResult::Done
            }
            Cmd::Txn(t) => {
                let applied = crate::txn::core::apply(&mut self.transactions, &mut self.next_producer_id, t);
                for p in applied.commit_offsets {
                    let commit = CommitOffsets { group: p.group, offsets: p.offsets, commit_timestamp: t.now_ms };
                    self.apply(&MetaCommand::new(Cmd::CommitOffsets(commit)));
                }
                MetaResult::Txn(applied.reply)
            }
            Cmd::AlterClientQuotas(q) => {
                self.client_quotas = crate::security::quota::with_changes(&self.client_quotas, &q.changes);
                MetaResult::Done
            }
            Cmd::AlterBrokerConfigs(c) => {
                crate::meta::broker_config::apply(&mut self.broker_configs, c);
                MetaResult::Done
            }
        }
    }

    /// Deletes the listed offsets of a group (those still committed at the given time, if one is
    /// given); a group left with none loses its offsets entry.
    fn delete_offsets(&mut self, d: &crate::meta::command::DeleteOffsets) {
        let Some(offsets) = self.offsets.get_mut(&d.group) else { return };
        let matches = |o: &crate::meta::command::OffsetRef, g: &GroupOffsets| {
            g.get(&o.topic)
                .and_then(|t| t.get(&o.partition))
                .is_some_and(|c| o.if_committed_at.is_none_or(|at| at == c.commit_timestamp))
        };
        if !d.offsets.iter().any(|o| matches(o, offsets)) {
            return;
        }
        let group = Arc::make_mut(offsets);
        for o in &d.offsets {
            if matches(o, group) {
                if let Some(t) = group.get_mut(&o.topic) {
                    t.remove(&o.partition);
                    if t.is_empty() {
                        group.remove(&o.topic);
                    }
                }
            }
        }
        if group.is_empty() {
            self.offsets.remove(&d.group);
            if self.consumer_groups.get(&d.group).is_some_and(|g| g.members.is_empty()) {
                self.consumer_groups.remove(&d.group);
            }
        }
    }

    /// Forgets every group's offsets of a deleted topic (and groups left without offsets).
    fn drop_topic_offsets(&mut self, topic: &str) {
        for offsets in self.offsets.values_mut() {
            if offsets.contains_key(topic) {
                Arc::make_mut(offsets).remove(topic);
            }
        }
        self.offsets.retain(|_, o| !o.is_empty());
    }

    /// A group's committed offset of one partition.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.offsets.get(group)?.get(topic)?.get(&partition)
    }

    /// Places a new partition: the first replica (the preferred leader) is the next broker in
    /// id order for each partition, so that first leaders spread evenly. The followers follow it
    /// in that order, after Kafka's replica shift (`PLACEMENT_SHIFTED`: the shift grows by one
    /// each time the partitions have gone round the brokers, so a broker's partitions have
    /// their followers on every other broker and its leaders spread over all of them when it
    /// dies), or right after it (`PLACEMENT_CONSECUTIVE`, entries written before the shift).
    /// With racks the order is Kafka's rack-alternated list (one broker of each rack in turn),
    /// and each further replica is the next broker of a rack the partition does not use yet (as
    /// Kafka's rack-aware assignment), else the next broker.
    fn new_partition(&mut self, seed: usize, rf: usize, placement: u32) -> PartitionInfo {
        let ids = rack_alternated(&self.brokers);
        let n = ids.len();
        let rack = |b: u64| self.brokers.get(&b).and_then(|i| i.rack.as_deref());
        let mut replicas = vec![ids[seed % n]];
        let order: Vec<u64> = if placement >= PLACEMENT_SHIFTED && n > 1 {
            let shift = (seed / n) % (n - 1);
            (0..n - 1).map(|j| ids[(seed + 1 + (shift + j) % (n - 1)) % n]).collect()
        } else {
            (1..n).map(|k| ids[(seed + k) % n]).collect()
        };
        while replicas.len() < rf.min(n) {
            let next = order.iter().copied().filter(|b| !replicas.contains(b));
            let used: Vec<Option<&str>> = replicas.iter().map(|b| rack(*b)).collect();
            let pick = next.clone().find(|b| !used.contains(&rack(*b))).or_else(|| next.clone().next());
            replicas.extend(pick);
        }
        self.partition_on(replicas)
    }

    /// A new partition group on `replicas` (the first is the preferred leader).
    fn partition_on(&mut self, replicas: Vec<u64>) -> PartitionInfo {
        let group = self.next_group_id;
        self.next_group_id += 1;
        PartitionInfo { group, replicas }
    }

    /// Effective config value of a topic: its own setting or the default.
    pub fn topic_config<'a>(&'a self, topic: &'a TopicInfo, key: &str) -> Option<&'a str> {
        topic.configs.get(key).map(String::as_str).or_else(|| super::topic_config::default_value(key))
    }
}

/// Placement of entries written before the replica shift: followers right after the leader.
pub const PLACEMENT_CONSECUTIVE: u32 = 0;
/// Kafka's replica shift (`assignReplicasToBrokersRackUnaware`), what new proposals use.
pub const PLACEMENT_SHIFTED: u32 = 1;

/// Kafka's `getRackAlternatedBrokerList`: the brokers of each rack in id order, racks in name
/// order, taken one of each rack in turn (brokers without a rack form one more group). Without
/// any rack: the ids in order, the placement of entries written before racks existed.
pub fn rack_alternated(brokers: &BTreeMap<u64, BrokerInfo>) -> Vec<u64> {
    if brokers.values().all(|b| b.rack.is_none()) {
        return brokers.keys().copied().collect();
    }
    let mut by_rack: BTreeMap<Option<&str>, std::collections::VecDeque<u64>> = BTreeMap::new();
    for (id, b) in brokers {
        by_rack.entry(b.rack.as_deref()).or_default().push_back(*id);
    }
    let mut out = Vec::with_capacity(brokers.len());
    while out.len() < brokers.len() {
        for ids in by_rack.values_mut() {
            out.extend(ids.pop_front());
        }
    }
    out
}

/// A registration's `name → host:port` listeners as `name → (host, port)` (bad entries skipped).
pub(crate) fn parse_endpoints(listeners: &BTreeMap<String, String>) -> BTreeMap<String, (String, i32)> {
    listeners
        .iter()
        .filter_map(|(name, addr)| {
            let (host, port) = addr.rsplit_once(':')?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            Some((name.clone(), (host.to_string(), port.parse().ok()?)))
        })
        .collect()
}

fn reject(code: i16, message: impl Into<String>) -> MetaResult {
    MetaResult::Rejected { code, message: message.into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::command::*;

    fn with_brokers(n: u64) -> MetaState {
        let mut s = MetaState::new();
        for id in 1..=n {
            let cmd = MetaCommand::new(Cmd::RegisterBroker(RegisterBroker {
                node_id: id,
                host: "127.0.0.1".into(),
                port: 9091 + id as i32,
                cluster_id: format!("c{id}"),
                admin: None,
                listeners: Default::default(),
                rack: None,
            }));
            assert_eq!(s.apply(&cmd), MetaResult::Done);
        }
        s
    }

    fn create(name: &str, partitions: u32, rf: u32) -> MetaCommand {
        MetaCommand::new(Cmd::CreateTopic(CreateTopic {
            name: name.into(),
            topic_id: vec![7; 16],
            partitions,
            replication_factor: rf,
            configs: Default::default(),
            assignment: Vec::new(),
            placement: 0,
        }))
    }

    #[test]
    fn first_registration_fixes_cluster_id() {
        assert_eq!(with_brokers(3).cluster_id, "c1");
    }

    #[test]
    fn replicas_and_leaders_spread_evenly() {
        let mut s = with_brokers(3);
        assert_eq!(s.apply(&create("t", 9, 3)), MetaResult::Done);
        let t = &s.topics["t"];
        let mut first = [0; 4];
        for p in &t.partitions {
            assert_eq!(p.replicas.len(), 3);
            first[p.replicas[0] as usize] += 1;
        }
        assert_eq!(&first[1..], &[3, 3, 3]);
        let groups: std::collections::BTreeSet<_> = t.partitions.iter().map(|p| p.group).collect();
        assert_eq!(groups.len(), 9, "every partition has its own group");
        assert!(!groups.contains(&0), "group 0 is __meta");
    }

    #[test]
    fn create_rejections() {
        let mut s = with_brokers(1);
        assert_eq!(s.apply(&create("t", 1, 1)), MetaResult::Done);
        assert!(matches!(s.apply(&create("t", 1, 1)), MetaResult::Rejected { code: code::TOPIC_ALREADY_EXISTS, .. }));
        assert!(matches!(
            s.apply(&create("u", 1, 2)),
            MetaResult::Rejected { code: code::INVALID_REPLICATION_FACTOR, .. }
        ));
        assert!(matches!(
            s.apply(&create("bad name", 1, 1)),
            MetaResult::Rejected { code: code::INVALID_TOPIC_EXCEPTION, .. }
        ));
        assert!(matches!(s.apply(&create("z", 0, 1)), MetaResult::Rejected { code: code::INVALID_PARTITIONS, .. }));
        let huge = create("z", u32::MAX, 1);
        assert!(matches!(s.apply(&huge), MetaResult::Rejected { code: code::INVALID_PARTITIONS, .. }));
        let grow = MetaCommand::new(Cmd::CreatePartitions(CreatePartitions {
            name: "t".into(),
            total: u32::MAX,
            assignment: Vec::new(),
            placement: 0,
        }));
        assert!(matches!(s.apply(&grow), MetaResult::Rejected { code: code::INVALID_PARTITIONS, .. }));
        assert_eq!(s.topics["t"].partitions.len(), 1);
    }

    #[test]
    fn create_partitions_delete_and_configs() {
        let mut s = with_brokers(1);
        s.apply(&create("t", 2, 1));
        let grow = MetaCommand::new(Cmd::CreatePartitions(CreatePartitions {
            name: "t".into(),
            total: 5,
            assignment: Vec::new(),
            placement: 0,
        }));
        assert_eq!(s.apply(&grow), MetaResult::Done);
        assert_eq!(s.topics["t"].partitions.len(), 5);
        assert!(matches!(s.apply(&grow), MetaResult::Rejected { code: code::INVALID_PARTITIONS, .. }));
        let alter = MetaCommand::new(Cmd::AlterTopicConfigs(AlterTopicConfigs {
            name: "t".into(),
            set: [("retention.ms".to_string(), "10".to_string())].into(),
            delete: vec![],
            replace_all: false,
        }));
        s.apply(&alter);
        let t = s.topics["t"].clone();
        assert_eq!(s.topic_config(&t, "retention.ms"), Some("10"));
        assert_eq!(s.topic_config(&t, "segment.bytes"), Some("1073741824"));
        let del = MetaCommand::new(Cmd::DeleteTopic(DeleteTopic { name: "t".into() }));
        assert_eq!(s.apply(&del), MetaResult::Done);
        assert!(s.topics.is_empty());
    }

    #[test]
    fn producer_ids_are_unique() {
        let mut s = with_brokers(1);
        let a = MetaCommand::new(Cmd::AllocateProducerIds(AllocateProducerIds { count: 1 }));
        assert_eq!(s.apply(&a), MetaResult::ProducerIds { start: 0 });
        assert_eq!(s.apply(&a), MetaResult::ProducerIds { start: 1 });
    }

    fn commit(group: &str, offsets: &[(&str, i32, i64)], ts: i64) -> MetaCommand {
        MetaCommand::new(Cmd::CommitOffsets(CommitOffsets {
            group: group.into(),
            offsets: offsets
                .iter()
                .map(|(t, p, o)| OffsetEntry {
                    topic: t.to_string(),
                    partition: *p,
                    offset: *o,
                    leader_epoch: 3,
                    metadata: format!("m{o}"),
                })
                .collect(),
            commit_timestamp: ts,
        }))
    }

    #[test]
    fn offsets_are_deleted_one_by_one_and_expiry_spares_newer_commits() {
        let mut s = with_brokers(1);
        s.apply(&create("t", 3, 1));
        s.apply(&create("u", 1, 1));
        s.apply(&commit("g", &[("t", 0, 1), ("t", 1, 2), ("u", 0, 3)], 100));
        s.apply(&commit("g", &[("t", 2, 4)], 200));
        let del = |offsets: Vec<OffsetRef>| {
            MetaCommand::new(Cmd::DeleteOffsets(DeleteOffsets { group: "g".into(), offsets }))
        };
        let at = |t: &str, p, when| OffsetRef { topic: t.into(), partition: p, if_committed_at: when };
        // Expiry of offsets committed at 100: t-2 was committed again (200) and stays.
        assert_eq!(s.apply(&del(vec![at("t", 0, Some(100)), at("t", 2, Some(100))])), MetaResult::Done);
        assert!(s.committed("g", "t", 0).is_none());
        assert_eq!(s.committed("g", "t", 2).unwrap().offset, 4);
        // OffsetDelete: whatever is there; unknown partitions and groups are no-ops.
        s.apply(&del(vec![at("u", 0, None), at("nope", 0, None)]));
        assert!(s.committed("g", "u", 0).is_none());
        assert!(!s.offsets["g"].contains_key("u"), "a topic without offsets disappears");
        s.apply(&MetaCommand::new(Cmd::DeleteOffsets(DeleteOffsets {
            group: "x".into(),
            offsets: vec![at("t", 0, None)],
        })));
        s.apply(&del(vec![at("t", 1, None), at("t", 2, None)]));
        assert!(!s.offsets.contains_key("g"), "a group without offsets disappears");
    }

    #[test]
    fn committed_offsets_are_stored_overwritten_and_deleted() {
        let mut s = with_brokers(1);
        s.apply(&create("t", 2, 1));
        s.apply(&create("u", 1, 1));
        assert_eq!(s.apply(&commit("g", &[("t", 0, 5), ("t", 1, 7), ("u", 0, 1)], 100)), MetaResult::Done);
        let c = s.committed("g", "t", 1).unwrap();
        assert_eq!((c.offset, c.leader_epoch, c.metadata.as_str(), c.commit_timestamp), (7, 3, "m7", 100));
        s.apply(&commit("g", &[("t", 1, 9)], 200));
        assert_eq!(s.committed("g", "t", 1).unwrap().offset, 9);
        assert_eq!(s.committed("g", "t", 0).unwrap().offset, 5, "other partitions untouched");
        // Unknown topics and partitions are not stored.
        s.apply(&commit("g", &[("nope", 0, 1), ("t", 2, 1), ("t", -1, 1)], 300));
        assert!(s.committed("g", "nope", 0).is_none());
        assert!(s.committed("g", "t", 2).is_none());
        s.apply(&commit("h", &[("nope", 0, 1)], 300));
        assert!(!s.offsets.contains_key("h"), "no empty group entry");
        // Deleting a topic drops its offsets; a group left with none disappears.
        s.apply(&commit("only-u", &[("u", 0, 4)], 300));
        s.apply(&MetaCommand::new(Cmd::DeleteTopic(DeleteTopic { name: "u".into() })));
        assert!(s.committed("g", "u", 0).is_none());
        assert!(s.committed("g", "t", 0).is_some());
        assert!(!s.offsets.contains_key("only-u"));
        let store = StoreGroup { group: "g".into(), generation: 4, ..Default::default() };
        assert_eq!(s.apply(&MetaCommand::new(Cmd::StoreGroup(store.clone()))), MetaResult::Done);
        assert_eq!(*s.consumer_groups["g"], store);
        let del = MetaCommand::new(Cmd::DeleteGroups(DeleteGroups { groups: vec!["g".into(), "x".into()] }));
        assert_eq!(s.apply(&del), MetaResult::Done);
        assert!(s.offsets.is_empty());
        assert!(s.consumer_groups.is_empty(), "deleting a group forgets its membership too");
    }

    #[test]
    fn an_image_shares_untouched_groups() {
        let mut s = with_brokers(1);
        s.apply(&create("t", 1, 1));
        s.apply(&commit("a", &[("t", 0, 1)], 1));
        s.apply(&commit("b", &[("t", 0, 1)], 1));
        let image = s.clone();
        s.apply(&commit("a", &[("t", 0, 2)], 2));
        assert!(Arc::ptr_eq(&image.offsets["b"], &s.offsets["b"]));
        assert_eq!(image.committed("a", "t", 0).unwrap().offset, 1, "the published image did not change");
        assert_eq!(s.committed("a", "t", 0).unwrap().offset, 2);
    }

    #[test]
    fn retried_proposal_applies_once_and_leaders_only_move_forward() {
        use crate::meta::command::ProposalId;
        let mut s = with_brokers(1);
        let id = Some(ProposalId { node: 1, seq: 9 });
        let alloc = MetaCommand::new(Cmd::AllocateProducerIds(AllocateProducerIds { count: 1 }));
        assert_eq!(s.apply_once(id, &alloc), Some(MetaResult::ProducerIds { start: 0 }));
        assert_eq!(s.apply_once(id, &alloc), None);
        assert_eq!(s.next_producer_id, 1);
        let lead = |leader, term| MetaCommand::new(Cmd::SetLeader(SetLeader { group: 5, leader, term }));
        s.apply(&lead(2, 3));
        s.apply(&lead(1, 2));
        assert_eq!(s.leaders[&5], (2, 3), "an older term does not overwrite a newer leader");
        assert_eq!(ProposalId::decode(&ProposalId { node: 3, seq: 4 }.encode()), Some(ProposalId { node: 3, seq: 4 }));
    }

    #[test]
    fn same_log_same_state() {
        let log = [create("a", 3, 1), create("b", 2, 1), commit("g", &[("a", 1, 10)], 5)];
        let (mut x, mut y) = (with_brokers(1), with_brokers(1));
        for c in &log {
            x.apply(c);
            y.apply(c);
        }
        assert_eq!(x, y);
    }

    #[test]
    fn topic_names_and_configs() {
        assert!(valid_topic_name("a.b_c-1"));
        for bad in ["", ".", "..", "bad name!", "bad/name", &"x".repeat(250)] {
            assert!(!valid_topic_name(bad), "{bad:?}");
        }
        assert!(validate_topic_config("retention.ms", "1000").is_ok());
        assert!(validate_topic_config("cleanup.policy", "compact").is_ok());
        assert!(validate_topic_config("cleanup.policy", "compacted").is_err());
        assert!(validate_topic_config("cleanup.policy", "compact,delete").is_ok());
        assert!(validate_topic_config("cleanup.policy", "shred").is_err());
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate_topic_config("retention.ms", "soon").is_err());
        assert!(validate_topic_config("flux.capacitor", "1").is_err());
    }
}
