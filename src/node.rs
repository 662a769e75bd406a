//! The node: starts every actor of one chronik process and keeps partition groups in step with
//! the metadata.
//!
//! [`start`] builds, in order: the syncer, the ticker, the metadata actor (`__meta`), the node
//! actor, the produce handler and the Kafka listener. The node actor receives every new metadata
//! image and starts the partition groups that `__meta` assigns to this node, stops the ones it no
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
use crate::meta::command::RegisterBroker;
use crate::meta::{MetaActor, MetaState};
use crate::partition::actor::{PartitionSpec, RetentionSettings};
use crate::partition::{PartitionActor, PartitionMsg, PartitionShared};
use crate::raft::core::Durability;
use crate::raft::syncer::Syncer;
use crate::raft::ticker::Ticker;
use crate::raft::{GroupId, GroupSettings};

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
}

/// The node actor: owner of the partition groups of this node.
pub struct Node {
    settings: GroupSettings,
    data_dir: PathBuf,
    default_retention: RetentionSettings,
    retention_check: Duration,
    flush_interval: Duration,
    syncer: Syncer,
    ticker: Addr<Ticker>,
    clock: SharedClock,
    running: HashMap<GroupId, Running>,
    table: watch::Sender<Arc<PartitionTable>>,
    logger: Logger,
}

impl Node {
    fn group_dir(&self, group: GroupId) -> PathBuf {
        self.data_dir.join("groups").join(group.to_string())
    }

    fn retention_of(&self, image: &MetaState, topic: &crate::meta::TopicInfo) -> RetentionSettings {
        let num = |k: &str| image.topic_config(topic, k).and_then(|v| v.parse::<i64>().ok());
        let explicit = |k: &str| topic.configs.contains_key(k);
        RetentionSettings {
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

    fn reconcile(&mut self, image: &MetaState) {
        let me = self.settings.node_id;
        let mut wanted: BTreeMap<GroupId, (String, i32, Vec<u64>, RetentionSettings)> = BTreeMap::new();
        for (name, topic) in &image.topics {
            let retention = self.retention_of(image, topic);
            for (i, p) in topic.partitions.iter().enumerate() {
                if p.replicas.contains(&me) {
                    wanted.insert(p.group, (name.clone(), i as i32, p.replicas.clone(), retention));
                }
            }
        }
        let gone: Vec<GroupId> = self.running.keys().filter(|g| !wanted.contains_key(g)).copied().collect();
        let mut changed = !gone.is_empty();
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
        for (g, (topic, index, voters, retention)) in wanted {
            if let Some(r) = self.running.get_mut(&g) {
                if r.retention != retention {
                    r.retention = retention;
                    r.handle.addr.do_send(PartitionMsg::Retention(retention));
                }
                continue;
            }
            let spec = PartitionSpec {
                group: g,
                dir: self.group_dir(g),
                voters,
                settings: self.settings.clone(),
                retention,
                retention_check: self.retention_check,
                flush_interval: self.flush_interval,
            };
            let shared = Arc::new(PartitionShared::default());
            let logger = self.logger.new(slog::o!("topic" => topic.clone(), "partition" => index));
            match PartitionActor::open(
                spec,
                shared.clone(),
                self.syncer.clone(),
                self.ticker.clone(),
                self.clock.clone(),
                logger,
            ) {
                Ok(actor) => {
                    let addr = actor.start();
                    slog::info!(self.logger, "partition started"; "topic" => &topic, "partition" => index, "group" => g);
                    self.running.insert(
                        g,
                        Running { topic, index, handle: PartitionHandle { addr, shared, group: g }, retention },
                    );
                    changed = true;
                }
                Err(e) => {
                    slog::error!(self.logger, "cannot open partition"; "topic" => &topic, "partition" => index, "group" => g, "error" => %e)
                }
            }
        }
        if changed {
            let mut table: PartitionTable = HashMap::new();
            for r in self.running.values() {
                table.entry(r.topic.clone()).or_default().insert(r.index, r.handle.clone());
            }
            self.table.send_replace(Arc::new(table));
        }
    }
}

impl Actor for Node {
    type Context = Context<Self>;
}

impl Handler<NodeMsg> for Node {
    type Result = ();

    fn handle(&mut self, msg: NodeMsg, _: &mut Self::Context) {
        match msg {
            NodeMsg::MetaChanged(image) => self.reconcile(&image),
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
}

/// What a started node exposes (for tests and `main`).
pub struct NodeHandle {
    pub kafka_addr: std::net::SocketAddr,
    pub ctx: Arc<BrokerCtx>,
    _net: Arbiter,
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
        max_message_bytes: config.kafka.max_message_bytes as usize,
    };
    let host = config.kafka.effective_advertised_host().map_err(|e| StartError::Config(e.to_string()))?;
    let port = config.kafka.effective_advertised_port().map_err(|e| StartError::Config(e.to_string()))?;
    let mut voters: Vec<u64> = config.raft.peers.iter().map(|p| p.id).collect();
    voters.push(node_id);
    voters.sort_unstable();

    let clock: SharedClock = Arc::new(SystemClock);
    let syncer = Syncer::start(logger.new(slog::o!("actor" => "syncer")));
    let ticker = Ticker::new(ticks.tick).start();
    let me =
        RegisterBroker { node_id, host, port: i32::from(port), cluster_id: uuid::Uuid::new_v4().simple().to_string() };
    let (meta, mut image_rx) = MetaActor::open(
        &config.data_dir.join("meta"),
        &voters,
        &settings,
        me,
        syncer.clone(),
        ticker.clone(),
        logger.new(slog::o!("group" => "__meta")),
    )?;
    let meta = meta.start();

    let (table_tx, table_rx) = watch::channel(Arc::new(PartitionTable::new()));
    let node = Node {
        settings: settings.clone(),
        data_dir: config.data_dir.clone(),
        default_retention: RetentionSettings {
            retention_ms: config.topics.retention.map(|d| d.as_millis() as i64),
            retention_bytes: config.topics.retention_bytes,
        },
        retention_check: config.storage.retention_check_interval,
        flush_interval: config.storage.flush_interval,
        syncer,
        ticker,
        clock: clock.clone(),
        running: HashMap::new(),
        table: table_tx,
        logger: logger.clone(),
    }
    .start();
    {
        let mut rx = image_rx.clone();
        let node = node.clone();
        actix::spawn(async move {
            loop {
                let image = rx.borrow_and_update().clone();
                node.do_send(NodeMsg::MetaChanged(image));
                if rx.changed().await.is_err() {
                    break;
                }
            }
        });
    }

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

    let groups = GroupCoordinator::new(
        CoordinatorSettings::default(),
        meta.clone(),
        image_rx.clone(),
        clock.clone(),
        Box::new(crate::clock::ThreadRandom),
        logger.new(slog::o!("actor" => "groups")),
    )
    .start();

    let net = Arbiter::new();
    let produce_logger = logger.new(slog::o!("actor" => "produce"));
    let max_message_bytes = settings.max_message_bytes;
    let produce = ProduceHandler::start_in_arbiter(&net.handle(), move |_| {
        ProduceHandler::new(max_message_bytes, produce_logger)
    });
    let ctx = Arc::new(BrokerCtx {
        node_id,
        settings: BrokerSettings {
            max_message_bytes,
            auto_create_topics: config.topics.auto_create,
            default_partitions: config.topics.default_partitions,
            default_replication_factor: u32::from(config.topics.default_replication_factor),
        },
        logger: logger.new(slog::o!("actor" => "kafka")),
        meta,
        image: image_rx,
        partitions: table_rx,
        produce,
        clock,
        groups,
    });
    let addr = config.kafka.listen.clone();
    let listen_err = |source| StartError::Listen { addr: addr.clone(), source };
    let listener = std::net::TcpListener::bind(&addr).map_err(listen_err)?;
    listener.set_nonblocking(true).map_err(listen_err)?;
    let kafka_addr = listener.local_addr().map_err(listen_err)?;
    let max_request_size = config.kafka.max_request_size as usize;
    let max_connections = config.kafka.max_connections;
    let listen_ctx = ctx.clone();
    // The listener and every connection run on the network arbiter, apart from the groups.
    net.spawn(async move {
        match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => crate::net::listener::run(l, listen_ctx, max_request_size, max_connections).await,
            Err(e) => slog::crit!(listen_ctx.logger, "cannot serve the Kafka port"; "error" => %e),
        }
    });
    slog::info!(logger, "serving Kafka clients"; "listen" => %kafka_addr);
    Ok(NodeHandle { kafka_addr, ctx, _net: net })
}
