//! The node: starts every actor of one chronik process and keeps partition groups in step with
//! the metadata.
//!
//! [`start`] builds, in order: the disk writer (with its syncer), the ticker, the poller threads (`raft::pollers`), the metadata actor (`__meta`), the node
//! actor, the produce handler and the Kafka listener. The node actor receives every new metadata
//! image and starts the partition groups that `__meta` assigns to this node (each on its poller;
//! new replicas are created in batches, `partition::create`), stops the ones it no
//! longer assigns (deleting their data), and publishes the table of running partitions that the
//! Kafka handlers read.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use slog::Logger;
use tokio::sync::watch;

use crate::broker::produce::ProduceHandler;
use crate::broker::{BrokerCtx, BrokerSettings, PartitionHandle, PartitionTable};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, FsyncPolicy};
use crate::group::{CoordinatorSettings, GroupCoordinator};
use crate::log::priority::{named_arbiter, named_arbiter_at, HEARTBEAT_NICE};
use crate::meta::actor::MetaSpec;
use crate::meta::command::RegisterBroker;
use crate::meta::{topic_config, MetaActor, MetaState};
use crate::partition::actor::{Links, PartitionSpec, RetentionSettings};
use crate::partition::{PartitionActor, PartitionMsg, PartitionShared};
use crate::peer::{Faults, Router, Transport};
use crate::raft::core::Durability;
use crate::raft::pollers::Pollers;
use crate::raft::ticker::Ticker;
use crate::raft::writer::{DiskWriter, WriterGuard};
use crate::raft::{GroupId, GroupSettings};

mod open;
use open::Opening;

/// The node actor's one message enum.
#[derive(Message)]
#[rtype(result = "()")]
pub enum NodeMsg {
    /// `__meta` applied new entries.
    MetaChanged(Arc<MetaState>),
}

struct Running {
    topic: String,
    index: i32,
    handle: PartitionHandle,
    retention: RetentionSettings,
    /// The reassignment target last handed to the group.
    target: Option<Vec<u64>>,
}

/// What a wanted group is started with: topic, index, voters, retention, segment size, and the
/// leader's conf state when it joins a running group (a reassignment adds it).
type Wanted = (String, i32, Vec<u64>, RetentionSettings, u64, Option<(raft::eraftpb::ConfState, u64)>);

/// The node actor: owner of the partition groups of this node.
pub struct Node {
    settings: GroupSettings,
    data_dir: PathBuf,
    default_retention: RetentionSettings,
    /// `[cleaner]` defaults of the compaction topic configs.
    cleaner_defaults: crate::log::cleaner::CompactionSettings,
    retention_check: Duration,
    flush_interval: Duration,
    writer: DiskWriter,
    ticker: Addr<Ticker>,
    /// The poller threads the partition groups run on (`raft/pollers.rs`).
    pollers: Pollers,
    links: Links,
    clock: SharedClock,
    running: HashMap<GroupId, Running>,
    /// Groups being opened on the blocking pool, or waiting in `fresh`.
    opening: std::collections::HashSet<GroupId>,
    /// New replicas waiting for their batch (`partition::create`), created one batch at a time.
    fresh: std::collections::VecDeque<Opening>,
    /// A batch of new replicas is being created.
    creating: bool,
    /// Existing groups waiting to be opened, at most [`open::MAX_OPENS`] at once.
    reopen: std::collections::VecDeque<Opening>,
    opens_in_flight: usize,
    /// The latest image, for another reconcile after a failed open.
    image: Option<Arc<MetaState>>,
    /// Groups the latest metadata assigns to this node.
    wanted: std::collections::HashSet<GroupId>,
    /// The reassignment targets of the latest metadata, by group.
    targets: HashMap<GroupId, Vec<u64>>,
    /// The preferred leader election counts of the last image (`MetaState::elections`); `None`
    /// until the first image, whose counts are old requests and start nothing.
    elections_seen: Option<BTreeMap<GroupId, u64>>,
    table: watch::Sender<Arc<PartitionTable>>,
    groups: watch::Sender<Arc<HashMap<GroupId, Addr<PartitionActor>>>>,
    logger: Logger,
}

/// Where a partition group keeps its files under a node's data directory.
pub fn group_dir(data_dir: &std::path::Path, group: GroupId) -> PathBuf {
    data_dir.join("groups").join(group.to_string())
}

impl Node {
    fn group_dir(&self, group: GroupId) -> PathBuf {
        group_dir(&self.data_dir, group)
    }

    fn retention_of(&self, image: &MetaState, topic: &crate::meta::TopicInfo) -> RetentionSettings {
        let num = |k: &str| image.topic_config(topic, k).and_then(|v| v.parse::<i64>().ok());
        let explicit = |k: &str| topic.configs.contains_key(k);
        let own = |k: &str| topic.configs.get(k).and_then(|v| v.parse::<i64>().ok());
        let policy = image.topic_config(topic, "cleanup.policy").unwrap_or("delete");
        let (compact, delete) =
            (policy.split(',').any(|p| p.trim() == "compact"), policy.split(',').any(|p| p.trim() == "delete"));
        let d = self.cleaner_defaults;
        let compaction = (compact && self.links.cleaner.is_some()).then(|| crate::log::cleaner::CompactionSettings {
            delete_retention_ms: own("delete.retention.ms").unwrap_or(d.delete_retention_ms),
            min_compaction_lag_ms: own("min.compaction.lag.ms").unwrap_or(d.min_compaction_lag_ms),
            max_compaction_lag_ms: match own("max.compaction.lag.ms") {
                Some(v) if (0..i64::MAX).contains(&v) => Some(v),
                Some(_) => None,
                None => d.max_compaction_lag_ms,
            },
            min_cleanable_ratio: topic
                .configs
                .get("min.cleanable.dirty.ratio")
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(d.min_cleanable_ratio),
        });
        // Kafka's default segment.ms (log.roll.ms) is 7 days.
        let segment_ms = Some(own("segment.ms").unwrap_or(7 * 24 * 3600 * 1000));
        let segment_bytes = Some(topic_config::segment_bytes(&topic.configs, self.settings.segment_bytes));
        if !delete {
            // `compact` alone: no time or size retention.
            return RetentionSettings {
                retention_ms: None,
                retention_bytes: None,
                compaction,
                segment_ms,
                segment_bytes,
            };
        }
        RetentionSettings {
            compaction,
            segment_ms,
            segment_bytes,
            retention_ms: if explicit("retention.ms") {
                num("retention.ms").filter(|v| *v >= 0)
            } else {
                self.default_retention.retention_ms
            },
            retention_bytes: if explicit("retention.bytes") {
                num("retention.bytes").filter(|v| *v >= 0).map(|v| v as u64)
            } else {
                self.default_retention.retention_bytes
            },
        }
    }

    fn reconcile(&mut self, image: &MetaState, ctx: &mut Context<Self>) {
        let me = self.settings.node_id;
        // The live membership is what `__meta` says: peer links to every recorded member.
        for m in image.members.nodes.values() {
            if self.links.transport.learn(m.node_id, &m.raft_addr) {
                slog::info!(self.logger, "learned a member from __meta"; "node" => m.node_id, "raft_addr" => &m.raft_addr);
            }
        }
        let mut wanted: BTreeMap<GroupId, Wanted> = BTreeMap::new();
        for (name, topic) in &image.topics {
            let retention = self.retention_of(image, topic);
            let segment_bytes = topic_config::segment_bytes(&topic.configs, self.settings.segment_bytes);
            for (i, p) in topic.partitions.iter().enumerate() {
                if !p.replicas.contains(&me) {
                    continue;
                }
                // A replica a reassignment adds is created once the leader's conf state names
                // it (a learner), from that conf state (`partition::reassign`).
                let adding = image.reassignments.get(&p.group).filter(|r| !r.original.contains(&me));
                let join = adding.and_then(|r| r.conf_for(me));
                let known = self.running.contains_key(&p.group)
                    || self.opening.contains(&p.group)
                    || self.group_dir(p.group).exists();
                if adding.is_some() && join.is_none() && !known {
                    continue;
                }
                let voters = p.replicas.clone();
                wanted.insert(p.group, (name.clone(), i as i32, voters, retention, segment_bytes, join));
            }
        }
        self.wanted = wanted.keys().copied().collect();
        self.targets = image.reassignments.iter().map(|(g, r)| (*g, r.target.clone())).collect();
        let gone: Vec<GroupId> = self.running.keys().filter(|g| !wanted.contains_key(g)).copied().collect();
        let changed = !gone.is_empty();
        for g in gone {
            let r = self.running.remove(&g).expect("listed");
            r.handle.addr.do_send(PartitionMsg::Stop);
            let dir = self.group_dir(g);
            slog::info!(self.logger, "partition removed"; "topic" => &r.topic, "partition" => r.index, "group" => g);
            actix::spawn(async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let _ = std::fs::remove_dir_all(dir);
            });
        }
        let mut fresh = Vec::new();
        for (g, (topic, index, voters, retention, segment_bytes, join)) in wanted {
            let target = image.reassignments.get(&g).map(|r| r.target.clone());
            if let Some(r) = self.running.get_mut(&g) {
                if r.retention != retention {
                    r.retention = retention;
                    r.handle.addr.do_send(PartitionMsg::Retention(retention));
                }
                if r.target != target {
                    r.target = target.clone();
                    r.handle.addr.do_send(PartitionMsg::Reassign(target));
                }
                continue;
            }
            if self.opening.contains(&g) {
                continue;
            }
            let campaign = voters.first() == Some(&me) && join.is_none();
            let spec = PartitionSpec {
                group: g,
                name: format!("{topic}/{index}"),
                dir: self.group_dir(g),
                voters,
                campaign,
                join,
                settings: GroupSettings { segment_bytes, ..self.settings.clone() },
                retention,
                retention_check: self.retention_check,
                flush_interval: self.flush_interval,
            };
            self.opening.insert(g);
            let logger = self.logger.new(slog::o!("topic" => topic.clone(), "partition" => index));
            let open = Opening { spec, topic, index, retention, shared: Arc::new(PartitionShared::default()), logger };
            // A replica that has no directory yet and joins no running group is created with
            // the others of this image, as a batch (`partition::create`).
            if open.spec.join.is_none() && !open.spec.dir.exists() {
                fresh.push(open);
            } else {
                self.reopen.push_back(open);
            }
        }
        self.next_opens(ctx);
        // Batches of new replicas, one after the other: one sync round each, then one publish of
        // the table each.
        self.fresh.extend(fresh);
        self.next_batch(ctx);
        if changed {
            self.publish();
        }
        self.elect_preferred(image);
    }

    /// A preferred leader election asked for a group whose preferred replica (the first of its
    /// replica list) is this node: ask the group's leader for a Raft leader transfer to it.
    fn elect_preferred(&mut self, image: &MetaState) {
        let me = self.settings.node_id;
        if let Some(seen) = &self.elections_seen {
            for (g, count) in &image.elections {
                if seen.get(g).is_some_and(|s| s >= count) {
                    continue;
                }
                let preferred = image
                    .topics
                    .values()
                    .flat_map(|t| t.partitions.iter())
                    .find(|p| p.group == *g)
                    .and_then(|p| p.replicas.first().copied());
                if let (Some(r), Some(me_first)) = (self.running.get(g), preferred.map(|p| p == me)) {
                    if me_first {
                        r.handle.addr.do_send(PartitionMsg::ElectSelf);
                    }
                }
            }
        }
        self.elections_seen = Some(image.elections.clone());
    }

    /// Publishes the table of running partitions to the Kafka handlers and the peer router.
    fn publish(&mut self) {
        let mut table: PartitionTable = HashMap::new();
        for r in self.running.values() {
            table.entry(r.topic.clone()).or_default().insert(r.index, r.handle.clone());
        }
        self.table.send_replace(Arc::new(table));
        let groups = self.running.iter().map(|(g, r)| (*g, r.handle.addr.clone())).collect();
        self.groups.send_replace(Arc::new(groups));
        self.pollers.count(self.running.keys());
    }
}

impl Actor for Node {
    type Context = Context<Self>;
}

impl Handler<NodeMsg> for Node {
    type Result = ();

    fn handle(&mut self, msg: NodeMsg, ctx: &mut Self::Context) {
        match msg {
            NodeMsg::MetaChanged(image) => {
                self.reconcile(&image, ctx);
                self.image = Some(image);
            }
        }
    }
}

/// Errors that stop a node from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot open storage: {0}")]
    Storage(#[from] crate::raft::core::OpenError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("__meta did not register this broker within {0:?}")]
    NotRegistered(Duration),
    #[error("cannot join the cluster: {0}")]
    Join(String),
}

/// What a started node exposes (for tests and `main`).
pub struct NodeHandle {
    pub kafka_addr: std::net::SocketAddr,
    /// The admin API's bound address (`None` when it is off).
    pub admin_addr: Option<std::net::SocketAddr>,
    _admin: Option<crate::admin::AdminServer>,
    pub ctx: Arc<BrokerCtx>,
    /// Fault injection on this node's peer transport (tests).
    pub faults: Arc<Faults>,
    arbiters: Vec<Arbiter>,
    /// Dropped after the arbiters are joined: waits for the disk writer to finish its queue.
    _writer: WriterGuard,
}

impl Drop for NodeHandle {
    /// Stops the node's arbiters and waits for their threads, so that its listeners and
    /// connections are closed when the handle is gone (a test that restarts a node in the same
    /// process can bind the same ports again at once).
    fn drop(&mut self) {
        for a in &self.arbiters {
            a.stop();
        }
        for a in self.arbiters.drain(..) {
            let _ = a.join();
        }
    }
}

/// The admin API's listen address, `None` when it is off.
fn admin_listen(config: &Config) -> Option<String> {
    config.admin.enabled.then(|| config.admin.listen.clone())
}

/// Starts all actors of one node inside the running actix System.
pub async fn start(config: Config, logger: Logger) -> Result<NodeHandle, StartError> {
    let ticks = config.raft.ticks().map_err(|e| StartError::Config(e.to_string()))?;
    let node_id = config.node_id;
    let settings = GroupSettings {
        node_id,
        heartbeat_tick: ticks.heartbeat_tick,
        election_tick: ticks.election_tick,
        pre_vote: config.raft.pre_vote,
        check_quorum: config.raft.check_quorum,
        durability: match config.storage.fsync {
            FsyncPolicy::Always => Durability::Fsync,
            _ => Durability::PageCache,
        },
        segment_bytes: config.topics.segment_bytes,
        index_interval_bytes: config.storage.index_interval_bytes,
        // The partition's backstop: a topic's max.message.bytes may exceed the broker's
        // message.max.bytes, up to the request size (the produce handler enforces the topic's).
        max_message_bytes: config.kafka.max_request_size as usize,
        max_inflight_msgs: config.raft.max_inflight_msgs,
        max_size_per_msg: config.raft.max_size_per_msg,
        snapshot_chunk_bytes: config.raft.snapshot_chunk_bytes,
        replay_delay: config.faults.replay_delay,
        replay_nice: config.raft.replay_nice,
        // Every node alike: a standalone node (a one-voter cluster) and one that joins later
        // (`raft.join`, no seeds) hibernate as the seeds of a cluster do, so a cluster grown
        // from a standalone node never mixes sleeping leaders with followers that cannot sleep.
        hibernate: config.raft.hibernate,
        tick: ticks.tick,
    };
    // The Kafka listeners are bound first: their addresses go into this broker's registration.
    let specs = config.kafka.resolved_listeners().map_err(|e| StartError::Config(e.to_string()))?;
    let bound = crate::net::listener::bind_all(&specs).map_err(|(addr, source)| StartError::Listen { addr, source })?;
    let (host, port) = bound[0].advertised();
    let listener_endpoints = bound
        .iter()
        .map(|b| {
            let (h, p) = b.advertised();
            let addr = if h.contains(':') { format!("[{h}]:{p}") } else { format!("{h}:{p}") };
            (b.spec.name.clone(), addr)
        })
        .collect();
    let mut voters: Vec<u64> = config.raft.peers.iter().map(|p| p.id).collect();
    voters.push(node_id);
    voters.sort_unstable();

    crate::log::file_cache::apply_budget(config.storage.max_open_files, config.kafka.max_connections as u64, &logger);
    let clock: SharedClock = Arc::new(SystemClock);
    if !config.faults.write_delay.is_zero() {
        slog::warn!(logger, "fault injection: every disk write job waits first"; "write_delay" => ?config.faults.write_delay);
    }
    let (writer, writer_guard) =
        DiskWriter::start_with_delay(node_id, logger.new(slog::o!("actor" => "writer")), config.faults.write_delay);
    crate::metrics::set_disk_queue(node_id, writer.queued());
    // The ticker has a thread of its own: nothing else runs there, so ticks leave on time.
    let tick_arbiter = named_arbiter_at("chronik-ticker", HEARTBEAT_NICE);
    let tick = ticks.tick;
    let ticker = Ticker::start_in_arbiter(&tick_arbiter.handle(), move |_| Ticker::new(tick));
    // The partition groups run on the pollers, each group on the one its id picks.
    let (pollers, mut arbiters) = Pollers::new(config.raft.poller_threads());
    crate::metrics::set_pollers(node_id, pollers.counters());
    slog::info!(logger, "poller threads"; "threads" => pollers.len());
    // Apply actors share another thread, so a slow apply never holds up a group's Raft work.
    let apply_arbiter = named_arbiter("chronik-apply");
    if !config.faults.replay_delay.is_zero() {
        slog::warn!(logger, "fault injection: every round of a partition's replay at open is delayed"; "replay_delay" => ?config.faults.replay_delay);
    }
    if !config.faults.apply_delay.is_zero() {
        slog::warn!(logger, "fault injection: every committed batch is applied with a delay"; "apply_delay" => ?config.faults.apply_delay);
    }
    // The admin listener is bound first: its address goes into this broker's registration.
    let admin_listener = match admin_listen(&config) {
        Some(addr) => {
            let err = |source| StartError::Listen { addr: addr.clone(), source };
            let l = std::net::TcpListener::bind(&addr).map_err(err)?;
            let bound = l.local_addr().map_err(err)?;
            Some((l, bound))
        }
        None => None,
    };
    let admin_addr = admin_listener.as_ref().map(|(_, a)| *a);
    let me = RegisterBroker {
        node_id,
        host,
        port: i32::from(port),
        cluster_id: uuid::Uuid::new_v4().simple().to_string(),
        admin: admin_addr.map(|a| a.to_string()),
        listeners: listener_endpoints,
        rack: config.rack.clone(),
    };

    // One peer actor per remote node, on their own arbiter: network I/O apart from the groups.
    let faults = Arc::new(Faults::default());
    // Mutual TLS between nodes when `raft.tls-*` is set (docs/security.md).
    let peer_tls =
        crate::security::peer_tls::peer_tls(&config.raft, &logger).map_err(|e| StartError::Config(e.to_string()))?;
    let peer_arbiter = named_arbiter_at("chronik-peers", HEARTBEAT_NICE);
    #[cfg(unix)]
    if let Some(t) = &peer_tls {
        peer_arbiter.spawn(crate::security::tls::reload_on_sighup(t.cert.clone()));
    }
    let (groups_tx, groups_rx) = watch::channel(Arc::new(HashMap::new()));
    // Kafka's replication throttles, shared by the peer links and the router (`peer::throttle`).
    let throttle = Arc::new(crate::peer::throttle::ReplicationThrottle::default());
    crate::metrics::set_throttle(node_id, throttle.clone());
    // The `__meta` actor, once opened (after the peers): told of lost peers too.
    let meta_cell: Arc<std::sync::OnceLock<Addr<MetaActor>>> = Arc::default();
    let spawn = crate::peer::spawn::PeerSpawner {
        me: node_id,
        arbiter: peer_arbiter.handle(),
        faults: faults.clone(),
        tls: peer_tls.as_ref().map(|t| t.connector.clone()),
        groups: groups_rx.clone(),
        meta: meta_cell.clone(),
        ticker: ticker.clone(),
        heartbeat_tick: ticks.heartbeat_tick as u64,
        node_beat: settings.hibernate,
        throttle: throttle.clone(),
        logger: logger.clone(),
    };
    let meta_dir = config.data_dir.join("meta");
    let clustered = !config.raft.peers.is_empty()
        || config.raft.join.is_some()
        || !crate::peer::join::load_book(&meta_dir).is_empty();
    let own_raft_addr = if clustered { config.raft.listen.clone() } else { String::new() };
    let book = std::iter::once((node_id, own_raft_addr.clone())).filter(|(_, a)| !a.is_empty()).collect();
    // Peer liveness: every frame from a peer counts; with hibernation on, quiet groups wake
    // when a node they watch (every peer a link was started for) is silent for an election
    // timeout (`raft::hibernate`).
    let liveness = Arc::new(crate::peer::liveness::Liveness::new(settings.hibernate, std::time::Instant::now()));
    crate::metrics::set_liveness(node_id, &liveness);
    let timeout = ticks.tick * ticks.election_tick as u32;
    ticker.do_send(crate::raft::ticker::TickerMsg::Liveness(liveness.clone(), timeout));
    let transport = Transport::new(node_id, HashMap::new(), faults.clone())
        .with_liveness(liveness)
        .with_spawn(spawn.into_spawn(), book);
    for p in &config.raft.peers {
        transport.learn(p.id, &p.addr);
    }
    for (id, addr) in crate::peer::join::load_book(&meta_dir) {
        transport.learn(id, &addr);
    }
    // A new node with `raft.join`: a member records it in `__meta` and answers with the
    // configuration its `__meta` replica starts from (`peer::join`, `meta::members`).
    let join = match &config.raft.join {
        Some(addr) if !meta_dir.join(crate::raft::storage::STATE_FILE).exists() => {
            let req = crate::peer::frame::JoinRequest {
                node_id,
                raft_addr: own_raft_addr.clone(),
                kafka_addr: format!("{}:{}", me.host, me.port),
            };
            let reply = crate::peer::join::ask_retrying(addr, req, peer_tls.as_ref().map(|t| &t.join))
                .await
                .map_err(|e| StartError::Join(e.message))?;
            for (id, a) in &reply.peers {
                transport.learn(*id, a);
            }
            crate::peer::join::save_book(&meta_dir, &transport.address_book())
                .map_err(|e| StartError::Join(format!("cannot write {}: {e}", meta_dir.display())))?;
            slog::info!(logger, "joined the cluster"; "through" => addr, "voters" => ?reply.voters, "learners" => ?reply.learners, "conf_index" => reply.conf_index);
            let cs = raft::eraftpb::ConfState { voters: reply.voters, learners: reply.learners, ..Default::default() };
            Some((cs, reply.conf_index))
        }
        _ => None,
    };
    let marker_transport = transport.clone();

    let (meta, mut image_rx) = MetaActor::open(
        MetaSpec {
            dir: &config.data_dir.join("meta"),
            voters: &voters,
            settings: &settings,
            me,
            writer: writer.clone(),
            ticker: ticker.clone(),
            transport: transport.clone(),
            snapshots: crate::meta::snapshot::SnapshotPolicy {
                entries: config.meta.snapshot_entries,
                bytes: config.meta.snapshot_bytes,
            },
            segment_bytes: config.meta.segment_bytes,
            balancer: config.leaders.settings(),
            raft_addr: own_raft_addr,
            max_voters: config.meta.max_voters as usize,
            join,
        },
        logger.new(slog::o!("group" => "__meta")),
    )?;
    let meta_leader = meta.leader_cell();
    let meta = meta.start();
    let _ = meta_cell.set(meta.clone());

    let (table_tx, table_rx) = watch::channel(Arc::new(PartitionTable::new()));
    // Replicas whose batch creation a crash interrupted are absent (`partition::create`).
    crate::partition::create::remove_staged(&config.data_dir.join("groups"), &logger);
    let node = Node {
        settings: settings.clone(),
        data_dir: config.data_dir.clone(),
        default_retention: RetentionSettings {
            retention_ms: config.topics.retention.map(|d| d.as_millis() as i64),
            retention_bytes: config.topics.retention_bytes,
            ..Default::default()
        },
        cleaner_defaults: crate::log::cleaner::CompactionSettings {
            delete_retention_ms: config.cleaner.delete_retention.as_millis() as i64,
            min_compaction_lag_ms: config.cleaner.min_compaction_lag.as_millis() as i64,
            max_compaction_lag_ms: config.cleaner.max_compaction_lag.map(|d| d.as_millis() as i64),
            min_cleanable_ratio: config.cleaner.min_cleanable_ratio,
        },
        retention_check: config.storage.retention_check_interval,
        flush_interval: config.storage.flush_interval,
        writer,
        ticker,
        pollers,
        links: Links {
            campaigns: Default::default(),
            transport,
            meta: clustered.then(|| meta.clone()),
            apply_arbiter: Some(apply_arbiter.handle()),
            apply_delay: config.faults.apply_delay,
            cleaner: config.cleaner.enabled.then(|| {
                let opts = crate::log::cleaner::CleanerOptions {
                    threads: config.cleaner.threads as usize,
                    io_max_bytes_per_second: config.cleaner.io_max_bytes_per_second,
                    dedupe_buffer_size: config.cleaner.dedupe_buffer_size as usize,
                    nice: config.cleaner.nice,
                };
                let cleaner = crate::log::cleaner::Cleaner::start(
                    opts,
                    clock.clone(),
                    logger.new(slog::o!("component" => "cleaner")),
                );
                (cleaner, config.cleaner.backoff)
            }),
        },
        clock: clock.clone(),
        running: HashMap::new(),
        opening: Default::default(),
        fresh: Default::default(),
        creating: false,
        reopen: Default::default(),
        opens_in_flight: 0,
        image: None,
        wanted: Default::default(),
        targets: Default::default(),
        elections_seen: None,
        table: table_tx,
        groups: groups_tx,
        logger: logger.clone(),
    }
    .start();
    {
        let mut rx = image_rx.clone();
        let (node, throttle) = (node.clone(), throttle.clone());
        actix::spawn(async move {
            loop {
                let image = rx.borrow_and_update().clone();
                throttle.configure(crate::meta::broker_config::throttle_config(&image, node_id));
                node.do_send(NodeMsg::MetaChanged(image));
                if rx.changed().await.is_err() {
                    break;
                }
            }
        });
    }

    // Peers' Raft traffic comes in here (clusters only; standalone has no peers).
    if clustered {
        let raft_addr = config.raft.listen.clone();
        let l = std::net::TcpListener::bind(&raft_addr)
            .map_err(|source| StartError::Listen { addr: raft_addr.clone(), source })?;
        l.set_nonblocking(true).map_err(|source| StartError::Listen { addr: raft_addr.clone(), source })?;
        let router =
            Router::new(meta.clone(), groups_rx).with_transport(marker_transport.clone()).with_throttle(throttle);
        peer_arbiter.spawn(router.clone().run_releases());
        let known = marker_transport.known();
        let (f, plog) = (faults.clone(), logger.new(slog::o!("actor" => "raft-listener")));
        let acceptor = peer_tls.as_ref().map(|t| t.acceptor.clone());
        peer_arbiter.spawn(async move {
            match tokio::net::TcpListener::from_std(l) {
                Ok(l) => crate::peer::listener::run(l, node_id, known, router, f, acceptor, plog).await,
                Err(e) => slog::crit!(plog, "cannot serve the raft port"; "error" => %e),
            }
        });
        slog::info!(logger, "raft listener"; "listen" => raft_addr);
    }

    let authorizer = Arc::new(crate::security::authorizer::Authorizer::new(
        config.authorizer.settings(),
        logger.new(slog::o!("actor" => "authorizer")),
    ));
    // The admin API serves from now on, so readiness can be asked before `__meta` has a quorum.
    let admin = match admin_listener {
        Some((l, bound)) => {
            let state = crate::admin::AdminState {
                node_id,
                meta: meta.clone(),
                image: image_rx.clone(),
                partitions: table_rx.clone(),
                faults: faults.clone(),
                runtime_faults: config.faults.runtime,
                logger: logger.new(slog::o!("actor" => "admin")),
                authorizer: authorizer.clone(),
            };
            let server = crate::admin::AdminServer::start(l, state)
                .map_err(|source| StartError::Listen { addr: bound.to_string(), source })?;
            slog::info!(logger, "admin API"; "listen" => %bound);
            Some(server)
        }
        None => None,
    };

    // Serve clients only once this broker is in the metadata it will hand out.
    let wait = Duration::from_secs(30);
    let registered = tokio::time::timeout(wait, async {
        loop {
            if image_rx.borrow_and_update().brokers.contains_key(&node_id) {
                return;
            }
            if image_rx.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    if registered.is_err() {
        return Err(StartError::NotRegistered(wait));
    }
    // After a restart, open the partitions this node already hosts before serving clients, so
    // they see their data rather than a moment of "not leader" (bounded: a huge node serves
    // early and clients retry).
    let hosted = {
        let image = image_rx.borrow();
        image.topics.values().flat_map(|t| t.partitions.iter()).filter(|p| p.replicas.contains(&node_id)).count()
    };
    let mut opened = table_rx.clone();
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if opened.borrow_and_update().values().map(|ps| ps.len()).sum::<usize>() >= hosted {
                return;
            }
            if opened.changed().await.is_err() {
                return;
            }
        }
    })
    .await;

    let groups = GroupCoordinator::new(
        node_id,
        CoordinatorSettings::from_config(&config.groups),
        meta.clone(),
        image_rx.clone(),
        clock.clone(),
        Box::new(crate::clock::ThreadRandom),
        logger.new(slog::o!("actor" => "groups")),
    )
    .with_offset_retention(crate::group::actor::OffsetRetention {
        retention: config.offsets.retention,
        check_interval: config.offsets.retention_check_interval,
    })
    .start();

    let txn_settings = config.transactions.settings();
    let txn = crate::txn::TxnCoordinator::new(
        node_id,
        txn_settings,
        meta.clone(),
        image_rx.clone(),
        clock.clone(),
        Arc::new(crate::txn::markers::NodeSink {
            partitions: table_rx.clone(),
            image: image_rx.clone(),
            transport: marker_transport,
        }),
        logger.new(slog::o!("actor" => "txn")),
    )
    .start();

    let net = named_arbiter("chronik-net");
    let produce_logger = logger.new(slog::o!("actor" => "produce"));
    let max_message_bytes = config.kafka.max_message_bytes as usize;
    let produce =
        ProduceHandler::start_in_arbiter(&net.handle(), move |_| ProduceHandler::new(node_id, produce_logger));
    let ctx = Arc::new(BrokerCtx {
        node_id,
        data_dir: config.data_dir.clone(),
        meta_leader,
        settings: BrokerSettings {
            max_message_bytes,
            auto_create_topics: config.topics.auto_create,
            default_partitions: config.topics.default_partitions,
            default_replication_factor: u32::from(config.topics.default_replication_factor),
            topic_defaults: crate::broker::broker_configs::topic_defaults(&config),
            broker_configs: crate::broker::broker_configs::broker_configs(&config),
            txn_verification: config.transactions.partition_verification,
        },
        logger: logger.new(slog::o!("actor" => "kafka")),
        meta,
        image: image_rx,
        partitions: table_rx,
        produce,
        clock,
        faults: faults.clone(),
        groups,
        txn,
        txn_settings,
        authorizer,
        throttles: Default::default(),
    });
    let kafka_addr = bound[0].addr;
    crate::net::serve_listeners(&config, bound, &ctx, &net, &logger).map_err(StartError::Config)?;
    Ok(NodeHandle {
        kafka_addr,
        admin_addr,
        _admin: admin,
        ctx,
        faults,
        arbiters: {
            arbiters.extend([net, peer_arbiter, tick_arbiter, apply_arbiter]);
            arbiters
        },
        _writer: writer_guard,
    })
}
