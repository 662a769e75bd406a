//! Client quotas (Kafka's `ClientQuotaManager` model, no actix): quota values per entity (user
//! and/or client-id, a named entity or the `<default>` one) as stored in `__meta`; Kafka's
//! precedence for which entity's value applies to a (user, client-id) pair; and the throttle: a
//! per-client byte budget that refills at the quota rate (with one second of burst), from which
//! each request's `throttle_time_ms` follows. Time is passed in (milliseconds from an injected
//! clock), so the throttle is deterministic under test.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The quota keys chronik accepts (Kafka's names).
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
pub const QUOTA_KEYS: &[&str] = &[PRODUCER_BYTE_RATE, CONSUMER_BYTE_RATE, REQUEST_PERCENTAGE];
/// Entity types.
pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";

/// One part of an entity: its type and its name (`None`: the default entity of that type).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
pub struct EntityPart {
    #[prost(string, tag = "1")]
    pub entity_type: String,
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
}

/// A quota entity: its parts sorted by type (`client-id` before `user`).
pub type Entity = Vec<EntityPart>;

/// A quota value; compared by its bits so that `MetaState` stays `Eq`.
#[derive(Debug, Clone, Copy)]
pub struct Value(pub f64);

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Value {}

/// Quota values by entity, as `MetaState.client_quotas` holds them.
pub type QuotaSet = Arc<BTreeMap<Entity, BTreeMap<String, Value>>>;

/// One change of AlterClientQuotas, as the `__meta` command carries it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QuotaChange {
    #[prost(message, repeated, tag = "1")]
    pub entity: Vec<EntityPart>,
    #[prost(btree_map = "string, double", tag = "2")]
    pub set: BTreeMap<String, f64>,
    #[prost(string, repeated, tag = "3")]
    pub remove: Vec<String>,
}

/// Why an entity or a change is not acceptable (Kafka answers INVALID_REQUEST), or `None`.
pub fn invalid(change: &QuotaChange) -> Option<String> {
    let mut types: Vec<&str> = change.entity.iter().map(|p| p.entity_type.as_str()).collect();
    types.sort();
    match types.as_slice() {
        [USER] | [CLIENT_ID] | [CLIENT_ID, USER] => {}
        _ => return Some(format!("invalid quota entity {types:?}: user and/or client-id")),
    }
    for (k, v) in &change.set {
        if !QUOTA_KEYS.contains(&k.as_str()) {
            return Some(format!("unknown quota key {k:?}"));
        }
        if !(v.is_finite() && *v > 0.0) {
            return Some(format!("quota {k} must be a positive number, got {v}"));
        }
    }
    change.remove.iter().find(|k| !QUOTA_KEYS.contains(&k.as_str())).map(|k| format!("unknown quota key {k:?}"))
}

/// Sorts an entity's parts by type, the order `MetaState` keys use.
pub fn normalized(mut entity: Entity) -> Entity {
    entity.sort();
    entity
}

/// The set after AlterClientQuotas (valid changes only; an entity left without values goes).
pub fn with_changes(set: &QuotaSet, changes: &[QuotaChange]) -> QuotaSet {
    let mut next = (**set).clone();
    for c in changes.iter().filter(|c| invalid(c).is_none()) {
        let entity = normalized(c.entity.clone());
        let values = next.entry(entity.clone()).or_default();
        for k in &c.remove {
            values.remove(k);
        }
        values.extend(c.set.iter().map(|(k, v)| (k.clone(), Value(*v))));
        if values.is_empty() {
            next.remove(&entity);
        }
    }
    Arc::new(next)
}

fn part(t: &str, name: Option<&str>) -> EntityPart {
    EntityPart { entity_type: t.to_string(), name: name.map(str::to_string) }
}

/// The quota `key` that applies to `user` with `client_id`, in Kafka's precedence order:
/// user+client, user+default client, user, default user+client, default user+default client,
/// default user, client, default client.
pub fn quota_for(set: &QuotaSet, key: &str, user: &str, client_id: &str) -> Option<f64> {
    let (u, c) = (Some(user), Some(client_id));
    let order: [Entity; 8] = [
        vec![part(CLIENT_ID, c), part(USER, u)],
        vec![part(CLIENT_ID, None), part(USER, u)],
        vec![part(USER, u)],
        vec![part(CLIENT_ID, c), part(USER, None)],
        vec![part(CLIENT_ID, None), part(USER, None)],
        vec![part(USER, None)],
        vec![part(CLIENT_ID, c)],
        vec![part(CLIENT_ID, None)],
    ];
    order.iter().find_map(|e| set.get(e).and_then(|v| v.get(key)).map(|v| v.0))
}

/// The rate, in microseconds of thread time per second, that a `request_percentage` quota
/// allows: `percentage` % of one thread (Kafka's KIP-124; 100 = one whole thread). The request
/// budget is a [`Throttles`] budget in microseconds at this rate.
pub fn request_time_rate(percentage: f64) -> f64 {
    percentage * 10_000.0
}

/// Per-client byte budgets: each (quota key, user, client-id) may send `rate` bytes a second,
/// with up to one second of burst. A request that overdraws the budget is throttled for the time
/// the refill needs to bring it back to zero.
#[derive(Default)]
pub struct Throttles {
    budgets: Mutex<HashMap<(String, String, String), Budget>>,
}

#[derive(Debug, Clone, Copy)]
struct Budget {
    /// Bytes left (negative: overdrawn).
    tokens: f64,
    at_ms: u64,
}

/// The most clients tracked before idle ones are forgotten.
const MAX_TRACKED: usize = 100_000;

impl Throttles {
    /// Records `bytes` for the client at `now_ms` under `rate` bytes/s; returns how long (ms) the
    /// client must wait before the budget is back at zero (0: not throttled).
    pub fn record(&self, key: &str, user: &str, client_id: &str, rate: f64, bytes: u64, now_ms: u64) -> u64 {
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        if budgets.len() >= MAX_TRACKED {
            budgets.retain(|_, b| b.tokens < 0.0);
        }
        let b = budgets
            .entry((key.to_string(), user.to_string(), client_id.to_string()))
            .or_insert(Budget { tokens: rate, at_ms: now_ms });
        let elapsed = now_ms.saturating_sub(b.at_ms) as f64 / 1000.0;
        b.tokens = (b.tokens + elapsed * rate).min(rate) - bytes as f64;
        b.at_ms = now_ms.max(b.at_ms);
        if b.tokens >= 0.0 {
            0
        } else {
            ((-b.tokens / rate) * 1000.0).ceil() as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(entity: Vec<EntityPart>, set: &[(&str, f64)], remove: &[&str]) -> QuotaChange {
        QuotaChange {
            entity,
            set: set.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            remove: remove.iter().map(|k| k.to_string()).collect(),
        }
    }

    #[test]
    fn precedence_is_kafkas() {
        let empty: QuotaSet = Arc::default();
        let set = with_changes(
            &empty,
            &[
                change(vec![part(CLIENT_ID, None)], &[(PRODUCER_BYTE_RATE, 8.0)], &[]),
                change(vec![part(CLIENT_ID, Some("c"))], &[(PRODUCER_BYTE_RATE, 7.0)], &[]),
                change(vec![part(USER, None)], &[(PRODUCER_BYTE_RATE, 6.0)], &[]),
                change(vec![part(USER, Some("u"))], &[(PRODUCER_BYTE_RATE, 3.0)], &[]),
                change(vec![part(USER, Some("u")), part(CLIENT_ID, Some("c"))], &[(PRODUCER_BYTE_RATE, 1.0)], &[]),
            ],
        );
        assert_eq!(quota_for(&set, PRODUCER_BYTE_RATE, "u", "c"), Some(1.0));
        assert_eq!(quota_for(&set, PRODUCER_BYTE_RATE, "u", "other"), Some(3.0));
        assert_eq!(quota_for(&set, PRODUCER_BYTE_RATE, "v", "c"), Some(6.0), "default user before client");
        assert_eq!(quota_for(&set, CONSUMER_BYTE_RATE, "u", "c"), None);
        let only_clients = with_changes(
            &empty,
            &[
                change(vec![part(CLIENT_ID, None)], &[(PRODUCER_BYTE_RATE, 8.0)], &[]),
                change(vec![part(CLIENT_ID, Some("c"))], &[(PRODUCER_BYTE_RATE, 7.0)], &[]),
            ],
        );
        assert_eq!(quota_for(&only_clients, PRODUCER_BYTE_RATE, "x", "c"), Some(7.0));
        assert_eq!(quota_for(&only_clients, PRODUCER_BYTE_RATE, "x", "d"), Some(8.0));
        let removed =
            with_changes(&only_clients, &[change(vec![part(CLIENT_ID, Some("c"))], &[], &[PRODUCER_BYTE_RATE])]);
        assert_eq!(removed.len(), 1, "an entity without values is forgotten");
        assert_eq!(quota_for(&removed, PRODUCER_BYTE_RATE, "x", "c"), Some(8.0));
    }

    #[test]
    fn invalid_changes_are_refused_and_skipped() {
        assert!(invalid(&change(vec![part("ip", None)], &[(PRODUCER_BYTE_RATE, 1.0)], &[])).is_some());
        assert!(invalid(&change(vec![part(USER, None)], &[("bogus", 1.0)], &[])).is_some());
        assert!(invalid(&change(vec![part(USER, None)], &[(PRODUCER_BYTE_RATE, -1.0)], &[])).is_some());
        assert!(invalid(&change(vec![part(USER, None)], &[(PRODUCER_BYTE_RATE, f64::NAN)], &[])).is_some());
        let empty: QuotaSet = Arc::default();
        assert!(with_changes(&empty, &[change(vec![part("ip", None)], &[(PRODUCER_BYTE_RATE, 1.0)], &[])]).is_empty());
    }

    #[test]
    fn the_throttle_bounds_the_rate() {
        let t = Throttles::default();
        // 1000 B/s: a one-second burst is free, then each 500 B costs half a second.
        assert_eq!(t.record("p", "u", "c", 1000.0, 1000, 0), 0);
        assert_eq!(t.record("p", "u", "c", 1000.0, 500, 0), 500);
        // After waiting the throttle, the budget is back at zero; the next 500 B wait again.
        assert_eq!(t.record("p", "u", "c", 1000.0, 500, 500), 500);
        // Over a long run the client gets rate x time (+ one second of burst), whatever its pace.
        let (mut now, mut sent) = (10_000u64, 0u64);
        let t = Throttles::default();
        while now < 20_000 {
            let wait = t.record("p", "u", "c", 1000.0, 100, now);
            sent += 100;
            now += wait.max(1);
        }
        assert!(sent <= 1000 * 11, "sent {sent} in 10 s at 1000 B/s");
        assert!(sent >= 1000 * 9, "the throttle must not starve the client: {sent}");
        // Other clients have their own budgets.
        assert_eq!(t.record("p", "u", "other", 1000.0, 100, now), 0);
    }

    #[test]
    fn request_percentage_is_a_share_of_one_thread() {
        // 50 %: half a second of thread time per second, with one second's worth as burst.
        let rate = request_time_rate(50.0);
        assert_eq!(rate, 500_000.0);
        let t = Throttles::default();
        assert_eq!(t.record(REQUEST_PERCENTAGE, "u", "c", rate, 400_000, 0), 0);
        // 1.1 s of thread time at t = 0: 1 s over the 0.5 s budget, so 2 s at half a thread.
        assert_eq!(t.record(REQUEST_PERCENTAGE, "u", "c", rate, 1_100_000, 0), 2_000);
        // Muted for those 2 s, the client is back at zero; 1 ms of work then costs 2 ms.
        assert_eq!(t.record(REQUEST_PERCENTAGE, "u", "c", rate, 1_000, 2_000), 2);
        // Over a long run a busy client gets percentage x time (+ the burst), whatever its pace.
        let (t, mut now, mut busy) = (Throttles::default(), 0u64, 0u64);
        while now < 100_000 {
            // Each request keeps a thread busy for 3 ms.
            let wait = t.record(REQUEST_PERCENTAGE, "u", "c", request_time_rate(10.0), 3_000, now);
            busy += 3_000;
            now += 3 + wait;
        }
        let share = busy as f64 / (now as f64 * 1000.0);
        assert!((0.095..=0.11).contains(&share), "10 % of a thread, got {share}");
    }
}
