//! One error type for everything the kernels reject: structured kinds, no message text.
//!
//! Each variant is a catalogue key and its fields. Python's catalogue
//! (`ovms_rs.errors.REQUEST_ERRORS`) owns each kind's gRPC code, HTTP status and OVMS's wording; the
//! extension's `error` module carries a kind there as `InvalidInput(kind, fields)` (and its `str()`
//! is that message). `Exhausted` alone is no client error: it becomes `ResourceExhausted`.

/// One field of a kind, as the catalogue's detail template reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    Text(&'a str),
    Count(usize),
    Shape(&'a [i64]),
}

impl<'a> From<&'a String> for Field<'a> {
    fn from(v: &'a String) -> Self {
        Field::Text(v)
    }
}

impl From<&usize> for Field<'_> {
    fn from(v: &usize) -> Self {
        Field::Count(*v)
    }
}

impl<'a> From<&'a Vec<i64>> for Field<'a> {
    fn from(v: &'a Vec<i64>) -> Self {
        Field::Shape(v)
    }
}

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

            /// The fields, by name, for the catalogue's detail template (`Exhausted`'s one is
            /// `message`).
            pub fn fields(&self) -> Vec<(&'static str, Field<'_>)> {
                match self {
                    $(Error::$kind $({ $($field),* })? => {
                        vec![$($((stringify!($field), Field::from($field)),)*)?]
                    })*
                    Error::Exhausted(message) => vec![("message", Field::from(message))],
                }
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
}

impl std::fmt::Display for Error {
    /// The kind and its fields, for Rust's own tests and panics; the wording is Python's.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_fields() {
        let e = Error::ContentSize {
            name: "x".into(),
            expected: 12,
            actual: 8,
        };
        assert_eq!(e.kind(), "CONTENT_SIZE");
        assert_eq!(
            e.fields(),
            [
                ("name", Field::Text("x")),
                ("expected", Field::Count(12)),
                ("actual", Field::Count(8))
            ]
        );
        assert!(Error::ImageEmpty.fields().is_empty());
        assert!(KINDS.contains(&Error::ImageEmpty.kind()));
        assert!(!KINDS.contains(&Error::Exhausted(String::new()).kind()));
    }
}
