//! Helpers shared by the consumer-group APIs: asking the group coordinator actor, and the
//! error codes a client sees when an offset commit through `__meta` fails.

use std::time::Duration;

use kafka_protocol::protocol::StrBytes;
use tokio::sync::oneshot;

use super::BrokerCtx;
use crate::error::code;
use crate::group::GroupMsg;
use crate::meta::actor::MetaError;

/// Sends a message to the group coordinator and waits for its answer (None: it is gone).
pub async fn ask<T>(ctx: &BrokerCtx, msg: impl FnOnce(oneshot::Sender<T>) -> GroupMsg) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    ctx.groups.do_send(msg(tx));
    rx.await.ok()
}

/// The error of an offset commit whose `__meta` proposal failed: clients look for the
/// coordinator again (NOT_COORDINATOR) or retry (COORDINATOR_NOT_AVAILABLE).
pub fn commit_error(e: &MetaError) -> i16 {
    match e {
        MetaError::NotLeader(_) | MetaError::Storage(_) => code::NOT_COORDINATOR,
        MetaError::Dropped | MetaError::RetriesExhausted(_) => code::COORDINATOR_NOT_AVAILABLE,
    }
}

/// A string field as an owned `String`.
pub fn string(s: &StrBytes) -> String {
    s.as_str().to_string()
}

/// A nullable string field, with null and absent alike.
pub fn opt_string(s: &Option<StrBytes>) -> Option<String> {
    s.as_ref().map(string)
}

/// Milliseconds from the wire as a duration (negative: zero).
pub fn millis(ms: i32) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}
