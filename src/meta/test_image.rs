//! Test fixture (compiled for tests only): a metadata image with registered brokers and one
//! topic, built by applying the same commands a cluster applies. Shared by the unit tests of the
//! balancer, the assignments and the ElectLeaders handler.

use crate::meta::command::{Cmd, CreateTopic, MetaCommand, RegisterBroker};
use crate::meta::state::MetaState;

/// Brokers 1..=racks.len() (each with its rack, if any) and topic `t` with `partitions`
/// partitions at replication factor `rf`, placed by the state machine.
pub fn image(racks: &[Option<&str>], partitions: u32, rf: u32) -> MetaState {
    image_placed(racks, partitions, rf, crate::meta::state::PLACEMENT_CONSECUTIVE)
}

/// The same with the given placement (`state::PLACEMENT_*`).
pub fn image_placed(racks: &[Option<&str>], partitions: u32, rf: u32, placement: u32) -> MetaState {
    let mut s = MetaState::new();
    for (i, rack) in racks.iter().enumerate() {
        s.apply(&MetaCommand::new(Cmd::RegisterBroker(RegisterBroker {
            node_id: i as u64 + 1,
            host: "h".into(),
            port: 9092,
            rack: rack.map(str::to_string),
            ..Default::default()
        })));
    }
    s.apply(&MetaCommand::new(Cmd::CreateTopic(CreateTopic {
        name: "t".into(),
        topic_id: vec![1; 16],
        partitions,
        replication_factor: rf,
        placement,
        ..Default::default()
    })));
    s
}
