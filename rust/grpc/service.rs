//! One HTTP/2 request -> one call into Python: read the single request message, hand its bytes to the
//! Python handler on a blocking thread, and frame what it returns.
//!
//! Everything except the handler runs without the interpreter: HTTP/2, message reassembly, limits and
//! deadlines. The handler is `handler(path: str, request: RequestBody | bytearray, timeout: float | None)
//! -> (code, message, reply: bytes | None)` and never raises on purpose (it maps errors to statuses
//! itself); `py_buffer` says which the request is.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use http::{Request, Response};
use http_body_util::BodyExt;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::compression::{decompress, request_encoding, Encoding};
use crate::metrics::families::{Interface, RefusalReason};
use crate::metrics::{registry, InFlightGauge};
use crate::overload::budget::{self, Reservation};
use crate::overload::connections::{ConnHandle, RequestOnConn};
use crate::overload::{limits, BUDGET_WAIT};
use crate::py_buffer::{bytes_of, request_object};

use super::framing::{
    code, error_reply, ok_reply, parse_prefix, parse_timeout, ReplyBody, PREFIX_LEN,
};

/// A gRPC status to answer with instead of calling the handler.
type Refusal = (i32, String);

pub struct Limits {
    pub max_message_bytes: usize,
    pub max_concurrent_rpcs: usize,
}

struct Shared {
    handler: Py<PyAny>,
    limits: Limits,
    in_flight: AtomicUsize,
}

/// The tower service tonic's server drives, one clone per connection.
#[derive(Clone)]
pub struct PythonService(Arc<Shared>);

impl PythonService {
    pub fn new(handler: Py<PyAny>, limits: Limits) -> Self {
        PythonService(Arc::new(Shared {
            handler,
            limits,
            in_flight: AtomicUsize::new(0),
        }))
    }
}

impl tower_service::Service<Request<tonic::body::Body>> for PythonService {
    type Response = Response<ReplyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        let shared = self.0.clone();
        let extensions = request.extensions();
        let on_connection = extensions
            .get::<ConnHandle>()
            .or_else(|| {
                extensions
                    .get::<tonic::transport::server::TlsConnectInfo<ConnHandle>>()
                    .map(|tls| tls.get_ref())
            })
            .map(ConnHandle::request);
        // Taken now, before tonic's own `grpc-timeout` timer starts (it would answer CANCELLED "Timeout
        // expired"): ours fires no later, and answers DEADLINE_EXCEEDED as grpcio and OVMS do.
        let deadline = parse_timeout(request.headers()).map(|t| Instant::now() + t);
        Box::pin(async move {
            let Some(deadline) = deadline else {
                return Ok(handle(shared, request, None, on_connection).await);
            };
            let handled = handle(shared, request, Some(deadline), on_connection);
            Ok(tokio::time::timeout_at(deadline.into(), handled)
                .await
                .unwrap_or_else(|_| error_reply(code::DEADLINE_EXCEEDED, "Deadline Exceeded")))
        })
    }
}

/// Counts a request from arrival until its Python call returns (even if the client has gone).
// The gauge is held for its Drop: the transport-wide in-flight count (metrics).
struct InFlight(Arc<Shared>, #[allow(dead_code)] InFlightGauge);

impl InFlight {
    fn enter(shared: &Arc<Shared>) -> Option<InFlight> {
        let before = shared.in_flight.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(shared.clone(), InFlightGauge::enter(Interface::Grpc));
        (before < shared.limits.max_concurrent_rpcs).then_some(guard)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<tonic::body::Body>,
    deadline: Option<Instant>,
    on_connection: Option<RequestOnConn>,
) -> Response<ReplyBody> {
    let Some(guard) = InFlight::enter(&shared) else {
        registry().refused(Interface::Grpc, RefusalReason::ConcurrencyLimit);
        return error_reply(code::RESOURCE_EXHAUSTED, "Concurrent RPC limit exceeded!");
    };
    let path = request.uri().path().to_owned();
    let encoding = match request_encoding(request.headers()) {
        Ok(encoding) => encoding,
        Err((status, details)) => return error_reply(status, &details),
    };
    let limit = shared.limits.max_message_bytes;
    let (message, mut reservation) = match read_message(request.into_body(), limit).await {
        Ok(read) => read,
        Err((status, details)) => return error_reply(status, &details),
    };
    registry().received(Interface::Grpc, message.len);
    // The call keeps running if the client goes away (the future is dropped): Python code is not
    // interruptible, and the in-flight guard (and the request's memory reservation) must live until
    // it returns.
    let task = tokio::task::spawn_blocking(move || {
        let _guards = (guard, on_connection);
        super::python_thread::register();
        let message = match message.decompressed(encoding, limit) {
            Ok(message) => message,
            Err((status, details)) => return error_reply(status, &details),
        };
        if message.inflated {
            match budget::try_reserve(message.len) {
                Ok(more) => reservation.merge(more),
                Err(refused) => return budget_refusal(refused),
            }
        }
        let reply = call_handler(&shared, &path, message, deadline);
        drop(reservation);
        reply
    });
    task.await
        .unwrap_or_else(|_| error_reply(code::INTERNAL, "Internal server error"))
}

/// The request message, as the chunks HTTP/2 delivered it (copied once, into Python's bytes).
struct Message {
    chunks: Vec<Bytes>,
    len: usize,
    received: usize,
    compressed: bool,
    /// Decompressed here: its size was not known (nor reserved) when the body was read.
    inflated: bool,
}

impl Message {
    fn decompressed(self, encoding: Encoding, limit: usize) -> Result<Message, Refusal> {
        if !self.compressed {
            return Ok(self);
        }
        let data = decompress(encoding, &self.chunks, limit)?;
        let len = data.len();
        Ok(Message {
            chunks: vec![Bytes::from(data)],
            len,
            received: len,
            compressed: false,
            inflated: true,
        })
    }
}

/// Reads exactly one length-prefixed message; refuses oversized or extra messages. Its declared size
/// is reserved from the memory budget before any of it is read (waiting up to `BUDGET_WAIT`); the
/// body must then arrive within the body timeout.
async fn read_message(
    mut body: tonic::body::Body,
    limit: usize,
) -> Result<(Message, Reservation), Refusal> {
    let limits = limits();
    let mut prefix = [0u8; PREFIX_LEN];
    let mut prefix_len = 0;
    let mut message: Option<Message> = None;
    let mut reservation = Reservation::default();
    let mut started = Instant::now();
    loop {
        let received = message.as_ref().map_or(0, |m| m.received);
        let until = limits.body_deadline(started, received);
        let Ok(frame) = tokio::time::timeout_at(until.into(), body.frame()).await else {
            registry().refused(Interface::Grpc, RefusalReason::Timeout);
            return Err((code::DEADLINE_EXCEEDED, slow_body(limits.body_timeout)));
        };
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| (code::CANCELLED, format!("Request body: {e}")))?;
        let Ok(mut data) = frame.into_data() else {
            continue; // request trailers carry nothing for us
        };
        while data.has_remaining() {
            let Some(m) = message.as_mut() else {
                let n = (PREFIX_LEN - prefix_len).min(data.len());
                prefix[prefix_len..prefix_len + n].copy_from_slice(&data[..n]);
                data.advance(n);
                prefix_len += n;
                if prefix_len == PREFIX_LEN {
                    let m = start_message(&prefix, limit)?;
                    match budget::reserve(m.len, Instant::now() + BUDGET_WAIT).await {
                        Ok(r) => reservation = r,
                        Err(refused) => {
                            registry().refused(Interface::Grpc, RefusalReason::MemoryBudget);
                            return Err((code::RESOURCE_EXHAUSTED, refused.message()));
                        }
                    }
                    started = Instant::now(); // waiting for budget is not the client's slowness
                    message = Some(m);
                }
                continue;
            };
            let missing = m.len - m.received;
            if missing == 0 {
                return Err((code::UNIMPLEMENTED, "Expected one request message".into()));
            }
            let chunk = data.split_to(missing.min(data.len()));
            m.received += chunk.len();
            m.chunks.push(chunk);
        }
    }
    let message = message.ok_or((code::INTERNAL, "No request message".to_string()))?;
    if message.received != message.len {
        return Err((code::INTERNAL, "Incomplete request message".into()));
    }
    Ok((message, reservation))
}

pub fn slow_body(timeout: Duration) -> String {
    format!(
        "Request body not received in time ({} s, then {} KiB/s)",
        timeout.as_secs_f64(),
        crate::overload::MIN_BODY_RATE / 1024
    )
}

fn budget_refusal(refused: budget::Refused) -> Response<ReplyBody> {
    registry().refused(Interface::Grpc, RefusalReason::MemoryBudget);
    error_reply(code::RESOURCE_EXHAUSTED, &refused.message())
}

fn start_message(prefix: &[u8; PREFIX_LEN], limit: usize) -> Result<Message, Refusal> {
    let prefix = parse_prefix(prefix);
    if prefix.len > limit {
        return Err((
            code::RESOURCE_EXHAUSTED,
            format!(
                "Received message larger than max ({} vs. {limit})",
                prefix.len
            ),
        ));
    }
    Ok(Message {
        chunks: Vec::new(),
        len: prefix.len,
        received: 0,
        compressed: prefix.compressed,
        inflated: false,
    })
}

fn call_handler(
    shared: &Shared,
    path: &str,
    message: Message,
    deadline: Option<Instant>,
) -> Response<ReplyBody> {
    let timeout = match deadline {
        None => None,
        Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Some(left.as_secs_f64()),
            _ => return error_reply(code::DEADLINE_EXCEEDED, "Deadline Exceeded"),
        },
    };
    Python::attach(|py| {
        let request = request_object(py, message.chunks, message.len)?;
        let result = shared.handler.bind(py).call1((path, request, timeout))?;
        let (status, details, reply): (i32, String, Option<Bound<'_, PyBytes>>) =
            result.extract()?;
        if status != code::OK {
            return Ok(error_reply(status, &details));
        }
        // The reply's bytes object itself goes to the transport: no copy, and none under the GIL.
        let reply = reply.map(bytes_of).unwrap_or_default();
        if reply.len() > shared.limits.max_message_bytes {
            return Ok(error_reply(
                code::RESOURCE_EXHAUSTED,
                &format!(
                    "Sent message larger than max ({} vs. {})",
                    reply.len(),
                    shared.limits.max_message_bytes
                ),
            ));
        }
        registry().answered(Interface::Grpc, reply.len());
        Ok(ok_reply(reply))
    })
    .unwrap_or_else(|err: PyErr| {
        Python::attach(|py| err.print(py));
        error_reply(code::INTERNAL, "Internal server error")
    })
}
