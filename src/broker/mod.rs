//! The Kafka API layer: one file per API, and the route table that dispatches requests by API
//! key and builds the ApiVersions response from the same table.
//!
//! Handlers are `async fn handle(ctx, header, request) -> Option<response>` (`None`: no response,
//! as for Produce with acks=0). They read metadata from the published `__meta` image and reach
//! partitions through their actors; the produce fan-out is the [`produce::ProduceHandler`] actor.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_client_quotas;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod authz;
pub mod broker_configs;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod fetch_reply;
pub mod find_coordinator;
pub mod groups;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod internal_topic;
pub mod join_group;
pub mod leave_group;
pub mod list_config_resources;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod produce;
pub mod produce_order;
pub mod produce_policy;
pub mod routes;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;
pub mod throttle;
pub mod topics;
pub mod txn_common;
pub mod txn_offset_commit;
pub mod write_txn_markers;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use actix::Addr;
use kafka_protocol::protocol::StrBytes;
use slog::Logger;
use tokio::sync::{oneshot, watch};

use crate::clock::SharedClock;
use crate::error::PartitionError;
use crate::meta::actor::MetaError;
use crate::meta::command::MetaCommand;
use crate::meta::state::MetaResult;
use crate::meta::{MetaActor, MetaMsg, MetaState};
use crate::partition::{PartitionActor, PartitionShared};
use crate::raft::GroupId;

/// A running partition group on this node.
#[derive(Clone)]
pub struct PartitionHandle {
    pub addr: Addr<PartitionActor>,
    pub shared: Arc<PartitionShared>,
    pub group: GroupId,
}

/// Partition groups running on this node, by topic and partition index.
pub type PartitionTable = HashMap<String, BTreeMap<i32, PartitionHandle>>;

/// Limits and defaults the handlers apply (from the configuration).
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    pub max_message_bytes: usize,
    pub auto_create_topics: bool,
    pub default_partitions: u32,
    pub default_replication_factor: u32,
    /// Topic-config defaults the configuration file changes (`retention.ms` from
    /// `[topics] retention`, ...): they describe as STATIC_BROKER_CONFIG.
    pub topic_defaults: crate::meta::topic_config::BrokerTopicDefaults,
    /// This node's broker configs for DescribeConfigs (BROKER).
    pub broker_configs: Vec<broker_configs::BrokerConfigEntry>,
    /// `[transactions] partition-verification` (KIP-890 in Produce).
    pub txn_verification: bool,
}

/// What every handler can reach.
pub struct BrokerCtx {
    pub node_id: u64,
    /// This node's data directory: its one log dir (DescribeLogDirs).
    pub data_dir: std::path::PathBuf,
    /// The `__meta` leader this node knows (0: none), kept by the `MetaActor`.
    pub meta_leader: Arc<std::sync::atomic::AtomicU64>,
    pub settings: BrokerSettings,
    pub logger: Logger,
    pub meta: Addr<MetaActor>,
    pub image: watch::Receiver<Arc<MetaState>>,
    pub partitions: watch::Receiver<Arc<PartitionTable>>,
    pub produce: Addr<produce::ProduceHandler>,
    pub clock: SharedClock,
    /// This node's peer fault injection.
    pub faults: Arc<crate::peer::Faults>,
    /// The consumer group coordinator of this node.
    pub groups: Addr<crate::group::GroupCoordinator>,
    /// The transaction coordinator of this node.
    pub txn: Addr<crate::txn::TxnCoordinator>,
    /// `[transactions]` (the coordinator's limits, for the handlers' checks).
    pub txn_settings: crate::txn::actor::TxnSettings,
    /// This node's authorizer (allows everything unless `[authorizer] enabled`).
    pub authorizer: Arc<crate::security::authorizer::Authorizer>,
    /// Client quota budgets of this node (`security::quota`).
    pub throttles: crate::security::quota::Throttles,
}

impl BrokerCtx {
    /// The latest applied metadata.
    pub fn image(&self) -> Arc<MetaState> {
        self.image.borrow().clone()
    }

    /// The partition groups running here now.
    pub fn partition_table(&self) -> Arc<PartitionTable> {
        self.partitions.borrow().clone()
    }

    /// The partition's handle, if it runs here.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<PartitionHandle> {
        self.partitions.borrow().get(topic).and_then(|p| p.get(&partition)).cloned()
    }

    /// Why a partition that does not run here cannot be served: unknown if the metadata has no
    /// such partition, otherwise not the leader (the client refreshes its metadata and retries).
    pub fn missing_partition(&self, topic: &str, partition: i32) -> PartitionError {
        let image = self.image();
        match image.topics.get(topic).and_then(|t| t.partitions.get(partition as usize)) {
            None => PartitionError::UnknownTopicOrPartition,
            Some(p) => PartitionError::NotLeader { leader: image.leaders.get(&p.group).map(|(l, _)| *l) },
        }
    }

    /// Proposes a metadata command and waits until it is applied.
    pub async fn propose(&self, cmd: MetaCommand) -> Result<MetaResult, MetaError> {
        let (tx, rx) = oneshot::channel();
        self.meta.do_send(MetaMsg::Propose { cmd, reply: Some(tx) });
        rx.await.unwrap_or(Err(MetaError::Dropped))
    }

    /// The id to report as controller: the `__meta` leader (chronik's controller quorum is
    /// `__meta`), or, while it is unknown or not a registered broker, the lowest registered
    /// broker id (always a listed broker).
    pub fn controller_id(&self, image: &MetaState) -> i32 {
        let leader = self.meta_leader.load(std::sync::atomic::Ordering::Relaxed);
        if image.brokers.contains_key(&leader) {
            return leader as i32;
        }
        image.brokers.keys().next().copied().unwrap_or(self.node_id) as i32
    }
}

/// `StrBytes` from any string.
pub fn sb(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// Maps a metadata failure to a Kafka error code a client will retry on.
pub fn meta_error_code(e: &MetaError) -> i16 {
    match e {
        MetaError::NotLeader(_) | MetaError::Dropped | MetaError::RetriesExhausted(_) => {
            crate::error::code::REQUEST_TIMED_OUT
        }
        MetaError::Storage(e) => e.kafka_code(),
    }
}
