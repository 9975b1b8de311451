"""tensorflow.serving.ModelService: GetModelStatus and HandleReloadConfigRequest."""

from __future__ import annotations

from collections.abc import Callable

from .._proto.tensorflow_serving.apis import get_model_status_pb2, model_management_pb2
from ..errors import model_version_missing
from ..metrics import GRPC_STATUS
from ..models.registry import ModelRegistry
from ..models.version import ModelVersion
from .prediction_service import version_choice

SERVICE = "tensorflow.serving.ModelService"


class ModelService:
    def __init__(
        self, registry: ModelRegistry, reload_config: Callable[[], None] | None = None
    ) -> None:
        self.registry = registry
        # Re-reads --config_path and applies it; None when the server was started without one.
        self.reload_config = reload_config

    def get_model_status(
        self, request: get_model_status_pb2.GetModelStatusRequest, timeout: float | None
    ) -> get_model_status_pb2.GetModelStatusResponse:
        spec = request.model_spec
        model = self.registry.model(spec.name)
        version, label = version_choice(spec)
        if label is not None:
            version = model.version_for_label(label)
        if version > 0:
            found = {v.version: v for v in model.sorted_versions()}.get(version)
            if found is None:
                raise model_version_missing()
            versions = [found]
        else:
            versions = model.sorted_versions()
        response = get_model_status_pb2.GetModelStatusResponse()
        for mv in versions:
            response.model_version_status.append(version_status(mv))
        if versions:  # once per request, as OVMS; its GetModelStatus fail counter never moves
            versions[0].count_succeeded(GRPC_STATUS, 0)
        return response

    def handle_reload_config_request(
        self, request: model_management_pb2.ReloadConfigRequest, timeout: float | None
    ) -> model_management_pb2.ReloadConfigResponse:
        if self.reload_config is not None:
            self.reload_config()
        return model_management_pb2.ReloadConfigResponse()


def version_status(mv: ModelVersion) -> get_model_status_pb2.ModelVersionStatus:
    """One version's status; error_message is the error code's name (`OK`, `UNKNOWN`), as OVMS sends
    it: the reason of a failed load is in the server log (and ModelVersion.load_error)."""
    status = get_model_status_pb2.ModelVersionStatus(version=mv.version, state=int(mv.state))  # type: ignore[arg-type]
    status.status.error_code = int(mv.error_code)  # type: ignore[assignment]
    status.status.error_message = mv.error_code.name
    return status
