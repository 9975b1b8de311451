//! The metric families: OVMS's (names, types, HELP texts as in its src/model_metric_reporter.cpp and
//! src/metrics/metric_config.hpp) and ovms_rs's own (`ovms_rs_` prefix), and which are on by default.
//! Every name and label value the server prints comes from here.

/// A family the server can expose; `Family as u32` is its bit in a [`Selection`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    RequestsSuccess,
    RequestsFail,
    RequestTime,
    Streams,
    InferenceTime,
    WaitForInferReqTime,
    CurrentRequests,
    InferReqQueueSize,
    InferReqActive,
    // ovms_rs's own.
    RequestsRefused,
    RequestBytes,
    ReplyBytes,
    ImageDecodeTime,
    InFlightRequests,
    BatchSize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

pub struct Spec {
    pub family: Family,
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub default: bool,
}

const fn spec(
    family: Family,
    name: &'static str,
    kind: Kind,
    help: &'static str,
    default: bool,
) -> Spec {
    Spec {
        family,
        name,
        kind,
        help,
        default,
    }
}

/// In exposition order.
pub const FAMILIES: [Spec; 15] = [
    spec(Family::RequestsSuccess, "ovms_requests_success", Kind::Counter,
        "Number of successful requests to a model or a DAG.", true),
    spec(Family::RequestsFail, "ovms_requests_fail", Kind::Counter,
        "Number of failed requests to a model or a DAG.", true),
    spec(Family::RequestTime, "ovms_request_time_us", Kind::Histogram,
        "Processing time of requests to a model or a DAG.", true),
    spec(Family::Streams, "ovms_streams", Kind::Gauge,
        "Number of OpenVINO execution streams.", true),
    spec(Family::InferenceTime, "ovms_inference_time_us", Kind::Histogram,
        "Inference execution time in the OpenVINO backend.", true),
    spec(Family::WaitForInferReqTime, "ovms_wait_for_infer_req_time_us", Kind::Histogram,
        "Request waiting time in the scheduling queue.", true),
    spec(Family::CurrentRequests, "ovms_current_requests", Kind::Gauge,
        "Number of inference requests currently in process.", true),
    spec(Family::InferReqQueueSize, "ovms_infer_req_queue_size", Kind::Gauge,
        "Inference request queue size (nireq).", false),
    spec(Family::InferReqActive, "ovms_infer_req_active", Kind::Gauge,
        "Number of currently consumed inference request from the processing queue.", false),
    spec(Family::RequestsRefused, "ovms_rs_requests_refused", Kind::Counter,
        "Requests refused for overload (gRPC RESOURCE_EXHAUSTED, HTTP 503), by reason.", true),
    spec(Family::RequestBytes, "ovms_rs_request_bytes", Kind::Counter,
        "Request message (gRPC) or body (REST) bytes received by requests that reached a handler.", true),
    spec(Family::ReplyBytes, "ovms_rs_reply_bytes", Kind::Counter,
        "Reply message (gRPC) or body (REST) bytes the handlers answered with.", true),
    spec(Family::ImageDecodeTime, "ovms_rs_image_decode_time_us", Kind::Histogram,
        "Time to decode (and resize) one request's batch of binary (JPEG/PNG) inputs, when it decodes.", true),
    spec(Family::InFlightRequests, "ovms_rs_in_flight_requests", Kind::Gauge,
        "Requests a transport is handling now (reading, waiting, or in Python).", true),
    spec(Family::BatchSize, "ovms_rs_batch_size", Kind::Histogram,
        "Rows the dynamic batcher ran together in one inference (before padding).", true),
];

/// OVMS's MediaPipe families: valid in `metrics_list` (OVMS's default set has them), but nothing
/// here serves graphs, so they expose nothing.
pub const GRAPH_FAMILY_NAMES: [&str; 6] = [
    "ovms_current_graphs",
    "ovms_requests_accepted",
    "ovms_requests_rejected",
    "ovms_graph_error",
    "ovms_graph_processing_time_us",
    "ovms_responses",
];

// Label values.
pub const API_TFS: &str = "TensorFlowServing";
/// By `Interface as usize`.
pub const INTERFACES: [&str; 2] = ["gRPC", "REST"];
/// By `Method as usize`.
pub const METHODS: [&str; 3] = ["Predict", "GetModelMetadata", "GetModelStatus"];
/// By `RefusalReason as usize`: the transport's concurrency limit, a version's full waiting line, the
/// process's request-memory budget (`--grpc_memory_quota`), the connection limit (`--max_connections`:
/// a connection closed on arrival), a body or header sent too slowly.
pub const REFUSAL_REASONS: [&str; 5] = [
    "concurrency_limit",
    "queue_full",
    "memory_budget",
    "connection_limit",
    "timeout",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interface {
    Grpc = 0,
    Rest = 1,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Predict = 0,
    GetModelMetadata = 1,
    GetModelStatus = 2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    ConcurrencyLimit = 0,
    QueueFull = 1,
    MemoryBudget = 2,
    ConnectionLimit = 3,
    Timeout = 4,
}

/// The families a server exposes (a bit per [`Family`]) and whether metrics are on at all (a list
/// of graph families alone enables metrics and exposes nothing). The default: disabled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Selection(pub u32);

const ENABLED: u32 = 1 << 31;

impl Selection {
    pub fn defaults() -> Selection {
        Selection::of(FAMILIES.iter().filter(|s| s.default).map(|s| s.family))
    }

    pub fn of(families: impl IntoIterator<Item = Family>) -> Selection {
        Selection(
            families
                .into_iter()
                .fold(ENABLED, |bits, f| bits | 1 << f as u32),
        )
    }

    /// The families named (OVMS's list semantics: the list replaces the defaults; graph families are
    /// accepted and expose nothing); Err(name) for the first unknown name.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Selection, String> {
        let mut families = Vec::new();
        for name in names {
            match FAMILIES.iter().find(|s| s.name == name) {
                Some(spec) => families.push(spec.family),
                None if GRAPH_FAMILY_NAMES.contains(&name) => {}
                None => return Err(name.to_owned()),
            }
        }
        Ok(Selection::of(families))
    }

    pub fn has(self, family: Family) -> bool {
        self.0 & (1 << family as u32) != 0
    }

    pub fn is_enabled(self) -> bool {
        self.0 & ENABLED != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_in_enum_order_and_names_are_unique() {
        for (i, spec) in FAMILIES.iter().enumerate() {
            assert_eq!(spec.family as usize, i, "{}", spec.name);
            assert_eq!(FAMILIES.iter().filter(|s| s.name == spec.name).count(), 1);
            assert!(spec.name.starts_with("ovms_"));
        }
    }

    #[test]
    fn a_list_replaces_the_defaults_and_unknown_names_are_named() {
        let defaults = Selection::defaults();
        assert!(defaults.has(Family::RequestsSuccess) && defaults.has(Family::InFlightRequests));
        assert!(!defaults.has(Family::InferReqQueueSize) && !defaults.has(Family::InferReqActive));
        let listed = Selection::parse(["ovms_infer_req_active", "ovms_current_graphs"]).unwrap();
        assert_eq!(listed, Selection::of([Family::InferReqActive]));
        assert_eq!(
            Selection::parse(["ovms_streams", "ovms_graph_request_latency_us"]),
            Err("ovms_graph_request_latency_us".to_owned())
        );
    }
}
