//! The Python face of PredictRequest parsing: `parse_predict_request` and `RequestInput`.
//!
//! `tensor_content` (and a single packed float/double run) becomes a read-only numpy view over the
//! request's own memory, made in one C call (`numpy_ffi::array_over`) with the request (its
//! `py_buffer::RequestPins` base) keeping it alive: no copy; numpy copes with unaligned offsets.
//! Typed values decoded in Rust are handed to numpy without a copy and shaped the same way. DT_STRING
//! entries stay spans of the request (`RequestStrings`), which `decode_images` reads in place.
//!
//! The native transport hands over a `bytearray` (or a `RequestBody`) that belongs to the request
//! alone: its views are still flagged read-only, but the model may share their memory instead of
//! copying it (see `ModelVersion.infer`).

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyTuple};

use numpy::{Element, IntoPyArray, PyArrayDescr, PyArrayDescrMethods, PyArrayMethods};

use crate::dtype::DType;
use crate::error::{raise, Error};
use crate::numpy_ffi::{array_over, data_ptr, descr_of};
use crate::predict::strings::RequestStrings;
use crate::predict::tensor_proto::{parse_request, zero_dimension, Decoded};
use crate::py_buffer::{RequestBody, RequestPins};

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
    strings: Option<Py<RequestStrings>>,
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
        strings: Option<Py<RequestStrings>>,
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
        // it is not resized or written while the slice is read (what outlives this call holds a
        // memoryview of it, `RequestPins::pin`: a buffer export, which also forbids resizing).
        Ok(unsafe { array.as_bytes() })
    } else {
        Err(pyo3::exceptions::PyTypeError::new_err(
            "request must be bytes, bytearray or RequestBody",
        ))
    }
}

/// A typed vector as an array of `shape` (`descr`, for half floats decoded as their bits): the vector
/// handed to numpy without a copy, then shaped over it in one call.
pub(crate) fn shaped<'py, T: Element>(
    py: Python<'py>,
    values: Vec<T>,
    descr: Bound<'py, PyArrayDescr>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    assert_eq!(descr.itemsize(), size_of::<T>(), "the decoded type's descr");
    // Both parsers decode exactly the count the shape declares; checked here, where a wrong count
    // would otherwise be an array over memory it does not own.
    assert_eq!(
        values.len(),
        shape.iter().product::<usize>(),
        "decoded values against the shape"
    );
    let flat = values.into_pyarray(py);
    let data = data_ptr(flat.as_untyped());
    // SAFETY: `flat` owns `shape`'s product of elements of `T` (asserted above) at `data`, and is the
    // new array's base; `descr` has `T`'s size. It is writable, as a reshape of `flat` would be.
    Ok(unsafe { array_over(py, descr, shape, data, true, flat.into_any()) }?.into_any())
}

fn to_array<'py>(
    py: Python<'py>,
    pins: &mut RequestPins<'py>,
    buf: &[u8],
    dtype: DType,
    shape: &[usize],
    decoded: Decoded,
) -> PyResult<Bound<'py, PyAny>> {
    let descr = descr_of(py, dtype)?;
    Ok(match decoded {
        Decoded::View { offset, count } => {
            debug_assert!(offset + count * dtype.size() <= buf.len());
            // SAFETY: the parser located `count` elements (the shape's product) of `dtype` at `offset`
            // inside `buf`, the request's memory, which the base (`RequestPins::array_base`) keeps
            // alive and unmoved (`bytes` and `RequestBody` never move; a bytearray is pinned by a
            // memoryview, an export that forbids resizing). Nothing writes it (`py_buffer`'s
            // ownership rule): the view is read-only; numpy flags it ALIGNED only if it is.
            unsafe {
                let data = buf.as_ptr().add(offset);
                array_over(py, descr, shape, data, false, pins.array_base()?)
            }?
            .into_any()
        }
        Decoded::Floats(v) => shaped(py, v, descr, shape)?,
        Decoded::Doubles(v) => shaped(py, v, descr, shape)?,
        Decoded::I8(v) => shaped(py, v, descr, shape)?,
        Decoded::U8(v) => shaped(py, v, descr, shape)?,
        Decoded::I16(v) => shaped(py, v, descr, shape)?,
        // Half floats (and bfloat16) travel as their 16-bit patterns: `descr` is float16's for Half.
        Decoded::U16(v) => shaped(py, v, descr, shape)?,
        Decoded::I32(v) => shaped(py, v, descr, shape)?,
        Decoded::I64(v) => shaped(py, v, descr, shape)?,
        Decoded::U32(v) => shaped(py, v, descr, shape)?,
        Decoded::U64(v) => shaped(py, v, descr, shape)?,
        Decoded::Bools(v) => shaped(py, v, descr, shape)?,
        Decoded::Strings(_) | Decoded::Invalid(_) | Decoded::Unsupported => {
            unreachable!("no array for this input")
        }
    })
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
    let mut pins = RequestPins::new(request);
    let inputs = PyDict::new(py);
    for (name, tensor) in &req.inputs {
        let shape = PyTuple::new(py, &tensor.shape)?;
        let decoded = tensor.decode(name);
        let (mut array, mut strings, mut error) = (None, None, None);
        match decoded {
            Decoded::Invalid(e) => error = Some(kind_and_fields(py, &e)?),
            Decoded::Unsupported => {}
            Decoded::Strings(spans) => {
                let entries = RequestStrings::spans(request, pins.pin()?, spans);
                strings = Some(Py::new(py, entries)?);
            }
            other => {
                let dtype = DType::from_wire(tensor.dtype).expect("decoded implies a known dtype");
                // Decoded arrays have no zero or negative dimension (refused above).
                let dims: Vec<usize> = tensor.shape.iter().map(|&d| d as usize).collect();
                array = Some(
                    to_array(py, &mut pins, buf, dtype, &dims, other)
                        .map_err(|e| {
                            // numpy refusing a shape (more dimensions than it has) is the client's
                            // error, never the server's.
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
