//! Prometheus metrics at `/metrics` on the REST port: OVMS's families (names, HELP, labels and
//! buckets as OVMS prints them, `families.rs`) and ovms_rs's own (`ovms_rs_` prefix).
//!
//! Counting happens where the request already is: the transports (Rust) count bytes, refusals and
//! requests in flight; `ModelVersion` and the dispatchers (Python) count outcomes and times through a
//! [`py::VersionMetrics`] handle. Every update is a relaxed atomic add on a field of a fixed struct:
//! no lock, no map lookup, no allocation.
//!
//! Hand-written rather than the `prometheus-client` crate (0.24), by measurement and by its output.
//! Updates cost the same once a series handle is held (2 threads on one series, release build, this
//! 2-core AMD EPYC VM, 3 rounds: counter 2.7-7.3 ns here vs 3.7-7.8 ns; histogram 10-23 ns vs
//! 9-22 ns), and ~70 ns through the crate's `Family::get_or_create` (a lock and a hash per update).
//! What decides it is the text: the crate writes OpenMetrics (`ovms_requests_success_total`, a `.`
//! appended to every HELP, `le="10.0"`, `# EOF`), while OVMS's names, HELP texts and `le="10"` are
//! prometheus-cpp's 0.0.4 format; writing that is `exposition.rs`, ~150 lines.

pub mod exposition;
pub mod families;
pub mod histogram;
pub mod py;
pub mod series;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use families::{Interface, RefusalReason, Selection};
use series::{ModelSeries, TransportSeries, VersionHandle, VersionSeries};

/// The process's one registry (both transports and every model version report into it).
pub struct Registry {
    selection: AtomicU32,
    pub transports: TransportSeries,
    /// name -> (the model's series, version -> its series); locked only when a version is created and
    /// when /metrics is rendered.
    models: Mutex<BTreeMap<String, ModelEntry>>,
}

#[derive(Default)]
struct ModelEntry {
    series: Arc<ModelSeries>,
    versions: BTreeMap<u64, Arc<VersionSeries>>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    selection: AtomicU32::new(Selection::default().0),
    transports: TransportSeries::default(),
    models: Mutex::new(BTreeMap::new()),
});

pub fn registry() -> &'static Registry {
    &REGISTRY
}

impl Registry {
    pub fn selection(&self) -> Selection {
        Selection(self.selection.load(Ordering::Relaxed))
    }

    pub fn enable(&self, selection: Selection) {
        self.selection.store(selection.0, Ordering::Relaxed);
    }

    /// The series of `name` version `version` (created with value 0 the first time; a reloaded
    /// version keeps counting into the same ones, as OVMS's do).
    pub fn version(&self, name: &str, version: u64) -> VersionHandle {
        let mut models = self.models.lock().unwrap_or_else(|e| e.into_inner());
        let entry = models.entry(name.to_owned()).or_default();
        VersionHandle {
            model: entry.series.clone(),
            version: entry.versions.entry(version).or_default().clone(),
        }
    }

    /// Visits every model's series in name order with its versions in number order.
    pub fn for_each_model(
        &self,
        mut visit: impl FnMut(&str, &ModelSeries, &BTreeMap<u64, Arc<VersionSeries>>),
    ) {
        let models = self.models.lock().unwrap_or_else(|e| e.into_inner());
        for (name, entry) in models.iter() {
            visit(name, &entry.series, &entry.versions);
        }
    }

    /// One batch of binary inputs decoded (`decode_images`).
    pub fn observe_image_decode(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.transports.image_decode_time.observe_ns(ns);
    }

    /// A request body (REST) or message (gRPC, as sent: compressed if it was) that reached a handler.
    pub fn received(&self, interface: Interface, bytes: usize) {
        self.transports.request_bytes[interface as usize].add(bytes as u64);
    }

    /// The reply body or message a handler answered with.
    pub fn answered(&self, interface: Interface, bytes: usize) {
        self.transports.reply_bytes[interface as usize].add(bytes as u64);
    }

    /// A request the transport refused for overload.
    pub fn refused(&self, interface: Interface, reason: RefusalReason) {
        self.transports.refused[interface as usize][reason as usize].inc();
    }
}

/// Counts one request in a transport's in-flight gauge from arrival until dropped.
pub struct InFlightGauge(Interface);

impl InFlightGauge {
    pub fn enter(interface: Interface) -> InFlightGauge {
        registry().transports.in_flight[interface as usize].add(1);
        InFlightGauge(interface)
    }
}

impl Drop for InFlightGauge {
    fn drop(&mut self) {
        registry().transports.in_flight[self.0 as usize].add(-1);
    }
}
