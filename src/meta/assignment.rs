//! Manual replica assignments (CreateTopics `assignments`, CreatePartitions `assignments`,
//! `kafka-topics.sh --replica-assignment`): Kafka's checks and messages
//! (`ReplicationControlManager.createTopic`, `createPartitions`,
//! `validateManualPartitionAssignment`), used by the handlers before proposing and by
//! `MetaState::apply` again when the command applies (against the brokers registered then, so
//! every replica decides the same). The first broker of a partition's list is its preferred
//! leader and campaigns first. Its tests also cover the automatic placement over racks
//! (`MetaState::rack_alternated`).

use std::collections::BTreeMap;

use crate::error::code;

/// A refused assignment: Kafka error code and message.
pub type AssignmentError = (i16, String);

fn invalid(message: String) -> AssignmentError {
    (code::INVALID_REPLICA_ASSIGNMENT, message)
}

/// Kafka's `validateManualPartitionAssignment`: not empty, every broker registered, none twice,
/// and (when given) as many replicas as `replication_factor`. Returns the replicas as node ids.
pub fn validate_replicas<V>(
    brokers: &BTreeMap<u64, V>,
    replicas: &[i32],
    replication_factor: Option<usize>,
) -> Result<Vec<u64>, AssignmentError> {
    if replicas.is_empty() {
        return Err(invalid("The manual partition assignment includes an empty replica list.".into()));
    }
    let mut sorted = replicas.to_vec();
    sorted.sort_unstable();
    let mut prev = None;
    for &b in &sorted {
        if !u64::try_from(b).is_ok_and(|id| brokers.contains_key(&id)) {
            return Err(invalid(format!(
                "The manual partition assignment includes broker {b}, but no such broker is registered."
            )));
        }
        if prev == Some(b) {
            return Err(invalid(format!("The manual partition assignment includes the broker {b} more than once.")));
        }
        prev = Some(b);
    }
    if let Some(rf) = replication_factor.filter(|rf| *rf != sorted.len()) {
        return Err(invalid(format!(
            "The manual partition assignment includes a partition with {} replica(s), but this is not consistent \
             with previous partitions, which have {rf} replica(s).",
            sorted.len()
        )));
    }
    Ok(replicas.iter().map(|b| *b as u64).collect())
}

/// CreateTopics: `(partition index, broker ids)` pairs in request order. Kafka's checks: no
/// partition twice, each replica list valid and of the first one's length, indexes 0..n-1.
/// Returns the replicas by partition.
pub fn for_new_topic<V>(
    brokers: &BTreeMap<u64, V>,
    assignments: &[(i32, Vec<i32>)],
) -> Result<Vec<Vec<u64>>, AssignmentError> {
    let mut parts: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
    let mut rf = None;
    for (p, replicas) in assignments {
        if parts.contains_key(p) {
            return Err(invalid(format!("Found multiple manual partition assignments for partition {p}")));
        }
        parts.insert(*p, validate_replicas(brokers, replicas, rf)?);
        rf = Some(replicas.len());
    }
    if parts.keys().copied().ne(0..parts.len() as i32) {
        return Err(invalid("partitions should be a consecutive 0-based integer sequence".into()));
    }
    Ok(parts.into_values().collect())
}

/// CreatePartitions: the replica lists of the `additional` new partitions, each with the
/// topic's replication factor.
pub fn for_new_partitions<V>(
    brokers: &BTreeMap<u64, V>,
    assignments: &[Vec<i32>],
    additional: usize,
    replication_factor: usize,
) -> Result<Vec<Vec<u64>>, AssignmentError> {
    if assignments.len() != additional {
        return Err(invalid(format!(
            "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
            assignments.len()
        )));
    }
    assignments.iter().map(|r| validate_replicas(brokers, r, Some(replication_factor))).collect()
}

/// The same checks on replica lists as node ids (applying a command from the log).
pub fn check_lists<V>(
    brokers: &BTreeMap<u64, V>,
    lists: &[Vec<u64>],
    replication_factor: Option<usize>,
) -> Result<(), AssignmentError> {
    let mut rf = replication_factor;
    for replicas in lists {
        let ids: Vec<i32> = replicas.iter().map(|b| i32::try_from(*b).unwrap_or(-1)).collect();
        validate_replicas(brokers, &ids, rf)?;
        rf = Some(replicas.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brokers() -> BTreeMap<u64, ()> {
        [(1, ()), (2, ()), (3, ())].into()
    }

    fn code_of<T: std::fmt::Debug>(r: Result<T, AssignmentError>) -> (i16, String) {
        r.expect_err("refused")
    }

    #[test]
    fn valid_assignments_keep_their_order() {
        let b = brokers();
        let a = [(0, vec![1, 2]), (1, vec![2, 3]), (2, vec![3, 1])];
        assert_eq!(for_new_topic(&b, &a).unwrap(), vec![vec![1, 2], vec![2, 3], vec![3, 1]]);
        let shuffled = [(1, vec![2, 3]), (0, vec![3, 1])];
        assert_eq!(for_new_topic(&b, &shuffled).unwrap(), vec![vec![3, 1], vec![2, 3]]);
        assert_eq!(for_new_partitions(&b, &[vec![3, 2, 1]], 1, 3).unwrap(), vec![vec![3, 2, 1]]);
        assert!(check_lists(&b, &[vec![1], vec![2]], None).is_ok());
    }

    #[test]
    fn kafkas_codes_and_messages() {
        let b = brokers();
        let e = code_of(for_new_topic(&b, &[(0, vec![1, 9])]));
        assert_eq!(e.0, code::INVALID_REPLICA_ASSIGNMENT);
        assert_eq!(e.1, "The manual partition assignment includes broker 9, but no such broker is registered.");
        let e = code_of(for_new_topic(&b, &[(0, vec![1, 1])]));
        assert_eq!(e, (39, "The manual partition assignment includes the broker 1 more than once.".into()));
        let e = code_of(for_new_topic(&b, &[(0, vec![1, 2]), (1, vec![3])]));
        assert_eq!(
            e.1,
            "The manual partition assignment includes a partition with 1 replica(s), but this is not consistent \
             with previous partitions, which have 2 replica(s)."
        );
        let e = code_of(for_new_topic(&b, &[(0, vec![1]), (0, vec![2])]));
        assert_eq!(e.1, "Found multiple manual partition assignments for partition 0");
        for gap in [vec![(1, vec![1])], vec![(0, vec![1]), (2, vec![2])], vec![(-1, vec![1])]] {
            let e = code_of(for_new_topic(&b, &gap));
            assert_eq!(e, (39, "partitions should be a consecutive 0-based integer sequence".into()), "{gap:?}");
        }
        let e = code_of(for_new_topic(&b, &[(0, vec![])]));
        assert_eq!(e.1, "The manual partition assignment includes an empty replica list.");
        assert_eq!(code_of(for_new_topic(&b, &[(0, vec![-3])])).0, 39);
        let e = code_of(for_new_partitions(&b, &[vec![1, 2]], 2, 2));
        assert_eq!(e.1, "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified.");
        let e = code_of(for_new_partitions(&b, &[vec![1, 2]], 1, 3));
        assert_eq!(e.0, 39);
        assert_eq!(code_of(check_lists(&b, &[vec![1], vec![4]], None)).0, 39);
        assert_eq!(code_of(check_lists(&b, &[vec![u64::MAX]], None)).0, 39);
    }

    #[test]
    fn the_state_machine_places_manual_assignments_and_old_entries_as_before() {
        use crate::meta::command::{Cmd, CreatePartitions, CreateTopic, MetaCommand, RegisterBroker, ReplicaList};
        use crate::meta::state::{MetaResult, MetaState};
        let mut s = MetaState::new();
        for id in 1..=3 {
            s.apply(&MetaCommand::new(Cmd::RegisterBroker(RegisterBroker {
                node_id: id,
                host: "h".into(),
                port: 9092,
                ..Default::default()
            })));
        }
        let lists = |v: &[&[u64]]| v.iter().map(|b| ReplicaList { brokers: b.to_vec() }).collect::<Vec<_>>();
        let create = |name: &str, a: Vec<ReplicaList>| {
            MetaCommand::new(Cmd::CreateTopic(CreateTopic {
                name: name.into(),
                topic_id: vec![7; 16],
                partitions: a.len().max(2) as u32,
                replication_factor: a.first().map_or(2, |r| r.brokers.len() as u32),
                assignment: a,
                ..Default::default()
            }))
        };
        assert_eq!(s.apply(&create("m", lists(&[&[1, 2], &[2, 3], &[3, 1]]))), MetaResult::Done);
        let replicas: Vec<_> = s.topics["m"].partitions.iter().map(|p| p.replicas.clone()).collect();
        assert_eq!(replicas, vec![vec![1, 2], vec![2, 3], vec![3, 1]]);
        // An entry written before assignments existed decodes without one and is placed as before.
        let old = create("auto", Vec::new()).encode_to_vec();
        let decoded = MetaCommand::decode(old.as_slice()).unwrap();
        let mut t = s.clone();
        t.apply(&decoded);
        assert_eq!(t.topics["auto"].partitions.len(), 2);
        let mut before = s.clone();
        before.apply(&MetaCommand::new(Cmd::CreateTopic(CreateTopic {
            name: "auto".into(),
            topic_id: vec![7; 16],
            partitions: 2,
            replication_factor: 2,
            ..Default::default()
        })));
        assert_eq!(t, before);
        // A broker that left before the command applied: refused, nothing changed.
        let mut gone = s.clone();
        gone.brokers.remove(&3);
        let r = gone.apply(&create("x", lists(&[&[1, 3]])));
        assert!(matches!(r, MetaResult::Rejected { code: 39, .. }), "{r:?}");
        assert!(!gone.topics.contains_key("x"));
        // CreatePartitions: only the new partitions, with the topic's replication factor.
        let grow = |total: u32, a: Vec<ReplicaList>| {
            MetaCommand::new(Cmd::CreatePartitions(CreatePartitions {
                name: "m".into(),
                total,
                assignment: a,
                placement: 0,
            }))
        };
        assert!(matches!(s.apply(&grow(5, lists(&[&[2, 1]]))), MetaResult::Rejected { code: 39, .. }));
        assert!(matches!(s.apply(&grow(4, lists(&[&[2, 1, 3]]))), MetaResult::Rejected { code: 39, .. }));
        assert_eq!(s.apply(&grow(5, lists(&[&[2, 1], &[1, 3]]))), MetaResult::Done);
        let replicas: Vec<_> = s.topics["m"].partitions.iter().map(|p| p.replicas.clone()).collect();
        assert_eq!(replicas[3..], [vec![2, 1], vec![1, 3]]);
        assert_eq!(s.apply(&grow(6, Vec::new())), MetaResult::Done, "without an assignment: placed");
        assert_eq!(s.topics["m"].partitions[5].replicas.len(), 2);
    }

    #[test]
    fn placement_spreads_replicas_over_racks_and_is_unchanged_without_racks() {
        use crate::meta::state::rack_alternated;
        let state = |racks: &[Option<&str>]| crate::meta::test_image::image(racks, 8, 2);
        // Without racks: consecutive ids, as entries written before racks were placed.
        let plain = state(&[None, None, None, None]);
        assert_eq!(rack_alternated(&plain.brokers), vec![1, 2, 3, 4]);
        let lists: Vec<_> = plain.topics["t"].partitions.iter().map(|p| p.replicas.clone()).collect();
        assert_eq!(lists[..4], [vec![1, 2], vec![2, 3], vec![3, 4], vec![4, 1]]);
        // Racks a = {1, 2}, b = {3, 4}: one of each rack in turn; every partition spans both.
        let racked = state(&[Some("a"), Some("a"), Some("b"), Some("b")]);
        assert_eq!(rack_alternated(&racked.brokers), vec![1, 3, 2, 4]);
        for p in &racked.topics["t"].partitions {
            let racks: std::collections::BTreeSet<_> =
                p.replicas.iter().map(|b| racked.brokers[b].rack.clone()).collect();
            assert_eq!(racks.len(), 2, "{:?}", p.replicas);
        }
        // Preferred leaders still spread evenly: each broker first of two of the 8 partitions.
        let mut firsts = [0; 4];
        for p in &racked.topics["t"].partitions {
            firsts[p.replicas[0] as usize - 1] += 1;
        }
        assert_eq!(firsts, [2, 2, 2, 2]);
        // Uneven racks: a = {1, 2}, b = {3}: every RF 2 partition still spans both.
        let uneven = state(&[Some("a"), Some("a"), Some("b")]);
        for p in &uneven.topics["t"].partitions {
            let racks: std::collections::BTreeSet<_> =
                p.replicas.iter().map(|b| uneven.brokers[b].rack.clone()).collect();
            assert_eq!(racks.len(), 2, "{:?}", p.replicas);
        }
        // Uneven racks and a broker without one.
        assert_eq!(rack_alternated(&state(&[Some("a"), Some("a"), Some("a"), Some("b")]).brokers), vec![1, 4, 2, 3]);
        assert_eq!(rack_alternated(&state(&[Some("a"), None, Some("b")]).brokers), vec![2, 1, 3]);
    }

    #[test]
    fn the_replica_shift_spreads_each_brokers_followers_over_every_other_broker() {
        use crate::meta::state::PLACEMENT_SHIFTED;
        use std::collections::{BTreeMap, BTreeSet};
        let s = crate::meta::test_image::image_placed(&[None; 5], 20, 3, PLACEMENT_SHIFTED);
        let lists: Vec<_> = s.topics["t"].partitions.iter().map(|p| p.replicas.clone()).collect();
        // Kafka's `assignReplicasToBrokersRackUnaware` with start index 0 and shift 0: the
        // shift grows each time the partitions go round the five brokers.
        assert_eq!(
            lists[..6],
            [vec![1, 2, 3], vec![2, 3, 4], vec![3, 4, 5], vec![4, 5, 1], vec![5, 1, 2], vec![1, 3, 4]]
        );
        assert_eq!(lists[10], vec![1, 4, 5]);
        assert_eq!(lists[15], vec![1, 5, 2]);
        let (mut led, mut held) = (BTreeMap::new(), BTreeMap::new());
        let mut followers: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
        for r in &lists {
            *led.entry(r[0]).or_insert(0) += 1;
            r.iter().for_each(|b| *held.entry(*b).or_insert(0) += 1);
            followers.entry(r[0]).or_default().extend(&r[1..]);
        }
        assert!(led.values().all(|n| *n == 4) && held.values().all(|n| *n == 12), "{led:?} {held:?}");
        // When a broker dies, its partitions' next leaders are every other broker.
        assert!(followers.iter().all(|(b, f)| f.len() == 4 && !f.contains(b)), "{followers:?}");
        // Entries written before the shift still place as they did.
        let old = crate::meta::test_image::image(&[None; 5], 20, 3);
        assert_eq!(old.topics["t"].partitions[5].replicas, vec![1, 2, 3]);
    }
}
