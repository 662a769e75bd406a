//! Snapshots of the `__meta` state machine: the whole [`MetaState`] as one versioned prost
//! message ([`MetaSnapshot`]), the snapshot file in the group's directory, and the policy that
//! says when to take one.
//!
//! The same encoded bytes are the `data` of the raft-rs `Snapshot` a leader sends to a follower
//! that is behind its log start, and the body of the file `meta-snapshot-<index>` (a
//! `state_file`: `magic "CMS1" | index u64 | term u64 | data | crc32c`), written atomically
//! (tmp + fsync + rename + dir fsync) off the actor (see `meta/actor.rs`). Once a snapshot is
//! durable the `__meta` log is compacted below it (whole sealed segments) and older snapshot
//! files are deleted; on start the newest valid file is loaded and only the log after it is
//! replayed.
//!
//! Committed offsets dominate the size: they are stored per group and topic in columns (packed
//! partitions, offsets, zigzag leader epochs, delta-coded commit timestamps, metadata only when
//! not empty), about 8 to 12 bytes per partition offset; one million offsets encode in about
//! 10 MB, far below the 64 MiB peer frame limit (see `docs/architecture.md`).

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;

use crate::log::{state_file, LogError};
use crate::meta::command::ScramUpsertion;
use crate::meta::command::StoreGroup;
use crate::meta::state::{
    parse_endpoints, BrokerInfo, CommittedOffset, GroupOffsets, MetaState, PartitionInfo, TopicInfo,
};
use crate::security::acl::AclBinding;
use crate::security::quota::QuotaChange;
use crate::security::scram::{Credential, Mechanism};

/// The snapshot format this code writes; it reads this version and older ones. New fields are
/// added with new tags (prost skips unknown ones); the version changes only if a field's meaning
/// does.
pub const SNAPSHOT_VERSION: u32 = 1;

const MAGIC: &[u8; 4] = b"CMS1";
const PREFIX: &str = "meta-snapshot-";

/// The whole `__meta` state. Tags 16 and up hold the security state (SCRAM credentials, ACLs,
/// client quotas); tag 19 the transactions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetaSnapshot {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    #[prost(string, tag = "2")]
    pub cluster_id: String,
    #[prost(message, repeated, tag = "3")]
    pub brokers: Vec<SnapBroker>,
    #[prost(message, repeated, tag = "4")]
    pub topics: Vec<SnapTopic>,
    #[prost(uint64, tag = "5")]
    pub next_group_id: u64,
    #[prost(int64, tag = "6")]
    pub next_producer_id: i64,
    #[prost(message, repeated, tag = "7")]
    pub leaders: Vec<SnapLeader>,
    /// The proposal ids each node had applied (apply-once survives a snapshot).
    #[prost(message, repeated, tag = "8")]
    pub seen: Vec<SnapSeen>,
    #[prost(message, repeated, tag = "9")]
    pub offsets: Vec<SnapGroupOffsets>,
    #[prost(message, repeated, tag = "10")]
    pub consumer_groups: Vec<StoreGroup>,
    /// Preferred leader election counts (`MetaState::elections`), as (group, count).
    #[prost(message, repeated, tag = "11")]
    pub elections: Vec<SnapSeen>,
    /// SCRAM credentials (salt, stored and server keys, iterations: never a password).
    #[prost(message, repeated, tag = "16")]
    pub scram_credentials: Vec<ScramUpsertion>,
    #[prost(message, repeated, tag = "17")]
    pub acls: Vec<AclBinding>,
    /// Client quotas, one entity each, as the AlterClientQuotas change that sets them.
    #[prost(message, repeated, tag = "18")]
    pub client_quotas: Vec<QuotaChange>,
    /// Transaction coordinator state, one per transactional id (`txn::model::TxnMeta`).
    #[prost(message, repeated, tag = "19")]
    pub transactions: Vec<crate::txn::model::TxnMeta>,
    /// Partition reassignments in progress (`meta::reassign`); absent in older snapshots.
    #[prost(message, repeated, tag = "20")]
    pub reassignments: Vec<crate::meta::reassign::Reassignment>,
    /// The cluster's members and removed ids (`meta::members`); absent in older snapshots.
    #[prost(message, repeated, tag = "21")]
    pub members: Vec<crate::meta::members::Member>,
    #[prost(uint64, repeated, tag = "22")]
    pub removed: Vec<u64>,
    /// Dynamic broker configs (`meta::broker_config`); absent in older snapshots.
    #[prost(message, repeated, tag = "23")]
    pub broker_configs: Vec<crate::meta::broker_config::SnapBrokerConfigs>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapBroker {
    #[prost(uint64, tag = "1")]
    pub node_id: u64,
    #[prost(string, tag = "2")]
    pub host: String,
    #[prost(int32, tag = "3")]
    pub port: i32,
    #[prost(string, optional, tag = "4")]
    pub admin: Option<String>,
    /// Advertised `host:port` per listener name.
    #[prost(btree_map = "string, string", tag = "5")]
    pub listeners: BTreeMap<String, String>,
    /// Kafka's `broker.rack` (absent in older snapshots).
    #[prost(string, optional, tag = "6")]
    pub rack: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapTopic {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(bytes = "vec", tag = "2")]
    pub id: Vec<u8>,
    #[prost(message, repeated, tag = "3")]
    pub partitions: Vec<SnapPartition>,
    #[prost(btree_map = "string, string", tag = "4")]
    pub configs: BTreeMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapPartition {
    #[prost(uint64, tag = "1")]
    pub group: u64,
    #[prost(uint64, repeated, tag = "2")]
    pub replicas: Vec<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapLeader {
    #[prost(uint64, tag = "1")]
    pub group: u64,
    #[prost(uint64, tag = "2")]
    pub leader: u64,
    #[prost(uint64, tag = "3")]
    pub term: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapSeen {
    #[prost(uint64, tag = "1")]
    pub node: u64,
    /// Oldest first, as the state keeps them.
    #[prost(uint64, repeated, tag = "2")]
    pub seqs: Vec<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapGroupOffsets {
    #[prost(string, tag = "1")]
    pub group: String,
    #[prost(message, repeated, tag = "2")]
    pub topics: Vec<SnapTopicOffsets>,
}

/// One topic's offsets of a group, in columns (row `i` of every column is one partition).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapTopicOffsets {
    #[prost(string, tag = "1")]
    pub topic: String,
    #[prost(int32, repeated, tag = "2")]
    pub partitions: Vec<i32>,
    #[prost(int64, repeated, tag = "3")]
    pub offsets: Vec<i64>,
    #[prost(sint32, repeated, tag = "4")]
    pub leader_epochs: Vec<i32>,
    /// Each row's commit timestamp minus the previous row's (the first minus 0).
    #[prost(sint64, repeated, tag = "5")]
    pub commit_timestamp_deltas: Vec<i64>,
    /// Row → metadata, for rows whose metadata is not empty.
    #[prost(btree_map = "uint32, string", tag = "6")]
    pub metadata: BTreeMap<u32, String>,
}

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("undecodable __meta snapshot: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("__meta snapshot version {0} is newer than this binary reads ({SNAPSHOT_VERSION})")]
    Version(u32),
    #[error("__meta snapshot is inconsistent: {0}")]
    Invalid(String),
}

/// Encodes the whole state.
pub fn encode(state: &MetaState) -> Vec<u8> {
    let snap = MetaSnapshot {
        version: SNAPSHOT_VERSION,
        cluster_id: state.cluster_id.clone(),
        brokers: state
            .brokers
            .iter()
            .map(|(id, b)| SnapBroker {
                node_id: *id,
                host: b.host.clone(),
                port: b.port,
                admin: b.admin.clone(),
                listeners: b.listeners.iter().map(|(n, (h, p))| (n.clone(), format!("{h}:{p}"))).collect(),
                rack: b.rack.clone(),
            })
            .collect(),
        topics: state
            .topics
            .iter()
            .map(|(name, t)| SnapTopic {
                name: name.clone(),
                id: t.id.to_vec(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| SnapPartition { group: p.group, replicas: p.replicas.clone() })
                    .collect(),
                configs: t.configs.clone(),
            })
            .collect(),
        next_group_id: state.next_group_id,
        next_producer_id: state.next_producer_id,
        leaders: state
            .leaders
            .iter()
            .map(|(g, (leader, term))| SnapLeader { group: *g, leader: *leader, term: *term })
            .collect(),
        seen: state.seen.iter().map(|(n, s)| SnapSeen { node: *n, seqs: s.iter().copied().collect() }).collect(),
        elections: state.elections.iter().map(|(g, n)| SnapSeen { node: *g, seqs: vec![*n] }).collect(),
        offsets: state
            .offsets
            .iter()
            .map(|(g, o)| SnapGroupOffsets { group: g.clone(), topics: o.iter().map(encode_topic).collect() })
            .collect(),
        consumer_groups: state.consumer_groups.values().map(|g| (**g).clone()).collect(),
        scram_credentials: state
            .scram_credentials
            .iter()
            .flat_map(|(user, creds)| {
                creds.iter().map(move |(m, c)| ScramUpsertion {
                    user: user.clone(),
                    mechanism: i32::from(m.id()),
                    iterations: c.iterations,
                    salt: c.salt.clone(),
                    stored_key: c.stored_key.clone(),
                    server_key: c.server_key.clone(),
                })
            })
            .collect(),
        acls: state.acls.iter().cloned().collect(),
        client_quotas: state
            .client_quotas
            .iter()
            .map(|(entity, values)| QuotaChange {
                entity: entity.clone(),
                set: values.iter().map(|(k, v)| (k.clone(), v.0)).collect(),
                remove: Vec::new(),
            })
            .collect(),
        transactions: state.transactions.values().map(|t| (**t).clone()).collect(),
        reassignments: state.reassignments.values().cloned().collect(),
        members: state.members.nodes.values().cloned().collect(),
        removed: state.members.removed.iter().copied().collect(),
        broker_configs: crate::meta::broker_config::to_snapshot(&state.broker_configs),
    };
    snap.encode_to_vec()
}

fn encode_topic((topic, parts): (&String, &BTreeMap<i32, CommittedOffset>)) -> SnapTopicOffsets {
    let mut t = SnapTopicOffsets { topic: topic.clone(), ..Default::default() };
    let mut prev_ts = 0i64;
    for (row, (p, o)) in parts.iter().enumerate() {
        t.partitions.push(*p);
        t.offsets.push(o.offset);
        t.leader_epochs.push(o.leader_epoch);
        t.commit_timestamp_deltas.push(o.commit_timestamp.wrapping_sub(prev_ts));
        prev_ts = o.commit_timestamp;
        if !o.metadata.is_empty() {
            t.metadata.insert(row as u32, o.metadata.clone());
        }
    }
    t
}

/// Decodes a snapshot into a state.
pub fn decode(data: &[u8]) -> Result<MetaState, SnapshotError> {
    let snap = MetaSnapshot::decode(data)?;
    if snap.version > SNAPSHOT_VERSION {
        return Err(SnapshotError::Version(snap.version));
    }
    let mut state = MetaState::new();
    state.cluster_id = snap.cluster_id;
    for b in snap.brokers {
        let listeners = parse_endpoints(&b.listeners);
        state
            .brokers
            .insert(b.node_id, BrokerInfo { host: b.host, port: b.port, admin: b.admin, listeners, rack: b.rack });
    }
    for t in snap.topics {
        let id = <[u8; 16]>::try_from(t.id.as_slice())
            .map_err(|_| SnapshotError::Invalid(format!("topic {:?} has a {}-byte id", t.name, t.id.len())))?;
        let partitions =
            t.partitions.into_iter().map(|p| PartitionInfo { group: p.group, replicas: p.replicas }).collect();
        state.topics.insert(t.name, TopicInfo { id, partitions, configs: t.configs });
    }
    state.next_group_id = snap.next_group_id;
    state.next_producer_id = snap.next_producer_id;
    state.leaders = snap.leaders.into_iter().map(|l| (l.group, (l.leader, l.term))).collect();
    state.reassignments = snap.reassignments.into_iter().map(|r| (r.group, r)).collect();
    state.members.nodes = snap.members.into_iter().map(|m| (m.node_id, m)).collect();
    state.members.removed = snap.removed.into_iter().collect();
    state.broker_configs = crate::meta::broker_config::from_snapshot(&snap.broker_configs);
    state.elections =
        snap.elections.into_iter().map(|e| (e.node, e.seqs.first().copied().unwrap_or_default())).collect();
    state.seen = snap.seen.into_iter().map(|s| (s.node, s.seqs.into_iter().collect::<VecDeque<_>>())).collect();
    for g in snap.offsets {
        let mut offsets = GroupOffsets::new();
        for t in g.topics {
            let rows = t.partitions.len();
            if t.offsets.len() != rows || t.leader_epochs.len() != rows || t.commit_timestamp_deltas.len() != rows {
                return Err(SnapshotError::Invalid(format!("group {:?} topic {:?}: columns differ", g.group, t.topic)));
            }
            let mut parts = BTreeMap::new();
            let mut ts = 0i64;
            let mut metadata = t.metadata;
            for row in 0..rows {
                ts = ts.wrapping_add(t.commit_timestamp_deltas[row]);
                let o = CommittedOffset {
                    offset: t.offsets[row],
                    leader_epoch: t.leader_epochs[row],
                    metadata: metadata.remove(&(row as u32)).unwrap_or_default(),
                    commit_timestamp: ts,
                };
                parts.insert(t.partitions[row], o);
            }
            offsets.insert(t.topic, parts);
        }
        state.offsets.insert(g.group, Arc::new(offsets));
    }
    for g in snap.consumer_groups {
        state.consumer_groups.insert(g.group.clone(), Arc::new(g));
    }
    for u in snap.scram_credentials {
        let m = Mechanism::from_id(i8::try_from(u.mechanism).unwrap_or(-1))
            .ok_or_else(|| SnapshotError::Invalid(format!("user {:?} has SCRAM mechanism {}", u.user, u.mechanism)))?;
        let c =
            Credential { salt: u.salt, stored_key: u.stored_key, server_key: u.server_key, iterations: u.iterations };
        state.scram_credentials.entry(u.user).or_default().insert(m, c);
    }
    state.acls = crate::security::acl::with_created(&state.acls, &snap.acls);
    state.client_quotas = crate::security::quota::with_changes(&state.client_quotas, &snap.client_quotas);
    for t in snap.transactions {
        state.transactions.insert(t.transactional_id.clone(), Arc::new(t));
    }
    Ok(state)
}

/// A snapshot as stored: where it ends in the log and its encoded state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub index: u64,
    pub term: u64,
    pub data: Bytes,
}

fn file_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{PREFIX}{index:020}"))
}

/// Writes `snap` to `dir` atomically and durably, then deletes every older snapshot file.
/// Returns the file's size. Runs off the actor (it writes and fsyncs megabytes).
pub fn write(dir: &Path, snap: &StoredSnapshot) -> Result<u64, LogError> {
    let mut body = Vec::with_capacity(16 + snap.data.len());
    body.extend_from_slice(&snap.index.to_be_bytes());
    body.extend_from_slice(&snap.term.to_be_bytes());
    body.extend_from_slice(&snap.data);
    let path = file_path(dir, snap.index);
    state_file::store(&path, MAGIC, &body)?;
    for (index, old) in list(dir)? {
        if index < snap.index {
            let _ = std::fs::remove_file(old);
        }
    }
    Ok(body.len() as u64 + 8)
}

/// Snapshot files in `dir`, newest first.
fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogError> {
    let mut found = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(LogError::io(dir, e)),
    };
    for de in rd {
        let de = de.map_err(|e| LogError::io(dir, e))?;
        let name = de.file_name().to_string_lossy().into_owned();
        if let Some(index) = name.strip_prefix(PREFIX).and_then(|n| n.parse::<u64>().ok()) {
            found.push((index, de.path()));
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    Ok(found)
}

/// The newest snapshot file in `dir` that is intact and decodes; damaged ones are skipped (and
/// reported through `skipped`).
pub fn load(
    dir: &Path,
    mut skipped: impl FnMut(&Path, String),
) -> Result<Option<(StoredSnapshot, MetaState)>, LogError> {
    for (index, path) in list(dir)? {
        let body = match state_file::read(&path, MAGIC) {
            Ok(Some(b)) => b,
            Ok(None) => continue,
            Err(e) => {
                skipped(&path, e.to_string());
                continue;
            }
        };
        if body.len() < 16 || crate::log::be_u64(&body, 0) != index {
            skipped(&path, "header does not match the file name".into());
            continue;
        }
        let term = crate::log::be_u64(&body, 8);
        let data = Bytes::copy_from_slice(&body[16..]);
        match decode(&data) {
            Ok(state) => return Ok(Some((StoredSnapshot { index, term, data }, state))),
            Err(e) => skipped(&path, e.to_string()),
        }
    }
    Ok(None)
}

/// When to take the next snapshot: after `entries` applied entries or `bytes` of applied entry
/// data since the last one, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPolicy {
    pub entries: u64,
    pub bytes: u64,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        SnapshotPolicy { entries: 10_000, bytes: 16 * 1024 * 1024 }
    }
}

/// Counts what was applied since the last snapshot (the deterministic part of the trigger).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotTrigger {
    pub entries: u64,
    pub bytes: u64,
    /// A snapshot is being written; no second one starts until it is done.
    pub in_flight: bool,
}

impl SnapshotTrigger {
    /// Records one applied entry of `len` bytes.
    pub fn applied(&mut self, len: usize) {
        self.entries += 1;
        self.bytes += len as u64;
    }

    /// True when a snapshot should start now (and marks it started).
    pub fn due(&mut self, policy: &SnapshotPolicy) -> bool {
        if self.in_flight || (self.entries < policy.entries && self.bytes < policy.bytes) {
            return false;
        }
        *self = SnapshotTrigger { in_flight: true, ..Default::default() };
        true
    }

    /// The snapshot being written finished (or failed).
    pub fn done(&mut self) {
        self.in_flight = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::command::*;

    /// A state with something in every field.
    fn full_state() -> MetaState {
        let mut s = MetaState::new();
        for id in 1..=3u64 {
            s.apply(&MetaCommand::new(Cmd::RegisterBroker(RegisterBroker {
                node_id: id,
                host: "127.0.0.1".into(),
                port: 9091 + id as i32,
                cluster_id: "c".into(),
                admin: (id == 2).then(|| "127.0.0.1:9300".into()),
                listeners: [("SASL_SSL".to_string(), format!("127.0.0.1:{}", 9191 + id))].into(),
                rack: (id != 3).then(|| format!("rack-{id}")),
            })));
        }
        s.apply(&MetaCommand::new(Cmd::CreateTopic(CreateTopic {
            name: "t".into(),
            topic_id: vec![3; 16],
            partitions: 4,
            replication_factor: 3,
            configs: [("retention.ms".to_string(), "1000".to_string())].into(),
            assignment: Vec::new(),
            placement: 0,
        })));
        s.apply_once(
            Some(ProposalId { node: 2, seq: 77 }),
            &MetaCommand::new(Cmd::AllocateProducerIds(AllocateProducerIds { count: 5 })),
        );
        s.apply(&MetaCommand::new(Cmd::SetLeader(SetLeader { group: 2, leader: 3, term: 9 })));
        let offsets = (0..4)
            .map(|p| OffsetEntry {
                topic: "t".into(),
                partition: p,
                offset: 100 * i64::from(p),
                leader_epoch: if p == 0 { -1 } else { p },
                metadata: if p == 1 { "meta".into() } else { String::new() },
            })
            .collect();
        s.apply(&MetaCommand::new(Cmd::CommitOffsets(CommitOffsets {
            group: "g".into(),
            offsets,
            commit_timestamp: 1_700_000_000_000,
        })));
        s.apply(&MetaCommand::new(Cmd::StoreGroup(StoreGroup {
            group: "g".into(),
            protocol_type: "consumer".into(),
            generation: 2,
            protocol: "range".into(),
            leader: "m".into(),
            members: vec![StoredMember { member_id: "m".into(), ..Default::default() }],
            state_timestamp: 1_700_000_000_123,
        })));
        // Security: a SCRAM credential, an ACL, a client quota.
        s.apply(&MetaCommand::new(Cmd::AlterScramCredentials(AlterScramCredentials {
            upsertions: vec![ScramUpsertion {
                user: "alice".into(),
                mechanism: 2,
                iterations: 4096,
                salt: b"salt".to_vec(),
                stored_key: vec![1; 64],
                server_key: vec![2; 64],
            }],
            deletions: Vec::new(),
        })));
        use crate::security::acl::{binding, Operation, PatternType, Permission, ResourceType};
        let acl = binding(
            ResourceType::Topic,
            "t",
            PatternType::Prefixed,
            "User:alice",
            "*",
            Operation::Read,
            Permission::Allow,
        );
        s.apply(&MetaCommand::new(Cmd::CreateAcls(CreateAcls { acls: vec![acl] })));
        use crate::security::quota::{EntityPart, USER};
        let user = EntityPart { entity_type: USER.into(), name: Some("alice".into()) };
        s.apply(&MetaCommand::new(Cmd::AlterClientQuotas(AlterClientQuotas {
            changes: vec![QuotaChange {
                entity: vec![user],
                set: [("producer_byte_rate".to_string(), 1024.0)].into(),
                remove: Vec::new(),
            }],
        })));
        s.apply(&MetaCommand::new(Cmd::AlterBrokerConfigs(crate::meta::broker_config::AlterBrokerConfigs {
            entity: "2".into(),
            set: [(crate::meta::broker_config::LEADER_RATE.to_string(), "1000".to_string())].into(),
            delete: Vec::new(),
        })));
        s
    }

    #[test]
    fn a_full_state_round_trips() {
        let s = full_state();
        assert!(!s.cluster_id.is_empty() && !s.seen.is_empty() && !s.leaders.is_empty());
        assert!(s.next_producer_id == 5 && !s.offsets.is_empty() && !s.consumer_groups.is_empty());
        assert!(!s.scram_credentials.is_empty() && !s.acls.is_empty() && !s.client_quotas.is_empty());
        assert!(!s.broker_configs.is_empty());
        assert!(s.brokers.values().all(|b| b.listeners.contains_key("SASL_SSL")));
        let back = decode(&encode(&s)).unwrap();
        assert_eq!(back, s);
        assert_eq!(decode(&encode(&MetaState::new())).unwrap(), MetaState::new());
    }

    #[test]
    fn apply_once_survives_a_snapshot() {
        let s = full_state();
        let mut back = decode(&encode(&s)).unwrap();
        let cmd = MetaCommand::new(Cmd::AllocateProducerIds(AllocateProducerIds { count: 5 }));
        assert_eq!(back.apply_once(Some(ProposalId { node: 2, seq: 77 }), &cmd), None, "a retry is dropped");
        assert_eq!(back.next_producer_id, 5);
        assert!(back.apply_once(Some(ProposalId { node: 2, seq: 78 }), &cmd).is_some());
    }

    #[test]
    fn garbage_newer_versions_and_bad_columns_are_errors() {
        assert!(decode(&[0xff, 0xff, 0xff]).is_err());
        let newer = MetaSnapshot { version: SNAPSHOT_VERSION + 1, ..Default::default() };
        assert!(matches!(decode(&newer.encode_to_vec()), Err(SnapshotError::Version(_))));
        let mut snap = MetaSnapshot::decode(encode(&full_state()).as_slice()).unwrap();
        snap.offsets[0].topics[0].offsets.pop();
        assert!(matches!(decode(&snap.encode_to_vec()), Err(SnapshotError::Invalid(_))));
    }

    #[test]
    fn files_are_replaced_and_a_damaged_newest_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path(), |_, _| {}).unwrap().is_none());
        let s = full_state();
        let data = Bytes::from(encode(&s));
        let a = StoredSnapshot { index: 10, term: 2, data: data.clone() };
        write(dir.path(), &a).unwrap();
        let (got, state) = load(dir.path(), |_, _| panic!("nothing damaged")).unwrap().unwrap();
        assert_eq!((got, state), (a.clone(), s.clone()));
        let b = StoredSnapshot { index: 20, term: 3, data };
        write(dir.path(), &b).unwrap();
        assert_eq!(list(dir.path()).unwrap().len(), 1, "the older file is deleted");
        assert_eq!(load(dir.path(), |_, _| {}).unwrap().unwrap().0, b);
        // A damaged newer file (a torn copy) is skipped in favour of an intact older one.
        write(dir.path(), &StoredSnapshot { index: 5, ..a.clone() }).unwrap();
        let p = file_path(dir.path(), 20);
        let mut raw = std::fs::read(&p).unwrap();
        let n = raw.len();
        raw[n / 2] ^= 0xff;
        std::fs::write(&p, raw).unwrap();
        let mut skipped = 0;
        assert_eq!(load(dir.path(), |_, _| skipped += 1).unwrap().unwrap().0.index, 5);
        assert_eq!(skipped, 1);
    }

    #[test]
    fn trigger_counts_entries_and_bytes_and_one_at_a_time() {
        let policy = SnapshotPolicy { entries: 3, bytes: 100 };
        let mut t = SnapshotTrigger::default();
        t.applied(10);
        t.applied(10);
        assert!(!t.due(&policy));
        t.applied(10);
        assert!(t.due(&policy));
        for _ in 0..5 {
            t.applied(10);
        }
        assert!(!t.due(&policy), "one in flight");
        t.done();
        assert!(t.due(&policy));
        t.done();
        t.applied(100);
        assert!(t.due(&policy), "by bytes");
    }

    /// One million committed offsets (1000 groups × 10 topics × 100 partitions) stay far below
    /// the 64 MiB peer frame limit.
    #[test]
    fn a_million_offsets_encode_far_below_the_frame_limit() {
        let mut s = MetaState::new();
        for g in 0..1000 {
            let mut offsets = GroupOffsets::new();
            for t in 0..10 {
                let parts = (0..100)
                    .map(|p| {
                        let o = CommittedOffset {
                            offset: 1_000_000 + i64::from(p) * 17,
                            leader_epoch: 3,
                            metadata: String::new(),
                            commit_timestamp: 1_700_000_000_000 + i64::from(g * 1000 + p),
                        };
                        (p, o)
                    })
                    .collect();
                offsets.insert(format!("topic-{t}"), parts);
            }
            s.offsets.insert(format!("group-{g}"), Arc::new(offsets));
        }
        let data = encode(&s);
        eprintln!("1M offsets: {} bytes", data.len());
        assert!(data.len() < 16 * 1024 * 1024, "{} bytes", data.len());
        assert_eq!(decode(&data).unwrap(), s);
    }
}
