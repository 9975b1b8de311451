//! The Python face of PredictRequest parsing: `parse_predict_request` and `RequestInput`.
//!
//! `tensor_content` (and a single packed float/double run) becomes a read-only numpy view over the
//! request's own memory, made in one numpy C call with its base set (`numpy_ffi::borrowed_view`): no
//! copy, no Python call; numpy keeps the base alive and copes with unaligned offsets. Typed values
//! decoded in Rust are handed to numpy without a copy and shaped through numpy's C API.
//!
//! The native transport's request belongs to that request alone: its views are still flagged
//! read-only, but the model may share their memory instead of copying it (`view_owner`, and
//! `shareable_view` in models/inference.py).

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyMemoryView, PyTuple};

use numpy::{Element, IntoPyArray, PyArrayMethods};

use crate::dtype::DType;
use crate::error::{raise, Error};
use crate::numpy_ffi::{borrowed_view, descr};
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
    owner: &Bound<'py, PyAny>,
    buf: &[u8],
    dtype: DType,
    dims: &[usize],
    decoded: Decoded,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match decoded {
        Decoded::View { offset, count } => {
            let end = count
                .checked_mul(dtype.size())
                .and_then(|n| n.checked_add(offset));
            assert!(
                end.is_some_and(|end| end <= buf.len()),
                "the parser located the view inside the request"
            );
            // SAFETY: `count` values of `dtype` lie at `offset` inside `buf` (asserted above), and
            // `buf` is `owner`'s memory (see `view_owner`), never written while it lives.
            unsafe { borrowed_view(py, descr(py, dtype)?, dims, buf.as_ptr().add(offset), owner) }?
                .into_any()
        }
        Decoded::Floats(v) => shaped(py, v, dims)?,
        Decoded::Doubles(v) => shaped(py, v, dims)?,
        Decoded::I8(v) => shaped(py, v, dims)?,
        Decoded::U8(v) => shaped(py, v, dims)?,
        Decoded::I16(v) => shaped(py, v, dims)?,
        Decoded::U16(v) if dtype == DType::Half => {
            shaped(py, v, dims)?.call_method1("view", ("<f2",))?
        }
        Decoded::U16(v) => shaped(py, v, dims)?,
        Decoded::I32(v) => shaped(py, v, dims)?,
        Decoded::I64(v) => shaped(py, v, dims)?,
        Decoded::U32(v) => shaped(py, v, dims)?,
        Decoded::U64(v) => shaped(py, v, dims)?,
        Decoded::Bools(v) => shaped(py, v, dims)?,
        Decoded::Strings(_) | Decoded::Invalid(_) | Decoded::Unsupported => {
            unreachable!("no array for this input")
        }
    })
}

/// Decoded values handed to numpy without a copy, shaped by numpy's C API (no Python call).
fn shaped<'py, T: Element>(
    py: Python<'py>,
    values: Vec<T>,
    dims: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    Ok(values.into_pyarray(py).reshape(dims.to_vec())?.into_any())
}

/// What the tensor views of a request keep alive as their base. Chosen so that `shareable_view`
/// (models/inference.py) can alias them writable for OpenVINO where the request's memory is its own:
/// the transport's `RequestBody` through a writable uint8 array over it (numpy cannot ask a pyclass
/// for a writable buffer), a `bytearray` through a memoryview (which also holds a buffer export, so the
/// bytearray cannot be resized under the views); `bytes` as it is (immutable: OpenVINO copies).
fn view_owner<'py>(request: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(body) = request.cast::<RequestBody>() {
        Ok(RequestBody::numpy_view(body))
    } else if request.is_instance_of::<PyByteArray>() {
        Ok(PyMemoryView::from(request)?.into_any())
    } else {
        Ok(request.clone())
    }
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
    let owner = view_owner(request)?;
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
                // Decoded implies a valid shape: no negative dimension, the element count fits.
                let dims: Vec<usize> = tensor.shape.iter().map(|&d| d as usize).collect();
                array = Some(
                    to_array(py, &owner, buf, dtype, &dims, other)
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
