"""The gRPC server: both TF Serving services on one port, on one of two transports.

- `native` (default): HTTP/2 in the Rust extension (`_native.GrpcServer`, tonic); Python is entered once
  per request. Plaintext only for now.
- `grpcio`: grpcio's Python server; used for TLS, and selectable with `--grpc_transport grpcio`.

Both call the same `methods.Dispatcher`, so they answer alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent import futures
from typing import Protocol

import grpc

from .. import _native
from ..config import ServerConfig
from ..errors import ConfigError
from ..models.registry import ModelRegistry
from .methods import Dispatcher, method_table

log = logging.getLogger(__name__)

DEFAULT_THREADS = 64
MAX_CONCURRENT_RPCS = 1024


class Server(Protocol):
    port: int

    def start(self) -> None: ...

    def stop(self, grace: float) -> None:
        """Stops accepting calls; returns when in-flight ones finished or `grace` seconds passed."""


def build_server(
    config: ServerConfig, registry: ModelRegistry, reload_config: Callable[[], None] | None = None
) -> Server:
    """Creates and binds (not starts) the server."""
    dispatcher = Dispatcher(method_table(registry, reload_config))
    tls = config.tls_cert is not None
    if config.grpc_transport == "native" and not tls:
        return NativeServer(config, dispatcher)
    if config.grpc_transport == "native":
        log.info("TLS is served by the grpcio transport")
    return GrpcioServer(config, dispatcher)


def _bind_error(config: ServerConfig) -> ConfigError:
    return ConfigError(
        f"Could not bind gRPC port {config.grpc_bind_address}:{config.port} (in use, or no such address)"
    )


class NativeServer:
    def __init__(self, config: ServerConfig, dispatcher: Dispatcher) -> None:
        threads = config.grpc_threads or DEFAULT_THREADS
        try:
            self._server = _native.GrpcServer(
                dispatcher,
                config.grpc_bind_address,
                config.port,
                max_message_bytes=config.max_message_bytes,
                max_concurrent_rpcs=max(threads, MAX_CONCURRENT_RPCS),
                handler_threads=threads,
            )
        except OSError:
            raise _bind_error(config) from None
        self.port = self._server.port

    def start(self) -> None:
        self._server.start()

    def stop(self, grace: float) -> None:
        if not self._server.stop(grace):
            log.warning("Requests still running after %.0f s were abandoned", grace)


class _GrpcioHandler(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Every method, raw bytes both ways, through the dispatcher."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        path: str = handler_call_details.method
        if path not in self.dispatcher.methods:
            return None  # grpcio answers UNIMPLEMENTED

        def call(request: bytes, context: grpc.ServicerContext) -> bytes:
            code, details, reply = self.dispatcher(path, request, context.time_remaining())
            if code:
                context.abort(_STATUS_CODES[code], details)  # raises
            assert reply is not None
            return reply

        return grpc.unary_unary_rpc_method_handler(call)


_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _tls_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    try:
        cert, key = config.tls_cert.read_bytes(), config.tls_key.read_bytes()
        client_ca = config.tls_client_ca.read_bytes() if config.tls_client_ca else None
    except OSError as e:
        raise ConfigError(f"Cannot read TLS file {e.filename}: {e.strerror}") from None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


class GrpcioServer:
    def __init__(self, config: ServerConfig, dispatcher: Dispatcher) -> None:
        options = [
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
        workers = config.grpc_threads or DEFAULT_THREADS
        # Calls beyond this are refused with RESOURCE_EXHAUSTED rather than queued without bound.
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
            handlers=[_GrpcioHandler(dispatcher)],
            options=options,
            maximum_concurrent_rpcs=max(workers, MAX_CONCURRENT_RPCS),
        )
        address = config.grpc_bind_address
        host = f"[{address}]" if ":" in address else address
        credentials = _tls_credentials(config)
        try:
            if credentials is None:
                port = self._server.add_insecure_port(f"{host}:{config.port}")
            else:
                port = self._server.add_secure_port(f"{host}:{config.port}", credentials)
        except RuntimeError:
            port = 0
        if port == 0:
            raise _bind_error(config)
        self.port = port

    def start(self) -> None:
        self._server.start()

    def stop(self, grace: float) -> None:
        self._server.stop(grace).wait()
