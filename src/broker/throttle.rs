//! Quota enforcement for handlers: [`BrokerCtx::throttle`] records a request's bytes against the
//! client's quota (Kafka's precedence over user and client-id entities, `security::quota`) and
//! answers the `throttle_time_ms` to report; [`BrokerCtx::throttle_request`] does the same for
//! the time a request kept a thread busy against `request_percentage` (KIP-124; the route table
//! measures it and sets the larger throttle in any response that has the field,
//! [`ThrottleField`]). The handler then calls [`mute`]: as Kafka does since
//! KIP-219 (`RequestHandlerHelper.throttle`, `ThrottledChannel`), the response leaves at once with
//! `throttle_time_ms` set and the connection's channel is muted, i.e. the connection reads no
//! further request until the throttle time is over. Kafka 4 does this for every request version
//! (the broker never delays a response; `shouldClientThrottle` only tells the client whether to
//! back off itself as well).
//!
//! The channel state lives per connection in a [`Channel`], scoped around the handler futures
//! with [`CHANNEL`]; the connection waits on [`Channel::unmuted`] before it dispatches the next
//! request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::*;
use tokio::time::Instant;

use super::BrokerCtx;
use crate::security::principal;
use crate::security::quota::{quota_for, request_time_rate, REQUEST_PERCENTAGE};

/// The longest throttle: Kafka's default `quota.window.num` × `quota.window.size.seconds` (11 s),
/// the bound Kafka's `QuotaUtils.boundedThrottleTime` applies.
pub const MAX_THROTTLE_MS: u64 = 11_000;

impl BrokerCtx {
    /// Records `bytes` under quota `key` (`producer_byte_rate`, `consumer_byte_rate`) for the
    /// request's user and client id; the throttle time in ms (0 without a quota), at most
    /// [`MAX_THROTTLE_MS`].
    pub fn throttle(&self, key: &str, header: &RequestHeader, bytes: u64) -> u64 {
        self.charge(key, header, bytes, |rate| rate)
    }

    /// Records `busy`, the time handling a request kept a thread busy, under
    /// `request_percentage` for the request's user and client id (Kafka's
    /// `ClientRequestQuotaManager`: a percentage of one thread); the throttle time in ms.
    pub fn throttle_request(&self, header: &RequestHeader, busy: Duration) -> u64 {
        let micros = u64::try_from(busy.as_micros()).unwrap_or(u64::MAX);
        self.charge(REQUEST_PERCENTAGE, header, micros, request_time_rate)
    }

    /// Charges `amount` to the quota `key` that applies to the request (its value turned into a
    /// rate of `amount` units per second by `rate_of`).
    fn charge(&self, key: &str, header: &RequestHeader, amount: u64, rate_of: impl Fn(f64) -> f64) -> u64 {
        let quotas = self.image.borrow().client_quotas.clone();
        if quotas.is_empty() {
            return 0;
        }
        let session = principal::current();
        let user = session.principal.name.as_str();
        let client_id = header.client_id.as_ref().map(|c| c.as_str()).unwrap_or("");
        let Some(value) = quota_for(&quotas, key, user, client_id) else {
            return 0;
        };
        let now = self.clock.unix_millis().max(0) as u64;
        self.throttles.record(key, user, client_id, rate_of(value), amount, now).min(MAX_THROTTLE_MS)
    }
}

/// One connection's channel: muted until an instant (`None`: not muted).
#[derive(Debug, Default)]
pub struct Channel {
    muted_until: Mutex<Option<Instant>>,
}

tokio::task_local! {
    /// The channel of the connection whose handler futures run in this task.
    pub static CHANNEL: Arc<Channel>;
}

impl Channel {
    /// Mutes the channel for `ms` from now (a longer mute already running is kept).
    pub fn mute_for(&self, ms: u64) {
        if ms == 0 {
            return;
        }
        let until = Instant::now() + Duration::from_millis(ms.min(MAX_THROTTLE_MS));
        let mut m = self.muted_until.lock().unwrap_or_else(|e| e.into_inner());
        if m.is_none_or(|t| t < until) {
            *m = Some(until);
        }
    }

    /// When the channel will be unmuted, if it is muted now.
    pub fn muted_until(&self) -> Option<Instant> {
        let m = *self.muted_until.lock().unwrap_or_else(|e| e.into_inner());
        m.filter(|t| *t > Instant::now())
    }

    /// Returns once the channel is not muted (at once if it is not).
    pub async fn unmuted(&self) {
        while let Some(t) = self.muted_until() {
            tokio::time::sleep_until(t).await;
        }
    }
}

/// Mutes the current connection's channel for a throttle of `ms` (Kafka's
/// `ClientQuotaManager.throttle`); the handler answers at once. Outside a connection (a unit
/// test calling a handler) there is no channel and nothing to mute.
pub fn mute(ms: u64) {
    let _ = CHANNEL.try_with(|c| c.mute_for(ms));
}

/// A response's `throttle_time_ms`, at the versions that have it (Kafka's
/// `AbstractResponse.maybeSetThrottleTimeMs`). The first version is kafka-protocol's (Kafka's
/// first version with the field, or the first version the crate encodes).
pub trait ThrottleField {
    fn throttle_time_ms(&mut self, version: i16) -> Option<&mut i32>;
}

macro_rules! throttle_field {
    ($($t:ty => $from:expr),* $(,)?) => {$(
        impl ThrottleField for $t {
            fn throttle_time_ms(&mut self, version: i16) -> Option<&mut i32> {
                (version >= $from).then_some(&mut self.throttle_time_ms)
            }
        }
    )*};
}

throttle_field! {
    ProduceResponse => 1, FetchResponse => 1, ListOffsetsResponse => 2, MetadataResponse => 3,
    ApiVersionsResponse => 1, CreateTopicsResponse => 2, DeleteTopicsResponse => 1,
    InitProducerIdResponse => 0, DescribeConfigsResponse => 0, AlterConfigsResponse => 0,
    CreatePartitionsResponse => 0, IncrementalAlterConfigsResponse => 0, DescribeClusterResponse => 0,
    ListConfigResourcesResponse => 0, DeleteRecordsResponse => 0, DescribeTopicPartitionsResponse => 0, ElectLeadersResponse => 0,
    AlterPartitionReassignmentsResponse => 0, ListPartitionReassignmentsResponse => 0, DescribeLogDirsResponse => 0,
    DescribeAclsResponse => 0, CreateAclsResponse => 0, DeleteAclsResponse => 0,
    AlterClientQuotasResponse => 0, DescribeClientQuotasResponse => 0, FindCoordinatorResponse => 1,
    JoinGroupResponse => 2, SyncGroupResponse => 1, HeartbeatResponse => 1, OffsetCommitResponse => 3,
    OffsetFetchResponse => 3, DescribeGroupsResponse => 1, ListGroupsResponse => 1,
    LeaveGroupResponse => 1, DeleteGroupsResponse => 0, OffsetDeleteResponse => 0,
    DescribeUserScramCredentialsResponse => 0, AlterUserScramCredentialsResponse => 0,
    DescribeProducersResponse => 0,
    AddPartitionsToTxnResponse => 0, AddOffsetsToTxnResponse => 0, EndTxnResponse => 0,
    TxnOffsetCommitResponse => 0, DescribeTransactionsResponse => 0, ListTransactionsResponse => 0,
}

/// DescribeQuorum has no `throttle_time_ms` (a Raft request in Kafka).
impl ThrottleField for DescribeQuorumResponse {
    fn throttle_time_ms(&mut self, _version: i16) -> Option<&mut i32> {
        None
    }
}

/// WriteTxnMarkers has no `throttle_time_ms` (an inter-broker request in Kafka).
impl ThrottleField for WriteTxnMarkersResponse {
    fn throttle_time_ms(&mut self, _version: i16) -> Option<&mut i32> {
        None
    }
}

/// The SASL responses have no `throttle_time_ms` (Kafka does not throttle them).
impl ThrottleField for SaslHandshakeResponse {
    fn throttle_time_ms(&mut self, _version: i16) -> Option<&mut i32> {
        None
    }
}

impl ThrottleField for SaslAuthenticateResponse {
    fn throttle_time_ms(&mut self, _version: i16) -> Option<&mut i32> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_muted_channel_opens_after_the_throttle() {
        let c = Arc::new(Channel::default());
        assert!(c.muted_until().is_none());
        let start = Instant::now();
        CHANNEL.scope(c.clone(), async { mute(300) }).await;
        assert_eq!(c.muted_until(), Some(start + Duration::from_millis(300)));
        // A shorter throttle does not shorten a running mute; a longer one extends it.
        c.mute_for(100);
        assert_eq!(c.muted_until(), Some(start + Duration::from_millis(300)));
        c.unmuted().await;
        assert_eq!(Instant::now(), start + Duration::from_millis(300));
        assert!(c.muted_until().is_none());
        c.mute_for(60_000);
        assert_eq!(c.muted_until(), Some(Instant::now() + Duration::from_millis(MAX_THROTTLE_MS)), "bounded");
        // Outside a connection, mute is a no-op.
        mute(1_000);
    }
}
