//! Produce (key 0) and the produce handler actor.
//!
//! The handler actor takes a whole request, validates each partition's record batches (CRC-32C,
//! size, structure) and applies the topic's configs ([`super::produce_policy`]: per-topic
//! `max.message.bytes`, keys on compacted topics, timestamp bounds, LogAppendTime stamping,
//! `min.insync.replicas` for acks=all), sends each batch to its partition actor, and gathers the partitions'
//! acknowledgements in a spawned future, so one slow partition never holds up other requests.
//! A failure in one partition becomes that partition's error code. With acks=0 nothing is
//! answered, but the request keeps its place among its connection's in-flight requests until
//! its batches are committed, so a producer that never waits cannot queue without bound.
//! Responses still leave the connection in request order (the connection keeps them), and
//! batches reach the handler in request order ([`super::produce_order`]).
//! A request with transactional batches needs its `transactional_id` and WRITE on it, else every
//! partition answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED (Kafka's `handleProduceRequest`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::BytesMut;
use futures::future::join_all;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, RequestHeader};
use slog::Logger;
use tokio::sync::oneshot;

use super::produce_policy::TopicPolicy;
use super::{BrokerCtx, PartitionHandle, PartitionTable};
use crate::error::{code, PartitionError};
use crate::log::batch::validate_batches;
use crate::meta::state::valid_topic_name;
use crate::partition::actor::ProduceAck;
use crate::partition::PartitionMsg;
use crate::security::acl::{Operation, ResourceType};
use crate::security::quota::PRODUCER_BYTE_RATE;

/// The produce handler's one message enum.
#[derive(Message)]
#[rtype(result = "()")]
pub enum ProduceMsg {
    /// A decoded request, the partition table to use, and where to send the response (acks=0
    /// too: its connection waits for it, without answering the client).
    Request {
        req: ProduceRequest,
        table: Arc<PartitionTable>,
        /// Why partitions cannot be served: not authorized (WRITE on the topic), or not in
        /// `table` (unknown, or led elsewhere).
        missing: Vec<(String, i32, PartitionError)>,
        version: i16,
        /// The enforced configs of each topic of the request that exists.
        policies: HashMap<String, TopicPolicy>,
        /// The leader's wall clock (LogAppendTime, timestamp bounds).
        now_ms: i64,
        reply: oneshot::Sender<ProduceResponse>,
    },
}

/// The produce fan-out actor.
pub struct ProduceHandler {
    node: u64,
    logger: Logger,
}

impl ProduceHandler {
    pub fn new(node: u64, logger: Logger) -> Self {
        ProduceHandler { node, logger }
    }
}

impl Actor for ProduceHandler {
    type Context = Context<Self>;
}

/// A partition's outcome and its log append time (-1 unless the topic uses LogAppendTime).
type PartitionReply = (i32, Result<ProduceAck, PartitionError>, i64);

impl Handler<ProduceMsg> for ProduceHandler {
    type Result = ();

    fn handle(&mut self, msg: ProduceMsg, ctx: &mut Self::Context) {
        let ProduceMsg::Request { req, table, missing, version, policies, now_ms, reply } = msg;
        let v5 = version >= 5;
        let v8 = version >= 8;
        let acks_ok = (-1..=1).contains(&req.acks);
        let timeout = Duration::from_millis(req.timeout_ms.clamp(1, 300_000) as u64);
        let mut topics: Vec<(String, Vec<futures::future::BoxFuture<'static, PartitionReply>>)> = Vec::new();
        for topic in req.topic_data {
            let name = topic.name.0.to_string();
            let mut parts = Vec::new();
            for p in topic.partition_data {
                let index = p.index;
                let result = if !acks_ok {
                    Err(PartitionError::InvalidBatch(
                        format!("acks={} is not 0, 1 or -1", req.acks),
                        code::INVALID_REQUIRED_ACKS,
                    ))
                } else if super::internal_topic::is_internal(&name) {
                    Err(PartitionError::InvalidBatch(
                        format!("Cannot append to internal topic {name}"),
                        code::INVALID_TOPIC_EXCEPTION,
                    ))
                } else if !valid_topic_name(&name) {
                    Err(PartitionError::InvalidBatch(
                        format!("invalid topic name {name:?}"),
                        code::INVALID_TOPIC_EXCEPTION,
                    ))
                } else {
                    let refused = missing.iter().find(|(t, p, _)| *t == name && *p == index).map(|(_, _, e)| e.clone());
                    match (refused, table.get(&name).and_then(|ps| ps.get(&index))) {
                        (Some(e), _) => Err(e),
                        (None, None) => Err(PartitionError::UnknownTopicOrPartition),
                        (None, Some(handle)) => match policies.get(&name) {
                            Some(policy) => {
                                let to = Target { topic: &name, partition: index, handle, policy, now_ms };
                                self.dispatch(to, p.records, req.acks).map(|rxs| (rxs, handle.clone(), policy))
                            }
                            None => Err(PartitionError::UnknownTopicOrPartition),
                        },
                    }
                };
                parts.push(match result {
                    Ok((rxs, handle, policy)) => {
                        let append_time = if policy.log_append_time { now_ms } else { -1 };
                        let min_isr = (req.acks == -1).then_some(policy.min_insync_replicas);
                        Box::pin(gather(index, rxs, timeout, handle, min_isr, append_time))
                            as futures::future::BoxFuture<'static, PartitionReply>
                    }
                    Err(e) => {
                        slog::debug!(self.logger, "produce rejected"; "topic" => &name, "partition" => index, "error" => %e);
                        Box::pin(async move { (index, Err(e), -1) })
                    }
                });
            }
            topics.push((name, parts));
        }
        let (node, started) = (self.node, std::time::Instant::now());
        ctx.spawn(
            async move {
                let mut responses = Vec::with_capacity(topics.len());
                for (name, parts) in topics {
                    let results = join_all(parts).await;
                    let partition_responses = results
                        .into_iter()
                        .map(|(index, r, append_time)| match r {
                            Ok(ack) => PartitionProduceResponse::default()
                                .with_index(index)
                                .with_base_offset(ack.base_offset)
                                .with_log_append_time_ms(if version >= 2 { append_time } else { -1 })
                                .with_log_start_offset(if v5 { ack.log_start } else { -1 }),
                            Err(e) => PartitionProduceResponse::default()
                                .with_index(index)
                                .with_error_code(e.kafka_code())
                                .with_error_message(v8.then(|| super::sb(e.to_string())))
                                .with_base_offset(-1)
                                .with_log_append_time_ms(-1)
                                .with_log_start_offset(-1),
                        })
                        .collect();
                    responses.push(
                        TopicProduceResponse::default()
                            .with_name(kafka_protocol::messages::TopicName(super::sb(name)))
                            .with_partition_responses(partition_responses),
                    );
                }
                let registry = crate::metrics::registry();
                registry.produce(node, started.elapsed());
                for t in &responses {
                    for p in &t.partition_responses {
                        if p.error_code != 0 {
                            registry.error(node, 0, p.error_code);
                        }
                    }
                }
                let _ = reply.send(ProduceResponse::default().with_responses(responses));
            }
            .into_actor(self),
        );
    }
}

/// Where one partition's records go, and the rules they must follow.
struct Target<'a> {
    topic: &'a str,
    partition: i32,
    handle: &'a PartitionHandle,
    policy: &'a TopicPolicy,
    now_ms: i64,
}

impl ProduceHandler {
    /// Validates a partition's records against the topic's policy and sends each batch to the
    /// partition actor.
    fn dispatch(
        &self,
        to: Target<'_>,
        records: Option<bytes::Bytes>,
        acks: i16,
    ) -> Result<Vec<oneshot::Receiver<Result<ProduceAck, PartitionError>>>, PartitionError> {
        let Target { topic, partition, handle, policy, now_ms } = to;
        // The leader is always in sync (ids above 63 are not in the published bit set).
        let in_sync = handle.shared.in_sync().len().max(1);
        if acks == -1 && in_sync < policy.min_insync_replicas {
            return Err(PartitionError::InvalidBatch(
                format!(
                    "The size of the current ISR {in_sync} is insufficient to satisfy the min.isr requirement of {} for partition {topic}-{partition}",
                    policy.min_insync_replicas
                ),
                code::NOT_ENOUGH_REPLICAS,
            ));
        }
        let records = records.unwrap_or_default();
        let batches = validate_batches(&records, policy.max_message_bytes).map_err(|e| {
            slog::warn!(self.logger, "invalid record batch rejected"; "topic" => topic, "partition" => partition, "error" => %e);
            PartitionError::InvalidBatch(e.to_string(), e.kafka_code())
        })?;
        if batches.is_empty() {
            return Err(PartitionError::InvalidBatch("no record batch".into(), code::INVALID_RECORD));
        }
        let mut checked = Vec::with_capacity(batches.len());
        for (range, header) in batches {
            let mut batch = BytesMut::from(&records[range]);
            let header = policy.apply(&mut batch, header, now_ms, topic, partition)?;
            checked.push((batch, header));
        }
        policy.check_segment_size(checked.iter().map(|(b, _)| b.len()).sum(), topic, partition)?;
        let mut rxs = Vec::with_capacity(checked.len());
        for (batch, header) in checked {
            slog::debug!(self.logger, "produce batch"; "topic" => topic, "partition" => partition,
                "bytes" => batch.len(), "records" => header.record_count, "crc" => header.crc);
            let (tx, rx) = oneshot::channel();
            handle.addr.do_send(PartitionMsg::Produce { batch, header, reply: tx });
            rxs.push(rx);
        }
        Ok(rxs)
    }
}

/// Waits for every batch of one partition; the first batch's offset is the answer. With
/// acks=all (`min_isr` given), a write that committed while the in-sync replicas dropped below
/// `min.insync.replicas` answers NOT_ENOUGH_REPLICAS_AFTER_APPEND, as Kafka.
async fn gather(
    index: i32,
    rxs: Vec<oneshot::Receiver<Result<ProduceAck, PartitionError>>>,
    timeout: Duration,
    handle: PartitionHandle,
    min_isr: Option<usize>,
    append_time: i64,
) -> PartitionReply {
    let all = join_all(rxs);
    let results = match tokio::time::timeout(timeout, all).await {
        Ok(r) => r,
        Err(_) => return (index, Err(PartitionError::Timeout), -1),
    };
    let mut first: Option<ProduceAck> = None;
    for r in results {
        match r {
            Ok(Ok(ack)) => {
                first.get_or_insert(ack);
            }
            Ok(Err(e)) => return (index, Err(e), -1),
            Err(_) => return (index, Err(PartitionError::ShuttingDown), -1),
        }
    }
    let in_sync = handle.shared.in_sync().len().max(1);
    if let Some(min) = min_isr.filter(|m| in_sync < *m) {
        let msg = format!("the in-sync replicas ({in_sync}) dropped below min.insync.replicas ({min}) while appending");
        return (index, Err(PartitionError::InvalidBatch(msg, code::NOT_ENOUGH_REPLICAS_AFTER_APPEND)), -1);
    }
    (index, first.ok_or(PartitionError::ShuttingDown), append_time)
}

/// The Produce API entry point.
pub async fn handle(ctx: Arc<BrokerCtx>, h: RequestHeader, req: ProduceRequest) -> Option<ProduceResponse> {
    // Taken before anything awaits; let go (dropped) once the batches are handed on.
    let mut turn = super::produce_order::take();
    let table = ctx.partition_table();
    let version = h.request_api_version;
    let mut unverified = Vec::new();
    if has_transactional_records(&req) {
        let id = req.transactional_id.as_ref().map(|id| id.0.to_string());
        let allowed =
            id.as_ref().is_some_and(|id| ctx.check(Operation::Write, ResourceType::TransactionalId, id).is_ok());
        if !allowed && req.acks != 0 {
            return Some(error_response(&req, code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED));
        } else if !allowed {
            return None;
        }
        if ctx.settings.txn_verification {
            unverified = verify_transaction(&ctx, id.as_deref().unwrap_or_default(), &req, version).await;
        }
    }
    let mut missing: Vec<_> = req
        .topic_data
        .iter()
        .flat_map(|t| t.partition_data.iter().map(move |p| (t.name.0.to_string(), p.index)))
        .filter_map(|(t, p)| {
            if ctx.check_topic(Operation::Write, &t).is_err() {
                return Some((t, p, PartitionError::TopicAuthorizationFailed));
            }
            table.get(&t).and_then(|ps| ps.get(&p)).is_none().then(|| {
                let e = ctx.missing_partition(&t, p);
                (t, p, e)
            })
        })
        .collect();
    missing.extend(unverified);
    let image = ctx.image();
    let policies = req
        .topic_data
        .iter()
        .filter_map(|t| {
            let info = image.topics.get(t.name.0.as_str())?;
            Some((t.name.0.to_string(), TopicPolicy::resolve(&info.configs, &ctx.settings.topic_defaults)))
        })
        .collect();
    let now_ms = ctx.clock.unix_millis();
    let bytes: usize = req
        .topic_data
        .iter()
        .flat_map(|t| t.partition_data.iter())
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum();
    let throttle = ctx.throttle(PRODUCER_BYTE_RATE, &h, bytes as u64);
    turn.wait().await;
    let acks0 = req.acks == 0;
    let (tx, rx) = oneshot::channel();
    ctx.produce.do_send(ProduceMsg::Request { req, table, missing, version, policies, now_ms, reply: tx });
    drop(turn);
    let resp = rx.await.ok()?;
    super::throttle::mute(throttle);
    if acks0 {
        // Nothing is answered, but the request held its connection's slot until its batches were
        // committed (or refused): a producer that never waits for answers cannot queue without
        // bound (`net::connection` serves at most MAX_IN_FLIGHT requests of a connection at once).
        return None;
    }
    Some(if version >= 1 { resp.with_throttle_time_ms(throttle.min(i32::MAX as u64) as i32) } else { resp })
}

/// How long a transactional produce waits for this node's `__meta` replica to show the
/// AddPartitionsToTxn that the producer was answered before it sent the batch.
const VERIFY_WAIT: Duration = Duration::from_secs(2);

/// KIP-890 verification, as Kafka's `ReplicaManager.appendRecordsWithTransactionVerification`: a
/// partition's transactional batches are accepted only if the partition is in the producer's
/// ongoing transaction, so a late or retried batch of a finished transaction cannot open a
/// transaction that never ends. The transaction state is in `__meta`; AddPartitionsToTxn was
/// answered once it was committed there, so a replica that does not show it yet only lags:
/// wait (bounded) for its image to move on. Failures are Kafka's produce codes:
/// PRODUCER_FENCED → INVALID_PRODUCER_EPOCH, TRANSACTION_ABORTABLE → INVALID_TXN_STATE before
/// Produce v12.
async fn verify_transaction(
    ctx: &BrokerCtx,
    id: &str,
    req: &ProduceRequest,
    version: i16,
) -> Vec<(String, i32, PartitionError)> {
    let producers: Vec<(String, i32, i64, i16)> = req
        .topic_data
        .iter()
        .flat_map(|t| t.partition_data.iter().map(move |p| (t.name.0.to_string(), p)))
        .filter_map(|(t, p)| {
            let r = p.records.as_ref()?;
            let h = crate::log::batch::BatchHeader::parse(r).ok().filter(|h| h.is_transactional())?;
            Some((t, p.index, h.producer_id, h.producer_epoch))
        })
        .collect();
    let failed = |image: &crate::meta::state::MetaState| -> Vec<(String, i32, i16)> {
        producers
            .iter()
            .filter_map(|(t, p, pid, epoch)| {
                let c = crate::txn::core::verify(&image.transactions, id, *pid, i32::from(*epoch), t, &[*p]);
                (c[0] != code::NONE).then(|| (t.clone(), *p, c[0]))
            })
            .collect()
    };
    let mut rx = ctx.image.clone();
    let deadline = tokio::time::Instant::now() + VERIFY_WAIT;
    let mut left = failed(&rx.borrow_and_update());
    while !left.is_empty() {
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => left = failed(&rx.borrow_and_update()),
            _ => break,
        }
    }
    left.into_iter()
        .map(|(t, p, c)| {
            let c = match c {
                crate::txn::code::PRODUCER_FENCED => code::INVALID_PRODUCER_EPOCH,
                crate::txn::code::TRANSACTION_ABORTABLE if version < 12 => crate::txn::code::INVALID_TXN_STATE,
                c => c,
            };
            let why = "Partition was not added to the transaction".to_string();
            (t, p, PartitionError::InvalidBatch(why, c))
        })
        .collect()
}

/// Any batch with the transactional flag (Kafka's `RequestUtils.hasTransactionalRecords`).
fn has_transactional_records(req: &ProduceRequest) -> bool {
    req.topic_data.iter().flat_map(|t| t.partition_data.iter()).filter_map(|p| p.records.as_ref()).any(|r| {
        let mut pos = 0;
        while let Ok(h) = crate::log::batch::BatchHeader::parse(r.get(pos..).unwrap_or(&[])) {
            if h.is_transactional() {
                return true;
            }
            pos += h.total_len();
        }
        false
    })
}

/// Every partition of the request answers `error`.
fn error_response(req: &ProduceRequest, error: i16) -> ProduceResponse {
    let topics = req
        .topic_data
        .iter()
        .map(|t| {
            let parts = t
                .partition_data
                .iter()
                .map(|p| {
                    PartitionProduceResponse::default().with_index(p.index).with_error_code(error).with_base_offset(-1)
                })
                .collect();
            TopicProduceResponse::default().with_name(t.name.clone()).with_partition_responses(parts)
        })
        .collect();
    ProduceResponse::default().with_responses(topics)
}
