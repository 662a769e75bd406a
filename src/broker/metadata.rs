//! Metadata (key 3): brokers, the controller, and topics with their partitions' leaders,
//! epochs (the Raft term) and replicas. Unknown topics are created when auto-creation is on and
//! the request allows it. `__consumer_offsets` is listed as an internal topic
//! (`broker/internal_topic.rs`).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, RequestHeader, TopicName};
use uuid::Uuid;

use super::groups::ask;
use super::internal_topic;
use super::topics::{self, NewTopic};
use super::{sb, BrokerCtx};
use crate::error::code;
use crate::group::GroupMsg;
use crate::meta::state::valid_topic_name;
use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};

pub async fn handle(ctx: Arc<BrokerCtx>, h: RequestHeader, req: MetadataRequest) -> Option<MetadataResponse> {
    let version = h.request_api_version;
    let image = ctx.image();
    // Which topics: None (or an empty list before v1) means all.
    let requested: Option<Vec<(Option<String>, Uuid)>> = match &req.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t.iter().map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)).collect()),
    };
    let auto_create = ctx.settings.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    let mut names: Vec<(String, Option<i16>)> = Vec::new();
    match requested {
        // All topics: those the principal may describe (the rest are hidden, as in Kafka), and
        // the internal offsets topic.
        None => {
            names.extend(
                image
                    .topics
                    .keys()
                    .filter(|n| ctx.visible(Operation::Describe, ResourceType::Topic, n))
                    .map(|n| (n.clone(), None)),
            );
            if ctx.visible(Operation::Describe, ResourceType::Topic, internal_topic::CONSUMER_OFFSETS) {
                names.push((internal_topic::CONSUMER_OFFSETS.to_string(), None));
            }
        }
        Some(list) => {
            for (name, id) in list {
                let name = match name {
                    Some(n) => n,
                    None => match image.topics.iter().find(|(_, t)| Uuid::from_bytes(t.id) == id) {
                        Some((n, _)) => n.clone(),
                        None => {
                            names.push((String::new(), Some(code::UNKNOWN_TOPIC_ID)));
                            continue;
                        }
                    },
                };
                if let Err(denied) = ctx.check_topic(Operation::Describe, &name) {
                    names.push((name, Some(denied)));
                } else if image.topics.contains_key(&name) || internal_topic::is_internal(&name) {
                    names.push((name, None));
                } else if !valid_topic_name(&name) {
                    names.push((name, Some(code::INVALID_TOPIC_EXCEPTION)));
                } else if let (true, Err(denied)) = (auto_create, ctx.check_create_topic(&name)) {
                    names.push((name, Some(denied)));
                } else if auto_create {
                    let t = NewTopic {
                        name: name.clone(),
                        partitions: -1,
                        replication_factor: -1,
                        configs: Default::default(),
                        assignment: Vec::new(),
                    };
                    match topics::create(&ctx, t, Duration::from_secs(10)).await {
                        Ok(_) => names.push((name, None)),
                        Err((c, _)) if c == code::TOPIC_ALREADY_EXISTS => names.push((name, None)),
                        Err((c, msg)) => {
                            slog::warn!(ctx.logger, "auto-create failed"; "topic" => &name, "error" => msg);
                            names.push((name, Some(c)))
                        }
                    }
                } else {
                    names.push((name, Some(code::UNKNOWN_TOPIC_OR_PARTITION)));
                }
            }
        }
    }
    let image = ctx.image();
    let table = ctx.partition_table();
    let coordinator = if names.iter().any(|(n, _)| internal_topic::is_internal(n)) {
        ask(&ctx, |reply| GroupMsg::Coordinator { reply }).await.map_or(0, |(leader, _)| leader)
    } else {
        0
    };
    let topics =
        names
            .into_iter()
            .map(|(name, err)| {
                let mut t = MetadataResponseTopic::default().with_name(Some(TopicName(sb(name.clone()))));
                if let Some(c) = err {
                    return t.with_error_code(c);
                }
                if internal_topic::is_internal(&name) {
                    return internal_topic::metadata_topic(&image, coordinator, version);
                }
                let Some(info) = image.topics.get(&name) else {
                    return t.with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION);
                };
                if version >= 10 {
                    t.topic_id = Uuid::from_bytes(info.id);
                }
                if version >= 8 && req.include_topic_authorized_operations {
                    t.topic_authorized_operations = ctx.authorized_operations(ResourceType::Topic, &name);
                }
                t.partitions =
                    info.partitions
                        .iter()
                        .enumerate()
                        .map(|(i, p)| {
                            let replicas: Vec<BrokerId> = p.replicas.iter().map(|r| BrokerId(*r as i32)).collect();
                            let (leader, epoch) = topics::leader_of(&ctx, &image, &name, i as i32).unwrap_or((0, 0));
                            // The leader knows who is in contact; elsewhere every replica is listed.
                            let isr = table
                                .get(&name)
                                .and_then(|ps| ps.get(&(i as i32)))
                                .map(|h| h.shared.in_sync())
                                .filter(|isr| !isr.is_empty())
                                .map(|isr| isr.into_iter().map(|r| BrokerId(r as i32)).collect())
                                .unwrap_or_else(|| replicas.clone());
                            let mut part = MetadataResponsePartition::default()
                                .with_partition_index(i as i32)
                                .with_replica_nodes(replicas)
                                .with_isr_nodes(isr);
                            if leader == 0 {
                                part = part
                                    .with_error_code(code::LEADER_NOT_AVAILABLE)
                                    .with_leader_id(BrokerId(-1))
                                    .with_leader_epoch(-1);
                            } else {
                                part = part
                                    .with_leader_id(BrokerId(leader as i32))
                                    .with_leader_epoch(if version >= 7 { epoch as i32 } else { -1 });
                            }
                            part
                        })
                        .collect();
                t
            })
            .collect();
    // Each client is told the addresses of the listener it came in on.
    let listener = crate::security::principal::current().listener.clone();
    let brokers = image
        .brokers
        .iter()
        .filter_map(|(id, b)| {
            let (host, port) = b.endpoint(&listener)?;
            let broker = MetadataResponseBroker::default()
                .with_node_id(BrokerId(*id as i32))
                .with_host(sb(host))
                .with_port(port);
            // The rack is a field from v1.
            Some(if version >= 1 { broker.with_rack(b.rack.clone().map(sb)) } else { broker })
        })
        .collect();
    let mut resp = MetadataResponse::default();
    if (8..=10).contains(&version) && req.include_cluster_authorized_operations {
        resp.cluster_authorized_operations = ctx.authorized_operations(ResourceType::Cluster, CLUSTER_NAME);
    }
    Some(
        resp.with_brokers(brokers)
            .with_cluster_id((version >= 2).then(|| sb(image.cluster_id.clone())))
            .with_controller_id(BrokerId(if version >= 1 { ctx.controller_id(&image) } else { -1 }))
            .with_topics(topics),
    )
}
