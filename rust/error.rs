//! One error type for everything the native code rejects, and its one conversion to Python.
//!
//! Each variant is a structured kind: a catalogue key and its fields, no message text. Python's
//! catalogue (`ovms_rs.errors.REQUEST_ERRORS`) owns each kind's gRPC code, HTTP status and OVMS's
//! wording; `InvalidInput(kind, fields)` carries it there (and its `str()` is that message).
//! `Exhausted` alone is no client error: it becomes `ResourceExhausted`.

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::{PyErr, PyErrArguments};

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

/// The kinds, each with its fields and its catalogue key, in one table.
macro_rules! error_kinds {
    ($($(#[$doc:meta])* $kind:ident $({ $($field:ident : $ty:ty),* $(,)? })? => $name:literal,)*) => {
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Error {
            $($(#[$doc])* $kind $({ $($field: $ty),* })?,)*
            /// Not a client error: the memory budget cannot hold what the request needs now; the
            /// string says how much was asked and the budget (`overload::budget`).
            Exhausted(String),
        }

        /// Every kind `InvalidInput` carries: the catalogue keys.
        pub const KINDS: &[&str] = &[$($name,)*];

        impl Error {
            /// The catalogue key (`Exhausted` has none: it is not raised as `InvalidInput`).
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Error::$kind { .. } => $name,)*
                    Error::Exhausted(_) => "RESOURCE_EXHAUSTED",
                }
            }

            /// The fields, by name, for the catalogue's detail template.
            pub fn fields<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                let fields = PyDict::new(py);
                match self {
                    $(Error::$kind $({ $($field),* })? => {
                        $($(fields.set_item(stringify!($field), $field)?;)*)?
                    })*
                    Error::Exhausted(message) => fields.set_item("message", message)?,
                }
                Ok(fields)
            }
        }
    };
}

error_kinds! {
    /// The request bytes are not a valid protobuf message of the expected type; `detail` says where.
    Malformed { detail: String } => "MALFORMED_REQUEST",
    /// A zero or negative dimension: nothing is decoded (numpy refuses such shapes beside huge ones).
    ZeroDimension { name: String, shape: Vec<i64> } => "ZERO_DIMENSION",
    /// The element count (or its byte size) does not fit in memory's address space.
    ShapeOverflow { name: String, shape: Vec<i64> } => "SHAPE_OVERFLOW",
    /// numpy refused the shape; `reason` is numpy's.
    ShapeRefused { name: String, reason: String } => "SHAPE_REFUSED",
    /// `tensor_content` is not the byte size the shape and dtype declare.
    ContentSize { name: String, expected: usize, actual: usize } => "CONTENT_SIZE",
    /// The typed `*_val` fields hold another number of values than the shape declares.
    ValueCount { name: String, expected: usize, actual: usize } => "VALUE_COUNT",
    /// A binary input's `string_val` entry is empty.
    ImageEmpty => "IMAGE_EMPTY",
    /// Not a JPEG/PNG, a broken one, or one past the size limits.
    ImageParsingFailed => "IMAGE_PARSING_FAILED",
    /// Images of one batch differ in size, and none is resized.
    ImageResolutionMismatch => "IMAGE_RESOLUTION_MISMATCH",
    /// Images of one batch differ in channel count.
    ImageChannelsMismatch => "IMAGE_CHANNELS_MISMATCH",
    /// `transpose_layout` of a tensor of rank < 3.
    TransposeRank { rank: usize, to: String } => "TRANSPOSE_RANK",
    /// `transpose_layout` of a tensor of a dtype it does not move.
    TransposeDtype { dtype: String, to: String } => "TRANSPOSE_DTYPE",
    /// A model output of a dtype the reply cannot carry.
    OutputPrecision { name: String } => "OUTPUT_PRECISION",
    /// A model output that is not C-contiguous.
    OutputNotContiguous { name: String } => "OUTPUT_NOT_CONTIGUOUS",
    /// A reply larger than a bytes object can hold.
    ReplyTooLarge => "REPLY_TOO_LARGE",
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn malformed(detail: impl Into<String>) -> Self {
        Error::Malformed {
            detail: detail.into(),
        }
    }

    /// `(kind, fields)`: what `InvalidInput` carries, and `RequestInput.error`.
    pub fn to_py<'py>(&self, py: Python<'py>) -> PyResult<(&'static str, Bound<'py, PyDict>)> {
        Ok((self.kind(), self.fields(py)?))
    }
}

impl std::fmt::Display for Error {
    /// The kind and its fields, for Rust's own tests and panics; the wording is Python's.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for Error {}

impl PyErrArguments for Error {
    fn arguments(self, py: Python<'_>) -> Py<PyAny> {
        match self.to_py(py).and_then(|args| args.into_pyobject(py)) {
            Ok(args) => args.into_any().unbind(),
            Err(e) => e.into_value(py).into_any(),
        }
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        match err {
            Error::Exhausted(message) => ResourceExhausted::new_err(message),
            err => InvalidInput::new_err(err),
        }
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
