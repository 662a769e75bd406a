//! CreatePartitions (key 37): grows a topic's partition count through `__meta`.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, RequestHeader};

use super::{meta_error_code, sb, topics, BrokerCtx};
use crate::error::code;
use crate::meta::command::{Cmd, CreatePartitions, MetaCommand};
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
            Some(_) if t.assignments.as_ref().is_some_and(|a| !a.is_empty()) => {
                Err((code::INVALID_REQUEST, "manual replica assignment is not supported".to_string()))
            }
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
            Some(_) => Ok(()),
        };
        let outcome = match check {
            Err(e) => Err(e),
            Ok(()) if req.validate_only => Ok(()),
            Ok(()) => {
                let cmd = MetaCommand::new(Cmd::CreatePartitions(CreatePartitions {
                    name: name.clone(),
                    total: t.count as u32,
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
