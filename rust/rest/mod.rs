//! The REST transport: HTTP/1.1 (keep-alive; h2c too) by hyper on the runtime the gRPC transport
//! uses, OVMS's routes (`routes.rs`), and one call into Python per request that needs the models
//! (`service.rs`). Health probes are answered in Rust, so they never wait for the interpreter.

mod routes;
mod service;

use std::net::{TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

pub use routes::RouteError;
use service::{Limits, Shared};

use crate::metrics::families::Interface;
use crate::overload::connections::{admit, Guarded};
use crate::overload::{limits, MAX_HEADER_LIST, MAX_LOCAL_RESETS, MAX_PENDING_RESETS};

/// HTTP/1.1's read buffer, and so the largest request head (hyper answers 431 past it).
const HTTP1_MAX_BUF: usize = 64 * 1024;

struct Running {
    shutdown: oneshot::Sender<Duration>,
    drained: mpsc::Receiver<bool>,
}

enum State {
    Bound(TcpListener),
    Running(Running),
    Stopped,
}

/// A bound REST server: `start()` begins serving, `stop(grace)` drains in-flight requests.
#[pyclass(frozen, module = "ovms_rs._native")]
pub struct RestServer {
    runtime: Mutex<Option<Arc<Runtime>>>,
    state: Mutex<State>,
    shared: Arc<Shared>,
    port: u16,
}

#[pymethods]
impl RestServer {
    /// Binds `host:port` (port 0 picks a free one); raises OSError when it cannot.
    #[new]
    #[pyo3(signature = (handler, host, port, *, max_body_bytes, max_concurrent, handler_threads))]
    fn new(
        handler: Py<PyAny>,
        host: &str,
        port: u16,
        max_body_bytes: usize,
        max_concurrent: usize,
        handler_threads: usize,
    ) -> PyResult<Self> {
        let addrs: Vec<_> = (host, port).to_socket_addrs().map_err(os_error)?.collect();
        let listener = TcpListener::bind(&addrs[..]).map_err(os_error)?;
        listener.set_nonblocking(true).map_err(os_error)?;
        let port = listener.local_addr().map_err(os_error)?.port();
        let runtime = crate::runtime::shared(handler_threads).map_err(os_error)?;
        Ok(RestServer {
            runtime: Mutex::new(Some(runtime)),
            state: Mutex::new(State::Bound(listener)),
            shared: Arc::new(Shared {
                handler,
                limits: Limits {
                    max_body_bytes,
                    max_concurrent,
                },
                in_flight: AtomicUsize::new(0),
                ready: AtomicBool::new(false),
            }),
            port,
        })
    }

    #[getter]
    fn port(&self) -> u16 {
        self.port
    }

    /// What `/v2/health/ready` answers: 200 when True, 503 when False (the initial state).
    fn set_ready(&self, ready: bool) {
        self.shared.ready.store(ready, Ordering::Release);
    }

    fn start(&self) -> PyResult<()> {
        let mut state = self.state.lock().unwrap();
        let State::Bound(listener) = std::mem::replace(&mut *state, State::Stopped) else {
            return Err(PyRuntimeError::new_err("server already started"));
        };
        let runtime = self.runtime.lock().unwrap();
        let runtime = runtime.as_ref().expect("runtime lives until stop");
        let listener = {
            let _context = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(os_error)?
        };
        let (shutdown, shutdown_rx) = oneshot::channel();
        let (drained_tx, drained) = mpsc::channel();
        runtime.spawn(accept_loop(
            listener,
            self.shared.clone(),
            shutdown_rx,
            drained_tx,
        ));
        *state = State::Running(Running { shutdown, drained });
        Ok(())
    }

    /// Stops accepting connections, lets in-flight requests finish for up to `grace` seconds (idle
    /// keep-alive connections are closed at once); True if they all finished.
    fn stop(&self, py: Python<'_>, grace: f64) -> bool {
        let state = std::mem::replace(&mut *self.state.lock().unwrap(), State::Stopped);
        let drained = match state {
            State::Running(Running { shutdown, drained }) => {
                let grace = Duration::try_from_secs_f64(grace).unwrap_or_default();
                let _ = shutdown.send(grace);
                py.detach(move || {
                    drained
                        .recv_timeout(grace + Duration::from_secs(1))
                        .unwrap_or(false)
                })
            }
            State::Bound(..) | State::Stopped => true,
        };
        if let Some(runtime) = self.runtime.lock().unwrap().take() {
            crate::runtime::release(runtime);
        }
        drained
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<Duration>,
    drained: mpsc::Sender<bool>,
) {
    let limits = limits();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(HTTP1_MAX_BUF);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_pending_accept_reset_streams(MAX_PENDING_RESETS)
        .max_local_error_reset_streams(MAX_LOCAL_RESETS);
    let graceful = GracefulShutdown::new();
    let grace = loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    continue; // e.g. out of file descriptors: keep serving the connections we have
                };
                let Some(handle) = admit(Interface::Rest) else {
                    continue; // every connection is busy: this one is closed on arrival
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let stream = Guarded::new(stream, handle);
                let handle = stream.handle().clone();
                let service = service_fn(move |request| {
                    service::serve(shared.clone(), request, handle.request())
                });
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                tokio::spawn(graceful.watch(connection.into_owned()));
            }
            grace = &mut shutdown => break grace.unwrap_or_default(),
        }
    };
    drop(listener);
    let finished = tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_ok();
    let _ = drained.send(finished);
}

fn os_error(e: std::io::Error) -> PyErr {
    PyOSError::new_err(e.to_string())
}
