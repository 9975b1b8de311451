//! The JSON codec's Python face: `parse_json_predict` (body -> the same `RequestInput`s the gRPC
//! parser makes, so one validation pipeline serves both APIs) and `build_json_predict_response`.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use super::error::{ErrorKind, JsonError as ParseError};
use super::request::{parse, Format};
use super::response::{write_reply, OutputRef};
use super::tensor::Values;
use crate::dtype::DType;
use crate::error::JsonError;
use crate::numpy_ffi::descr_of;
use crate::predict::request::{request_buffer, shaped, RequestInput};
use crate::predict::response::output_views;
use crate::predict::strings::RequestStrings;

/// Bodies larger than this are parsed with the interpreter released.
const DETACH_BYTES: usize = 64 * 1024;

fn format_of(name: &str) -> PyResult<Format> {
    match name {
        "row" => Ok(Format::Row),
        "column" => Ok(Format::Column),
        _ => Err(pyo3::exceptions::PyValueError::new_err(
            "format must be 'row' or 'column'",
        )),
    }
}

fn raise(e: ParseError) -> PyErr {
    JsonError::new_err((e.kind.name(), e.detail))
}

/// The parsed values as an array of `shape`: the vector handed to numpy and shaped over in one call
/// (`shaped`), typed by the values (BFLOAT16 inputs are parsed as f32, half floats as their bits).
fn to_array<'py>(py: Python<'py>, values: Values, shape: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    let descr = |dtype| descr_of(py, dtype);
    match values {
        Values::F32(v) => shaped(py, v, descr(DType::Float)?, shape),
        Values::F64(v) => shaped(py, v, descr(DType::Double)?, shape),
        Values::F16(v) => shaped(py, v, descr(DType::Half)?, shape),
        Values::I8(v) => shaped(py, v, descr(DType::Int8)?, shape),
        Values::I16(v) => shaped(py, v, descr(DType::Int16)?, shape),
        Values::I32(v) => shaped(py, v, descr(DType::Int32)?, shape),
        Values::I64(v) => shaped(py, v, descr(DType::Int64)?, shape),
        Values::U8(v) => shaped(py, v, descr(DType::UInt8)?, shape),
        Values::U16(v) => shaped(py, v, descr(DType::UInt16)?, shape),
        Values::U32(v) => shaped(py, v, descr(DType::UInt32)?, shape),
        Values::U64(v) => shaped(py, v, descr(DType::UInt64)?, shape),
        Values::Bool(v) => shaped(py, v, descr(DType::Bool)?, shape),
        Values::Strings(_) => unreachable!("strings are no array"),
    }
}

/// parse_json_predict(body, inputs: list[(name, dtype wire number)]) -> ("row" | "column",
/// {name: RequestInput})
///
/// Raises JsonError((kind, detail)) for a body the server refuses.
#[pyfunction]
pub fn parse_json_predict<'py>(
    py: Python<'py>,
    body: &Bound<'py, PyAny>,
    inputs: Vec<(String, u64)>,
) -> PyResult<(&'static str, Bound<'py, PyDict>)> {
    let expected: Vec<(String, DType)> = inputs
        .into_iter()
        .map(|(name, wire)| (name, DType::from_wire(wire).unwrap_or(DType::Float)))
        .collect();
    // SAFETY (of the buffer): see `request_buffer`; nothing else holds this request's body.
    let buf = request_buffer(body)?;
    let parsed = crate::detach::detach_above(py, buf.len(), DETACH_BYTES, || parse(buf, &expected))
        .map_err(raise)?;
    let out = PyDict::new(py);
    for input in parsed.inputs {
        let shape = PyTuple::new(py, &input.shape)?;
        let (array, strings) = match input.values {
            Values::Strings(items) => (None, Some(Py::new(py, RequestStrings::owned(items))?)),
            values => {
                let array = to_array(py, values, &input.shape)?;
                (Some(array.unbind()), None)
            }
        };
        let request_input = RequestInput::new(
            py,
            &input.name,
            input.dtype as u64,
            &input.shape,
            shape.unbind(),
            array,
            strings,
        )?;
        out.set_item(input.name, Bound::new(py, request_input)?)?;
    }
    let format = match parsed.format {
        Format::Row => "row",
        Format::Column => "column",
    };
    Ok((format, out))
}

/// build_json_predict_response(format: "row" | "column", outputs: list[(name, ndarray)]) -> bytes
///
/// Raises JsonError(("REST_PROTO_TO_STRING_ERROR", detail)) when the outputs cannot be laid out in
/// that format (rows need every output to share dim 0).
#[pyfunction]
pub fn build_json_predict_response<'py>(
    py: Python<'py>,
    format: &str,
    outputs: Vec<(String, Bound<'py, numpy::PyUntypedArray>)>,
) -> PyResult<Bound<'py, PyBytes>> {
    let format = format_of(format)?;
    let views = output_views(&outputs)?;
    let refs: Vec<OutputRef<'_>> = views
        .iter()
        .map(|v| OutputRef {
            name: &v.name,
            dtype: v.dtype,
            shape: &v.shape,
            data: v.data,
        })
        .collect();
    let total: usize = refs.iter().map(|r| r.data.len()).sum();
    let written =
        crate::detach::detach_above(py, total, DETACH_BYTES, || write_reply(format, &refs));
    let body =
        written.map_err(|e| JsonError::new_err((ErrorKind::ReplyNotLaidOut.name(), Some(e.0))))?;
    Ok(PyBytes::new(py, &body))
}

/// json_error_kinds() -> list[str]: every kind `JsonError` may carry (the catalogue must know each).
#[pyfunction]
pub fn json_error_kinds() -> Vec<&'static str> {
    ErrorKind::ALL.iter().map(|k| k.name()).collect()
}
