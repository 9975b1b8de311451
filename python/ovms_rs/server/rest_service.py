"""The TF Serving REST API's methods (status, metadata, predict, config, model readiness).

Each takes (name, version, label, body, timeout) from the Rust router (`rust/rest/routes.rs`) and returns
(HTTP status, body). Predict shares the gRPC path's validation and inference (`request.validation.validate`,
`ModelVersion.infer`); only the codec differs: the JSON body is parsed into typed arrays in Rust
(`_native.parse_json_predict`) and the reply written there (`_native.build_json_predict_response`).
Status and metadata are the gRPC replies in protobuf's JSON mapping, as OVMS renders them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, Union

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from .. import _native
from .._proto.tensorflow_serving.apis import get_model_status_pb2
from ..errors import (
    REST_INVALID_URL,
    REST_NOT_FOUND,
    ConfigError,
    ConfigJsonError,
    ServingError,
    model_version_missing,
    model_version_not_loaded_yet,
)
from ..metrics import REST_METADATA, REST_PREDICT, REST_STATUS
from ..models.registry import ModelRegistry
from ..models.version import ModelState
from ..request.validation import validate
from .model_service import version_status
from .prediction_service import metadata_response

log = logging.getLogger(__name__)

# From the native transport a `_native.RequestBody` (the body in one buffer, no copy); bytes in tests.
RequestBody = Union[bytes, bytearray, _native.RequestBody]
Reply = tuple[int, bytes]
RestMethod = Callable[[str, int, Union[str, None], RequestBody, Union[float, None]], Reply]

CONFIG_FILE_UNREADABLE = "Config file not found or cannot open."
CONFIG_RELOAD_FAILED = "Reloading config file failed. Check server logs for more info."
VERSIONS_RELOAD_FAILED = "Reloading models versions failed. Check server logs for more info."


def _json(message: Message) -> bytes:
    """protobuf's JSON mapping as OVMS prints it: 1-space indent, fields with default values too."""
    text: str = json_format.MessageToJson(
        message, indent=1, always_print_fields_with_no_presence=True
    )
    return text.encode()


class RestService:
    def __init__(self, registry: ModelRegistry, reload_config: Callable[[], bool] | None) -> None:
        self.registry = registry
        # Re-reads --config_path and every model's versions; True if anything changed.
        self.reload_config = reload_config

    def methods(self) -> dict[str, RestMethod]:
        """Route kind (`Route::kind` in Rust) -> method."""
        return {
            "predict": self.predict,
            "status": self.status,
            "metadata": self.metadata,
            "model_ready": self.model_ready,
            "config": self.config,
            "reload": self.reload,
            "not_served": self.not_served,
            "metrics": self.metrics,
        }

    def predict(
        self, name: str, version: int, label: str | None, body: RequestBody, timeout: float | None
    ) -> Reply:
        started = time.perf_counter_ns()
        with self.registry.serving(name, version, label, REST_PREDICT, started) as model_version:
            expected = [(n, binding.spec.dtype) for n, binding in model_version.inputs.items()]
            format_, inputs = _native.parse_json_predict(body, expected)
            validated = validate(model_version, inputs)

            def encode(outputs: list[tuple[str, Any]]) -> bytes:
                return _native.build_json_predict_response(format_, outputs)

            return 200, model_version.submit(validated, timeout, encode)

    def status(
        self, name: str, version: int, label: str | None, body: RequestBody, timeout: float | None
    ) -> Reply:
        return 200, _json(self._status_response(name, version, label, counted=True))

    def _status_response(
        self, name: str, version: int, label: str | None = None, counted: bool = False
    ) -> get_model_status_pb2.GetModelStatusResponse:
        model = self.registry.model(name)
        if label is not None:
            version = model.version_for_label(label)
        versions = model.sorted_versions()
        if version > 0:
            versions = [mv for mv in versions if mv.version == version]
            if not versions:
                raise model_version_missing()
        response = get_model_status_pb2.GetModelStatusResponse()
        for mv in versions:
            response.model_version_status.append(version_status(mv))
        if counted and versions:  # once per request, as OVMS (/v1/config's statuses don't count)
            versions[0].count_succeeded(REST_STATUS, 0)
        return response

    def metadata(
        self, name: str, version: int, label: str | None, body: RequestBody, timeout: float | None
    ) -> Reply:
        with self.registry.serving(name, version, label, REST_METADATA) as model_version:
            return 200, _json(metadata_response(model_version))

    def model_ready(
        self, name: str, version: int, label: str | None, body: RequestBody, timeout: float | None
    ) -> Reply:
        model_version = self.registry.resolve(name, version, label)
        if model_version.state != ModelState.AVAILABLE:
            raise model_version_not_loaded_yet()
        return 200, b""

    def config(
        self, name: str, version: int, label: str | None, body: RequestBody, timeout: float | None
    ) -> Reply:
        return 200, self._all_statuses()

    def reload(
        self, name: str, version: int, label: str | None, body: RequestBody, timeout: float | None
    ) -> Reply:
        """OVMS's reload: re-read the config file (when served from one), rescan every model's versions,
        answer every status. 201 when something changed, 200 when nothing did (as OVMS's docs say; its
        code answers 200 for both)."""
        if self.reload_config is None:
            return 200, self._all_statuses()
        try:
            changed = self.reload_config()
        except ConfigJsonError as e:
            log.error("Config reload failed: %s", e)
            raise _config_error(412, CONFIG_RELOAD_FAILED) from None
        except ConfigError as e:
            log.error("Config reload failed: %s", e)
            unreadable = "Unable to read config file" in str(e)
            raise _config_error(
                500, CONFIG_FILE_UNREADABLE if unreadable else CONFIG_RELOAD_FAILED
            ) from None
        return (201 if changed else 200), self._all_statuses()

    def not_served(
        self, name: str, version: int, label: str | None, body: RequestBody, timeout: float | None
    ) -> Reply:
        raise ServingError(grpc.StatusCode.NOT_FOUND, REST_NOT_FOUND)

    def metrics(
        self, name: str, version: int, label: str | None, body: RequestBody, timeout: float | None
    ) -> Reply:
        # Metrics not enabled: OVMS answers the path as unknown.
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, REST_INVALID_URL, http_status=400)

    def _all_statuses(self) -> bytes:
        """{model name: its GetModelStatus JSON}, sorted by name, as OVMS's /v1/config answers."""
        statuses: dict[str, Any] = {}
        for model in sorted(self.registry.models(), key=lambda m: m.name):
            try:
                statuses[model.name] = json.loads(_json(self._status_response(model.name, 0)))
            except ServingError:
                continue  # a model gone meanwhile is skipped, as OVMS skips one it cannot read
        return json.dumps(statuses, indent=1).encode()


def _config_error(http_status: int, message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INTERNAL, message, http_status=http_status)
