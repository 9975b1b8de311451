//! NHWC <-> NCHW transposition kernels. (placeholder, being written)

use pyo3::prelude::*;

/// transpose_layout(array, to) -> ndarray: "NCHW" moves the last axis to position 1, "NHWC" the reverse.
#[pyfunction]
pub fn transpose_layout<'py>(array: Bound<'py, PyAny>, to: &str) -> PyResult<Bound<'py, PyAny>> {
    let _ = to;
    Err(pyo3::exceptions::PyNotImplementedError::new_err(format!("transpose_layout {array}")))
}
