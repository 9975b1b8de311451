"""The REST server: `_native.RestServer` (hyper, on the gRPC transport's runtime) and the one dispatcher
it calls, which turns what a method raises into OVMS's `{"error"}` reply."""

from __future__ import annotations

import logging
from collections.abc import Callable

import grpc

from .. import _native
from ..config.server import ServerConfig
from ..errors import REST_NOT_FOUND, ConfigError, ServingError
from ..models.registry import ModelRegistry
from .errors import error_body, serving_error_of
from .rest_service import RequestBody, RestMethod, RestService

log = logging.getLogger(__name__)

# Requests in flight (reading, queued or in Python) beyond which the REST port answers 503.
MAX_CONCURRENT_REQUESTS = 1024


class RestDispatcher:
    """`dispatcher(kind, name, version, label, body, timeout) -> (HTTP status, body)`; never raises."""

    def __init__(self, methods: dict[str, RestMethod]) -> None:
        self.methods = methods

    def __call__(
        self,
        kind: str,
        name: str,
        version: int,
        label: str | None,
        body: RequestBody,
        timeout: float | None,
    ) -> tuple[int, bytes]:
        method = self.methods.get(kind)
        try:
            if method is None:
                raise ServingError(grpc.StatusCode.NOT_FOUND, REST_NOT_FOUND)
            return method(name, version, label, body, timeout)
        except Exception as err:
            case = serving_error_of(err)
            if case.code == grpc.StatusCode.INTERNAL and not isinstance(err, ServingError):
                log.exception("Unexpected error in REST %s", kind)
            status, message = case.http_status, case.message
            # `case` is often `err` itself: kept in this frame it would make a cycle (exception ->
            # traceback -> this frame -> exception) that holds the request's body and arrays until
            # the cyclic GC runs (measured: +105 MB of RSS per refused 72 MB body).
            del case
        return status, error_body(message)


class RestServer:
    def __init__(
        self,
        config: ServerConfig,
        registry: ModelRegistry,
        reload_config: Callable[[], bool] | None,
        handler_threads: int,
    ) -> None:
        dispatcher = RestDispatcher(RestService(registry, reload_config).methods())
        try:
            self._server = _native.RestServer(
                dispatcher,
                config.rest_bind_address,
                config.rest_port,
                max_body_bytes=config.max_message_bytes,
                max_concurrent=MAX_CONCURRENT_REQUESTS,
                handler_threads=handler_threads,
            )
        except OSError:
            raise ConfigError(
                f"Could not bind REST port {config.rest_bind_address}:{config.rest_port} "
                "(in use, or no such address)"
            ) from None
        self.port = self._server.port

    def start(self) -> None:
        self._server.start()

    def set_ready(self, ready: bool) -> None:
        self._server.set_ready(ready)

    def stop(self, grace: float) -> None:
        if not self._server.stop(grace):
            log.warning("REST requests still running after %.0f s were abandoned", grace)
