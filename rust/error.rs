//! One error type for everything the native code rejects, and its one conversion to Python.
//!
//! Every variant is a client error: the message is OVMS's gRPC details string, and Python maps
//! `InvalidInput` to INVALID_ARGUMENT in one place (`ovms_rs.server.errors`).

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::PyErr;

create_exception!(
    _native,
    InvalidInput,
    PyValueError,
    "A request the server rejects with INVALID_ARGUMENT; str(exc) is OVMS's details string."
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

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The request bytes are not a valid protobuf message of the expected type.
    #[error("Invalid message structure - {0}")]
    Malformed(String),
    /// A rule of OVMS's request validation was broken; the string is the full details message.
    #[error("{0}")]
    Invalid(String),
    /// Not a client error: the memory budget cannot hold what the request needs now.
    #[error("{0}")]
    Exhausted(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn malformed(what: impl Into<String>) -> Self {
        Error::Malformed(what.into())
    }
    pub fn invalid(what: impl Into<String>) -> Self {
        Error::Invalid(what.into())
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        match err {
            Error::Exhausted(message) => ResourceExhausted::new_err(message),
            err => InvalidInput::new_err(err.to_string()),
        }
    }
}
