//! Why a REST body was refused: structured kinds; Python's catalogue (`ovms_rs.errors.JSON_ERRORS`)
//! owns the wording and the HTTP status of each.

/// Why a body was refused. Each kind is one entry of Python's message catalogue (`ovms_rs.errors`),
/// which owns the wording; `detail` says where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    pub kind: ErrorKind,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not JSON at all (syntax), or nesting deeper than `MAX_DEPTH`.
    JsonInvalid,
    BodyNotObject,
    UnknownOrder,
    InstancesNotArray,
    NamedInstanceNotObject,
    NoInstances,
    NotNamedOrNonamed,
    CouldNotParseInstance,
    InstancesBatchSizeDiffer,
    InputsNotObject,
    NoInputs,
    CouldNotParseInput,
    /// The unnamed formats need a model with exactly one input.
    UnnamedNeedsOneInput,
}

impl ErrorKind {
    /// The catalogue key (OVMS's StatusCode name where it has one).
    pub fn name(self) -> &'static str {
        use ErrorKind::*;
        match self {
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
            UnnamedNeedsOneInput => "REST_UNNAMED_NEEDS_ONE_INPUT",
        }
    }

    pub const ALL: [ErrorKind; 13] = {
        use ErrorKind::*;
        [
            JsonInvalid,
            BodyNotObject,
            UnknownOrder,
            InstancesNotArray,
            NamedInstanceNotObject,
            NoInstances,
            NotNamedOrNonamed,
            CouldNotParseInstance,
            InstancesBatchSizeDiffer,
            InputsNotObject,
            NoInputs,
            CouldNotParseInput,
            UnnamedNeedsOneInput,
        ]
    };
}

impl JsonError {
    pub(super) fn new(kind: ErrorKind, detail: impl Into<Option<String>>) -> Self {
        JsonError {
            kind,
            detail: detail.into(),
        }
    }
}
