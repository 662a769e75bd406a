//! # chronik
//!
//! A Kafka-compatible message broker in which every topic partition is its own Raft group
//! (tikv's raft-rs) and cluster metadata lives in the `__meta` Raft group. Standalone mode is a
//! one-voter cluster on the same code path.
//!
//! ## Module map
//! | module | responsibility |
//! | --- | --- |
//! | [`config`], [`cli`] | TOML + env configuration (`config/`: section structs, durations and raft ticks, `CHRONIK_*` overrides, `validate()`, rendering, loading); the command line |
//! | [`clock`] | injected time and randomness; backoff schedules |
//! | [`node`] | starts the actors of one node; starts/stops partition groups as `__meta` assigns them |
//! | [`shutdown`] | controlled shutdown: on SIGTERM/SIGINT the node's groups hand their leadership to live voters (`PartitionMsg::Resign`, `MetaMsg::Resign`) before it stops |
//! | [`net`] | Kafka listener and connections (responses in request order; at most 64 requests of a connection served at once; the node's request memory pool `net::request_pool` bounds the bytes of requests of all connections; Produce hands its batches on in request order: `broker::produce_order`; responses go out through a `net::sink`, Fetch batches with `sendfile` on plaintext listeners) |
//! | [`protocol`] | framing and header glue over the `kafka-protocol` crate; responses as chains of buffers and file ranges (`protocol::chain`) |
//! | [`broker`] | one file per Kafka API, the route table, the produce handler actor |
//! | [`partition`] | a partition's Raft core (offsets, idempotence, reads), transactions on the partition side (markers, last stable offset, aborted index: `partition::txn`, kept in the segments' `.txnindex` files too), its produce ack waiters and its actor (with the chunked snapshot transfer of a compacted prefix) |
//! | [`meta`] | the `__meta` state machine, its commands, its actor, the automatic leader balancer (`meta::balancer`, on the `__meta` leader), partition reassignment state (`meta::reassign`) and the cluster's membership (`meta::members`: join, removal, `__meta` voters and learners) |
//! | [`group`] | consumer groups: the classic group protocol state machine and its coordinator actor |
//! | [`txn`] | the transaction coordinator: per transactional id state in `__meta`, Kafka's transitions (`core`), its actor and the marker sink |
//! | [`raft`] | the generic Ready loop (`core`), the planner of a group's membership changes (`membership`), the group shell every group actor embeds and its pure failure/recovery state machine (`shell`, `recovery`), raft-rs storage over the log, the disk writer (+ syncer), the ticker |
//! | [`peer`] | Raft traffic between nodes: one actor per remote node (started for the seeds and every member `__meta` records), frames, routing, the join request, fault injection, Kafka's replication throttles |
//! | [`log`] | segment files, offset/time indexes, recovery, retention, record-batch validation, compaction (`log::cleaner`: the cleaner threads, crash-safe segment swaps), the raft start and the install of a received snapshot's segments |
//! | [`error`] | cross-actor error types and Kafka error codes |
//! | [`metrics`] | the metrics registry: counters, gauges, HDR-histogram summaries; [`metrics::render`] gives the Prometheus text (`docs/metrics.md`) |
//! | [`admin`] | the operator HTTP API (`/metrics`, health, `/v1/node`, `/v1/cluster`, faults) on its own thread, and the `cluster status` client |
//! | [`security`] | principals of connections, TLS (rustls, certificate reload, peer mTLS), SASL PLAIN/SCRAM, Kafka's ACL model, the authorizer (decision cache, audit log), client quotas and their throttle |
//! | `fuzzing` | fuzz harnesses over every decoder of untrusted bytes (`fuzz/`, `tests/fuzz_corpus.rs`) |
//!
//! ## Actors and messages
//! ```text
//!                       Kafka clients
//!                            │ TCP frames
//!        ┌───────────────────▼────────────────────┐  network arbiter
//!        │ listener ──► connection (one task each) │
//!        │     │  route table by API key           │
//!        │     ├─ Produce ─► ProduceHandler actor ─┼──── PartitionMsg::Produce ─────┐
//!        │     ├─ Fetch / ListOffsets ─────────────┼──── PartitionMsg::Fetch ───────┤
//!        │     ├─ WriteTxnMarkers ─────────────────┼── PartitionMsg::WriteTxnMarker ┤
//!        │     │   (and DescribeProducers)         │                                │
//!        │     ├─ group APIs ──────────────────────┼── GroupMsg ─► GroupCoordinator │
//!        │     │   (OffsetCommit: checked there,   │     (all groups, 100 ms        │
//!        │     │    then proposed to __meta)       │      timer, parked requests)   │
//!        │     └─ admin APIs, OffsetCommit ────────┼──── MetaMsg::Propose ──┐       │
//!        └─────────────────────────────────────────┘                       │       │
//!                                                                          ▼       ▼
//!   Ticker ── Tick (do_send only) ──► MetaActor (__meta)           PartitionActor (one per group,
//!     (skips quiet groups)        └─► PartitionActor …             on poller group % raft.threads)
//!                                                                    │ both embed the GroupShell
//!                                                                    │ (raft/shell.rs): Ready loop,
//!                                                                    │ Synced, fail → reopen
//!                                                                    │ entries → log table + memory,
//!   MetaActor ── watch(MetaState) ──► Node actor ── start/stop ──►   │ WriteJob (queued write ops)
//!                                     │ watch(PartitionTable)        ▼
//!                                     ▼                            Writer thread: each job's writes, in
//!                              Kafka handlers read                 order (held appends ──► peers) ──► Syncer
//!                                                                  thread: one fsync round for all
//!                                                                  waiting jobs, then Synced ──► group
//!                                                                  (a failed group: poison, barrier,
//!                                                                  Drained ──► group, timed reopen)
//!   GroupCoordinator ── Propose(StoreGroup), Status (leader?) ──► MetaActor; reads watch(MetaState)
//!   peer listener ── MetaMsg::Join (a node joins) ──► MetaActor; admin ── MetaMsg::Members ──► MetaActor
//!   Node actor ── Transport::learn (members of each image) ──► peer transport (starts PeerActors)
//!   SIGTERM/SIGINT ── shutdown::on_signal ── Resign ──► MetaActor, every PartitionActor; then System::stop
//!   transaction APIs ── TxnMsg ──► TxnCoordinator ── Propose(Cmd::Txn), Status ──► MetaActor
//!                                      └── markers (MarkerSink) ── PartitionMsg::WriteTxnMarker ──► PartitionActor
//! ```
//! Threads: the partition actors are sharded over the poller threads (`raft::pollers`, one per
//! core by default); `__meta`, the Node and the coordinators run on the System thread; the
//! ticker, the apply actors, the peers, the network, the writer and the syncer have threads of
//! their own; whole-log reads run on tokio's blocking pool.
//! A tick never waits for apply or the disk: the ticker only `do_send`s; groups compute their
//! appends in memory and hand the writes and fsyncs to the disk writer; committed entries are
//! applied in order on the apply actor. See `docs/architecture.md`.

#![forbid(unsafe_code)]

pub mod admin;
pub mod broker;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod group;
pub mod log;
pub mod logging;
pub mod meta;
pub mod metrics;
pub mod net;
pub mod node;
pub mod partition;
pub mod peer;
pub mod protocol;
pub mod raft;
pub mod security;
pub mod shutdown;
pub mod txn;
