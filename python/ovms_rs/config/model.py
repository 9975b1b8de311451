"""One served model (ModelConfig) and the parsers of its values, from CLI flags or config.json."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .batching import BatchingParameters, parse_batching
from .layout import LayoutRequest, parse_layout_param
from .policy import VersionPolicy
from .shapes import AUTO, Dim, ShapeRequest, parse_batch_size, parse_shape_param

log = logging.getLogger(__name__)

WARMUP_MODES = ("file", "zeros", "none")


@dataclass(frozen=True)
class ModelConfig:
    """One served model: where its versions live and how to load them."""

    name: str
    base_path: Path
    batch_size: Dim | str | None = None
    shape: ShapeRequest | dict[str, ShapeRequest] | None = None
    layout: LayoutRequest | dict[str, LayoutRequest] | None = None
    version_policy: VersionPolicy = field(default_factory=VersionPolicy)
    nireq: int = 0
    target_device: str = "CPU"
    plugin_config: dict[str, Any] = field(default_factory=dict)
    # TF Serving's version labels {label: version}. Not compared: relabelling reloads nothing.
    version_labels: dict[str, int] = field(default_factory=dict, compare=False)
    # TF Serving's --allow_version_labels_for_unavailable_models (CLI flag or config.json top level).
    allow_unavailable_labels: bool = field(default=False, compare=False)
    # "file": replay assets.extra/tf_serving_warmup_requests when a version has one (TF Serving);
    # "zeros": that, then one inference on zeros; "none": no warmup.
    warmup: str = "file"
    # Dynamic batching (TF Serving's BatchingParameters); None: every request runs on its own.
    batching: BatchingParameters | None = None

    def compile_properties(self) -> dict[str, str]:
        """OpenVINO properties: OVMS adds PERFORMANCE_HINT=LATENCY unless a hint or NUM_STREAMS is given."""
        props = {str(k): str(v) for k, v in self.plugin_config.items()}
        if "PERFORMANCE_HINT" not in props and "NUM_STREAMS" not in props:
            props["PERFORMANCE_HINT"] = "LATENCY"
        return props


def _property_string(value: object) -> str:
    """A number as OpenVINO reads it: 2, 2.0 and "2" all give "2"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _throughput_streams(value: object) -> tuple[str, str]:
    if value in ("CPU_THROUGHPUT_AUTO", "GPU_THROUGHPUT_AUTO"):
        return "PERFORMANCE_HINT", "THROUGHPUT"
    return "NUM_STREAMS", _property_string(value)


# Pre-2022 OpenVINO plugin_config keys that OVMS still accepts, rewritten as OVMS does (with its
# deprecation warning): old key -> (its value -> new key and value).
LEGACY_PLUGIN_KEYS: dict[str, Callable[[object], tuple[str, str]]] = {
    "CPU_THROUGHPUT_STREAMS": _throughput_streams,
    "GPU_THROUGHPUT_STREAMS": _throughput_streams,
    "CPU_THREADS_NUM": lambda value: ("INFERENCE_NUM_THREADS", _property_string(value)),
}


def parse_plugin_config(value: object) -> dict[str, Any]:
    """plugin_config (a JSON object, or its text) with the legacy keys rewritten."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise ConfigError(f"Invalid plugin_config (not JSON): {e}") from None
    if not isinstance(value, dict):
        raise ConfigError("Invalid plugin_config: must be a JSON object")
    config: dict[str, Any] = {}
    for key, item in value.items():
        rewrite = LEGACY_PLUGIN_KEYS.get(key)
        if rewrite is None:
            config[key] = item
            continue
        new_key, config[new_key] = rewrite(item)
        log.warning("%s plugin config key is deprecated. Use %s instead", key, new_key)
    return config


def model_config(
    name: str,
    base_path: str | Path,
    *,
    relative_to: Path | None = None,
    batch_size: object = None,
    shape: object = None,
    layout: object = None,
    model_version_policy: object = None,
    nireq: object = 0,
    target_device: object = "CPU",
    plugin_config: object = None,
    version_labels: object = None,
    allow_unavailable_labels: bool = False,
    warmup: object = None,
    batching: object = None,
) -> ModelConfig:
    """Builds a validated ModelConfig from CLI or config.json values."""
    if not name:
        raise ConfigError("Model name must not be empty")
    path = Path(str(base_path)).expanduser()
    if relative_to is not None and not path.is_absolute():
        path = relative_to / path
    try:
        nireq_int = int(str(nireq or 0))
    except ValueError:
        raise ConfigError(f"Invalid nireq: {nireq!r}") from None
    if nireq_int < 0:
        raise ConfigError(f"Invalid nireq: {nireq!r}")
    batching_params = None if batching is None else parse_batching(batching, f"{name}: batching")
    config = ModelConfig(
        name=name,
        base_path=path,
        batch_size=parse_batch_size(batch_size),
        shape=parse_shape_param(shape),
        layout=parse_layout_param(layout),
        version_policy=VersionPolicy.parse(model_version_policy),
        nireq=nireq_int,
        target_device=str(target_device or "CPU"),
        plugin_config=parse_plugin_config(plugin_config),
        version_labels=parse_version_labels(version_labels),
        allow_unavailable_labels=allow_unavailable_labels,
        warmup=parse_warmup(warmup),
        batching=batching_params,
    )
    if batching_params is not None and AUTO in (
        config.batch_size,
        config.shape,
        *(config.shape.values() if isinstance(config.shape, dict) else ()),
    ):
        raise ConfigError(f"{name}: batching cannot be combined with shape or batch_size auto")
    return config


def parse_version_labels(value: object) -> dict[str, int]:
    """{"stable": 1, "canary": 2}: non-empty label names, positive version numbers."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError("Invalid version_labels: must be a JSON object {label: version}")
    labels: dict[str, int] = {}
    for label, version in value.items():
        if not label or isinstance(version, bool) or not isinstance(version, int) or version <= 0:
            raise ConfigError(
                f"Invalid version_labels: {label!r}: {version!r} (a label needs a version number > 0)"
            )
        labels[label] = version
    return labels


def parse_warmup(value: object) -> str:
    if value is None or value == "":
        return "file"
    if value not in WARMUP_MODES:
        raise ConfigError(f"Invalid warmup: {value!r} (one of: {', '.join(WARMUP_MODES)})")
    return str(value)
