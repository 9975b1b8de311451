//! Overload and hostile clients, for both ports: the process's budget of request bytes in flight
//! (`budget`), the connection cap and idle/slow-connection closing (`connections`), and the
//! settings both HTTP stacks get (`Limits`). Python sets them once, before the servers are built
//! (`set_transport_limits`).

pub mod budget;
pub mod connections;

use std::sync::RwLock;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// How long a request without a deadline waits for budget before RESOURCE_EXHAUSTED / 503.
pub const BUDGET_WAIT: Duration = Duration::from_secs(30);
/// After `body_timeout`, a body must keep arriving at this rate on average (bytes/s), as Apache's
/// mod_reqtimeout's MinRate: a large body on a slow link is not cut, a byte-a-second one is.
pub const MIN_BODY_RATE: u64 = 256 * 1024;
/// HTTP/2 header list (HPACK-decoded) and HTTP/1.1 header buffer bound, bytes (gRPC's default).
pub const MAX_HEADER_LIST: u32 = 16 * 1024;
/// HTTP/2 streams reset by the client before the server accepted them, per connection, before the
/// connection is closed (CVE-2023-44487, rapid reset; h2's default).
pub const MAX_PENDING_RESETS: usize = 20;
/// HTTP/2 streams the server itself resets for protocol errors, per connection, before closing it.
pub const MAX_LOCAL_RESETS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Open connections, both ports together (0: no cap).
    pub max_connections: usize,
    /// HTTP/2 streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    pub max_concurrent_streams: u32,
    /// A connection without a request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// A new connection must have started its first request (HTTP/1.1: a request's headers must
    /// have arrived) within this.
    pub header_timeout: Duration,
    /// A request body must have arrived within this (plus 1 s per `MIN_BODY_RATE` bytes).
    pub body_timeout: Duration,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_connections: 4096,
        max_concurrent_streams: 128,
        idle_timeout: Duration::from_secs(300),
        header_timeout: Duration::from_secs(20),
        body_timeout: Duration::from_secs(60),
    };

    /// When a body of which `received` bytes have arrived, started at `started`, must be complete.
    pub fn body_deadline(&self, started: Instant, received: usize) -> Instant {
        started + self.body_timeout + Duration::from_secs(received as u64 / MIN_BODY_RATE)
    }
}

static LIMITS: RwLock<Limits> = RwLock::new(Limits::DEFAULT);

pub fn limits() -> Limits {
    *LIMITS.read().unwrap_or_else(|e| e.into_inner())
}

fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            PyValueError::new_err(format!("{name} must be a positive number of seconds"))
        })
}

/// Sets the process's transport limits (servers built afterwards use them; the budget and connection
/// limits apply at once). `memory_quota` 0: no budget; `max_connections` 0: no cap.
#[pyfunction]
#[pyo3(signature = (
    *, memory_quota, max_connections, max_concurrent_streams, idle_timeout, header_timeout,
    body_timeout,
))]
pub fn set_transport_limits(
    memory_quota: usize,
    max_connections: usize,
    max_concurrent_streams: u32,
    idle_timeout: f64,
    header_timeout: f64,
    body_timeout: f64,
) -> PyResult<()> {
    if max_concurrent_streams == 0 {
        return Err(PyValueError::new_err("max_concurrent_streams must be > 0"));
    }
    let limits = Limits {
        max_connections,
        max_concurrent_streams,
        idle_timeout: seconds("idle_timeout", idle_timeout)?,
        header_timeout: seconds("header_timeout", header_timeout)?,
        body_timeout: seconds("body_timeout", body_timeout)?,
    };
    budget::configure(memory_quota);
    *LIMITS.write().unwrap_or_else(|e| e.into_inner()) = limits;
    Ok(())
}

/// (budget bytes, bytes reserved now, open connections): what the limits hold now.
#[pyfunction]
pub fn transport_usage() -> (usize, usize, usize) {
    let (budget, reserved) = budget::usage();
    (budget, reserved, connections::open_connections())
}
