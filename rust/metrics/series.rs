//! The series behind the families: per model version (OVMS's), per model (GetModelStatus, which has
//! no version label), and per transport (ovms_rs's own).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::families::{INTERFACES, METHODS, REFUSAL_REASONS};
use super::histogram::{Counter, Gauge, Histogram};

const N_INTERFACES: usize = INTERFACES.len();
/// Predict and GetModelMetadata: the methods with a version label.
const N_VERSION_METHODS: usize = 2;

/// success and fail for one (interface, method).
#[derive(Default)]
pub struct Outcomes {
    pub success: Counter,
    pub fail: Counter,
}

/// Rows per batch of the dynamic batcher.
pub struct BatchSizes(pub Histogram);

impl Default for BatchSizes {
    fn default() -> Self {
        BatchSizes(Histogram::sizes())
    }
}

/// One model version's series, created when the version is (first) created, kept after it retires.
#[derive(Default)]
pub struct VersionSeries {
    /// [interface][Predict, GetModelMetadata]
    pub requests: [[Outcomes; N_VERSION_METHODS]; N_INTERFACES],
    /// [interface]: successful Predicts only.
    pub request_time: [Histogram; N_INTERFACES],
    pub inference_time: Histogram,
    pub wait_for_infer_req_time: Histogram,
    pub streams: Gauge,
    pub infer_req_queue_size: Gauge,
    pub infer_req_active: Gauge,
    pub current_requests: Gauge,
    pub batch_size: BatchSizes,
    /// Which `ModelVersion` object set streams/queue size last: a replacement loads before the old
    /// object retires, and the old one's unload must not zero what the new one set.
    pub loaded_by: AtomicU64,
}

/// One model's series without a version label: GetModelStatus per interface (OVMS never moves its
/// fail counter, but shows it).
#[derive(Default)]
pub struct ModelSeries {
    pub status: [Outcomes; N_INTERFACES],
}

/// A version's series with the model's, as the request path holds them.
#[derive(Clone)]
pub struct VersionHandle {
    pub model: Arc<ModelSeries>,
    pub version: Arc<VersionSeries>,
}

/// ovms_rs's transport-wide series, by interface.
#[derive(Default)]
pub struct TransportSeries {
    /// [interface][reason]
    pub refused: [[Counter; REFUSAL_REASONS.len()]; N_INTERFACES],
    pub request_bytes: [Counter; N_INTERFACES],
    pub reply_bytes: [Counter; N_INTERFACES],
    pub in_flight: [Gauge; N_INTERFACES],
    /// Binary inputs: one observation per decoded batch (not per interface: decoding doesn't know).
    pub image_decode_time: Histogram,
}

// The label tables and the arrays above have to agree.
const _: () = assert!(METHODS.len() == N_VERSION_METHODS + 1);
