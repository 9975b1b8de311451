"""config.json: read and checked against OVMS's schema; any error rejects the file as a whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ConfigJsonError
from .batching import BatchingParameters
from .model import ModelConfig, model_config

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
_TOP_KEYS = {
    "model_config_list",
    "monitoring",
    "pipeline_config_list",
    "custom_node_library_config_list",
    "mediapipe_config_list",
    "allow_version_labels_for_unavailable_models",
}


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
