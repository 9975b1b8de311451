//! One HTTP request -> a route -> an answer from Rust (health, CORS preflight, refusals) or one call
//! into Python on a blocking thread (everything that needs the models).
//!
//! The handler is `handler(kind, name, version, label, body: RequestBody, timeout) -> (status, reply:
//! bytes)`; like the gRPC one it never raises on purpose (it maps errors to `{"error"}` bodies itself).

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::routes::{route, Route, Selector};
use crate::metrics::families::{Interface, RefusalReason};
use crate::metrics::{exposition, registry, InFlightGauge};
use crate::overload::budget::{self, Reservation};
use crate::overload::connections::RequestOnConn;
use crate::overload::{limits, BUDGET_WAIT};
use crate::py_buffer::{bytes_of, request_body};

pub struct Limits {
    pub max_body_bytes: usize,
    pub max_concurrent: usize,
}

pub struct Shared {
    pub handler: Py<PyAny>,
    pub limits: Limits,
    pub in_flight: AtomicUsize,
    /// /v2/health/ready: set by Python (every configured model has an AVAILABLE default version,
    /// and no SIGTERM yet).
    pub ready: AtomicBool,
}

pub type Reply = Response<Full<Bytes>>;

// OVMS's messages for what the transport answers itself (src/status.cpp); `tests/rest` checks them
// against the catalogue in `ovms_rs.errors`.
const NOT_READY: &str = "Server is not ready";
const TOO_LARGE: &str = "Request body is larger than the server accepts";
const TOO_MANY: &str = "Too many requests in flight";
const TOO_SLOW: &str = "Request body not received in time";
const INTERNAL: &str = "Internal server error";

pub async fn serve(
    shared: Arc<Shared>,
    request: Request<Incoming>,
    on_connection: RequestOnConn,
) -> Result<Reply, Infallible> {
    let route = match route(request.method().as_str(), request.uri().path()) {
        Ok(route) => route,
        Err(e) => return Ok(error(e.status(), e.message())),
    };
    match route {
        Route::Options | Route::Live => return Ok(reply(StatusCode::OK, Bytes::new())),
        Route::Ready if shared.ready.load(Ordering::Acquire) => {
            return Ok(reply(StatusCode::OK, Bytes::new()))
        }
        Route::Ready => return Ok(error(503, NOT_READY)),
        // Disabled: Python answers it as OVMS does (400 Invalid request URL).
        Route::Metrics if registry().selection().is_enabled() => return Ok(metrics()),
        _ => {}
    }
    let Some(guard) = InFlight::enter(&shared) else {
        registry().refused(Interface::Rest, RefusalReason::ConcurrencyLimit);
        return Ok(error(503, TOO_MANY));
    };
    let limit = shared.limits.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Ok(error(413, TOO_LARGE));
    }
    // The declared body is reserved before it is read (waiting while the client's bytes stay in its
    // socket); a chunked body reserves as it arrives, and cannot wait holding part of itself.
    let reservation = match declared {
        Some(n) => match budget::reserve(n as usize, Instant::now() + BUDGET_WAIT).await {
            Ok(r) => r,
            Err(refused) => return Ok(budget_refusal(refused)),
        },
        None => Reservation::default(),
    };
    let (body, reservation) =
        match read_body(request.into_body(), limit, declared, reservation).await {
            Ok(read) => read,
            Err(Unread::TooLarge) => return Ok(error(413, TOO_LARGE)),
            Err(Unread::Broken) => return Ok(error(413, TOO_LARGE)), // not seen: the client has gone
            Err(Unread::Budget(refused)) => return Ok(budget_refusal(refused)),
            Err(Unread::TooSlow) => {
                registry().refused(Interface::Rest, RefusalReason::Timeout);
                return Ok(error(408, TOO_SLOW));
            }
        };
    registry().received(Interface::Rest, body.len());
    // Python code is not interruptible: the call runs to its end even if the client goes away.
    let task = tokio::task::spawn_blocking(move || {
        let _guards = (guard, on_connection);
        crate::grpc::python_thread::register();
        let reply = call_handler(&shared, &route, body);
        drop(reservation);
        reply
    });
    Ok(task.await.unwrap_or_else(|_| error(500, INTERNAL)))
}

fn budget_refusal(refused: budget::Refused) -> Reply {
    registry().refused(Interface::Rest, RefusalReason::MemoryBudget);
    error(503, &refused.message())
}

/// Why a body was not read.
enum Unread {
    TooLarge,
    /// The connection broke (the reply will not be seen).
    Broken,
    Budget(budget::Refused),
    TooSlow,
}

/// The whole body in one buffer, within `limit` bytes and the body timeout. A body that arrives in
/// several chunks is gathered as they arrive, into a buffer of the declared size: the copy overlaps
/// the rest of the transfer instead of following it (measured: REST p50 at concurrency 1, BENCHMARKS.md
/// "REST"). `declared`: the Content-Length; without one (chunked) each chunk is reserved as it arrives
/// and the buffer grows.
async fn read_body(
    mut body: Incoming,
    limit: usize,
    declared: Option<u64>,
    mut reservation: Reservation,
) -> Result<(Bytes, Reservation), Unread> {
    let limits = limits();
    let started = Instant::now();
    let mut gathered = Gathered::default();
    loop {
        let until = limits.body_deadline(started, gathered.len());
        let Ok(frame) = tokio::time::timeout_at(until.into(), body.frame()).await else {
            return Err(Unread::TooSlow);
        };
        let Some(frame) = frame else { break };
        let Ok(data) = frame.map_err(|_| Unread::Broken)?.into_data() else {
            continue; // trailers carry nothing for us
        };
        if gathered.len() + data.len() > limit {
            return Err(Unread::TooLarge);
        }
        if declared.is_none() {
            reservation.merge(budget::try_reserve(data.len()).map_err(Unread::Budget)?);
        }
        // A body longer than declared is hyper's to refuse; the capacity is only a hint.
        gathered.push(data, declared.map_or(0, |n| n as usize));
    }
    Ok((gathered.into_bytes(), reservation))
}

/// A body as it arrives: its one chunk as received (no copy), or every chunk copied into one buffer.
#[derive(Default)]
enum Gathered {
    #[default]
    Empty,
    One(Bytes),
    Many(BytesMut),
}

impl Gathered {
    fn len(&self) -> usize {
        match self {
            Gathered::Empty => 0,
            Gathered::One(b) => b.len(),
            Gathered::Many(b) => b.len(),
        }
    }

    fn push(&mut self, data: Bytes, capacity: usize) {
        *self = match std::mem::take(self) {
            Gathered::Empty => Gathered::One(data),
            Gathered::One(first) => {
                let mut all = BytesMut::with_capacity(capacity.max(first.len() + data.len()));
                all.extend_from_slice(&first);
                all.extend_from_slice(&data);
                Gathered::Many(all)
            }
            Gathered::Many(mut all) => {
                all.extend_from_slice(&data);
                Gathered::Many(all)
            }
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Gathered::Empty => Bytes::new(),
            Gathered::One(b) => b,
            Gathered::Many(b) => b.freeze(),
        }
    }
}

fn call_handler(shared: &Shared, route: &Route, body: Bytes) -> Reply {
    let (name, selector) = match route {
        Route::ModelStatus { name, selector }
        | Route::ModelMetadata { name, selector }
        | Route::Predict { name, selector }
        | Route::ModelReady { name, selector } => (name.as_str(), selector),
        _ => ("", &Selector::Default),
    };
    let (version, label) = match selector {
        Selector::Default => (0, None),
        Selector::Version(v) => (*v, None),
        Selector::Label(l) => (0, Some(l.as_str())),
    };
    Python::attach(|py| {
        let body = request_body(py, body)?;
        let args = (route.kind(), name, version, label, body, None::<f64>);
        let (status, body): (u16, Bound<'_, PyBytes>) =
            shared.handler.bind(py).call1(args)?.extract()?;
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = bytes_of(body);
        registry().answered(Interface::Rest, body.len());
        Ok::<_, PyErr>(reply(status, body))
    })
    .unwrap_or_else(|err| {
        Python::attach(|py| err.print(py));
        error(500, INTERNAL)
    })
}

/// Counts a request from arrival until its Python call returns.
// The gauge is held for its Drop: the transport-wide in-flight count (metrics).
struct InFlight(Arc<Shared>, #[allow(dead_code)] InFlightGauge);

impl InFlight {
    fn enter(shared: &Arc<Shared>) -> Option<InFlight> {
        let before = shared.in_flight.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(shared.clone(), InFlightGauge::enter(Interface::Rest));
        (before < shared.limits.max_concurrent).then_some(guard)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `{"error": "<message>"}`, compact, as OVMS writes it.
pub fn error(status: u16, message: &str) -> Reply {
    let body = serde_json::to_vec(&serde_json::json!({ "error": message }))
        .expect("a string map serializes");
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply(status, Bytes::from(body))
}

/// GET /metrics while metrics are enabled: the exposition, without entering Python.
fn metrics() -> Reply {
    let mut response = reply(StatusCode::OK, Bytes::from(exposition::render(registry())));
    let content_type = HeaderValue::from_static(exposition::CONTENT_TYPE);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

/// Every reply is JSON (but /metrics) and carries OVMS's permissive CORS headers.
fn reply(status: StatusCode, body: Bytes) -> Reply {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let any = HeaderValue::from_static("*");
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, any.clone());
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, any.clone());
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, any);
    response
}
