//! Produce requests of one connection reach their partitions in the order the client sent them.
//!
//! A connection's requests are served concurrently and their responses leave in request order
//! (`net::connection`), where Kafka mutes a connection while it serves one request. For Produce
//! the order of arrival at the partition is part of the contract: an idempotent producer with up
//! to five requests in flight numbers its batches, and a batch that overtakes an earlier one of
//! the same partition is refused with OUT_OF_ORDER_SEQUENCE_NUMBER, which a transactional
//! producer treats as fatal. Whatever a request awaits before it hands its batches to the
//! produce handler (KIP-890 verification waiting for this node's `__meta` image) could let a
//! later request overtake it. So the connection gives each Produce request a [`ProduceTurn`]
//! when it reads the frame, and the request hands its batches on only after the request before
//! it has handed on its own or finished without any.

use std::cell::RefCell;
use std::future::Future;

use tokio::sync::oneshot;

/// The Produce requests of one connection, in the order they were read.
#[derive(Default)]
pub struct ProduceOrder {
    last: Option<oneshot::Receiver<()>>,
}

impl ProduceOrder {
    /// The turn of the next Produce request read from the connection.
    pub fn next_turn(&mut self) -> ProduceTurn {
        let (done, next) = oneshot::channel();
        ProduceTurn { prev: self.last.replace(next), _done: Some(done) }
    }
}

/// One Produce request's place in its connection's order. Dropping it lets the next request go.
#[derive(Default)]
pub struct ProduceTurn {
    prev: Option<oneshot::Receiver<()>>,
    _done: Option<oneshot::Sender<()>>,
}

impl ProduceTurn {
    /// Waits until the request before this one has handed on its batches or finished.
    pub async fn wait(&mut self) {
        if let Some(prev) = &mut self.prev {
            // The sender is only ever dropped: Err means the previous request let go.
            let _ = prev.await;
            self.prev = None;
        }
    }
}

tokio::task_local! {
    static TURN: RefCell<Option<ProduceTurn>>;
}

/// Runs a Produce request's future with its turn (taken by [`take`]).
pub fn scope<F: Future>(turn: ProduceTurn, fut: F) -> impl Future<Output = F::Output> {
    TURN.scope(RefCell::new(Some(turn)), fut)
}

/// This request's turn; a request served outside a connection (tests) has no one to wait for.
pub fn take() -> ProduceTurn {
    TURN.try_with(|t| t.borrow_mut().take()).ok().flatten().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn a_turn_waits_for_the_one_before_and_only_for_it() {
        let mut order = ProduceOrder::default();
        let mut first = order.next_turn();
        let mut second = order.next_turn();
        let mut third = order.next_turn();
        assert!(first.wait().now_or_never().is_some(), "the first request waits for no one");
        assert!(second.wait().now_or_never().is_none(), "the second waits while the first holds its turn");
        drop(first);
        // The third still waits: the second has not let go, even though the first has.
        assert!(third.wait().now_or_never().is_none());
        assert!(second.wait().now_or_never().is_some());
        drop(second);
        assert!(third.wait().now_or_never().is_some());
    }

    #[test]
    fn a_request_that_never_took_its_turn_lets_the_next_go_when_it_ends() {
        let mut order = ProduceOrder::default();
        let first = order.next_turn();
        let mut second = order.next_turn();
        let fut = scope(first, async {});
        assert!(fut.now_or_never().is_some());
        assert!(second.wait().now_or_never().is_some());
        assert!(take().prev.is_none(), "outside a connection there is no turn to wait for");
    }
}
