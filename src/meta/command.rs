//! The entries of the `__meta` Raft log: one [`MetaCommand`] per entry, encoded with prost.
//! Commands carry intent; the state machine decides placement and ids when it applies them,
//! so every replica computes the same result.

use std::collections::BTreeMap;

/// One metadata change.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetaCommand {
    #[prost(oneof = "Cmd", tags = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16, 17, 18, 19, 32, 33, 34, 48, 64")]
    pub cmd: Option<Cmd>,
}

/// The kinds of metadata change.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Cmd {
    #[prost(message, tag = "1")]
    RegisterBroker(RegisterBroker),
    #[prost(message, tag = "2")]
    CreateTopic(CreateTopic),
    #[prost(message, tag = "3")]
    DeleteTopic(DeleteTopic),
    #[prost(message, tag = "4")]
    CreatePartitions(CreatePartitions),
    #[prost(message, tag = "5")]
    AlterTopicConfigs(AlterTopicConfigs),
    #[prost(message, tag = "6")]
    AllocateProducerIds(AllocateProducerIds),
    #[prost(message, tag = "7")]
    SetLeader(SetLeader),
    #[prost(message, tag = "8")]
    ElectPreferred(ElectPreferred),
    /// Start or cancel partition reassignments (AlterPartitionReassignments).
    #[prost(message, tag = "9")]
    AlterReassignments(crate::meta::reassign::AlterReassignments),
    /// A partition leader's conf state during a reassignment.
    #[prost(message, tag = "10")]
    ReassignProgress(crate::meta::reassign::ReassignProgress),
    /// A node joins the cluster, or announces its addresses (`meta::members`).
    #[prost(message, tag = "11")]
    AddNode(crate::meta::members::AddNode),
    /// A node leaves the cluster for good.
    #[prost(message, tag = "12")]
    RemoveNode(crate::meta::members::RemoveNode),
    /// Set or delete dynamic broker configs: the replication throttle rates (`meta::broker_config`).
    #[prost(message, tag = "15")]
    AlterBrokerConfigs(crate::meta::broker_config::AlterBrokerConfigs),
    // Consumer groups (tags from 16).
    #[prost(message, tag = "16")]
    CommitOffsets(CommitOffsets),
    #[prost(message, tag = "17")]
    DeleteGroups(DeleteGroups),
    #[prost(message, tag = "18")]
    StoreGroup(StoreGroup),
    #[prost(message, tag = "19")]
    DeleteOffsets(DeleteOffsets),
    // Security: authorization (tags from 32).
    #[prost(message, tag = "32")]
    CreateAcls(CreateAcls),
    #[prost(message, tag = "33")]
    DeleteAcls(DeleteAcls),
    #[prost(message, tag = "34")]
    AlterClientQuotas(AlterClientQuotas),
    // Security, connection side (tags from 48).
    #[prost(message, tag = "48")]
    AlterScramCredentials(AlterScramCredentials),
    // Transactions (tags from 64): the coordinator's transitions (`txn::core`).
    #[prost(message, tag = "64")]
    Txn(crate::txn::model::TxnCommand),
}

/// Add, replace or delete SCRAM credentials (AlterUserScramCredentials). The proposer derives
/// the stored and server keys from the salted password, so no password-equivalent secret enters
/// the log.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AlterScramCredentials {
    #[prost(message, repeated, tag = "1")]
    pub upsertions: Vec<ScramUpsertion>,
    #[prost(message, repeated, tag = "2")]
    pub deletions: Vec<ScramDeletion>,
}

/// One credential to store.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScramUpsertion {
    #[prost(string, tag = "1")]
    pub user: String,
    /// Kafka's mechanism byte (1 = SCRAM-SHA-256, 2 = SCRAM-SHA-512).
    #[prost(int32, tag = "2")]
    pub mechanism: i32,
    #[prost(int32, tag = "3")]
    pub iterations: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub salt: Vec<u8>,
    #[prost(bytes = "vec", tag = "5")]
    pub stored_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "6")]
    pub server_key: Vec<u8>,
}

/// One credential to delete.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScramDeletion {
    #[prost(string, tag = "1")]
    pub user: String,
    #[prost(int32, tag = "2")]
    pub mechanism: i32,
}

/// Set or remove client quota values (AlterClientQuotas); invalid changes are skipped.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AlterClientQuotas {
    #[prost(message, repeated, tag = "1")]
    pub changes: Vec<crate::security::quota::QuotaChange>,
}

/// Add ACL bindings (CreateAcls). The handler validated them; applying skips any invalid one.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateAcls {
    #[prost(message, repeated, tag = "1")]
    pub acls: Vec<crate::security::acl::AclBinding>,
}

/// Remove every ACL binding that matches one of the filters (DeleteAcls).
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeleteAcls {
    #[prost(message, repeated, tag = "1")]
    pub filters: Vec<crate::security::acl::AclBindingFilter>,
}

/// A partition group reports its new leader (sent by the leader when elected).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SetLeader {
    #[prost(uint64, tag = "1")]
    pub group: u64,
    #[prost(uint64, tag = "2")]
    pub leader: u64,
    #[prost(uint64, tag = "3")]
    pub term: u64,
}

/// ElectLeaders PREFERRED: asks the preferred replica (the first of the replica list) of each
/// group to take the leadership over with a Raft leader transfer. Applying counts one request
/// per group (`MetaState::elections`); the node of the preferred replica sees the count rise
/// and starts the transfer (`node.rs`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ElectPreferred {
    #[prost(uint64, repeated, tag = "1")]
    pub groups: Vec<u64>,
}

/// Identifies a proposal in the entry context, so the proposing node can match the applied
/// entry to its waiter and retries of the same proposal apply once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProposalId {
    pub node: u64,
    pub seq: u64,
}

impl ProposalId {
    /// 16 bytes: node, then sequence, big-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = self.node.to_be_bytes().to_vec();
        v.extend_from_slice(&self.seq.to_be_bytes());
        v
    }

    /// None unless exactly 16 bytes.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let b: &[u8; 16] = b.try_into().ok()?;
        Some(ProposalId {
            node: u64::from_be_bytes(b[..8].try_into().ok()?),
            seq: u64::from_be_bytes(b[8..].try_into().ok()?),
        })
    }
}

/// A broker announces its Kafka address. The first registration also fixes the cluster id.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RegisterBroker {
    #[prost(uint64, tag = "1")]
    pub node_id: u64,
    #[prost(string, tag = "2")]
    pub host: String,
    #[prost(int32, tag = "3")]
    pub port: i32,
    #[prost(string, tag = "4")]
    pub cluster_id: String,
    /// The broker's admin HTTP address (`admin.listen`, as bound); absent in entries written
    /// before the admin API existed, and on nodes that run without it.
    #[prost(string, optional, tag = "5")]
    pub admin: Option<String>,
    /// Advertised `host:port` per listener name; empty in entries written before named
    /// listeners existed (then `host`/`port` is the PLAINTEXT listener).
    #[prost(btree_map = "string, string", tag = "6")]
    pub listeners: BTreeMap<String, String>,
    /// Kafka's `broker.rack`; absent in entries written before racks existed.
    #[prost(string, optional, tag = "7")]
    pub rack: Option<String>,
}

/// Create a topic. The proposer picks the topic id; the state machine places replicas.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateTopic {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(bytes = "vec", tag = "2")]
    pub topic_id: Vec<u8>,
    #[prost(uint32, tag = "3")]
    pub partitions: u32,
    #[prost(uint32, tag = "4")]
    pub replication_factor: u32,
    #[prost(btree_map = "string, string", tag = "5")]
    pub configs: BTreeMap<String, String>,
    /// A manual assignment (CreateTopics `assignments`): the replicas of each partition,
    /// preferred leader first; empty (and in entries written before it existed): placed by the
    /// state machine.
    #[prost(message, repeated, tag = "6")]
    pub assignment: Vec<ReplicaList>,
    /// How the state machine places partitions without a manual assignment
    /// (`state::PLACEMENT_*`; 0 in entries written before it existed).
    #[prost(uint32, tag = "7")]
    pub placement: u32,
}

/// One partition's replicas, preferred leader first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReplicaList {
    #[prost(uint64, repeated, tag = "1")]
    pub brokers: Vec<u64>,
}

/// Delete a topic and its partition groups.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeleteTopic {
    #[prost(string, tag = "1")]
    pub name: String,
}

/// Grow a topic to `total` partitions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreatePartitions {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(uint32, tag = "2")]
    pub total: u32,
    /// A manual assignment of the new partitions only (CreatePartitions `assignments`); empty
    /// (and in entries written before it existed): placed by the state machine.
    #[prost(message, repeated, tag = "3")]
    pub assignment: Vec<ReplicaList>,
    /// As [`CreateTopic::placement`].
    #[prost(uint32, tag = "4")]
    pub placement: u32,
}

/// Set (Some) or delete (None, encoded as absent from `set` and present in `delete`) configs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AlterTopicConfigs {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(btree_map = "string, string", tag = "2")]
    pub set: BTreeMap<String, String>,
    #[prost(string, repeated, tag = "3")]
    pub delete: Vec<String>,
    /// True for the legacy AlterConfigs: the given set replaces every config.
    #[prost(bool, tag = "4")]
    pub replace_all: bool,
}

/// Reserve `count` producer ids.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AllocateProducerIds {
    #[prost(uint32, tag = "1")]
    pub count: u32,
}

/// Store a group's committed offsets. The proposer stamps the commit time, so that every
/// replica stores the same value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CommitOffsets {
    #[prost(string, tag = "1")]
    pub group: String,
    #[prost(message, repeated, tag = "2")]
    pub offsets: Vec<OffsetEntry>,
    #[prost(int64, tag = "3")]
    pub commit_timestamp: i64,
}

/// One committed offset.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct OffsetEntry {
    #[prost(string, tag = "1")]
    pub topic: String,
    #[prost(int32, tag = "2")]
    pub partition: i32,
    #[prost(int64, tag = "3")]
    pub offset: i64,
    #[prost(int32, tag = "4")]
    pub leader_epoch: i32,
    #[prost(string, tag = "5")]
    pub metadata: String,
}

/// A consumer group's membership after a rebalance (Kafka's GroupMetadata record), so that a
/// restarted coordinator knows the generation, the members and their assignments.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct StoreGroup {
    #[prost(string, tag = "1")]
    pub group: String,
    #[prost(string, tag = "2")]
    pub protocol_type: String,
    #[prost(int32, tag = "3")]
    pub generation: i32,
    /// The selected protocol; empty when the group has no members.
    #[prost(string, tag = "4")]
    pub protocol: String,
    #[prost(string, tag = "5")]
    pub leader: String,
    #[prost(message, repeated, tag = "6")]
    pub members: Vec<StoredMember>,
    /// When the group entered its current state (ms since the epoch; 0: unknown), stamped by
    /// the proposer: for an Empty group, when it became empty (offset expiry counts from it).
    #[prost(int64, tag = "7")]
    pub state_timestamp: i64,
}

/// One member of a stored group.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct StoredMember {
    #[prost(string, tag = "1")]
    pub member_id: String,
    #[prost(string, optional, tag = "2")]
    pub group_instance_id: Option<String>,
    #[prost(string, tag = "3")]
    pub client_id: String,
    #[prost(string, tag = "4")]
    pub client_host: String,
    #[prost(uint32, tag = "5")]
    pub session_timeout_ms: u32,
    #[prost(uint32, tag = "6")]
    pub rebalance_timeout_ms: u32,
    /// The member's metadata for the selected protocol (its subscription).
    #[prost(bytes = "bytes", tag = "7")]
    pub subscription: bytes::Bytes,
    #[prost(bytes = "bytes", tag = "8")]
    pub assignment: bytes::Bytes,
}

/// Delete committed offsets of one group (OffsetDelete, and offset expiry). A group left without
/// offsets and without stored membership is forgotten.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeleteOffsets {
    #[prost(string, tag = "1")]
    pub group: String,
    #[prost(message, repeated, tag = "2")]
    pub offsets: Vec<OffsetRef>,
}

/// One committed offset to delete.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OffsetRef {
    #[prost(string, tag = "1")]
    pub topic: String,
    #[prost(int32, tag = "2")]
    pub partition: i32,
    /// Expiry: delete only if the offset still has this commit timestamp (it was not committed
    /// again between the check and the apply). Absent: delete whatever is there.
    #[prost(int64, optional, tag = "3")]
    pub if_committed_at: Option<i64>,
}

/// Forget these groups: their committed offsets and stored membership.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeleteGroups {
    #[prost(string, repeated, tag = "1")]
    pub groups: Vec<String>,
}

impl MetaCommand {
    /// Wraps a command.
    pub fn new(cmd: Cmd) -> Self {
        MetaCommand { cmd: Some(cmd) }
    }

    /// Encodes for the Raft log.
    pub fn encode_to_vec(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(self)
    }

    /// Decodes a Raft entry.
    pub fn decode(data: &[u8]) -> Result<Self, prost::DecodeError> {
        <Self as prost::Message>::decode(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    /// `RegisterBroker` as written before the admin address existed (fields 1-4 only).
    #[derive(Clone, PartialEq, prost::Message)]
    struct RegisterBrokerV1 {
        #[prost(uint64, tag = "1")]
        node_id: u64,
        #[prost(string, tag = "2")]
        host: String,
        #[prost(int32, tag = "3")]
        port: i32,
        #[prost(string, tag = "4")]
        cluster_id: String,
    }

    #[test]
    fn register_broker_reads_entries_without_and_with_an_admin_address() {
        let old = RegisterBrokerV1 { node_id: 2, host: "h".into(), port: 9093, cluster_id: "c".into() };
        let read = RegisterBroker::decode(old.encode_to_vec().as_slice()).unwrap();
        assert_eq!((read.node_id, read.port, read.admin), (2, 9093, None));
        let new = RegisterBroker { admin: Some("127.0.0.1:9301".into()), ..read };
        let bytes = new.encode_to_vec();
        assert_eq!(RegisterBroker::decode(bytes.as_slice()).unwrap(), new);
        // An older binary reading the new entry skips the unknown field.
        assert_eq!(RegisterBrokerV1::decode(bytes.as_slice()).unwrap(), old);
    }

    #[test]
    fn round_trip() {
        let c = MetaCommand::new(Cmd::CreateTopic(CreateTopic {
            name: "t".into(),
            topic_id: vec![1; 16],
            partitions: 3,
            replication_factor: 1,
            configs: [("retention.ms".to_string(), "1000".to_string())].into(),
            assignment: vec![ReplicaList { brokers: vec![2, 1] }; 3],
            placement: 0,
        }));
        assert_eq!(MetaCommand::decode(&c.encode_to_vec()).unwrap(), c);
    }

    #[test]
    fn commit_offsets_round_trip() {
        let c = MetaCommand::new(Cmd::CommitOffsets(CommitOffsets {
            group: "g".into(),
            offsets: vec![OffsetEntry {
                topic: "t".into(),
                partition: 2,
                offset: 42,
                leader_epoch: -1,
                metadata: "m".into(),
            }],
            commit_timestamp: 1_700_000_000_000,
        }));
        assert_eq!(MetaCommand::decode(&c.encode_to_vec()).unwrap(), c);
        let d = MetaCommand::new(Cmd::DeleteGroups(DeleteGroups { groups: vec!["a".into(), "b".into()] }));
        assert_eq!(MetaCommand::decode(&d.encode_to_vec()).unwrap(), d);
        let g = MetaCommand::new(Cmd::StoreGroup(StoreGroup {
            group: "g".into(),
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: "range".into(),
            leader: "m1".into(),
            members: vec![StoredMember {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 30_000,
                subscription: bytes::Bytes::from_static(b"sub"),
                assignment: bytes::Bytes::from_static(b"asg"),
            }],
            state_timestamp: 1_700_000_000_123,
        }));
        assert_eq!(MetaCommand::decode(&g.encode_to_vec()).unwrap(), g);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(MetaCommand::decode(&[0xff, 0xff, 0xff]).is_err());
    }
}
