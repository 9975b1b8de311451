//! The Python face of PredictRequest parsing: `parse_predict_request` and `RequestInput`.
//!
//! `tensor_content` (and a single packed float/double run) becomes a read-only numpy view over the
//! request's own `bytes` (or `bytearray`) object: no copy; numpy keeps it alive as the view's base and
//! copes with unaligned offsets. Typed values decoded in Rust are handed to numpy without a copy.
//!
//! The native transport hands over a `bytearray` that belongs to the request alone: its views are still
//! flagged read-only, but the model may share their memory instead of copying it (see
//! `ModelVersion.infer`).

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyTuple};

use numpy::IntoPyArray;

use crate::dtype::DType;
use crate::error::{raise, Error};
use crate::numpy_ffi::numpy;
use crate::predict::tensor_proto::{parse_request, zero_dimension, Decoded};
use crate::py_buffer::RequestBody;

/// `RequestInput.error`: (kind, fields), as `InvalidInput` carries them.
type KindAndFields = (&'static str, Py<PyDict>);

/// One input of a PredictRequest, as the validators and the model see it.
#[pyclass(frozen, module = "ovms_rs._native")]
pub struct RequestInput {
    /// The TensorFlow DataType wire number.
    #[pyo3(get)]
    dtype: u64,
    #[pyo3(get)]
    shape: Py<PyTuple>,
    /// The values shaped as declared (None for strings, or when `error` is set).
    #[pyo3(get)]
    array: Option<Py<PyAny>>,
    /// `string_val` entries (DT_STRING only).
    #[pyo3(get)]
    strings: Option<Py<PyList>>,
    /// Why the input was not decoded, as (kind, fields) of the catalogue (`ovms_rs.errors`):
    /// validation raises it in OVMS's order (a zero dimension first, the others after the shape
    /// checks).
    #[pyo3(get)]
    error: Option<KindAndFields>,
}

fn kind_and_fields(py: Python<'_>, error: &Error) -> PyResult<KindAndFields> {
    let (kind, fields) = crate::error::to_py(py, error)?;
    Ok((kind, fields.unbind()))
}

impl RequestInput {
    /// An input made by another parser (the REST JSON codec): its content matches its shape, which is
    /// checked for a zero dimension here, as `parse_predict_request`'s are.
    pub(crate) fn new(
        py: Python<'_>,
        name: &str,
        dtype: u64,
        dims: &[usize],
        shape: Py<PyTuple>,
        array: Option<Py<PyAny>>,
        strings: Option<Py<PyList>>,
    ) -> PyResult<Self> {
        let error = match zero_dimension(name, dims) {
            Some(e) => Some(kind_and_fields(py, &e)?),
            None => None,
        };
        Ok(RequestInput {
            dtype,
            shape,
            array,
            strings,
            error,
        })
    }
}

/// The bytes of a request body given as `bytes` or as the transport's `bytearray`.
pub(crate) fn request_buffer<'a>(request: &'a Bound<'_, PyAny>) -> PyResult<&'a [u8]> {
    if let Ok(body) = request.cast::<RequestBody>() {
        Ok(body.get().as_slice())
    } else if let Ok(bytes) = request.cast::<PyBytes>() {
        Ok(bytes.as_bytes())
    } else if let Ok(array) = request.cast::<PyByteArray>() {
        // SAFETY: the transport's bytearray belongs to one request, which nothing else references:
        // it is not resized or written while the slice is read (numpy.frombuffer, where used, holds a
        // buffer export, which also forbids resizing).
        Ok(unsafe { array.as_bytes() })
    } else {
        Err(pyo3::exceptions::PyTypeError::new_err(
            "request must be bytes, bytearray or RequestBody",
        ))
    }
}

fn to_array<'py>(
    py: Python<'py>,
    request: &Bound<'py, PyAny>,
    dtype: DType,
    shape: &Bound<'py, PyTuple>,
    decoded: Decoded,
) -> PyResult<Bound<'py, PyAny>> {
    let flat: Bound<'py, PyAny> = match decoded {
        Decoded::View { offset, count } => {
            let view =
                numpy(py)?.call_method1("frombuffer", (request, dtype.numpy(), count, offset))?;
            // A view over a bytearray is writable; the request's data is read-only all the same.
            view.getattr("flags")?.setattr("writeable", false)?;
            view
        }
        Decoded::Floats(v) => v.into_pyarray(py).into_any(),
        Decoded::Doubles(v) => v.into_pyarray(py).into_any(),
        Decoded::I8(v) => v.into_pyarray(py).into_any(),
        Decoded::U8(v) => v.into_pyarray(py).into_any(),
        Decoded::I16(v) => v.into_pyarray(py).into_any(),
        Decoded::U16(v) => {
            let a = v.into_pyarray(py).into_any();
            if dtype == DType::Half {
                a.call_method1("view", ("<f2",))?
            } else {
                a
            }
        }
        Decoded::I32(v) => v.into_pyarray(py).into_any(),
        Decoded::I64(v) => v.into_pyarray(py).into_any(),
        Decoded::U32(v) => v.into_pyarray(py).into_any(),
        Decoded::U64(v) => v.into_pyarray(py).into_any(),
        Decoded::Bools(v) => v.into_pyarray(py).into_any(),
        Decoded::Strings(_) | Decoded::Invalid(_) | Decoded::Unsupported => {
            unreachable!("no array for this input")
        }
    };
    flat.call_method1("reshape", (shape,))
}

/// What `parse_predict_request` returns to Python.
type ParsedRequest<'py> = (String, i64, Option<String>, Bound<'py, PyDict>, Vec<String>);

/// parse_predict_request(request: bytes | bytearray) -> (model_name, version, version_label | None,
/// {name: RequestInput}, output_filter)
///
/// Raises InvalidInput(("MALFORMED_REQUEST", {"detail": ...})) for bytes that are not a
/// PredictRequest.
#[pyfunction]
pub fn parse_predict_request<'py>(
    py: Python<'py>,
    request: &Bound<'py, PyAny>,
) -> PyResult<ParsedRequest<'py>> {
    let buf = request_buffer(request)?;
    let req = parse_request(buf).map_err(raise)?;
    // numpy.frombuffer takes the transport's single-piece body through a uint8 array over it.
    let buffer_object = match request.cast::<RequestBody>() {
        Ok(body) => RequestBody::numpy_view(body),
        Err(_) => request.clone(),
    };
    let request = &buffer_object;
    let inputs = PyDict::new(py);
    for (name, tensor) in &req.inputs {
        let shape = PyTuple::new(py, &tensor.shape)?;
        let decoded = tensor.decode(name);
        let (mut array, mut strings, mut error) = (None, None, None);
        match decoded {
            Decoded::Invalid(e) => error = Some(kind_and_fields(py, &e)?),
            Decoded::Unsupported => {}
            Decoded::Strings(spans) => {
                let items = spans
                    .iter()
                    .map(|&(off, len)| PyBytes::new(py, &buf[off..off + len]));
                strings = Some(PyList::new(py, items)?.unbind());
            }
            other => {
                let dtype = DType::from_wire(tensor.dtype).expect("decoded implies a known dtype");
                array = Some(
                    to_array(py, request, dtype, &shape, other)
                        .map_err(|e| {
                            // numpy refusing a shape is the client's error, never the server's.
                            raise(Error::ShapeRefused {
                                name: name.to_string(),
                                reason: e.to_string(),
                            })
                        })?
                        .unbind(),
                );
            }
        }
        let input = RequestInput {
            dtype: tensor.dtype,
            shape: shape.unbind(),
            array,
            strings,
            error,
        };
        inputs.set_item(*name, Bound::new(py, input)?)?;
    }
    let filter = req.output_filter.iter().map(|s| s.to_string()).collect();
    Ok((
        req.model_name.to_string(),
        req.version,
        req.version_label.map(str::to_string),
        inputs,
        filter,
    ))
}
