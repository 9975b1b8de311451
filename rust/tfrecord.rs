//! `read_tfrecords`: TF Serving's warmup file (`ovms_rs_core::tfrecord` reads its framing) as `bytes`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use ovms_rs_core::tfrecord::records;

/// read_tfrecords(data: bytes, limit: int) -> list[bytes]: the records' data, at most `limit` + 1.
///
/// Raises ValueError for bad framing or a CRC mismatch.
#[pyfunction]
pub fn read_tfrecords<'py>(
    py: Python<'py>,
    data: &[u8],
    limit: usize,
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let spans = records(data, limit).map_err(PyValueError::new_err)?;
    Ok(spans
        .into_iter()
        .map(|(off, len)| PyBytes::new(py, &data[off..off + len]))
        .collect())
}
