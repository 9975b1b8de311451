//! PredictResponse building: numpy outputs -> the serialized reply (`ovms_rs_core::predict::response`
//! writes it), with one copy of each output's data straight into the reply's `bytes` object, which is
//! not zeroed first.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};

pub use ovms_rs_core::predict::response::Output;
use ovms_rs_core::predict::response::{model_spec, response_size, write_response};
use ovms_rs_core::predict::wire::RawSink;

use crate::detach::detach_above;
use crate::dtype::DType;
use crate::error::{raise, Error};
use crate::numpy_ffi::contiguous_bytes;

/// Replies larger than this are written with the interpreter released.
const DETACH_BYTES: usize = 256 * 1024;

/// Raw views of numpy outputs (C-contiguous numeric arrays), valid while `outputs` lives.
pub(crate) fn output_views<'a, 'py>(
    outputs: &'a [(String, Bound<'py, PyUntypedArray>)],
) -> PyResult<Vec<Output<'a>>> {
    let mut views = Vec::with_capacity(outputs.len());
    for (name, array) in outputs {
        let descr = array.dtype();
        let dtype = DType::from_numpy(descr.kind(), descr.itemsize())
            .ok_or_else(|| raise(Error::OutputPrecision { name: name.clone() }))?;
        let data = contiguous_bytes(array, descr.itemsize())
            .ok_or_else(|| raise(Error::OutputNotContiguous { name: name.clone() }))?;
        views.push(Output {
            name: name.clone(),
            dtype,
            shape: array.shape().to_vec(),
            data,
        });
    }
    Ok(views)
}

/// build_predict_response(model_name, version, outputs: list[(name, ndarray)]) -> bytes
///
/// Arrays must be C-contiguous numeric arrays; they are only read, while this call runs.
#[pyfunction]
pub fn build_predict_response<'py>(
    py: Python<'py>,
    model_name: &str,
    version: i64,
    outputs: Vec<(String, Bound<'py, PyUntypedArray>)>,
) -> PyResult<Bound<'py, PyBytes>> {
    let views = output_views(&outputs)?;
    let spec = model_spec(model_name, version);
    let size = response_size(&views, &spec);
    let len = isize::try_from(size).map_err(|_| raise(Error::ReplyTooLarge))?;
    // SAFETY: with a NULL source, PyBytes_FromStringAndSize returns a new bytes object of `len`
    // uninitialised bytes (or NULL with an exception set), visible to no other code until returned; the
    // sink writes all `size` of them (checked) before that. `PyBytes::new_with` would zero them first.
    unsafe {
        let object = pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), len);
        let bytes = Bound::from_owned_ptr_or_err(py, object)?.cast_into_unchecked::<PyBytes>();
        let sink = RawSink::new(pyo3::ffi::PyBytes_AsString(object).cast::<u8>(), size);
        let write = move || {
            let mut sink = sink;
            write_response(&mut sink, &views, &spec);
            sink.written()
        };
        let written = detach_above(py, size, DETACH_BYTES, write);
        assert_eq!(written, size, "PredictResponse size miscomputed");
        Ok(bytes)
    }
}
