//! The node's request memory pool (Kafka's `queued.max.request.bytes` and its `MemoryPool`):
//! the bytes of client requests read but not yet answered, over every connection and listener of
//! the node, are bounded. A connection reserves a request's size from the pool after it reads the
//! 4-byte size and before it allocates and reads the body, and gives the bytes back when the
//! request's handler has finished (for a Produce: when its batches are committed, also with
//! acks=0). While the pool is empty, connections wait before reading their next request, so a
//! client that sends faster than the node writes and replicates (acks=0, or many pipelined acks=1
//! producers) is read only as fast as requests finish, and TCP pushes back on it; nothing is
//! refused or lost.
//!
//! A request larger than the whole pool (only possible when the pool is smaller than
//! `max-request-size`, which `Config::validate` refuses) reserves the whole pool. Waiters are
//! served in arrival order (tokio's fair semaphore), so a large request is not starved by small
//! ones. No actix: the reservation is a future the connection's reader awaits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bytes of requests a node may hold, shared by all its connections.
#[derive(Debug)]
pub struct RequestPool {
    /// `None`: unbounded (`queued-max-request-bytes` ≤ 0).
    bytes: Option<Arc<Semaphore>>,
    capacity: u64,
    in_use: AtomicU64,
    waits: AtomicU64,
}

/// The reservation of one request's bytes; given back to the pool when dropped.
#[derive(Debug)]
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
    pool: Arc<RequestPool>,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.pool.in_use.fetch_sub(self.bytes, Ordering::Relaxed);
        drop(self.permit.take());
    }
}

impl RequestPool {
    /// A pool of `capacity` bytes; 0 or less is unbounded (Kafka's default -1).
    pub fn new(capacity: i64) -> Arc<Self> {
        // One acquire of tokio's semaphore takes at most u32::MAX permits.
        let cap = u64::try_from(capacity).ok().filter(|c| *c > 0).map(|c| c.min(u64::from(u32::MAX)));
        Arc::new(RequestPool {
            bytes: cap.map(|c| Arc::new(Semaphore::new(c as usize))),
            capacity: cap.unwrap_or(u64::MAX),
            in_use: AtomicU64::new(0),
            waits: AtomicU64::new(0),
        })
    }

    /// Reserves `size` bytes (at most the whole pool), waiting while the pool cannot give them.
    pub async fn reserve(self: &Arc<Self>, size: usize) -> Reservation {
        let bytes = (size as u64).min(self.capacity);
        let permit = match &self.bytes {
            None => None,
            Some(sem) => {
                // `bytes` ≤ capacity ≤ u32::MAX, so the cast is exact.
                let n = bytes as u32;
                let permit = match sem.clone().try_acquire_many_owned(n) {
                    Ok(p) => p,
                    Err(_) => {
                        self.waits.fetch_add(1, Ordering::Relaxed);
                        // The semaphore is never closed.
                        sem.clone().acquire_many_owned(n).await.expect("the request pool is never closed")
                    }
                };
                Some(permit)
            }
        };
        self.in_use.fetch_add(bytes, Ordering::Relaxed);
        Reservation { permit, pool: self.clone(), bytes }
    }

    /// Bytes reserved by requests now.
    pub fn in_use(&self) -> u64 {
        self.in_use.load(Ordering::Relaxed)
    }

    /// Reservations that had to wait for bytes, since start.
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    /// The pool's size in bytes (`None`: unbounded).
    pub fn capacity(&self) -> Option<u64> {
        self.bytes.as_ref().map(|_| self.capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[tokio::test]
    async fn reservations_wait_while_the_pool_is_spent_and_resume_in_order() {
        let pool = RequestPool::new(100);
        let a = pool.reserve(60).await;
        let b = pool.reserve(40).await;
        assert_eq!(pool.in_use(), 100);
        assert_eq!(pool.waits(), 0);
        // The pool is spent: the next reservation waits.
        let mut c = Box::pin(pool.reserve(50));
        assert!((&mut c).now_or_never().is_none());
        assert_eq!(pool.waits(), 1);
        // A later small one does not overtake it (fair order).
        drop(b);
        let mut d = Box::pin(pool.reserve(10));
        assert!((&mut c).now_or_never().is_none(), "40 free, 50 wanted");
        assert!((&mut d).now_or_never().is_none(), "waits behind the 50");
        drop(a);
        let c = c.now_or_never().expect("100 free");
        let d = d.now_or_never().expect("50 free after c");
        assert_eq!(pool.in_use(), 60);
        drop((c, d));
        assert_eq!(pool.in_use(), 0);
    }

    #[tokio::test]
    async fn a_request_larger_than_the_pool_takes_the_whole_pool() {
        let pool = RequestPool::new(100);
        let big = pool.reserve(1_000).await;
        assert_eq!(pool.in_use(), 100);
        assert!(Box::pin(pool.reserve(1)).now_or_never().is_none());
        drop(big);
        assert!(Box::pin(pool.reserve(1)).now_or_never().is_some());
        assert_eq!(pool.capacity(), Some(100));
    }

    #[tokio::test]
    async fn an_unbounded_pool_never_waits_but_still_counts() {
        let pool = RequestPool::new(-1);
        assert_eq!(pool.capacity(), None);
        let rs: Vec<_> = futures::future::join_all((0..10).map(|_| pool.reserve(1 << 30))).await;
        assert_eq!(pool.in_use(), 10 << 30);
        assert_eq!(pool.waits(), 0);
        drop(rs);
        assert_eq!(pool.in_use(), 0);
    }
}
