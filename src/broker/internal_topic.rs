//! `__consumer_offsets` as clients expect to see it: an internal topic in Metadata
//! (`is_internal = true`), listed with all topics and when asked by name, although committed
//! offsets live in `__meta` (see `docs/architecture.md`).
//!
//! It has one partition, led by the group coordinator (the `__meta` leader, which every
//! FindCoordinator answer names) with every broker as replica (every node is a `__meta` voter).
//! Reading it answers an empty partition (Fetch: no records, high watermark 0; ListOffsets: 0),
//! which consumers tolerate; producing to it is INVALID_TOPIC_EXCEPTION ("Cannot append to
//! internal topic", as Kafka's ReplicaManager), creating it TOPIC_ALREADY_EXISTS, deleting it
//! INVALID_REQUEST.

use kafka_protocol::messages::metadata_response::{MetadataResponsePartition, MetadataResponseTopic};
use kafka_protocol::messages::{BrokerId, TopicName};
use uuid::Uuid;

use super::sb;
use crate::error::code;
use crate::meta::MetaState;

/// Kafka's name for its offsets topic.
pub const CONSUMER_OFFSETS: &str = "__consumer_offsets";

/// True for the internal topic (partition 0 is the only one).
pub fn is_internal(topic: &str) -> bool {
    topic == CONSUMER_OFFSETS
}

/// A stable topic id for the cluster: derived from the cluster id.
pub fn topic_id(image: &MetaState) -> Uuid {
    let mut b = [0u8; 16];
    for (i, chunk) in b.chunks_mut(4).enumerate() {
        let crc = crc32c::crc32c(format!("{CONSUMER_OFFSETS}/{}/{i}", image.cluster_id).as_bytes());
        chunk.copy_from_slice(&crc.to_be_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Uuid::from_bytes(b)
}

/// The Metadata row; `coordinator` is the `__meta` leader (0: none now).
pub fn metadata_topic(image: &MetaState, coordinator: u64, version: i16) -> MetadataResponseTopic {
    let replicas: Vec<BrokerId> = image.brokers.keys().map(|b| BrokerId(*b as i32)).collect();
    let mut part = MetadataResponsePartition::default()
        .with_partition_index(0)
        .with_replica_nodes(replicas.clone())
        .with_isr_nodes(replicas);
    part = if coordinator == 0 {
        part.with_error_code(code::LEADER_NOT_AVAILABLE).with_leader_id(BrokerId(-1)).with_leader_epoch(-1)
    } else {
        part.with_leader_id(BrokerId(coordinator as i32)).with_leader_epoch(if version >= 7 { 0 } else { -1 })
    };
    let mut t = MetadataResponseTopic::default()
        .with_name(Some(TopicName(sb(CONSUMER_OFFSETS))))
        .with_is_internal(version >= 1)
        .with_partitions(vec![part]);
    if version >= 10 {
        t.topic_id = topic_id(image);
    }
    t
}
