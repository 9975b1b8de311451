"""The one place domain errors become gRPC statuses, for every servicer."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from .. import _native
from ..errors import ConfigError, ServingError

log = logging.getLogger(__name__)

Method = TypeVar("Method", bound=Callable[..., Any])


def status_of(err: BaseException) -> tuple[grpc.StatusCode, str]:
    """(code, details) for an exception raised while serving a request."""
    if isinstance(err, ServingError):
        return err.code, err.message
    if isinstance(err, (_native.InvalidInput, ConfigError)):
        return grpc.StatusCode.INVALID_ARGUMENT, str(err)
    return grpc.StatusCode.INTERNAL, "Internal server error"


def grpc_method(fn: Method) -> Method:
    """Wraps a servicer method `(self, request, context)` so that any exception ends the call with the
    right status."""

    @functools.wraps(fn)
    def wrapper(self: object, request: object, context: grpc.ServicerContext) -> object:
        try:
            return fn(self, request, context)
        except Exception as err:
            code, details = status_of(err)
            if code == grpc.StatusCode.INTERNAL:
                log.exception("Unexpected error in %s", fn.__name__)
            context.abort(code, details)  # raises: ends the RPC with this status
            raise AssertionError("context.abort returned") from err

    return wrapper  # type: ignore[return-value]
