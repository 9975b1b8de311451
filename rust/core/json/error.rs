//! Why a REST body was refused: structured kinds; Python's catalogue (`ovms_rs.errors.JSON_ERRORS`)
//! owns the wording and the HTTP status of each.

/// Why a body was refused. Each kind is one entry of Python's message catalogue (`ovms_rs.errors`),
/// which owns the wording; `detail` says where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    pub kind: ErrorKind,
    pub detail: Option<String>,
}

/// The kinds, each with its catalogue key (OVMS's StatusCode name where it has one), in one table.
macro_rules! error_kinds {
    ($($(#[$doc:meta])* $kind:ident => $name:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorKind {
            $($(#[$doc])* $kind,)*
        }

        impl ErrorKind {
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$kind,)*];

            /// The catalogue key.
            pub fn name(self) -> &'static str {
                match self {
                    $(ErrorKind::$kind => $name,)*
                }
            }
        }
    };
}

error_kinds! {
    /// Not JSON at all (syntax), or nesting deeper than `MAX_DEPTH`.
    JsonInvalid => "JSON_INVALID",
    BodyNotObject => "REST_BODY_IS_NOT_AN_OBJECT",
    UnknownOrder => "REST_PREDICT_UNKNOWN_ORDER",
    InstancesNotArray => "REST_INSTANCES_NOT_AN_ARRAY",
    NamedInstanceNotObject => "REST_NAMED_INSTANCE_NOT_AN_OBJECT",
    NoInstances => "REST_NO_INSTANCES_FOUND",
    NotNamedOrNonamed => "REST_INSTANCES_NOT_NAMED_OR_NONAMED",
    CouldNotParseInstance => "REST_COULD_NOT_PARSE_INSTANCE",
    InstancesBatchSizeDiffer => "REST_INSTANCES_BATCH_SIZE_DIFFER",
    InputsNotObject => "REST_INPUTS_NOT_AN_OBJECT",
    NoInputs => "REST_NO_INPUTS_FOUND",
    CouldNotParseInput => "REST_COULD_NOT_PARSE_INPUT",
    /// The unnamed formats need a model with exactly one input.
    UnnamedNeedsOneInput => "REST_UNNAMED_NEEDS_ONE_INPUT",
    /// Outputs that cannot be laid out in the request's format (the reply side).
    ReplyNotLaidOut => "REST_PROTO_TO_STRING_ERROR",
}

impl JsonError {
    pub(super) fn new(kind: ErrorKind, detail: impl Into<Option<String>>) -> Self {
        JsonError {
            kind,
            detail: detail.into(),
        }
    }
}
