//! Starts the peer actor of one remote node: on the peer arbiter, with the node's TLS
//! connector, told to report a lost connection to `__meta` and every partition group
//! (`report_unreachable`), and registered with the ticker for its heartbeat flushes. The
//! transport calls it for the seeds at start and for every member `__meta` records later.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use actix::prelude::*;
use slog::Logger;
use tokio::sync::watch;

use super::actor::{LostPeer, PeerActor, PeerMsg};
use super::transport::SpawnPeer;
use super::Faults;
use crate::meta::{MetaActor, MetaMsg};
use crate::partition::{PartitionActor, PartitionMsg};
use crate::raft::ticker::{Ticker, TickerMsg};
use crate::raft::GroupId;

/// What every peer actor of a node is started with.
pub struct PeerSpawner {
    pub me: u64,
    pub arbiter: ArbiterHandle,
    pub faults: Arc<Faults>,
    pub tls: Option<tokio_rustls::TlsConnector>,
    pub groups: watch::Receiver<Arc<HashMap<GroupId, Addr<PartitionActor>>>>,
    /// The `__meta` actor, once opened.
    pub meta: Arc<OnceLock<Addr<MetaActor>>>,
    pub ticker: Addr<Ticker>,
    pub heartbeat_tick: u64,
    /// Send the node beat on every heartbeat tick (`raft.hibernate`).
    pub node_beat: bool,
    /// Kafka's replication throttles, shared by every link (`peer::throttle`).
    pub throttle: Arc<super::throttle::ReplicationThrottle>,
    pub logger: Logger,
}

impl PeerSpawner {
    /// The transport's [`SpawnPeer`].
    pub fn into_spawn(self) -> SpawnPeer {
        Arc::new(move |id, addr| self.spawn(id, addr))
    }

    fn spawn(&self, id: u64, addr: String) -> Addr<PeerActor> {
        let (me, f, connector, t) = (self.me, self.faults.clone(), self.tls.clone(), self.throttle.clone());
        let node_beat = self.node_beat;
        let plog = self.logger.new(slog::o!("actor" => "peer", "peer" => id));
        let (groups, lost_log, meta_cell) = (self.groups.clone(), self.logger.clone(), self.meta.clone());
        let on_lost: LostPeer = Arc::new(move |peer| {
            if let Some(meta) = meta_cell.get() {
                meta.do_send(MetaMsg::Unreachable(peer));
            }
            let groups: Arc<HashMap<GroupId, Addr<PartitionActor>>> = groups.borrow().clone();
            slog::info!(lost_log, "peer connection lost: reported unreachable to the groups"; "peer" => peer, "groups" => groups.len());
            for addr in groups.values() {
                addr.do_send(PartitionMsg::Unreachable(peer));
            }
        });
        slog::info!(self.logger, "peer link"; "peer" => id, "addr" => &addr);
        let peer = PeerActor::start_in_arbiter(&self.arbiter, move |_| {
            PeerActor::with_tls(me, id, addr, f, connector, plog)
                .with_on_lost(on_lost)
                .with_throttle(t)
                .with_node_beat(node_beat)
        });
        let beat = peer.clone();
        let hb = self.heartbeat_tick.max(1);
        self.ticker.do_send(TickerMsg::RegisterPeer(Box::new(move |n| {
            beat.do_send(PeerMsg::FlushHeartbeats { heartbeat_tick: n % hb == 0 });
            beat.connected()
        })));
        peer
    }
}
