//! DeleteTopics (key 20): removes topics through `__meta`; each node then stops the topic's
//! partition groups and deletes their data.

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, RequestHeader, TopicName};
use uuid::Uuid;

use super::{meta_error_code, sb, BrokerCtx};
use crate::error::code;
use crate::meta::command::{Cmd, DeleteTopic, MetaCommand};
use crate::meta::state::MetaResult;
use crate::security::acl::Operation;

pub async fn handle(ctx: Arc<BrokerCtx>, h: RequestHeader, req: DeleteTopicsRequest) -> Option<DeleteTopicsResponse> {
    let image = ctx.image();
    let targets: Vec<(Option<String>, Uuid)> = if h.request_api_version >= 6 {
        req.topics.iter().map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)).collect()
    } else {
        req.topic_names.iter().map(|n| (Some(n.0.to_string()), Uuid::nil())).collect()
    };
    let (v5, v6) = (h.request_api_version >= 5, h.request_api_version >= 6);
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let name =
            name.or_else(|| image.topics.iter().find(|(_, t)| Uuid::from_bytes(t.id) == id).map(|(n, _)| n.clone()));
        let mut r = DeletableTopicResult::default().with_topic_id(if v6 { id } else { Uuid::nil() });
        let Some(name) = name else {
            responses.push(r.with_error_code(code::UNKNOWN_TOPIC_ID));
            continue;
        };
        r.name = Some(TopicName(sb(name.clone())));
        if let (Some(t), true) = (image.topics.get(&name), v6) {
            r.topic_id = Uuid::from_bytes(t.id);
        }
        if let Err(denied) = ctx.check_topic(Operation::Delete, &name) {
            responses.push(r.with_error_code(denied));
            continue;
        } else if super::internal_topic::is_internal(&name) {
            let msg = format!("Deletion of internal topic {name} is prohibited.");
            responses.push(r.with_error_code(code::INVALID_REQUEST).with_error_message(v5.then(|| sb(msg))));
            continue;
        }
        let cmd = MetaCommand::new(Cmd::DeleteTopic(DeleteTopic { name }));
        r = match ctx.propose(cmd).await {
            Ok(MetaResult::Rejected { code, message }) => {
                r.with_error_code(code).with_error_message(v5.then(|| sb(message)))
            }
            Ok(_) => r,
            Err(e) => r.with_error_code(meta_error_code(&e)).with_error_message(v5.then(|| sb(e.to_string()))),
        };
        responses.push(r);
    }
    Some(DeleteTopicsResponse::default().with_responses(responses))
}
