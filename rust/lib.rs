//! `ovms_rs._native`: the per-request hot paths of ovms_rs, as Python sees them.
//!
//! The kernels live in the core crate (`ovms_rs_core`, `rust/core/`) as plain Rust over slices, with
//! no interpreter; this crate is the binding layer (the `#[pyfunction]`s and pyclasses, every numpy
//! call, the conversion of the core's errors to Python exceptions, which release the interpreter
//! around real work) and the transports (`grpc`, `rest`, `overload`, `metrics`).

pub use ovms_rs_core::{dtype, parallel};

pub mod detach;
pub mod dtype_table;
pub mod error;
pub mod grpc;
pub mod image;
pub mod json;
pub mod layout;
pub mod metrics;
pub mod numpy_ffi;
pub mod overload;
pub mod predict;
pub mod py_buffer;
pub mod rest;
pub mod runtime;
pub mod tfrecord;

use pyo3::prelude::*;

#[pymodule]
mod _native {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::dtype_table::dtype_table;
    #[pymodule_export]
    use crate::error::invalid_input_kinds;
    #[pymodule_export]
    use crate::grpc::GrpcServer;
    #[pymodule_export]
    use crate::image::decode_images;
    #[pymodule_export]
    use crate::json::py::build_json_predict_response;
    #[pymodule_export]
    use crate::json::py::json_error_kinds;
    #[pymodule_export]
    use crate::json::py::parse_json_predict;
    #[pymodule_export]
    use crate::layout::transpose_layout;
    #[pymodule_export]
    use crate::metrics::py::{
        enable_metrics, metric_families, render_metrics, transport_finished, transport_started,
        version_metrics, VersionMetrics,
    };
    #[pymodule_export]
    use crate::overload::{set_transport_limits, transport_usage};
    #[pymodule_export]
    use crate::predict::request::parse_predict_request;
    #[pymodule_export]
    use crate::predict::request::RequestInput;
    #[pymodule_export]
    use crate::predict::response::build_predict_response;
    #[pymodule_export]
    use crate::predict::strings::RequestStrings;
    #[pymodule_export]
    use crate::py_buffer::RequestBody;
    #[pymodule_export]
    use crate::rest::RestServer;
    #[pymodule_export]
    use crate::tfrecord::read_tfrecords;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        crate::error::add_exceptions(m)?;
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        Ok(())
    }
}

// Keeps `use pyo3::prelude::*` meaningful for the module-level attribute above.
#[allow(dead_code)]
fn _assert_pyo3_linked(_: Python<'_>) {}
