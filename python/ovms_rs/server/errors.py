"""The one place domain errors become gRPC statuses, for every method and transport."""

from __future__ import annotations

import grpc

from .. import _native
from ..errors import ConfigError, ServingError


def status_of(err: BaseException) -> tuple[grpc.StatusCode, str]:
    """(code, details) for an exception raised while serving a request."""
    if isinstance(err, ServingError):
        return err.code, err.message
    if isinstance(err, (_native.InvalidInput, ConfigError)):
        return grpc.StatusCode.INVALID_ARGUMENT, str(err)
    return grpc.StatusCode.INTERNAL, "Internal server error"
