"""The one place domain errors become gRPC statuses and REST error replies, for every method and
transport."""

from __future__ import annotations

import json

import grpc

from .. import _native
from ..errors import INTERNAL_ERROR, ConfigError, ServingError, json_error, request_error


def serving_error_of(err: BaseException) -> ServingError:
    """What an exception raised while serving a request is, as a catalogue case."""
    if isinstance(err, ServingError):
        return err
    if isinstance(err, _native.JsonError):
        kind, detail = err.args
        return json_error(kind, detail)
    if isinstance(err, _native.InvalidInput):
        kind, fields = err.args
        return request_error(kind, fields)
    if isinstance(err, ConfigError):
        return ServingError(grpc.StatusCode.INVALID_ARGUMENT, str(err))
    if isinstance(err, _native.ResourceExhausted):  # the memory budget (decoded images)
        return ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, str(err))
    return ServingError(grpc.StatusCode.INTERNAL, INTERNAL_ERROR)


def status_of(err: BaseException) -> tuple[grpc.StatusCode, str]:
    """(code, details) for an exception raised while serving a request."""
    case = serving_error_of(err)
    return case.code, case.message


def error_body(message: str) -> bytes:
    """OVMS's REST error body: compact `{"error": "<message>"}`."""
    return json.dumps({"error": message}, separators=(",", ":")).encode()
