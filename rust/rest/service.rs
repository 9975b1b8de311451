//! One HTTP request -> a route -> an answer from Rust (health, CORS preflight, refusals) or one call
//! into Python on a blocking thread (everything that needs the models).
//!
//! The handler is `handler(kind, name, version, label, body: bytearray, timeout) -> (status, reply:
//! bytes)`; like the gRPC one it never raises on purpose (it maps errors to `{"error"}` bodies itself).

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::routes::{route, Route, Selector};
use crate::metrics::families::{Interface, RefusalReason};
use crate::metrics::{exposition, registry, InFlightGauge};
use crate::py_buffer::{bytearray_from_chunks, bytes_of};

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
const INTERNAL: &str = "Internal server error";

pub async fn serve(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Reply, Infallible> {
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
    let Some((chunks, len)) = read_body(request.into_body(), limit).await else {
        return Ok(error(413, TOO_LARGE));
    };
    registry().received(Interface::Rest, len);
    // Python code is not interruptible: the call runs to its end even if the client goes away.
    let task = tokio::task::spawn_blocking(move || {
        let _guard = guard;
        crate::grpc::python_thread::register();
        call_handler(&shared, &route, &chunks, len)
    });
    Ok(task.await.unwrap_or_else(|_| error(500, INTERNAL)))
}

/// The whole body as its chunks, or None past `limit` bytes (or if the connection broke).
async fn read_body(mut body: Incoming, limit: usize) -> Option<(Vec<Bytes>, usize)> {
    let mut chunks = Vec::new();
    let mut len = 0;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.ok()?.into_data() else {
            continue; // trailers carry nothing for us
        };
        len += data.len();
        if len > limit {
            return None;
        }
        chunks.push(data);
    }
    Some((chunks, len))
}

fn call_handler(shared: &Shared, route: &Route, chunks: &[Bytes], len: usize) -> Reply {
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
        let body = bytearray_from_chunks(py, chunks, len)?;
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
