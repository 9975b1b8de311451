//! The gRPC transport: a tonic (hyper/h2) server on a tokio runtime inside the extension.
//!
//! grpcio's Python server spends 0.6-0.8 ms of CPU per 602 KB request in its own machinery (see
//! BENCHMARKS.md); here HTTP/2, TCP and message reassembly run in Rust without the interpreter, and
//! Python is entered once per request, on a blocking thread, to serve it (`service.rs`). TLS, when
//! configured, is rustls in the same process (`tls.rs`).

mod compression;
mod framing;
pub(crate) mod python_thread;
mod service;
mod tls;

use std::net::{TcpListener, ToSocketAddrs};
use std::pin::Pin;
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tonic::transport::Server;

use crate::metrics::families::Interface;
use crate::overload::budget;
use crate::overload::connections::{admit, Guarded};
use crate::overload::{limits, MAX_HEADER_LIST, MAX_LOCAL_RESETS, MAX_PENDING_RESETS};

use service::{Limits, PythonService};
use tls::TlsPem;

// Flow-control windows: a 602 KB request streams in without waiting for a WINDOW_UPDATE, and what a
// client can send before the server reads anything stays small, since a request waiting for memory
// budget leaves its body unread (`overload::budget`: the stream window plus the frame that carried the
// prefix, per waiting request). The connection window lets a few such requests arrive at once on one
// connection. A connection also buffers the frame it is reading until the frame is whole, so the frame
// size bounds what each connection holds (1 MiB x `--max_connections`). 1 MiB frames, not 64 KiB: a
// 602 KB request then arrives in one DATA frame, which Python reads where it lies (`py_buffer`:
// no reassembly copy), and the transport floor measured 282 vs 414 us of CPU per request
// (BENCHMARKS.md, issue 20); the cost is up to 1 MiB per connection mid-frame instead of 64 KiB.
const STREAM_WINDOW: u32 = 1 << 20;
const CONNECTION_WINDOW: u32 = 4 << 20;
const MAX_FRAME: u32 = 1 << 20;
const _: () = assert!((STREAM_WINDOW + MAX_FRAME) as usize <= budget::UNREAD_PER_WAITER);
/// HTTP/2 PINGs to a connection with requests in flight find a peer that has vanished.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(120);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Stopping: the shutdown trigger and the signal that the server has drained.
struct Running {
    shutdown: oneshot::Sender<()>,
    drained: mpsc::Receiver<()>,
}

enum State {
    Bound(TcpListener, PythonService, Box<Server>),
    Running(Running),
    Stopped,
}

/// A bound gRPC server: `start()` begins serving, `stop(grace)` drains in-flight calls.
#[pyclass(frozen, module = "ovms_rs._native")]
pub struct GrpcServer {
    runtime: Mutex<Option<Arc<Runtime>>>,
    state: Mutex<State>,
    port: u16,
}

#[pymethods]
impl GrpcServer {
    /// Binds `host:port` (port 0 picks a free one); raises OSError when it cannot. With `tls_cert`
    /// and `tls_key` (PEM bytes) it serves TLS, requiring client certificates signed by
    /// `tls_client_ca` when that is given; ValueError says what is wrong with unusable PEM.
    #[new]
    #[pyo3(signature = (
        handler, host, port, *, max_message_bytes, max_concurrent_rpcs, handler_threads,
        tls_cert=None, tls_key=None, tls_client_ca=None,
    ))]
    #[allow(clippy::too_many_arguments)] // the Python constructor's keyword arguments
    fn new(
        handler: Py<PyAny>,
        host: &str,
        port: u16,
        max_message_bytes: usize,
        max_concurrent_rpcs: usize,
        handler_threads: usize,
        tls_cert: Option<&[u8]>,
        tls_key: Option<&[u8]>,
        tls_client_ca: Option<&[u8]>,
    ) -> PyResult<Self> {
        let limits = limits();
        let server = Server::builder()
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_frame_size(MAX_FRAME)
            .max_concurrent_streams(limits.max_concurrent_streams)
            .http2_max_header_list_size(MAX_HEADER_LIST)
            .http2_max_pending_accept_reset_streams(Some(MAX_PENDING_RESETS))
            .http2_max_local_error_reset_streams(Some(MAX_LOCAL_RESETS))
            .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT));
        let server = match (tls_cert, tls_key) {
            (None, None) if tls_client_ca.is_none() => server,
            (Some(cert), Some(key)) => {
                let pem = TlsPem {
                    cert,
                    key,
                    client_ca: tls_client_ca,
                };
                tls::with_tls(server, &pem).map_err(PyValueError::new_err)?
            }
            _ => {
                return Err(PyValueError::new_err(
                    "tls_cert and tls_key go together, and tls_client_ca needs them",
                ))
            }
        };
        let addrs: Vec<_> = (host, port).to_socket_addrs().map_err(os_error)?.collect();
        let listener = TcpListener::bind(&addrs[..]).map_err(os_error)?;
        listener.set_nonblocking(true).map_err(os_error)?;
        let port = listener.local_addr().map_err(os_error)?.port();
        let runtime = crate::runtime::shared(handler_threads).map_err(os_error)?;
        let service = PythonService::new(
            handler,
            Limits {
                max_message_bytes,
                max_concurrent_rpcs,
            },
        );
        Ok(GrpcServer {
            runtime: Mutex::new(Some(runtime)),
            state: Mutex::new(State::Bound(listener, service, Box::new(server))),
            port,
        })
    }

    #[getter]
    fn port(&self) -> u16 {
        self.port
    }

    fn start(&self) -> PyResult<()> {
        let mut state = self.state.lock().unwrap();
        let State::Bound(listener, service, server) =
            std::mem::replace(&mut *state, State::Stopped)
        else {
            return Err(PyRuntimeError::new_err("server already started"));
        };
        let server = *server;
        let runtime = self.runtime.lock().unwrap();
        let runtime = runtime.as_ref().expect("runtime lives until stop");
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        let (drained_tx, drained) = mpsc::channel();
        let incoming = {
            let _context = runtime.enter();
            let listener = tokio::net::TcpListener::from_std(listener).map_err(os_error)?;
            Incoming { listener }
        };
        runtime.spawn(async move {
            let stopped = async {
                let _ = shutdown_rx.await;
            };
            if let Err(e) = server
                .serve_with_incoming_shutdown(service, incoming, stopped)
                .await
            {
                eprintln!("gRPC server failed: {e}");
            }
            let _ = drained_tx.send(());
        });
        *state = State::Running(Running { shutdown, drained });
        Ok(())
    }

    /// Stops accepting calls and waits up to `grace` seconds for in-flight ones; True if they all
    /// finished. Calls still running in Python afterwards are abandoned with the runtime.
    fn stop(&self, py: Python<'_>, grace: f64) -> bool {
        let state = std::mem::replace(&mut *self.state.lock().unwrap(), State::Stopped);
        let drained = match state {
            State::Running(Running { shutdown, drained }) => {
                let _ = shutdown.send(());
                let grace = Duration::try_from_secs_f64(grace).unwrap_or_default();
                py.detach(move || drained.recv_timeout(grace).is_ok())
            }
            State::Bound(..) | State::Stopped => true,
        };
        if let Some(runtime) = self.runtime.lock().unwrap().take() {
            crate::runtime::release(runtime);
        }
        drained
    }
}

/// Accepted connections, each admitted under `--max_connections` (or closed at once) and guarded by
/// the idle and header timeouts.
struct Incoming {
    listener: tokio::net::TcpListener,
}

impl tokio_stream::Stream for Incoming {
    type Item = std::io::Result<Guarded<TcpStream>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let (stream, _) = match self.listener.poll_accept(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Ok(accepted)) => accepted,
            };
            let Some(handle) = admit(Interface::Grpc) else {
                continue; // every connection is busy: this one is closed on arrival
            };
            let _ = stream.set_nodelay(true);
            return Poll::Ready(Some(Ok(Guarded::new(stream, handle))));
        }
    }
}

fn os_error(e: std::io::Error) -> PyErr {
    PyOSError::new_err(e.to_string())
}
