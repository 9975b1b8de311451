"""The one catalogue of what the server refuses: each case is (gRPC code, HTTP status, OVMS message).

Everything the server rejects is raised as a `ServingError`; `ovms_rs.server.errors.status_of` is the one
place that turns it into a gRPC status or a REST `{"error"}` reply, for every method and transport. The
HTTP status follows OVMS's REST mapping (`http_server.cpp`) from the gRPC code, unless a case says
otherwise. Rust reports kinds, never wording: `_native.InvalidInput(kind, fields)` (`REQUEST_ERRORS`)
and `_native.JsonError(kind, detail)` (`JSON_ERRORS`).

This module imports no `_native`: the extension imports it (`native_message`) when it loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import grpc

# OVMS's REST status for each gRPC code it answers with (src/http_server.cpp; NOT_LOADED_YET, which
# is UNAVAILABLE on gRPC here, is 404 there too). Anything else is 500.
HTTP_STATUS_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.UNAVAILABLE: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 412,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNIMPLEMENTED: 501,
}


class ServingError(Exception):
    """A request the server answers with a non-OK gRPC status (and, on REST, an HTTP error)."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        detail: str | None = None,
        http_status: int | None = None,
    ) -> None:
        # OVMS formats details as "<base message> - <detail>" where there is a detail.
        self.code = code
        self.message = message if detail is None else f"{message} - {detail}"
        self.http_status = http_status or HTTP_STATUS_BY_CODE.get(code, 500)
        super().__init__(self.message)


def invalid_argument(message: str, detail: str | None = None) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message, detail)


# OVMS's base messages (src/status.cpp), named after the situation they describe.
MODEL_NAME_MISSING = "Model with requested name is not found"
MODEL_VERSION_MISSING = "Model with requested version is not found"
MODEL_VERSION_RETIRED = "Model with requested version is retired"
MODEL_VERSION_NOT_LOADED_YET = "Model with requested version is not loaded yet"
MODEL_SPEC_MISSING = "model_spec missing in request"
INVALID_SIGNATURE_NAME = "Invalid signature name"
INVALID_NO_OF_INPUTS = "Invalid number of inputs"
INVALID_MISSING_INPUT = "Missing input with specific name"
INVALID_PRECISION = "Invalid input precision"
INVALID_NO_OF_SHAPE_DIMENSIONS = "Invalid number of shape dimensions"
INVALID_BATCH_SIZE = "Invalid input batch size"
INVALID_SHAPE = "Invalid input shape"
INVALID_OUTPUT_FILTER = "Invalid output name in output_filter"
RESHAPE_FAILED = "Model could not be reshaped with requested shape"
INTERNAL_ERROR = "Internal server error"
# The infer-request pool of a version (models/version.py): its bounded waiting line is full
# (RESOURCE_EXHAUSTED, REST 503), or the client's deadline passed while waiting (DEADLINE_EXCEEDED, 504).
INFER_QUEUE_FULL = "Too many requests waiting for an inference request of this model version"
INFER_DEADLINE_EXCEEDED = "Deadline exceeded while waiting for an inference request"
# The dynamic batcher (models/batcher.py). Queue full is TF Serving's wording (its batch scheduler),
# RESOURCE_EXHAUSTED (REST 503); the deadline is DEADLINE_EXCEEDED (504); an output that cannot be
# split back into each request's rows is the model's fault, INTERNAL (500).
BATCH_QUEUE_FULL = "The batch scheduling queue to which this task was submitted is full"
BATCH_DEADLINE_EXCEEDED = "Deadline exceeded while waiting in the batching queue"
BATCH_OUTPUT_NOT_BATCHED = "An output of the batched model has no batch dimension"
# TF Serving's (server_core.cc): OVMS parses version labels but ignores them; ovms_rs resolves them.
UNRECOGNIZED_VERSION_LABEL = "Unrecognized servable version label"

# What the REST transport (rust/rest/) answers without Python; tests/rest checks Rust's copies.
REST_INVALID_URL = "Invalid request URL"
REST_UNSUPPORTED_METHOD = "Unsupported method"
PATH_INVALID = "The provided base path is invalid or doesn't exists"
SERVER_NOT_READY = "Server is not ready"
REST_BODY_TOO_LARGE = "Request body is larger than the server accepts"
REST_TOO_MANY_REQUESTS = "Too many requests in flight"
REST_NOT_FOUND = "Requested REST resource not found"
REST_RESPONSE_TO_JSON = "Response parsing to JSON error"

# REST predict bodies the JSON codec refuses: the kind Rust reports (`_native.JsonError`) -> (HTTP
# status, OVMS message). All are INVALID_ARGUMENT. OVMS answers malformed JSON with 412; a client's
# syntax error is a 400 here (README, "Deliberate differences").
JSON_ERRORS: dict[str, tuple[int, str]] = {
    "JSON_INVALID": (400, "The file is not valid json"),
    "REST_BODY_IS_NOT_AN_OBJECT": (400, "Request body should be JSON object"),
    "REST_PREDICT_UNKNOWN_ORDER": (
        400,
        "Invalid JSON structure. Could not detect row or column format",
    ),
    "REST_INSTANCES_NOT_AN_ARRAY": (
        400,
        "Invalid JSON structure. Nonamed instance is not an array.",
    ),
    "REST_NAMED_INSTANCE_NOT_AN_OBJECT": (
        400,
        "Invalid JSON structure. One of named instances is not a JSON object.",
    ),
    "REST_NO_INSTANCES_FOUND": (400, "Invalid JSON structure. Missing instances in row format"),
    "REST_INSTANCES_NOT_NAMED_OR_NONAMED": (
        400,
        "Could not detect neither named or nonamed format",
    ),
    "REST_COULD_NOT_PARSE_INSTANCE": (
        400,
        "Could not parse instance content. Not valid ndarray detected",
    ),
    "REST_INSTANCES_BATCH_SIZE_DIFFER": (
        400,
        "Invalid JSON structure. Request inputs have different batch sizes",
    ),
    "REST_INPUTS_NOT_AN_OBJECT": (
        400,
        "Invalid JSON structure. One of inputs is not a JSON object.",
    ),
    "REST_NO_INPUTS_FOUND": (400, "Invalid JSON structure. Missing inputs in column format"),
    "REST_COULD_NOT_PARSE_INPUT": (
        400,
        "Could not parse input content. Not valid ndarray detected",
    ),
    "REST_UNNAMED_NEEDS_ONE_INPUT": (400, "Inputs inside buffer does not match expected format."),
    "REST_PROTO_TO_STRING_ERROR": (500, REST_RESPONSE_TO_JSON),
}


class Case(NamedTuple):
    """One way to refuse a request: its code, OVMS's base message and the detail after " - " (both
    formatted over the kind's fields; a shape prints as OVMS prints shapes, `(1,3,224,224)`)."""

    code: grpc.StatusCode
    message: str
    detail: str | None = None


_INVALID = grpc.StatusCode.INVALID_ARGUMENT
_OF_INPUT = "; input name: {name}"
_EXPECTED_ACTUAL = "Expected: {expected}; Actual: {actual}" + _OF_INPUT

# A Predict request's checks, by kind, in OVMS's order (`request/validation.py` makes them in it). Rust's
# kinds (`rust/core/error.rs`, `_native.invalid_input_kinds()`) are marked; the rest are Python's.
REQUEST_ERRORS: dict[str, Case] = {
    "MALFORMED_REQUEST": Case(_INVALID, "Invalid message structure", "{detail}"),  # Rust
    "INVALID_NO_OF_INPUTS": Case(
        _INVALID, INVALID_NO_OF_INPUTS, "Expected: {expected}; Actual: {actual}"
    ),
    "INVALID_MISSING_INPUT": Case(_INVALID, INVALID_MISSING_INPUT, "Required input: {name}"),
    "ZERO_DIMENSION": Case(  # Rust
        _INVALID,
        INVALID_SHAPE,
        "Negative or zero dimension size is not acceptable: {shape}" + _OF_INPUT,
    ),
    # Binary inputs (`request/binary_input.py`), in their own order.
    "BINARY_NO_OF_SHAPE_DIMENSIONS": Case(
        _INVALID,
        INVALID_NO_OF_SHAPE_DIMENSIONS,
        "Expected number of binary input shape dimensions: 1; Actual: {actual}" + _OF_INPUT,
    ),
    "BINARY_NOT_NHWC": Case(
        _INVALID, "Received binary image input but resource not configured to accept NHWC layout"
    ),
    "IMAGE_EMPTY": Case(_INVALID, "String val is empty"),  # Rust, and Python before decoding
    "IMAGE_PARSING_FAILED": Case(_INVALID, "Image parsing failed"),  # Rust
    "IMAGE_RESOLUTION_MISMATCH": Case(  # Rust
        _INVALID, "Binary input images for this endpoint are required to have the same resolution"
    ),
    "IMAGE_CHANNELS_MISMATCH": Case(_INVALID, "Invalid number of channels in binary input"),  # Rust
    # Every input.
    "INVALID_PRECISION": Case(_INVALID, INVALID_PRECISION, _EXPECTED_ACTUAL),
    "INVALID_NO_OF_SHAPE_DIMENSIONS": Case(
        _INVALID, INVALID_NO_OF_SHAPE_DIMENSIONS, _EXPECTED_ACTUAL
    ),
    "INVALID_BATCH_SIZE": Case(_INVALID, INVALID_BATCH_SIZE, _EXPECTED_ACTUAL),
    "INVALID_SHAPE": Case(_INVALID, INVALID_SHAPE, _EXPECTED_ACTUAL),
    "SHAPE_OVERFLOW": Case(  # Rust
        _INVALID, INVALID_SHAPE, "Number of elements overflows: {shape}" + _OF_INPUT
    ),
    "SHAPE_REFUSED": Case(_INVALID, INVALID_SHAPE, "{reason}" + _OF_INPUT),  # Rust (numpy's reason)
    "CONTENT_SIZE": Case(  # Rust
        _INVALID,
        "Invalid content size of tensor proto",
        "Expected: {expected} bytes; Actual: {actual} bytes" + _OF_INPUT,
    ),
    "VALUE_COUNT": Case(  # Rust
        _INVALID, "Invalid number of values in tensor proto container", _EXPECTED_ACTUAL
    ),
    # After the inputs.
    "INVALID_OUTPUT_FILTER": Case(
        _INVALID,
        INVALID_OUTPUT_FILTER,
        "output tensor alias not found in signature: {name}. Outputs expected to be in the set "
        "{{{known}}}.",
    ),
    # Not the client's (ovms_rs's own wording; INVALID_ARGUMENT as they always were).
    "TRANSPOSE_RANK": Case(
        _INVALID, "Cannot transpose a rank {rank} tensor to {to}; rank >= 3 needed"
    ),
    "TRANSPOSE_DTYPE": Case(_INVALID, "Cannot transpose a tensor of dtype {dtype} to {to}"),
    "OUTPUT_PRECISION": Case(_INVALID, "Unsupported output precision for output {name}"),
    "OUTPUT_NOT_CONTIGUOUS": Case(_INVALID, "Output {name} is not C-contiguous"),
    "REPLY_TOO_LARGE": Case(_INVALID, "Reply too large"),
}


def _field(value: object) -> object:
    """A field as OVMS prints it: a shape (a tuple or list of dims) as (1,3,224,224)."""
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(str(d) for d in value) + ")"
    return value


def request_error(
    kind: str, fields: Mapping[str, object] | None = None, **more: object
) -> ServingError:
    """The catalogue case `kind` (a key of `REQUEST_ERRORS`) with its fields filled in."""
    case = REQUEST_ERRORS[kind]
    values = {name: _field(value) for name, value in {**(fields or {}), **more}.items()}
    detail = None if case.detail is None else case.detail.format_map(values)
    return ServingError(case.code, case.message.format_map(values), detail)


def native_message(error: BaseException) -> str:
    """`str()` of a `_native.InvalidInput(kind, fields)`: OVMS's message for it."""
    if len(error.args) == 2 and error.args[0] in REQUEST_ERRORS:
        kind, fields = error.args
        return request_error(kind, fields).message
    return BaseException.__str__(error)  # made by hand, not by the extension


def json_error(kind: str, detail: str | None) -> ServingError:
    """The catalogue entry for a `_native.JsonError`."""
    http_status, message = JSON_ERRORS[kind]
    code = grpc.StatusCode.INVALID_ARGUMENT if http_status < 500 else grpc.StatusCode.INTERNAL
    return ServingError(code, message, detail, http_status)


def model_name_missing() -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, MODEL_NAME_MISSING)


def model_version_missing() -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, MODEL_VERSION_MISSING)


def model_version_retired() -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, MODEL_VERSION_RETIRED)


def version_label_unknown(label: str) -> ServingError:
    """TF Serving's INVALID_ARGUMENT (HTTP 400) for a label its model's config does not define."""
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"{UNRECOGNIZED_VERSION_LABEL}: {label}")


def model_version_not_loaded_yet() -> ServingError:
    return ServingError(grpc.StatusCode.UNAVAILABLE, MODEL_VERSION_NOT_LOADED_YET)


def infer_queue_full() -> ServingError:
    return ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, INFER_QUEUE_FULL)


def infer_deadline_exceeded() -> ServingError:
    return ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, INFER_DEADLINE_EXCEEDED)


def batch_queue_full() -> ServingError:
    return ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, BATCH_QUEUE_FULL)


def batch_deadline_exceeded() -> ServingError:
    return ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, BATCH_DEADLINE_EXCEEDED)


def batch_output_not_batched() -> ServingError:
    """INTERNAL (HTTP 500): the model, not the request, is at fault."""
    return ServingError(grpc.StatusCode.INTERNAL, INTERNAL_ERROR, BATCH_OUTPUT_NOT_BATCHED)


class ConfigError(Exception):
    """The server cannot start (or reload) with the configuration it was given; str() is for the user."""


class ConfigJsonError(ConfigError):
    """The config file is not JSON at all (OVMS: JSON_INVALID, HTTP 412 on reload)."""
