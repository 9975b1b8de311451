"""Server configuration: the CLI flags and config.json, validated against OVMS's schema."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .batching_params import BatchingParameters, parse_batching
from .errors import ConfigError, ConfigJsonError
from .metrics import MetricsConfig
from .models.policy import VersionPolicy
from .models.shapes import (
    AUTO,
    LayoutRequest,
    ShapeRequest,
    parse_batch_size,
    parse_layout_param,
    parse_shape_param,
)
from .models.tensor_spec import Dim

log = logging.getLogger(__name__)


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


# Keys OVMS's config.json schema accepts for a model; the stateful ones are accepted and ignored.
_MODEL_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "base_path": str,
    "batch_size": (str, int),
    "shape": (str, dict, list),
    "layout": (str, dict),
    "model_version_policy": dict,
    "nireq": int,
    "target_device": str,
    "plugin_config": (dict, str),
    "allow_cache": bool,
    "stateful": bool,
    "idle_sequence_cleanup": bool,
    "low_latency_transformation": bool,
    "max_sequence_number": int,
    "version_labels": dict,
    "warmup": str,
    "batching": dict,
}
WARMUP_MODES = ("file", "zeros", "none")
_TOP_KEYS = {
    "model_config_list",
    "monitoring",
    "pipeline_config_list",
    "custom_node_library_config_list",
    "mediapipe_config_list",
    "allow_version_labels_for_unavailable_models",
}


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


def _check_type(where: str, key: str, value: object, expected: type | tuple[type, ...]) -> None:
    ok = isinstance(value, expected) and not (
        isinstance(value, bool) and expected in (int, (str, int))
    )
    if not ok:
        raise ConfigError(f"{where}: wrong type for key '{key}': {type(value).__name__}")


def _read_config_doc(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"Unable to read config file: {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ConfigJsonError(f"Config file is not valid JSON: {path}: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"Config file must hold a JSON object: {path}")
    return doc


def load_monitoring_section(path: Path) -> object | None:
    """config.json's `monitoring` section as written (None when absent); read once, at start-up, as
    OVMS reads it (`metrics.from_monitoring` validates it)."""
    return _read_config_doc(path).get("monitoring")


def load_config_file(
    path: Path, default_batching: BatchingParameters | None = None
) -> list[ModelConfig]:
    """Reads and validates config.json; any error rejects the file as a whole (ConfigError).
    `default_batching` (--enable_batching): for the models without a `batching` key."""
    doc = _read_config_doc(path)
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"Config file: unknown key '{sorted(unknown)[0]}'")
    allow_labels = doc.get("allow_version_labels_for_unavailable_models", False)
    _check_type("Config file", "allow_version_labels_for_unavailable_models", allow_labels, bool)
    entries = doc.get("model_config_list", [])
    if not isinstance(entries, list):
        raise ConfigError("Config file: wrong type for key 'model_config_list': must be an array")
    models: list[ModelConfig] = []
    for i, entry in enumerate(entries):
        where = f"model_config_list[{i}]"
        if (
            not isinstance(entry, dict)
            or set(entry) != {"config"}
            or not isinstance(entry["config"], dict)
        ):
            raise ConfigError(f'{where}: each entry must be {{"config": {{...}}}}')
        cfg: dict[str, Any] = entry["config"]
        for key, value in cfg.items():
            if key not in _MODEL_KEYS:
                raise ConfigError(f"{where}: unknown key '{key}'")
            _check_type(where, key, value, _MODEL_KEYS[key])
        for key in ("name", "base_path"):
            if key not in cfg:
                raise ConfigError(f"{where}: missing required key '{key}'")
        models.append(
            model_config(
                cfg["name"],
                cfg["base_path"],
                relative_to=path.parent,
                batch_size=cfg.get("batch_size"),
                shape=cfg.get("shape"),
                layout=cfg.get("layout"),
                model_version_policy=cfg.get("model_version_policy"),
                nireq=cfg.get("nireq", 0),
                target_device=cfg.get("target_device", "CPU"),
                plugin_config=cfg.get("plugin_config"),
                version_labels=cfg.get("version_labels"),
                allow_unavailable_labels=allow_labels,
                warmup=cfg.get("warmup"),
                batching=cfg.get("batching", default_batching),
            )
        )
    names = [m.name for m in models]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ConfigError(f"Config file: duplicate model name '{sorted(duplicates)[0]}'")
    return models


@dataclass(frozen=True)
class ServerConfig:
    """Everything `serve` needs: network settings and the models (or the config file naming them)."""

    port: int = 9000
    rest_port: int = 0
    grpc_bind_address: str = "0.0.0.0"
    rest_bind_address: str = "0.0.0.0"
    models: tuple[ModelConfig, ...] = ()
    config_path: Path | None = None
    file_system_poll_wait_seconds: float = 1.0
    # Seconds after SIGTERM during which everything is still served while readiness answers 503, so that
    # a load balancer's health checks take the replica out before it stops accepting connections.
    drain_seconds: float = 0.0
    grpc_workers: int = 1
    grpc_threads: int = 0
    grpc_transport: str = "native"
    max_message_bytes: int = 1024 * 1024 * 1024
    max_queue_size: int = 128
    # Overload (README "Errors, TLS, limits"): request bytes in flight, both ports together (OVMS's
    # --grpc_memory_quota; 0: none); open connections, both ports (0: no cap); HTTP/2 streams per
    # connection; closing connections without a request, and slow headers and bodies.
    memory_quota: int = 2 * 1024 * 1024 * 1024
    max_connections: int = 4096
    max_concurrent_streams: int = 128
    idle_timeout_seconds: float = 300.0
    header_timeout_seconds: float = 20.0
    body_timeout_seconds: float = 60.0
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    log_level: str = "INFO"
    log_path: Path | None = None
    # TF Serving's --allow_version_labels_for_unavailable_models.
    allow_version_labels_for_unavailable_models: bool = False
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    # --enable_batching (with --batching_parameters_file): batching for every model without its own.
    default_batching: BatchingParameters | None = None
