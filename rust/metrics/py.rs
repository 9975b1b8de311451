//! The Python side's handles: turning metrics on at start-up, a model version's series for
//! `ModelVersion` and the dispatchers, and the grpcio transport's byte/in-flight counts.

use std::sync::atomic::Ordering;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::families::{Interface, Method, RefusalReason, Selection, FAMILIES, GRAPH_FAMILY_NAMES};
use super::registry;
use super::series::VersionHandle;

fn interface(i: usize) -> PyResult<Interface> {
    match i {
        0 => Ok(Interface::Grpc),
        1 => Ok(Interface::Rest),
        _ => Err(PyValueError::new_err(format!("no interface {i}"))),
    }
}

fn method(m: usize) -> PyResult<Method> {
    match m {
        0 => Ok(Method::Predict),
        1 => Ok(Method::GetModelMetadata),
        2 => Ok(Method::GetModelStatus),
        _ => Err(PyValueError::new_err(format!("no method {m}"))),
    }
}

fn nanos(ns: i64) -> u64 {
    ns.max(0) as u64
}

/// metric_families() -> (default names, every name metrics_list accepts)
#[pyfunction]
pub fn metric_families() -> (Vec<&'static str>, Vec<&'static str>) {
    let defaults = FAMILIES.iter().filter(|s| s.default).map(|s| s.name);
    let known = FAMILIES.iter().map(|s| s.name).chain(GRAPH_FAMILY_NAMES);
    (defaults.collect(), known.collect())
}

/// enable_metrics(families: list[str] | None): turns /metrics on with these families (None: the
/// defaults). ValueError names an unknown family.
#[pyfunction]
#[pyo3(signature = (families=None))]
pub fn enable_metrics(families: Option<Vec<String>>) -> PyResult<()> {
    let selection = match families {
        None => Selection::defaults(),
        Some(names) => {
            Selection::parse(names.iter().map(String::as_str)).map_err(PyValueError::new_err)?
        }
    };
    registry().enable(selection);
    Ok(())
}

/// render_metrics() -> str: what GET /metrics answers (for tests and tools; the REST transport
/// renders it in Rust).
#[pyfunction]
pub fn render_metrics() -> String {
    super::exposition::render(registry())
}

/// version_metrics(name, version) -> VersionMetrics | None (None while metrics are disabled).
#[pyfunction]
pub fn version_metrics(name: &str, version: u64) -> Option<VersionMetrics> {
    registry()
        .selection()
        .is_enabled()
        .then(|| VersionMetrics(registry().version(name, version)))
}

/// transport_started(interface, request_bytes): a request a Python transport (grpcio) received.
#[pyfunction]
pub fn transport_started(interface_index: usize, request_bytes: u64) -> PyResult<()> {
    let i = interface(interface_index)? as usize;
    let transports = &registry().transports;
    transports.in_flight[i].add(1);
    transports.request_bytes[i].add(request_bytes);
    Ok(())
}

/// transport_finished(interface, reply_bytes): its reply went out.
#[pyfunction]
pub fn transport_finished(interface_index: usize, reply_bytes: u64) -> PyResult<()> {
    let i = interface(interface_index)? as usize;
    let transports = &registry().transports;
    transports.in_flight[i].add(-1);
    transports.reply_bytes[i].add(reply_bytes);
    Ok(())
}

/// One model version's series. Interfaces: 0 gRPC, 1 REST; methods: 0 Predict, 1 GetModelMetadata,
/// 2 GetModelStatus (`ovms_rs.metrics` names them).
#[pyclass(frozen, module = "ovms_rs._native")]
pub struct VersionMetrics(VersionHandle);

#[pymethods]
impl VersionMetrics {
    /// A request that succeeded; a Predict also observes its time (`elapsed_ns`) in request_time_us.
    fn succeeded(
        &self,
        interface_index: usize,
        method_index: usize,
        elapsed_ns: i64,
    ) -> PyResult<()> {
        let (i, m) = (interface(interface_index)? as usize, method(method_index)?);
        match m {
            Method::GetModelStatus => self.0.model.status[i].success.inc(),
            Method::Predict | Method::GetModelMetadata => {
                self.0.version.requests[i][m as usize].success.inc()
            }
        }
        if m == Method::Predict {
            self.0.version.request_time[i].observe_ns(nanos(elapsed_ns));
        }
        Ok(())
    }

    /// A request that failed once this version was found; `refused`: for a full waiting line.
    fn failed(&self, interface_index: usize, method_index: usize, refused: bool) -> PyResult<()> {
        let (i, m) = (interface(interface_index)?, method(method_index)?);
        match m {
            Method::GetModelStatus => self.0.model.status[i as usize].fail.inc(),
            Method::Predict | Method::GetModelMetadata => {
                self.0.version.requests[i as usize][m as usize].fail.inc()
            }
        }
        if refused {
            registry().refused(i, RefusalReason::QueueFull);
        }
        Ok(())
    }

    /// An infer request was taken after waiting `waited_ns`.
    fn infer_started(&self, waited_ns: i64) {
        let v = &self.0.version;
        v.wait_for_infer_req_time.observe_ns(nanos(waited_ns));
        v.current_requests.add(1);
        v.infer_req_active.add(1);
    }

    /// The infer request went back; `inference_ns`: how long OpenVINO ran (None if it failed).
    #[pyo3(signature = (inference_ns=None))]
    fn infer_finished(&self, inference_ns: Option<i64>) {
        let v = &self.0.version;
        if let Some(ns) = inference_ns {
            v.inference_time.observe_ns(nanos(ns));
        }
        v.current_requests.add(-1);
        v.infer_req_active.add(-1);
    }

    /// The dynamic batcher ran `rows` requests' rows as one inference.
    fn batched(&self, rows: u64) {
        self.0.version.batch_size.0.observe(rows);
    }

    /// `owner` (a ModelVersion's id) compiled the model: its NUM_STREAMS and number of infer
    /// requests.
    fn loaded(&self, streams: i64, infer_requests: i64, owner: u64) {
        let v = &self.0.version;
        v.loaded_by.store(owner, Ordering::Relaxed);
        v.streams.set(streams);
        v.infer_req_queue_size.set(infer_requests);
    }

    /// `owner` retired: streams and queue size go to 0 (as OVMS's at unload) unless a replacement
    /// has set them since.
    fn unloaded(&self, owner: u64) {
        let v = &self.0.version;
        if v.loaded_by
            .compare_exchange(owner, 0, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            v.streams.set(0);
            v.infer_req_queue_size.set(0);
        }
    }
}
