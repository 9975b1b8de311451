"""The grpcio server: both TF Serving services on one port, with OVMS's 1 GB message limit."""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures

import grpc

from .._proto.tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
)
from ..config import ServerConfig
from ..errors import ConfigError
from ..models.registry import ModelRegistry
from . import model_service, prediction_service

DEFAULT_THREADS = 64
MAX_CONCURRENT_RPCS = 1024


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


def _handlers(
    registry: ModelRegistry, reload_config: Callable[[], None] | None
) -> list[grpc.GenericRpcHandler]:
    predictions = prediction_service.PredictionService(registry)
    models = model_service.ModelService(registry, reload_config)
    prediction_handler = grpc.method_handlers_generic_handler(
        prediction_service.SERVICE,
        {
            # Raw bytes both ways: the Rust extension parses and builds the messages.
            "Predict": grpc.unary_unary_rpc_method_handler(predictions.predict),
            "GetModelMetadata": grpc.unary_unary_rpc_method_handler(
                predictions.get_model_metadata,
                request_deserializer=get_model_metadata_pb2.GetModelMetadataRequest.FromString,
                response_serializer=get_model_metadata_pb2.GetModelMetadataResponse.SerializeToString,
            ),
        },
    )
    model_handler = grpc.method_handlers_generic_handler(
        model_service.SERVICE,
        {
            "GetModelStatus": grpc.unary_unary_rpc_method_handler(
                models.get_model_status,
                request_deserializer=get_model_status_pb2.GetModelStatusRequest.FromString,
                response_serializer=get_model_status_pb2.GetModelStatusResponse.SerializeToString,
            ),
            "HandleReloadConfigRequest": grpc.unary_unary_rpc_method_handler(
                models.handle_reload_config_request,
                request_deserializer=model_management_pb2.ReloadConfigRequest.FromString,
                response_serializer=model_management_pb2.ReloadConfigResponse.SerializeToString,
            ),
        },
    )
    return [prediction_handler, model_handler]


def build_server(
    config: ServerConfig, registry: ModelRegistry, reload_config: Callable[[], None] | None = None
) -> tuple[grpc.Server, int]:
    """Creates and binds (not starts) the server; returns it with the bound port."""
    options = [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    workers = config.grpc_threads or DEFAULT_THREADS
    # Calls beyond this are refused with RESOURCE_EXHAUSTED by grpcio rather than queued without bound.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
        options=options,
        maximum_concurrent_rpcs=max(workers, MAX_CONCURRENT_RPCS),
    )
    for handler in _handlers(registry, reload_config):
        server.add_generic_rpc_handlers((handler,))
    address = config.grpc_bind_address
    host = f"[{address}]" if ":" in address else address
    credentials = _tls_credentials(config)
    try:
        if credentials is None:
            port = server.add_insecure_port(f"{host}:{config.port}")
        else:
            port = server.add_secure_port(f"{host}:{config.port}", credentials)
    except RuntimeError:
        port = 0
    if port == 0:
        raise ConfigError(
            f"Could not bind gRPC port {address}:{config.port} (in use, or no such address)"
        )
    return server, port
