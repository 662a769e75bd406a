//! The entries of the `__meta` Raft log: one [`MetaCommand`] per entry, encoded with prost.
//! Commands carry intent; the state machine decides placement and ids when it applies them,
//! so every replica computes the same result.

use std::collections::BTreeMap;

/// One metadata change.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetaCommand {
    #[prost(oneof = "Cmd", tags = "1, 2, 3, 4, 5, 6, 7")]
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

    #[test]
    fn round_trip() {
        let c = MetaCommand::new(Cmd::CreateTopic(CreateTopic {
            name: "t".into(),
            topic_id: vec![1; 16],
            partitions: 3,
            replication_factor: 1,
            configs: [("retention.ms".to_string(), "1000".to_string())].into(),
        }));
        assert_eq!(MetaCommand::decode(&c.encode_to_vec()).unwrap(), c);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(MetaCommand::decode(&[0xff, 0xff, 0xff]).is_err());
    }
}
