//! Quota enforcement for handlers: [`BrokerCtx::throttle`] records a request's bytes against the
//! client's quota (Kafka's precedence over user and client-id entities, `security::quota`) and
//! answers the `throttle_time_ms` to report. The handler then holds its response that long
//! (Kafka mutes the channel instead; holding the response keeps this connection's later
//! responses behind it, since they leave in request order), and clients that read
//! `throttle_time_ms` also back off on their own.

use std::time::Duration;

use kafka_protocol::messages::RequestHeader;

use super::BrokerCtx;
use crate::security::principal;
use crate::security::quota::quota_for;

impl BrokerCtx {
    /// Records `bytes` under quota `key` (`producer_byte_rate`, `consumer_byte_rate`) for the
    /// request's user and client id; the throttle time in ms (0 without a quota).
    pub fn throttle(&self, key: &str, header: &RequestHeader, bytes: u64) -> u64 {
        let quotas = self.image.borrow().client_quotas.clone();
        if quotas.is_empty() {
            return 0;
        }
        let session = principal::current();
        let user = session.principal.name.as_str();
        let client_id = header.client_id.as_ref().map(|c| c.as_str()).unwrap_or("");
        let Some(rate) = quota_for(&quotas, key, user, client_id) else {
            return 0;
        };
        let now = self.clock.unix_millis().max(0) as u64;
        self.throttles.record(key, user, client_id, rate, bytes, now)
    }
}

/// Holds a throttled response for `ms` (bounded at Kafka's default `quota.window.num` ×
/// `quota.window.size.seconds`, 11 s, per response).
pub async fn hold(ms: u64) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms.min(11_000))).await;
    }
}
