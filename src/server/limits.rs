//! Per-client rate limiting (token buckets) and admission of executions (a concurrency limit
//! with a bounded queue).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Buckets kept before full ones are dropped; a full bucket is the same as no bucket, so
/// dropping them forgets nothing, and a flood of peer addresses cannot grow the map forever.
const PRUNE_AT: usize = 10_000;

/// Largest body of a file upload (`PUT /v1/sessions/{id}/files/{*path}`): the engine's cap on
/// one file of a workspace. Uploads have their own cap rather than `--max-body`, which bounds
/// the JSON bodies, and the upload is read before it waits for its session's turn.
pub const MAX_UPLOAD_BYTES: usize = crate::engine::MAX_FILE_BYTES as usize;

/// `per_minute` requests per client, in bursts of up to `per_minute`.
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter { per_minute, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `client`; `Err(seconds)` says when the next one is available.
    pub fn check(&self, client: &str, now: Instant) -> Result<(), u64> {
        let cap = f64::from(self.per_minute);
        let per_sec = cap / 60.0;
        // A poisoned lock only means another request panicked mid-update; the counts are
        // still usable.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= PRUNE_AT {
            buckets.retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * per_sec < cap);
        }
        let b = buckets.entry(client.to_string()).or_insert(Bucket { tokens: cap, last: now });
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * per_sec).min(cap);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / per_sec).ceil() as u64)
        }
    }
}

/// At most `max` executions run; up to `queue` more wait for a slot; beyond that, refuse.
pub struct Admission {
    slots: Arc<Semaphore>,
    max: usize,
    queue: usize,
    waiting: Arc<AtomicUsize>,
}

#[derive(Debug, PartialEq)]
pub struct QueueFull;

/// Counts a waiter for as long as it waits, also when its request is dropped meanwhile.
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Admission {
    pub fn new(max: usize, queue: usize) -> Admission {
        Admission { slots: Arc::new(Semaphore::new(max)), max, queue, waiting: Arc::new(AtomicUsize::new(0)) }
    }

    pub async fn admit(&self) -> Result<OwnedSemaphorePermit, QueueFull> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let reserved = self
            .waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| (w < self.queue).then_some(w + 1))
            .is_ok();
        if !reserved {
            return Err(QueueFull);
        }
        let _waiting = Waiting(self.waiting.clone());
        // The semaphore is never closed, so acquiring only ends with a permit.
        self.slots.clone().acquire_owned().await.map_err(|_| QueueFull)
    }

    /// Takes a place in the queue without a slot, for a request that must first wait for
    /// something else (its session's turn): it is counted and bounded by the queue like any
    /// waiter, from the start of its wait until it has a slot. Refused when the queue is full.
    pub fn reserve(&self) -> Result<Reservation, QueueFull> {
        self.waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| (w < self.queue).then_some(w + 1))
            .map_err(|_| QueueFull)?;
        Ok(Reservation { _waiting: Waiting(self.waiting.clone()), slots: self.slots.clone() })
    }

    pub fn running(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    /// Executions that may run at once.
    pub fn slots(&self) -> usize {
        self.max
    }

    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

/// A place in the queue (see [`Admission::reserve`]); given up when dropped or admitted.
pub struct Reservation {
    _waiting: Waiting,
    slots: Arc<Semaphore>,
}

impl Reservation {
    /// Waits for a slot, still counted as queued until it has one.
    pub async fn admit(self) -> Result<OwnedSemaphorePermit, QueueFull> {
        // The semaphore is never closed, so acquiring only ends with a permit.
        self.slots.clone().acquire_owned().await.map_err(|_| QueueFull)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refuses_past_its_size_and_refills() {
        let rl = RateLimiter::new(2);
        let t = Instant::now();
        assert_eq!(rl.check("a", t), Ok(()));
        assert_eq!(rl.check("a", t), Ok(()));
        assert_eq!(rl.check("a", t), Err(30));
        assert_eq!(rl.check("b", t), Ok(()), "clients have their own buckets");
        assert_eq!(rl.check("a", t + Duration::from_secs(30)), Ok(()));
    }

    #[tokio::test]
    async fn queue_is_bounded() {
        let adm = Arc::new(Admission::new(1, 1));
        let first = adm.admit().await.unwrap();
        let adm2 = adm.clone();
        let waiter = tokio::spawn(async move { adm2.admit().await.map(drop) });
        while adm.queued() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(adm.admit().await.err(), Some(QueueFull));
        assert_eq!(adm.running(), 1);
        drop(first);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(adm.queued(), 0);
    }

    #[tokio::test]
    async fn reservations_count_and_share_the_queue() {
        let adm = Admission::new(1, 2);
        let first = adm.admit().await.unwrap();
        let r1 = adm.reserve().unwrap();
        let _r2 = adm.reserve().unwrap();
        assert_eq!(adm.queued(), 2);
        assert!(adm.reserve().is_err(), "the queue is full");
        assert_eq!(adm.admit().await.err(), Some(QueueFull));
        drop(first);
        let permit = r1.admit().await.unwrap();
        assert_eq!(adm.queued(), 1, "an admitted reservation leaves the queue");
        assert_eq!(adm.running(), 1);
        drop(permit);
    }
}
