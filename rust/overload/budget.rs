//! The process's budget of request bytes in flight (`--grpc_memory_quota`), shared by the gRPC and
//! REST transports and the image decoder.
//!
//! A request reserves the size it declares (the gRPC 5-byte prefix, REST's Content-Length; chunked
//! REST bodies as their chunks arrive) *before* its body is read, and gives it back when its buffer is
//! freed (after the Python call returns). Waiting for budget while holding no body is flow control:
//! the body stays in the client's socket (HTTP/1.1) or behind HTTP/2's window; past a bound the
//! request is refused (RESOURCE_EXHAUSTED / 503). A request larger than the whole budget is refused at
//! once.
//!
//! What the process holds beyond the budget is what waiting requests hold unread: HTTP/2 lets a
//! client send a whole stream window before the server reads anything, and a waiting gRPC request
//! also holds the frame that carried its prefix. That is at most `UNREAD_PER_WAITER` a request, and at
//! most `MAX_WAITING` requests wait at once (beyond them, refused at once): a margin of
//! `MAX_WAITING * UNREAD_PER_WAITER` (128 MiB) whatever the number of clients.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Budget accounting is in KiB (tokio's semaphore takes at most u32::MAX permits at once).
const UNIT: usize = 1024;

/// Requests waiting for budget at once, both ports together; one more is refused at once.
pub const MAX_WAITING: usize = 64;
/// The most a waiting request holds unread: the gRPC port's stream window (1 MiB) plus its largest
/// frame (1 MiB; `grpc/mod.rs` checks its settings against this); REST holds less (hyper's 1 MiB h2c
/// window, or HTTP/1.1's 64 KiB read buffer).
pub const UNREAD_PER_WAITER: usize = (1 << 20) + (1 << 20);

/// Requests waiting for budget now.
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// One of the `MAX_WAITING` places, given back on drop.
struct Waiting;

impl Waiting {
    fn enter() -> Option<Waiting> {
        WAITING
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_WAITING).then_some(n + 1)
            })
            .ok()
            .map(|_| Waiting)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Pool {
    semaphore: Arc<Semaphore>,
    units: usize,
}

/// None: no budget (every reservation succeeds at once).
static POOL: RwLock<Option<Pool>> = RwLock::new(None);

/// Sets the budget (0: none). Reservations already held are counted against the pool they came from.
pub fn configure(bytes: usize) {
    let pool = (bytes > 0).then(|| {
        let units = bytes.div_ceil(UNIT).min(Semaphore::MAX_PERMITS);
        Pool {
            semaphore: Arc::new(Semaphore::new(units)),
            units,
        }
    });
    *POOL.write().unwrap_or_else(|e| e.into_inner()) = pool;
}

/// The budget in bytes (0: none) and the bytes reserved now.
pub fn usage() -> (usize, usize) {
    let pool = POOL.read().unwrap_or_else(|e| e.into_inner());
    pool.as_ref().map_or((0, 0), |p| {
        (
            p.units * UNIT,
            (p.units - p.semaphore.available_permits()) * UNIT,
        )
    })
}

/// Bytes held against the budget; given back on drop.
#[derive(Debug, Default)]
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
}

impl From<OwnedSemaphorePermit> for Reservation {
    fn from(permit: OwnedSemaphorePermit) -> Self {
        Reservation {
            permit: Some(permit),
        }
    }
}

impl Reservation {
    /// True when it holds bytes of a budget (false: no budget is set, or nothing was asked).
    pub fn is_held(&self) -> bool {
        self.permit.is_some()
    }

    /// Adds `other`'s bytes to this reservation (one release for both).
    pub fn merge(&mut self, other: Reservation) {
        match (&mut self.permit, other.permit) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (mine @ None, theirs) => *mine = theirs,
            (Some(_), None) => {}
        }
    }
}

/// Why a reservation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Larger than the whole budget: it could never fit.
    TooLarge { bytes: usize, budget: usize },
    /// The budget stayed full until the wait's end (or, for `try_reserve`, is full now).
    Full { bytes: usize, budget: usize },
    /// The budget is full and `MAX_WAITING` requests already wait for it.
    Crowded { bytes: usize, budget: usize },
}

impl Refused {
    pub fn message(&self) -> String {
        match *self {
            Refused::TooLarge { bytes, budget } => format!(
                "Request of {bytes} bytes is larger than the server's memory budget ({budget} bytes)"
            ),
            Refused::Full { bytes, budget } => format!(
                "Server memory budget ({budget} bytes) is in use by other requests; \
                 {bytes} bytes could not be reserved"
            ),
            Refused::Crowded { bytes, budget } => format!(
                "Server memory budget ({budget} bytes) is in use by other requests and \
                 {MAX_WAITING} requests are waiting for it; {bytes} bytes could not be reserved"
            ),
        }
    }
}

fn pool_for(bytes: usize) -> Result<Option<(Arc<Semaphore>, u32, usize)>, Refused> {
    let pool = POOL.read().unwrap_or_else(|e| e.into_inner());
    let Some(pool) = pool.as_ref() else {
        return Ok(None);
    };
    let budget = pool.units * UNIT;
    let units = bytes.div_ceil(UNIT);
    if units > pool.units {
        return Err(Refused::TooLarge { bytes, budget });
    }
    let units = u32::try_from(units).map_err(|_| Refused::TooLarge { bytes, budget })?;
    Ok(Some((pool.semaphore.clone(), units, budget)))
}

/// Reserves `bytes`, waiting (fairly, first come first served) until `until` for others to give
/// theirs back, if fewer than `MAX_WAITING` requests wait already.
pub async fn reserve(bytes: usize, until: Instant) -> Result<Reservation, Refused> {
    let Some((semaphore, units, budget)) = pool_for(bytes)? else {
        return Ok(Reservation::default());
    };
    if let Ok(permit) = semaphore.clone().try_acquire_many_owned(units) {
        return Ok(permit.into());
    }
    let Some(_waiting) = Waiting::enter() else {
        return Err(Refused::Crowded { bytes, budget });
    };
    match tokio::time::timeout_at(until.into(), semaphore.acquire_many_owned(units)).await {
        Ok(Ok(permit)) => Ok(permit.into()),
        _ => Err(Refused::Full { bytes, budget }),
    }
}

/// Reserves `bytes` now or not at all (for callers that cannot wait: chunked bodies part-read, the
/// image decoder on a handler thread).
pub fn try_reserve(bytes: usize) -> Result<Reservation, Refused> {
    let Some((semaphore, units, budget)) = pool_for(bytes)? else {
        return Ok(Reservation::default());
    };
    semaphore
        .try_acquire_many_owned(units)
        .map(Reservation::from)
        .map_err(|_| Refused::Full { bytes, budget })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    /// The budget is process-wide: tests that set it take turns.
    pub(crate) static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn reservations_are_bounded_and_given_back() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        configure(10 * UNIT);
        let a = try_reserve(6 * UNIT).unwrap();
        assert_eq!(usage(), (10 * UNIT, 6 * UNIT));
        assert!(matches!(try_reserve(5 * UNIT), Err(Refused::Full { .. })));
        assert!(matches!(
            try_reserve(11 * UNIT),
            Err(Refused::TooLarge { .. })
        ));
        let mut b = try_reserve(1).unwrap(); // rounds up to one unit
        b.merge(try_reserve(UNIT).unwrap());
        assert_eq!(usage().1, 8 * UNIT);
        drop(a);
        drop(b);
        assert_eq!(usage().1, 0);
        configure(0);
        assert!(try_reserve(usize::MAX / 2).is_ok());
    }

    #[test]
    fn waiting_ends_with_a_release_or_the_bound() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        configure(4 * UNIT);
        runtime.block_on(async {
            let held = try_reserve(3 * UNIT).unwrap();
            let soon = Instant::now() + Duration::from_millis(50);
            assert!(matches!(
                reserve(2 * UNIT, soon).await,
                Err(Refused::Full { .. })
            ));
            let later = Instant::now() + Duration::from_secs(5);
            let waiter = tokio::spawn(reserve(2 * UNIT, later));
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(held);
            assert!(waiter.await.unwrap().is_ok());
        });
        configure(0);
    }

    #[test]
    fn at_most_max_waiting_requests_wait() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        configure(4 * UNIT);
        runtime.block_on(async {
            let held = try_reserve(4 * UNIT).unwrap();
            let later = Instant::now() + Duration::from_secs(5);
            let waiters: Vec<_> = (0..MAX_WAITING)
                .map(|_| tokio::spawn(reserve(UNIT, later)))
                .collect();
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(WAITING.load(Ordering::Acquire), MAX_WAITING);
            let refused = reserve(UNIT, later).await.unwrap_err();
            assert!(matches!(refused, Refused::Crowded { .. }));
            assert!(refused.message().contains("64 requests are waiting"));
            drop(held);
            for waiter in waiters {
                drop(waiter.await.unwrap()); // each gets its turn as the one before gives it back
            }
            assert_eq!(WAITING.load(Ordering::Acquire), 0);
            assert!(reserve(UNIT, later).await.is_ok());
        });
        configure(0);
    }
}
