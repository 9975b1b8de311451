"""The RPCs as raw-bytes functions, and the one dispatcher both transports call.

Every method takes the serialized request and the seconds left of the client's deadline (None: no
deadline) and returns the serialized reply, or raises; `dispatch` turns what it raises into a gRPC
status in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, Union

import grpc
from google.protobuf.message import DecodeError, Message

from .. import _native
from .._proto.tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
)
from ..errors import ServingError
from ..models.registry import ModelRegistry
from . import model_service, prediction_service
from .errors import status_of
from .health import HEALTH_SERVICE, Readiness

log = logging.getLogger(__name__)

# The serialized request: from the native transport a RequestBody (a message received in one piece,
# where it was received) or a bytearray (gathered from pieces), each belonging to the request alone;
# bytes from grpcio. `bytes(request)` works for all three.
RequestBytes = Union[bytes, bytearray, _native.RequestBody]  # Python 3.9 has no `X | Y` here
RawMethod = Callable[[RequestBytes, "float | None"], bytes]

# grpcio's wording for these, so both transports answer alike.
METHOD_NOT_FOUND = "Method not found!"
CANNOT_DESERIALIZE = "Exception deserializing request!"


class _Parser(Protocol):
    def FromString(self, data: RequestBytes) -> Any: ...


def _typed(request_type: _Parser, method: Callable[[Any, float | None], Message]) -> RawMethod:
    """A cold-path method on generated protobuf classes, as a raw-bytes method."""

    def call(request: RequestBytes, timeout: float | None) -> bytes:
        try:
            message = request_type.FromString(
                request if isinstance(request, (bytes, bytearray)) else bytes(request)
            )
        except DecodeError:
            raise ServingError(grpc.StatusCode.INTERNAL, CANNOT_DESERIALIZE) from None
        reply: bytes = method(message, timeout).SerializeToString()
        return reply

    return call


def method_table(
    registry: ModelRegistry, reload_config: Callable[[], None] | None, readiness: Readiness
) -> dict[str, RawMethod]:
    """Full method path ("/package.Service/Method") -> its raw-bytes implementation."""
    predictions = prediction_service.PredictionService(registry)
    models = model_service.ModelService(registry, reload_config)
    prediction, model = f"/{prediction_service.SERVICE}/", f"/{model_service.SERVICE}/"
    return {
        # The hot path: the Rust extension parses and builds the messages.
        prediction + "Predict": predictions.predict,
        prediction + "GetModelMetadata": _typed(
            get_model_metadata_pb2.GetModelMetadataRequest, predictions.get_model_metadata
        ),
        model + "GetModelStatus": _typed(
            get_model_status_pb2.GetModelStatusRequest, models.get_model_status
        ),
        model + "HandleReloadConfigRequest": _typed(
            model_management_pb2.ReloadConfigRequest, models.handle_reload_config_request
        ),
        # Kubernetes' native gRPC probe (TF Serving's --enable_grpc_healthcheck_service).
        f"/{HEALTH_SERVICE}/Check": readiness.check,
    }


class Dispatcher:
    """`dispatcher(path, request, timeout) -> (status code, details, reply or None)`; never raises."""

    def __init__(self, methods: dict[str, RawMethod]) -> None:
        self.methods = methods

    def __call__(
        self, path: str, request: RequestBytes, timeout: float | None
    ) -> tuple[int, str, bytes | None]:
        method = self.methods.get(path)
        if method is None:
            return grpc.StatusCode.UNIMPLEMENTED.value[0], METHOD_NOT_FOUND, None
        try:
            return 0, "", method(request, timeout)
        except Exception as err:
            code, details = status_of(err)
            if code == grpc.StatusCode.INTERNAL and not isinstance(err, ServingError):
                log.exception("Unexpected error in %s", path)
            return code.value[0], details, None
