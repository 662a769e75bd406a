//! Crate-wide error types and their mapping to Kafka error codes.
//!
//! Each subsystem has its own `thiserror` enum (`LogError`, `ConfigError`, `BatchError`,
//! `ProducerError`, ...). This file holds the errors that cross actor boundaries on the request
//! path, [`PartitionError`] and [`ProtocolError`], and the Kafka error-code constants that chronik
//! returns, so that a failure in one partition becomes exactly that partition's error code.

use thiserror::Error;

/// Kafka error codes used by chronik (see the Kafka protocol guide, "Error Codes").
pub mod code {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const RECORD_LIST_TOO_LARGE: i16 = 18;
    pub const NOT_ENOUGH_REPLICAS: i16 = 19;
    pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
    pub const INVALID_TIMESTAMP: i16 = 32;
    pub const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
    pub const ELIGIBLE_LEADERS_NOT_AVAILABLE: i16 = 83;
    pub const ELECTION_NOT_NEEDED: i16 = 84;
    pub const INVALID_REQUIRED_ACKS: i16 = 21;
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    pub const INVALID_REQUEST: i16 = 42;
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    pub const POLICY_VIOLATION: i16 = 44;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const INVALID_CONFIG: i16 = 40;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
    pub const INVALID_RECORD: i16 = 87;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
    // Consumer groups.
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
    // Security (connection side).
    pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
    pub const ILLEGAL_SASL_STATE: i16 = 34;
    pub const NOT_CONTROLLER: i16 = 41;
    pub const SASL_AUTHENTICATION_FAILED: i16 = 58;
    pub const RESOURCE_NOT_FOUND: i16 = 91;
    pub const DUPLICATE_RESOURCE: i16 = 92;
    pub const UNACCEPTABLE_CREDENTIAL: i16 = 93;
}

/// Why one partition could not serve a request. Turned into that partition's error code.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PartitionError {
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("this node is not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("no leader elected yet")]
    LeaderNotAvailable,
    #[error("offset {offset} out of range [{start}, {end}]")]
    OffsetOutOfRange { offset: i64, start: i64, end: i64 },
    #[error("invalid record batch: {0}")]
    InvalidBatch(String, i16),
    #[error("producer sequence error: {0}")]
    Producer(String, i16),
    #[error("storage error: {0}")]
    Storage(String),
    /// The partition's storage failed (the disk writer's or syncer's error).
    #[error("partition storage failed: {0}")]
    Disk(crate::raft::disk_error::DiskError),
    #[error("request timed out")]
    Timeout,
    #[error("partition is shutting down")]
    ShuttingDown,
    /// The principal may not do this on the partition's topic (TOPIC_AUTHORIZATION_FAILED).
    #[error("topic authorization failed")]
    TopicAuthorizationFailed,
}

impl PartitionError {
    /// The Kafka error code a client sees for this partition.
    pub fn kafka_code(&self) -> i16 {
        match self {
            PartitionError::UnknownTopicOrPartition => code::UNKNOWN_TOPIC_OR_PARTITION,
            PartitionError::NotLeader { .. } => code::NOT_LEADER_OR_FOLLOWER,
            PartitionError::LeaderNotAvailable => code::LEADER_NOT_AVAILABLE,
            PartitionError::OffsetOutOfRange { .. } => code::OFFSET_OUT_OF_RANGE,
            PartitionError::InvalidBatch(_, c) | PartitionError::Producer(_, c) => *c,
            PartitionError::Storage(_) => code::KAFKA_STORAGE_ERROR,
            PartitionError::Disk(e) => e.kafka_code(),
            PartitionError::Timeout => code::REQUEST_TIMED_OUT,
            PartitionError::ShuttingDown => code::NOT_LEADER_OR_FOLLOWER,
            PartitionError::TopicAuthorizationFailed => code::TOPIC_AUTHORIZATION_FAILED,
        }
    }
}

/// A request that cannot be answered at all: the connection is closed after a log line.
#[derive(Debug, Error)]
pub enum ProtocolError {
    #[error("frame of {size} bytes exceeds max-request-size {max}")]
    FrameTooLarge { size: usize, max: usize },
    #[error("frame of {0} bytes is too short for a request header")]
    FrameTooShort(usize),
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("unsupported version {version} of api key {key}")]
    UnsupportedVersion { key: i16, version: i16 },
    #[error("cannot decode {what}: {reason}")]
    Decode { what: &'static str, reason: String },
    #[error("cannot encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
}
