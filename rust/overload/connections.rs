//! Connections of both ports: a cap on how many are open (`--max_connections`, process-wide), and
//! closing those that carry no request: after `--idle_timeout_seconds` without one, and a new
//! connection that has not started its first request within `--header_timeout_seconds` (a client
//! that sends its preface or headers a byte at a time, or nothing).
//!
//! At the cap a new connection makes room, as nginx's reusable connections do: the idle connection
//! that never carried a request (oldest first; else the one idle longest) is closed; if every open
//! connection has a request in flight the new one is closed at once. So a client that opens
//! thousands of connections and sends nothing only ever displaces its own.
//!
//! Each accepted socket is wrapped in [`Guarded`], which closes it (reads end) when its state says so;
//! requests find their connection's [`ConnHandle`] to count themselves in flight on it.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::{limits, Limits};
use crate::metrics::families::{Interface, RefusalReason};
use crate::metrics::registry;

/// Far enough to mean "no deadline" for a tokio timer.
const NEVER: Duration = Duration::from_secs(86400 * 365);

pub struct ConnState {
    id: u64,
    opened: Instant,
    /// Requests in flight on the connection.
    active: AtomicUsize,
    /// Requests it has carried (0: never used).
    served: AtomicU64,
    /// When `active` last fell to 0 (ns since `opened`).
    idle_since_ns: AtomicU64,
    /// Set to close the connection (eviction or shutdown); its reader is woken.
    close: AtomicBool,
    reader: Mutex<Option<Waker>>,
}

impl ConnState {
    fn idle_since(&self) -> Instant {
        self.opened + Duration::from_nanos(self.idle_since_ns.load(Ordering::Acquire))
    }

    fn wake(&self) {
        if let Some(waker) = self.reader.lock().unwrap_or_else(|e| e.into_inner()).take() {
            waker.wake();
        }
    }

    /// When the connection is to close if nothing changes; None while a request is in flight.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        if self.active.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(if self.served.load(Ordering::Acquire) == 0 {
            self.opened + limits.header_timeout.min(limits.idle_timeout)
        } else {
            self.idle_since() + limits.idle_timeout
        })
    }
}

/// The open connections (both ports).
struct Table {
    open: HashMap<u64, Arc<ConnState>>,
    next_id: u64,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

fn with_table<R>(f: impl FnOnce(&mut Table) -> R) -> R {
    let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let table = table.get_or_insert_with(|| Table {
        open: HashMap::new(),
        next_id: 0,
    });
    f(table)
}

/// How many connections are open now (both ports).
pub fn open_connections() -> usize {
    with_table(|t| t.open.len())
}

/// Admits a new connection, closing an idle one to make room at the cap; None: refused (the caller
/// drops the socket).
pub fn admit(interface: Interface) -> Option<ConnHandle> {
    let max = limits().max_connections;
    let admitted = with_table(|table| {
        if max > 0 && table.open.len() >= max {
            let victim = table
                .open
                .values()
                .filter(|c| {
                    c.active.load(Ordering::Acquire) == 0 && !c.close.load(Ordering::Acquire)
                })
                .min_by_key(|c| (c.served.load(Ordering::Acquire) > 0, c.idle_since()))?
                .clone();
            victim.close.store(true, Ordering::Release);
            table.open.remove(&victim.id);
            victim.wake();
        }
        let id = table.next_id;
        table.next_id += 1;
        let state = Arc::new(ConnState {
            id,
            opened: Instant::now(),
            active: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since_ns: AtomicU64::new(0),
            close: AtomicBool::new(false),
            reader: Mutex::new(None),
        });
        table.open.insert(id, state.clone());
        Some(ConnHandle(state))
    });
    if admitted.is_none() {
        registry().refused(interface, RefusalReason::ConnectionLimit);
    }
    admitted
}

/// A connection's shared state, as requests see it (tonic's request extension; REST's closure).
#[derive(Clone)]
pub struct ConnHandle(Arc<ConnState>);

impl ConnHandle {
    /// Counts a request in flight on the connection until the guard drops.
    pub fn request(&self) -> RequestOnConn {
        let state = &self.0;
        state.active.fetch_add(1, Ordering::AcqRel);
        state.served.fetch_add(1, Ordering::AcqRel);
        RequestOnConn(self.0.clone())
    }
}

pub struct RequestOnConn(Arc<ConnState>);

impl Drop for RequestOnConn {
    fn drop(&mut self) {
        let state = &self.0;
        let ns = state.opened.elapsed().as_nanos() as u64;
        state.idle_since_ns.store(ns, Ordering::Release);
        if state.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            state.wake(); // its reader re-arms the idle timer
        }
    }
}

/// An accepted socket that ends (reads return end-of-file) when its connection is to close.
pub struct Guarded<IO> {
    io: IO,
    handle: ConnHandle,
    timer: Pin<Box<Sleep>>,
    /// The deadline the timer is set for (re-arming only when it moves).
    armed: Option<Instant>,
    closed: bool,
}

impl<IO> Guarded<IO> {
    pub fn new(io: IO, handle: ConnHandle) -> Self {
        Guarded {
            io,
            handle,
            timer: Box::pin(tokio::time::sleep(NEVER)),
            armed: None,
            closed: false,
        }
    }

    pub fn handle(&self) -> &ConnHandle {
        &self.handle
    }

    /// True once the connection is to close; otherwise arms the timer for its deadline.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let state = &self.handle.0;
        *state.reader.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        if state.close.load(Ordering::Acquire) {
            return true;
        }
        let limits = limits();
        let deadline = state.deadline(&limits);
        let now = Instant::now();
        if deadline.is_some_and(|d| d <= now) {
            return true;
        }
        if deadline != self.armed {
            self.armed = deadline;
            let at = deadline.unwrap_or(now + NEVER);
            self.timer.as_mut().reset(at.into());
        }
        // Registers the timer's wake-up; it cannot be due yet.
        if self.timer.as_mut().poll(cx).is_ready() {
            return state.deadline(&limits).is_some_and(|d| d <= Instant::now());
        }
        false
    }
}

impl<IO> Drop for Guarded<IO> {
    fn drop(&mut self) {
        let id = self.handle.0.id;
        with_table(|t| t.open.remove(&id));
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.closed {
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Pending => {}
            ready => return ready,
        }
        if this.expired(cx) {
            this.closed = true;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection closed: idle, too slow, or evicted at --max_connections",
            )));
        }
        Poll::Pending
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<IO: tonic::transport::server::Connected> tonic::transport::server::Connected for Guarded<IO> {
    type ConnectInfo = ConnHandle;

    fn connect_info(&self) -> ConnHandle {
        self.handle.clone()
    }
}
