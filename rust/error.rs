//! The Python exceptions, and the one conversion of the core's `Error` (structured kinds, see
//! `ovms_rs_core::error`) to them: `InvalidInput(kind, fields)`, whose `str()` is the message Python's
//! catalogue (`ovms_rs.errors.REQUEST_ERRORS`) words, and `ResourceExhausted` for `Exhausted`.

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::PyErrArguments;

create_exception!(
    _native,
    InvalidInput,
    PyValueError,
    "A request the server refuses: args are (kind, fields); `ovms_rs.errors.REQUEST_ERRORS` has each \
     kind's status and message, and str(exc) is that message."
);

create_exception!(
    _native,
    ResourceExhausted,
    pyo3::exceptions::PyException,
    "Refused for the server's memory budget (--grpc_memory_quota): RESOURCE_EXHAUSTED / 503; str(exc) \
     says how much was asked and the budget."
);

create_exception!(
    _native,
    JsonError,
    PyValueError,
    "A REST body the server refuses: args are (kind, detail); `ovms_rs.errors` has each kind's \
     status and message."
);

pub use ovms_rs_core::error::{Error, Field, Result, KINDS};

/// `(kind, fields)`: what `InvalidInput` carries, and `RequestInput.error`.
pub fn to_py<'py>(py: Python<'py>, err: &Error) -> PyResult<(&'static str, Bound<'py, PyDict>)> {
    let fields = PyDict::new(py);
    for (name, value) in err.fields() {
        match value {
            Field::Text(v) => fields.set_item(name, v)?,
            Field::Count(v) => fields.set_item(name, v)?,
            Field::Shape(v) => fields.set_item(name, v)?,
        }
    }
    Ok((err.kind(), fields))
}

/// A kernel's refusal as `InvalidInput`'s arguments (the error type is the core crate's, so it
/// cannot be a `PyErrArguments` itself).
struct Arguments(Error);

impl PyErrArguments for Arguments {
    fn arguments(self, py: Python<'_>) -> Py<PyAny> {
        match to_py(py, &self.0).and_then(|args| args.into_pyobject(py)) {
            Ok(args) => args.into_any().unbind(),
            Err(e) => e.into_value(py).into_any(),
        }
    }
}

/// The Python exception of a kernel's refusal: `InvalidInput`, or `ResourceExhausted` for the
/// memory budget. `.map_err(raise)?` is how binding code turns an `Error` into a `PyErr`.
pub fn raise(err: Error) -> PyErr {
    match err {
        Error::Exhausted(message) => ResourceExhausted::new_err(message),
        err => InvalidInput::new_err(Arguments(err)),
    }
}

/// invalid_input_kinds() -> list[str]: every kind `InvalidInput` carries (the catalogue's keys).
#[pyfunction]
pub fn invalid_input_kinds() -> Vec<&'static str> {
    KINDS.to_vec()
}

/// Gives `InvalidInput` its `str()`: OVMS's message, which Python's catalogue formats from the kind
/// and fields (`ovms_rs.errors.native_message`; that module imports no `_native`).
pub(crate) fn add_exceptions(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let invalid = py.get_type::<InvalidInput>();
    let message = py.import("ovms_rs.errors")?.getattr("native_message")?;
    invalid.setattr("__str__", message)?;
    m.add("InvalidInput", invalid)?;
    m.add("JsonError", py.get_type::<JsonError>())?;
    m.add("ResourceExhausted", py.get_type::<ResourceExhausted>())?;
    Ok(())
}
