"""The gRPC server: both TF Serving services on one port, on one of two transports.

- `native` (default): HTTP/2 in the Rust extension (`_native.GrpcServer`, tonic; TLS by rustls); Python
  is entered once per request.
- `grpcio`: grpcio's Python server, selectable with `--grpc_transport grpcio`.

Both call the same `methods.Dispatcher`, so they answer alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent import futures
from typing import NamedTuple, Protocol

import grpc

from .. import _native
from ..config.server import ServerConfig
from ..errors import ConfigError
from ..metrics import GRPC
from ..models.registry import ModelRegistry
from .health import Readiness
from .methods import Dispatcher, method_table

log = logging.getLogger(__name__)

DEFAULT_THREADS = 64
MAX_CONCURRENT_RPCS = 1024
GRPCIO_MAX_INT = 2**31 - 1


class Server(Protocol):
    port: int

    def start(self) -> None: ...

    def stop(self, grace: float) -> None:
        """Stops accepting calls; returns when in-flight ones finished or `grace` seconds passed."""


def build_server(
    config: ServerConfig,
    registry: ModelRegistry,
    reload_config: Callable[[], None] | None = None,
    readiness: Readiness | None = None,
) -> Server:
    """Creates and binds (not starts) the server."""
    dispatcher = Dispatcher(method_table(registry, reload_config, readiness or Readiness(registry)))
    tls = " with TLS" if config.tls_cert is not None else ""
    log.info("gRPC transport: %s%s", config.grpc_transport, tls)
    if config.grpc_transport == "native":
        return NativeServer(config, dispatcher)
    return GrpcioServer(config, dispatcher)


def _bind_error(config: ServerConfig) -> ConfigError:
    return ConfigError(
        f"Could not bind gRPC port {config.grpc_bind_address}:{config.port} (in use, or no such address)"
    )


class TlsFiles(NamedTuple):
    """The contents of the `--grpc_tls_*` files."""

    cert: bytes
    key: bytes
    client_ca: bytes | None


def _read_tls_files(config: ServerConfig) -> TlsFiles | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    try:
        return TlsFiles(
            config.tls_cert.read_bytes(),
            config.tls_key.read_bytes(),
            config.tls_client_ca.read_bytes() if config.tls_client_ca else None,
        )
    except OSError as e:
        raise ConfigError(f"Cannot read TLS file {e.filename}: {e.strerror}") from None


def _tls_error(config: ServerConfig, reason: object) -> ConfigError:
    files = f"--grpc_tls_cert {config.tls_cert}, --grpc_tls_key {config.tls_key}"
    if config.tls_client_ca:
        files += f", --grpc_tls_client_ca {config.tls_client_ca}"
    return ConfigError(f"Unusable TLS files ({files}): {reason}")


class NativeServer:
    def __init__(self, config: ServerConfig, dispatcher: Dispatcher) -> None:
        threads = config.grpc_threads or DEFAULT_THREADS
        tls = _read_tls_files(config)
        try:
            self._server = _native.GrpcServer(
                dispatcher,
                config.grpc_bind_address,
                config.port,
                max_message_bytes=config.max_message_bytes,
                max_concurrent_rpcs=max(threads, MAX_CONCURRENT_RPCS),
                handler_threads=threads,
                tls_cert=tls.cert if tls else None,
                tls_key=tls.key if tls else None,
                tls_client_ca=tls.client_ca if tls else None,
            )
        except OSError:
            raise _bind_error(config) from None
        except ValueError as e:  # PEM that rustls cannot use
            raise _tls_error(config, e) from None
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
            # The transport families the native transport counts in Rust (grpcio's own refusals
            # past maximum_concurrent_rpcs happen inside grpcio, uncounted).
            _native.transport_started(GRPC, len(request))
            code, details, reply = self.dispatcher(path, request, context.time_remaining())
            _native.transport_finished(GRPC, len(reply or b""))
            if code:
                context.abort(_STATUS_CODES[code], details)  # raises
            assert reply is not None
            return reply

        return grpc.unary_unary_rpc_method_handler(call)


_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _tls_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    tls = _read_tls_files(config)
    if tls is None:
        return None
    return grpc.ssl_server_credentials(
        [(tls.key, tls.cert)],
        root_certificates=tls.client_ca,
        require_client_auth=tls.client_ca is not None,
    )


class GrpcioServer:
    def __init__(self, config: ServerConfig, dispatcher: Dispatcher) -> None:
        # grpc-core takes a C int: larger limits are no limit beyond what it can express anyway.
        message_bytes = min(config.max_message_bytes, GRPCIO_MAX_INT)
        options = [
            ("grpc.max_receive_message_length", message_bytes),
            ("grpc.max_send_message_length", message_bytes),
            ("grpc.so_reuseport", 0),
            # What grpcio can take of the native transport's limits (README): streams per
            # connection, idle connections, header size. It has no connection cap, no body
            # timeout, and its memory quota (grpc's ResourceQuota) is not reachable from Python.
            ("grpc.max_concurrent_streams", config.max_concurrent_streams),
            ("grpc.max_connection_idle_ms", int(config.idle_timeout_seconds * 1000)),
            ("grpc.max_metadata_size", 16 * 1024),
            # A request's message is read only once a worker thread takes it; until then grpc-core
            # buffers what its window lets the client send, and BDP probing grows that window to
            # several MiB per stream (measured 4-6 MB per waiting 64 MB request). Without it the
            # window stays at 64 KiB, so memory is bounded by the threads' messages (RELIABILITY.md).
            ("grpc.http2.bdp_probe", 0),
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
        if port == 0 and credentials is not None:
            # grpcio checks the PEM only here and says no more than that the port failed.
            where = f"{config.grpc_bind_address}:{config.port}"
            raise _tls_error(config, f"grpcio cannot use them, or cannot bind {where}")
        if port == 0:
            raise _bind_error(config)
        self.port = port

    def start(self) -> None:
        self._server.start()

    def stop(self, grace: float) -> None:
        self._server.stop(grace).wait()
