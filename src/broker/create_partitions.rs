//! CreatePartitions (key 37): grows a topic's partition count through `__meta`. A manual
//! `assignments` list (`kafka-topics.sh --alter --replica-assignment`) places the new partitions
//! only, one replica list each with the topic's replication factor, checked as Kafka does
//! (`meta::assignment`); the first broker of each is its preferred leader.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, RequestHeader};

use super::{meta_error_code, sb, topics, BrokerCtx};
use crate::error::code;
use crate::meta::command::{Cmd, CreatePartitions, MetaCommand, ReplicaList};
use crate::meta::state::MetaResult;
use crate::security::acl::Operation;

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    _h: RequestHeader,
    req: CreatePartitionsRequest,
) -> Option<CreatePartitionsResponse> {
    let timeout = Duration::from_millis(req.timeout_ms.clamp(0, 600_000) as u64);
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.0.to_string();
        let r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        let image = ctx.image();
        let check = match image.topics.get(&name) {
            _ if ctx.check_topic(Operation::Alter, &name).is_err() => {
                Err((code::TOPIC_AUTHORIZATION_FAILED, "Authorization failed.".to_string()))
            }
            None => Err((code::UNKNOWN_TOPIC_OR_PARTITION, format!("no topic {name:?}"))),
            Some(_) if t.count < 1 || t.count as u32 > crate::meta::state::MAX_PARTITIONS_PER_TOPIC => Err((
                code::INVALID_PARTITIONS,
                format!(
                    "partition count must be 1..={}, got {}",
                    crate::meta::state::MAX_PARTITIONS_PER_TOPIC,
                    t.count
                ),
            )),
            Some(info) if t.count as usize <= info.partitions.len() => Err((
                code::INVALID_PARTITIONS,
                format!("topic {name:?} has {} partitions; {} is not more", info.partitions.len(), t.count),
            )),
            // An empty list counts as none (the kafka-protocol crate's default; Java clients
            // send null without an assignment).
            Some(info) => match t.assignments.as_ref().filter(|a| !a.is_empty()) {
                None => Ok(Vec::new()),
                Some(a) => {
                    let lists: Vec<Vec<i32>> = a.iter().map(|r| r.broker_ids.iter().map(|b| b.0).collect()).collect();
                    let rf = info.partitions.first().map_or(1, |p| p.replicas.len());
                    let additional = t.count as usize - info.partitions.len();
                    crate::meta::assignment::for_new_partitions(&image.brokers, &lists, additional, rf)
                }
            },
        };
        let outcome = match check {
            Err(e) => Err(e),
            Ok(_) if req.validate_only => Ok(()),
            Ok(assignment) => {
                let cmd = MetaCommand::new(Cmd::CreatePartitions(CreatePartitions {
                    name: name.clone(),
                    total: t.count as u32,
                    assignment: assignment.into_iter().map(|brokers| ReplicaList { brokers }).collect(),
                    placement: crate::meta::state::PLACEMENT_SHIFTED,
                }));
                match ctx.propose(cmd).await {
                    Ok(MetaResult::Rejected { code, message }) => Err((code, message)),
                    Ok(_) => {
                        topics::wait_for_leaders(&ctx, &name, t.count, timeout).await;
                        Ok(())
                    }
                    Err(e) => Err((meta_error_code(&e), e.to_string())),
                }
            }
        };
        results.push(match outcome {
            Ok(()) => r,
            Err((c, m)) => r.with_error_code(c).with_error_message(Some(sb(m))),
        });
    }
    Some(CreatePartitionsResponse::default().with_results(results))
}
