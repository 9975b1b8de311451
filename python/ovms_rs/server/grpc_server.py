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
from ..models.registry import ModelRegistry
from . import model_service, prediction_service


def _handlers(registry: ModelRegistry, reload_config: Callable[[], None] | None) -> list[grpc.GenericRpcHandler]:
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
    workers = config.grpc_threads or 32
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=options)
    for handler in _handlers(registry, reload_config):
        server.add_generic_rpc_handlers((handler,))
    address = config.grpc_bind_address
    host = f"[{address}]" if ":" in address else address
    port = server.add_insecure_port(f"{host}:{config.port}")
    if port == 0:
        raise OSError(f"Could not bind gRPC port {address}:{config.port}")
    return server, port
