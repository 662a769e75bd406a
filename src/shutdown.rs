//! Controlled shutdown (Kafka's `controlled.shutdown.enable`): on SIGTERM or SIGINT a node first
//! hands the leadership of every group it leads, the partitions and `__meta`, to a live voter by
//! Raft leader transfer (`RaftCore::resign`), then stops. Its clients see NOT_LEADER_OR_FOLLOWER
//! and move to the new leaders within a round trip or two, instead of waiting an election
//! timeout for the groups to notice the node is gone. The wait is bounded
//! (`raft.controlled-shutdown-timeout`); a group no voter can take over (its peers are down, or
//! a configuration change is under way) is not waited for, and a second signal stops at once.
//! A resigning replica takes no leadership back (preferred leader elections are ignored).

use std::time::{Duration, Instant};

use slog::Logger;
use tokio::sync::oneshot;

use crate::broker::BrokerCtx;
use crate::meta::actor::MetaMsg;
use crate::partition::actor::PartitionMsg;
use crate::raft::core::resign::Resign;

/// How often the groups still led here are asked again (a transfer raft-rs aborted restarts).
const POLL: Duration = Duration::from_millis(50);

/// Whether a frame from node `id` arrived within three heartbeat intervals (every link carries
/// at least one frame per interval while its node runs): only such a node may take a group over.
pub fn heard_lately<'a>(
    liveness: &'a crate::peer::liveness::Liveness,
    settings: &crate::raft::GroupSettings,
) -> impl Fn(u64) -> bool + 'a {
    let within = settings.tick * (3 * settings.heartbeat_tick.max(1)) as u32;
    let now = Instant::now();
    move |id| liveness.silent_for(id, now) < within
}

/// What a hand-over achieved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HandOver {
    /// Groups this node led when the shutdown began.
    pub led: usize,
    /// Of those, led elsewhere now.
    pub handed: usize,
    /// Still led here: no live voter could take them, or the time ran out.
    pub kept: Vec<String>,
}

impl HandOver {
    /// The groups kept, for the log line: `none`, or the first few by name and how many more (a
    /// standalone node keeps all of its hundreds of groups).
    pub fn kept_summary(&self) -> String {
        const SHOWN: usize = 10;
        if self.kept.is_empty() {
            return "none".to_string();
        }
        let mut s = self.kept.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
        if self.kept.len() > SHOWN {
            s.push_str(&format!(" and {} more", self.kept.len() - SHOWN));
        }
        s
    }
}

/// Asks every group led here to resign, again and again, until none is led here that a voter
/// could take over, or `timeout` passes.
pub async fn hand_over(ctx: &BrokerCtx, timeout: Duration) -> HandOver {
    let deadline = Instant::now() + timeout;
    let mut led: Option<usize> = None;
    loop {
        let mut waiting = Vec::new();
        let mut stays = Vec::new();
        let mut leading = 0;
        for (name, answer) in ask_all(ctx).await {
            match answer {
                Resign::NotLeader => {}
                Resign::Transferring(_) => {
                    leading += 1;
                    waiting.push(name)
                }
                Resign::Stays => {
                    leading += 1;
                    stays.push(name)
                }
            }
        }
        let led = *led.get_or_insert(leading);
        if waiting.is_empty() || Instant::now() >= deadline {
            stays.extend(waiting);
            stays.sort();
            return HandOver { led, handed: led.saturating_sub(stays.len()), kept: stays };
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Asks `__meta` and every partition group running here to resign; their answers by name.
async fn ask_all(ctx: &BrokerCtx) -> Vec<(String, Resign)> {
    let mut asks = Vec::new();
    let (tx, rx) = oneshot::channel();
    ctx.meta.do_send(MetaMsg::Resign(tx));
    asks.push(("__meta".to_string(), rx));
    for (topic, parts) in ctx.partition_table().iter() {
        for (p, h) in parts {
            let (tx, rx) = oneshot::channel();
            h.addr.do_send(PartitionMsg::Resign(tx));
            asks.push((format!("{topic}/{p}"), rx));
        }
    }
    let mut out = Vec::with_capacity(asks.len());
    for (name, rx) in asks {
        // A group that stopped meanwhile leads nothing.
        out.push((name, rx.await.unwrap_or(Resign::NotLeader)));
    }
    out
}

/// Waits for SIGTERM or SIGINT, hands the leadership over (up to `timeout`; a second signal
/// cuts it short), logs what it did and stops the actor system. Spawn it on the System.
pub async fn on_signal(ctx: std::sync::Arc<BrokerCtx>, timeout: Duration, logger: Logger) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        slog::warn!(logger, "cannot listen for SIGTERM/SIGINT: no controlled shutdown");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    let started = Instant::now();
    if timeout.is_zero() {
        slog::info!(logger, "stopping (controlled-shutdown-timeout = 0s: no leadership hand-over)");
    } else {
        slog::info!(logger, "controlled shutdown: handing the leadership of this node's groups over";
            "timeout" => ?timeout);
        tokio::select! {
            r = hand_over(&ctx, timeout) => {
                slog::info!(logger, "controlled shutdown: leadership handed over";
                    "led" => r.led, "handed" => r.handed, "kept" => r.kept_summary(),
                    "took_ms" => started.elapsed().as_millis() as u64);
            }
            _ = term.recv() => slog::info!(logger, "second signal: stopping at once"),
            _ = int.recv() => slog::info!(logger, "second signal: stopping at once"),
        }
    }
    actix::System::current().stop();
}

#[cfg(test)]
mod tests {
    use super::HandOver;

    #[test]
    fn the_kept_groups_are_summed_up_after_the_first_ten() {
        let kept: Vec<String> = (0..301).map(|i| format!("t/{i}")).collect();
        let r = HandOver { led: 301, handed: 0, kept };
        let s = r.kept_summary();
        assert!(s.starts_with("t/0, t/1, "), "{s}");
        assert!(s.ends_with("t/9 and 291 more"), "{s}");
        let few = HandOver { led: 2, handed: 0, kept: vec!["__meta".into(), "a/0".into()] };
        assert_eq!(few.kept_summary(), "__meta, a/0");
        assert_eq!(HandOver::default().kept_summary(), "none");
    }
}
