//! The JSON codec's Python face: `parse_json_predict` (body -> the same `RequestInput`s the gRPC
//! parser makes, so one validation pipeline serves both APIs) and `build_json_predict_response`.

use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use super::error::{ErrorKind, JsonError as ParseError};
use super::request::{parse, Format};
use super::response::{write_reply, OutputRef};
use super::tensor::Values;
use crate::dtype::DType;
use crate::error::JsonError;
use crate::predict::request::{request_buffer, RequestInput};
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

fn to_array<'py>(py: Python<'py>, values: Values) -> PyResult<Bound<'py, PyAny>> {
    Ok(match values {
        Values::F32(v) => v.into_pyarray(py).into_any(),
        Values::F64(v) => v.into_pyarray(py).into_any(),
        Values::F16(v) => v.into_pyarray(py).call_method1("view", ("<f2",))?,
        Values::I8(v) => v.into_pyarray(py).into_any(),
        Values::I16(v) => v.into_pyarray(py).into_any(),
        Values::I32(v) => v.into_pyarray(py).into_any(),
        Values::I64(v) => v.into_pyarray(py).into_any(),
        Values::U8(v) => v.into_pyarray(py).into_any(),
        Values::U16(v) => v.into_pyarray(py).into_any(),
        Values::U32(v) => v.into_pyarray(py).into_any(),
        Values::U64(v) => v.into_pyarray(py).into_any(),
        Values::Bool(v) => v.into_pyarray(py).into_any(),
        Values::Strings(_) => unreachable!("strings are no array"),
    })
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
                let array = to_array(py, values)?.call_method1("reshape", (&shape,))?;
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
