//! Offset expiry (`offsets.retention`, Kafka's `offsets.retention.minutes` with the rules of
//! KIP-211, as `ClassicGroup.offsetExpirationCondition` and `OffsetMetadataManager
//! .cleanupExpiredOffsets` apply them). A plain function of the `__meta` image, the live groups
//! and the time, so it is tested without actors; the coordinator's timer
//! (`offsets.retention-check-interval`) proposes what it returns.
//!
//! For each group with committed offsets:
//! - no protocol type (offsets committed outside any group protocol, "simple" consumers):
//!   each offset expires `retention` after its own commit;
//! - an Empty group with a protocol type: every offset expires `retention` after the group became
//!   Empty (`StoreGroup::state_timestamp`, stored when it did), or after its commit if that time
//!   is unknown;
//! - a Stable `consumer` group: offsets of topics it is not subscribed to expire `retention` after
//!   their commit; those of subscribed topics never do;
//! - any other group (rebalancing, or another protocol with members): nothing expires.
//!
//! An expiry is a `DeleteOffsets` whose entries carry their commit timestamp, so an offset
//! committed again between the check and the apply is kept. A group left without offsets and
//! without members is forgotten by `__meta`.

use std::collections::BTreeSet;

use bytes::Buf;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;

use crate::group::{GroupDescription, GroupState};
use crate::meta::command::{DeleteOffsets, OffsetRef, StoreGroup};
use crate::meta::MetaState;

/// The topics a consumer protocol subscription names (nothing for anything undecodable).
pub fn subscribed_topics(metadata: &[u8]) -> Vec<String> {
    let mut buf = metadata;
    if buf.len() < 2 {
        return Vec::new();
    }
    let version = buf.get_i16().clamp(0, 3);
    match ConsumerProtocolSubscription::decode(&mut buf, version) {
        Ok(s) => s.topics.iter().map(|t| t.as_str().to_string()).collect(),
        Err(_) => Vec::new(),
    }
}

/// What decides when a group's offsets expire.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// Each offset `retention` after its commit (simple consumers).
    ByCommit,
    /// Every offset `retention` after this time (ms), or after its commit when unknown (Empty).
    Since(Option<i64>),
    /// Offsets of other topics by their commit (a Stable consumer group).
    Unsubscribed(BTreeSet<String>),
    /// Nothing expires now.
    Keep,
}

fn rule(live: Option<&GroupDescription>, stored: Option<&StoreGroup>) -> Rule {
    let empty_since = stored.map(|s| s.state_timestamp).filter(|t| *t > 0);
    let Some(d) = live else {
        return match stored {
            None => Rule::ByCommit,
            Some(s) if s.protocol_type.is_empty() => Rule::ByCommit,
            Some(s) if s.members.is_empty() => Rule::Since(empty_since),
            Some(s) if s.protocol_type == "consumer" => {
                Rule::Unsubscribed(s.members.iter().flat_map(|m| subscribed_topics(&m.subscription)).collect())
            }
            Some(_) => Rule::Keep,
        };
    };
    match d.state {
        _ if d.protocol_type.is_empty() && d.members.is_empty() => Rule::ByCommit,
        GroupState::Empty | GroupState::Dead => Rule::Since(empty_since),
        GroupState::Stable if d.protocol_type == "consumer" => {
            let mut topics: BTreeSet<String> = d.members.iter().flat_map(|m| subscribed_topics(&m.metadata)).collect();
            if let Some(s) = stored {
                topics.extend(s.members.iter().flat_map(|m| subscribed_topics(&m.subscription)));
            }
            Rule::Unsubscribed(topics)
        }
        _ => Rule::Keep,
    }
}

/// The expiries due at `now_ms`: one `DeleteOffsets` per group with expired offsets.
/// `live(group)` is the coordinator's view of a group it has in memory.
pub fn expired(
    image: &MetaState,
    live: impl Fn(&str) -> Option<GroupDescription>,
    now_ms: i64,
    retention_ms: i64,
) -> Vec<DeleteOffsets> {
    let mut out = Vec::new();
    for (group, offsets) in &image.offsets {
        let rule = rule(live(group).as_ref(), image.consumer_groups.get(group).map(|g| &**g));
        let mut expired = Vec::new();
        for (topic, parts) in offsets.iter() {
            for (p, o) in parts {
                let base = match &rule {
                    Rule::Keep => None,
                    Rule::ByCommit => Some(o.commit_timestamp),
                    Rule::Since(t) => Some(t.unwrap_or(o.commit_timestamp)),
                    Rule::Unsubscribed(subscribed) => (!subscribed.contains(topic)).then_some(o.commit_timestamp),
                };
                if base.is_some_and(|b| now_ms.saturating_sub(b) >= retention_ms) {
                    expired.push(OffsetRef {
                        topic: topic.clone(),
                        partition: *p,
                        if_committed_at: Some(o.commit_timestamp),
                    });
                }
            }
        }
        if !expired.is_empty() {
            out.push(DeleteOffsets { group: group.clone(), offsets: expired });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::MemberDescription;
    use crate::meta::command::*;
    use bytes::{BufMut, Bytes, BytesMut};
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    const DAY: i64 = 24 * 3600 * 1000;
    const RETENTION: i64 = 7 * DAY;

    fn subscription(topics: &[&str]) -> Bytes {
        let s = ConsumerProtocolSubscription::default()
            .with_topics(topics.iter().map(|t| StrBytes::from_string(t.to_string())).collect());
        let mut b = BytesMut::new();
        b.put_i16(1);
        s.encode(&mut b, 1).unwrap();
        b.freeze()
    }

    fn state() -> MetaState {
        let mut s = MetaState::new();
        s.apply(&MetaCommand::new(Cmd::RegisterBroker(RegisterBroker {
            node_id: 1,
            host: "h".into(),
            port: 1,
            cluster_id: "c".into(),
            admin: None,
            listeners: Default::default(),
            rack: None,
        })));
        for t in ["a", "b"] {
            s.apply(&MetaCommand::new(Cmd::CreateTopic(CreateTopic {
                name: t.into(),
                topic_id: vec![1; 16],
                partitions: 2,
                replication_factor: 1,
                configs: Default::default(),
                assignment: Vec::new(),
                placement: 0,
            })));
        }
        s
    }

    fn commit(s: &mut MetaState, group: &str, topic: &str, p: i32, at: i64) {
        s.apply(&MetaCommand::new(Cmd::CommitOffsets(CommitOffsets {
            group: group.into(),
            offsets: vec![OffsetEntry { topic: topic.into(), partition: p, offset: 1, ..Default::default() }],
            commit_timestamp: at,
        })));
    }

    fn refs(d: &[DeleteOffsets], group: &str) -> Vec<(String, i32)> {
        d.iter()
            .filter(|d| d.group == group)
            .flat_map(|d| d.offsets.iter().map(|o| (o.topic.clone(), o.partition)))
            .collect()
    }

    fn none(_: &str) -> Option<GroupDescription> {
        None
    }

    #[test]
    fn simple_commits_expire_by_their_own_commit_time() {
        let mut s = state();
        commit(&mut s, "simple", "a", 0, 0);
        commit(&mut s, "simple", "a", 1, 2 * DAY);
        assert!(expired(&s, none, RETENTION - 1, RETENTION).is_empty());
        let d = expired(&s, none, RETENTION, RETENTION);
        assert_eq!(refs(&d, "simple"), vec![("a".to_string(), 0)]);
        assert_eq!(d[0].offsets[0].if_committed_at, Some(0), "guarded by the commit time");
        assert_eq!(refs(&expired(&s, none, 9 * DAY, RETENTION), "simple").len(), 2);
    }

    #[test]
    fn an_empty_group_expires_everything_retention_after_it_became_empty() {
        let mut s = state();
        commit(&mut s, "g", "a", 0, 0);
        commit(&mut s, "g", "b", 0, 5 * DAY);
        let stored = StoreGroup {
            group: "g".into(),
            protocol_type: "consumer".into(),
            generation: 3,
            state_timestamp: 6 * DAY,
            ..Default::default()
        };
        s.apply(&MetaCommand::new(Cmd::StoreGroup(stored)));
        // Offsets older than the retention stay while the group has not been empty that long.
        assert!(expired(&s, none, 12 * DAY, RETENTION).is_empty());
        assert_eq!(refs(&expired(&s, none, 13 * DAY, RETENTION), "g").len(), 2);
        // The coordinator's in-memory view says Empty too.
        let live = |_: &str| {
            Some(GroupDescription {
                group_id: "g".into(),
                state: GroupState::Empty,
                protocol_type: "consumer".into(),
                protocol: String::new(),
                members: vec![],
            })
        };
        assert_eq!(refs(&expired(&s, live, 13 * DAY, RETENTION), "g").len(), 2);
    }

    #[test]
    fn a_stable_consumer_group_keeps_offsets_of_subscribed_topics() {
        let mut s = state();
        commit(&mut s, "g", "a", 0, 0);
        commit(&mut s, "g", "b", 0, 0);
        let member = |metadata| MemberDescription {
            member_id: "m".into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "h".into(),
            metadata,
            assignment: Bytes::new(),
        };
        let stable = |_: &str| {
            Some(GroupDescription {
                group_id: "g".into(),
                state: GroupState::Stable,
                protocol_type: "consumer".into(),
                protocol: "range".into(),
                members: vec![member(subscription(&["a"]))],
            })
        };
        assert_eq!(refs(&expired(&s, stable, 30 * DAY, RETENTION), "g"), vec![("b".to_string(), 0)]);
        let rebalancing = |_: &str| {
            Some(GroupDescription {
                group_id: "g".into(),
                state: GroupState::PreparingRebalance,
                protocol_type: "consumer".into(),
                protocol: String::new(),
                members: vec![member(Bytes::new())],
            })
        };
        assert!(expired(&s, rebalancing, 30 * DAY, RETENTION).is_empty(), "nothing expires while rebalancing");
        // A restarted coordinator without the group in memory reads the stored members.
        let stored = StoreGroup {
            group: "g".into(),
            protocol_type: "consumer".into(),
            members: vec![StoredMember {
                member_id: "m".into(),
                subscription: subscription(&["b"]),
                ..Default::default()
            }],
            ..Default::default()
        };
        s.apply(&MetaCommand::new(Cmd::StoreGroup(stored)));
        assert_eq!(refs(&expired(&s, none, 30 * DAY, RETENTION), "g"), vec![("a".to_string(), 0)]);
    }

    #[test]
    fn an_expiry_spares_a_newer_commit_and_forgets_an_empty_group() {
        let mut s = state();
        commit(&mut s, "g", "a", 0, 0);
        s.apply(&MetaCommand::new(Cmd::StoreGroup(StoreGroup {
            group: "g".into(),
            protocol_type: "consumer".into(),
            ..Default::default()
        })));
        let due = expired(&s, none, RETENTION, RETENTION);
        commit(&mut s, "g", "a", 0, RETENTION - 5);
        s.apply(&MetaCommand::new(Cmd::DeleteOffsets(due[0].clone())));
        assert!(s.committed("g", "a", 0).is_some(), "committed again meanwhile: kept");
        let due = expired(&s, none, 2 * RETENTION, RETENTION);
        s.apply(&MetaCommand::new(Cmd::DeleteOffsets(due[0].clone())));
        assert!(!s.offsets.contains_key("g") && !s.consumer_groups.contains_key("g"), "the empty group is gone");
    }

    #[test]
    fn subscriptions_are_read_at_every_version_and_garbage_is_empty() {
        for v in 0..=3i16 {
            let s = ConsumerProtocolSubscription::default()
                .with_topics(vec![StrBytes::from_static_str("a"), StrBytes::from_static_str("b")]);
            let mut buf = bytes::BytesMut::new();
            buf.put_i16(v);
            s.encode(&mut buf, v).unwrap();
            assert_eq!(subscribed_topics(&buf), vec!["a", "b"], "v{v}");
        }
        assert!(subscribed_topics(&[]).is_empty());
        assert!(subscribed_topics(&[0, 0, 0xff]).is_empty());
    }
}
