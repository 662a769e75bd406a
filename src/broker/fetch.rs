//! Fetch (key 1): reads committed batches from each requested partition's leader.
//!
//! Long poll: when fewer than `min_bytes` are available, the handler waits on the partitions'
//! change notifications (high watermark moved, leader changed) until `max_wait_ms`, then reads
//! again. It never polls in a loop. `max_bytes` bounds the response, but the first non-empty
//! partition always returns at least one whole batch (KIP-74). Fetch sessions are not kept:
//! every response is a full response with session id 0, which clients accept.
//!
//! `isolation_level` 1 (READ_COMMITTED, v4+) reads below the last stable offset and returns the
//! aborted transactions overlapping the records returned (`partition::txn`); READ_UNCOMMITTED
//! reads up to the high watermark, control batches included, as Kafka sends them.
//!
//! On a plaintext listener the partitions answer with their written batches as file ranges,
//! not read, and the response goes out as a chain (`broker::fetch_reply`): fields encoded by
//! kafka-protocol, batches sent with `sendfile` (zero-copy fetch).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::select_all;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::ProducerId;
use kafka_protocol::messages::{FetchRequest, FetchResponse, RequestHeader};
use tokio::sync::oneshot;

use super::fetch_reply::FetchReply;
use super::{BrokerCtx, PartitionHandle};
use crate::error::{code, PartitionError};
use crate::partition::actor::FetchData;
use crate::partition::PartitionMsg;
use crate::protocol::chain::Chain;
use crate::security::acl::Operation;
use crate::security::quota::CONSUMER_BYTE_RATE;

struct Slot {
    topic: usize,
    partition: i32,
    offset: i64,
    max_bytes: usize,
    /// `None` when the partition does not run here or READ on its topic is refused.
    handle: Option<PartitionHandle>,
    refused: bool,
}

async fn read(
    handle: &PartitionHandle,
    offset: i64,
    max_bytes: usize,
    read_committed: bool,
) -> Result<FetchData, PartitionError> {
    let (tx, rx) = oneshot::channel();
    let zero_copy = crate::net::connection::sends_files();
    handle.addr.do_send(PartitionMsg::Fetch { offset, max_bytes, read_committed, zero_copy, reply: tx });
    rx.await.unwrap_or(Err(PartitionError::ShuttingDown))
}

pub async fn handle(ctx: Arc<BrokerCtx>, h: RequestHeader, req: FetchRequest) -> Option<FetchReply> {
    let v5 = h.request_api_version >= 5;
    let read_committed = h.request_api_version >= 4 && req.isolation_level == 1;
    let names: Vec<String> = req.topics.iter().map(|t| t.topic.0.to_string()).collect();
    let refused: Vec<bool> = names.iter().map(|n| ctx.check_topic(Operation::Read, n).is_err()).collect();
    let slots: Vec<Slot> = req
        .topics
        .iter()
        .enumerate()
        .flat_map(|(ti, t)| {
            let ctx = &ctx;
            let name = &names[ti];
            let refused = refused[ti];
            t.partitions.iter().map(move |p| Slot {
                topic: ti,
                partition: p.partition,
                offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes.max(0) as usize,
                handle: if refused { None } else { ctx.partition(name, p.partition) },
                refused,
            })
        })
        .collect();
    let max_bytes = if req.max_bytes <= 0 { usize::MAX } else { req.max_bytes as usize };
    let min_bytes = req.min_bytes.max(0) as usize;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms.clamp(0, 300_000) as u64);

    let results = loop {
        // Arm the wake-ups before reading, so a commit between the read and the wait is not lost.
        let mut notified: Vec<_> =
            slots.iter().filter_map(|s| s.handle.as_ref()).map(|h| Box::pin(h.shared.changed.notified())).collect();
        for n in notified.iter_mut() {
            n.as_mut().enable();
        }
        let mut remaining = max_bytes;
        let mut total = 0usize;
        let mut any_error = false;
        let mut results = Vec::with_capacity(slots.len());
        for s in &slots {
            let r = match &s.handle {
                None if s.refused => Err(PartitionError::TopicAuthorizationFailed),
                // The internal offsets topic reads as an empty partition (broker/internal_topic.rs).
                None if super::internal_topic::is_internal(&names[s.topic]) && s.partition == 0 => Ok(FetchData {
                    records: Chain::default(),
                    high_watermark: 0,
                    log_start: 0,
                    last_stable_offset: 0,
                    aborted: Vec::new(),
                }),
                None => Err(ctx.missing_partition(&names[s.topic], s.partition)),
                Some(h) if remaining == 0 => Ok(FetchData {
                    records: Chain::default(),
                    high_watermark: h.shared.high_watermark(),
                    log_start: h.shared.log_start(),
                    last_stable_offset: h.shared.last_stable_offset(),
                    aborted: Vec::new(),
                }),
                Some(h) => read(h, s.offset, s.max_bytes.min(remaining), read_committed).await.map(|mut d| {
                    if total > 0 && d.records.len() > remaining {
                        d.records = Chain::default();
                        d.aborted.clear();
                    }
                    d
                }),
            };
            match &r {
                Ok(d) => {
                    total += d.records.len();
                    remaining = remaining.saturating_sub(d.records.len());
                }
                Err(_) => any_error = true,
            }
            results.push(r);
        }
        let now = tokio::time::Instant::now();
        if total >= min_bytes || any_error || now >= deadline || notified.is_empty() {
            break results;
        }
        if tokio::time::timeout_at(deadline, select_all(notified)).await.is_err() {
            // Deadline passed without a change: answer with what we have (nothing new).
            break results;
        }
    };

    let mut topics: Vec<FetchableTopicResponse> = req
        .topics
        .iter()
        .map(|t| FetchableTopicResponse::default().with_topic(t.topic.clone()).with_topic_id(t.topic_id))
        .collect();
    // The records of each partition, in the order the response lists the partitions (the
    // slots' order: topic by topic, as the request lists them).
    let mut records = Vec::with_capacity(slots.len());
    for (s, r) in slots.iter().zip(results) {
        let part = match r {
            Ok(d) => {
                records.push(d.records);
                PartitionData::default()
                    .with_partition_index(s.partition)
                    .with_high_watermark(d.high_watermark)
                    .with_last_stable_offset(d.last_stable_offset)
                    .with_log_start_offset(if v5 { d.log_start } else { -1 })
                    .with_aborted_transactions(Some(aborted_transactions(&d.aborted)))
                    .with_records(Some(Bytes::new()))
            }
            Err(e) => {
                records.push(Chain::default());
                let (hw, ls, lso) = s
                    .handle
                    .as_ref()
                    .map(|h| (h.shared.high_watermark(), h.shared.log_start(), h.shared.last_stable_offset()))
                    .unwrap_or((-1, -1, -1));
                if e.kafka_code() != code::OFFSET_OUT_OF_RANGE {
                    slog::debug!(ctx.logger, "fetch error"; "topic" => &names[s.topic], "partition" => s.partition, "error" => %e);
                }
                PartitionData::default()
                    .with_partition_index(s.partition)
                    .with_error_code(e.kafka_code())
                    .with_high_watermark(hw)
                    .with_last_stable_offset(lso)
                    .with_log_start_offset(if v5 { ls } else { -1 })
                    .with_records(Some(Bytes::new()))
            }
        };
        topics[s.topic].partitions.push(part);
    }
    let bytes: usize = records.iter().map(Chain::len).sum();
    let sent: usize = records.iter().map(Chain::file_bytes).sum();
    crate::metrics::registry().fetch_bytes(ctx.node_id, sent as u64, (bytes - sent) as u64);
    let throttle = ctx.throttle(CONSUMER_BYTE_RATE, &h, bytes as u64);
    super::throttle::mute(throttle);
    let resp = FetchResponse::default()
        .with_throttle_time_ms(throttle.min(i32::MAX as u64) as i32)
        .with_session_id(0)
        .with_responses(topics);
    Some(FetchReply { resp, records })
}

/// The response's list of aborted transactions (producer id, first offset).
fn aborted_transactions(list: &[crate::partition::txn::AbortedTxn]) -> Vec<AbortedTransaction> {
    list.iter()
        .map(|t| {
            AbortedTransaction::default().with_producer_id(ProducerId(t.producer_id)).with_first_offset(t.first_offset)
        })
        .collect()
}
