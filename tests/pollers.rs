//! In-process tests of the poller threads (`raft/pollers.rs`, `raft.threads`): a node's
//! partition groups run on more than one thread, each group on the poller its id picks, and the
//! `chronik_poller_groups` gauge counts them.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use common::{create_topic, start_node, test_config, Client, TestNode};

/// (group, thread) of every started partition of `topic`, once `n` of them have started.
fn threads_of(node: &TestNode, topic: &str, n: usize) -> BTreeMap<u64, std::thread::ThreadId> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let table = node.partitions.borrow().clone();
        let placed: BTreeMap<u64, std::thread::ThreadId> = table
            .get(topic)
            .map(|ps| ps.values().filter_map(|h| h.shared.thread().map(|t| (h.group, t))).collect())
            .unwrap_or_default();
        if placed.len() == n {
            return placed;
        }
        assert!(Instant::now() < deadline, "{} of {n} partitions of {topic} started", placed.len());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn groups_run_on_the_poller_their_id_picks() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.raft.threads = 3;
    let node = start_node(config);
    let mut c = Client::connect(node.addr);
    create_topic(&mut c, "spread", 9, 1, &[]);
    let placed = threads_of(&node, "spread", 9);

    // Three pollers, none of them the test's thread; groups with the same id modulo 3 share
    // one, and groups with different remainders never do.
    let threads: HashSet<_> = placed.values().collect();
    assert_eq!(threads.len(), 3, "{placed:?}");
    assert!(!threads.contains(&std::thread::current().id()));
    for (g, t) in &placed {
        for (h, u) in &placed {
            assert_eq!(g % 3 == h % 3, t == u, "groups {g} and {h}: {placed:?}");
        }
    }

    // The gauge: three groups on each poller.
    let text = chronik::metrics::render_node(1);
    let per_poller: Vec<&str> = text.lines().filter(|l| l.starts_with("chronik_poller_groups{")).collect();
    assert_eq!(per_poller.len(), 3, "{text}");
    for l in per_poller {
        assert!(l.ends_with(" 3"), "{l}");
    }
}
