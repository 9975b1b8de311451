"""The on-disk model repository: `<base_path>/<version>/<model file>` (+ optional mapping_config.json)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..errors import ConfigError

log = logging.getLogger(__name__)

MAPPING_FILE = "mapping_config.json"


def scan_versions(base_path: Path) -> dict[int, Path]:
    """Version number -> directory. Non-numeric and non-positive names are skipped with OVMS's warning."""
    if not base_path.is_dir():
        raise ConfigError(f"The provided base path is invalid or doesn't exists: {base_path}")
    versions: dict[int, Path] = {}
    for entry in sorted(base_path.iterdir()):
        if not entry.is_dir():
            continue
        if not confined(entry, base_path):
            log.warning("Skipping version directory outside the model's base path: %s", entry)
            continue
        if not entry.name.isdigit():
            log.warning(
                "Expected version directory name to be in number format. Got: %s", entry.name
            )
            continue
        number = int(entry.name)
        if number <= 0:
            log.warning(
                "Expected version directory name to be a number greater than 0. Got: %s", entry.name
            )
            continue
        versions[number] = entry
    return versions


def require_versions(base_path: Path) -> dict[int, Path]:
    """scan_versions, failing the way OVMS does when nothing servable is there."""
    versions = scan_versions(base_path)
    if versions:
        return versions
    bad = [e.name for e in base_path.iterdir() if e.is_dir() and not e.name.isdigit()]
    if bad:
        raise ConfigError(
            f"Expected version directory name to be in number format. Got: {bad[0]}\n"
            f"No version found for model in path: {base_path}"
        )
    zero = [e.name for e in base_path.iterdir() if e.is_dir() and e.name.isdigit()]
    if zero:
        raise ConfigError(
            f"Expected version directory name to be a number greater than 0. Got: {zero[0]}\n"
            f"No version found for model in path: {base_path}"
        )
    raise ConfigError(f"No version found for model in path: {base_path}")


# Model formats OpenVINO reads, in OVMS's order of preference when a directory holds several.
_PATTERNS = ("*.xml", "*.onnx", "*.tflite", "*.pdmodel", "saved_model.pb", "*.pb")


def confined(path: Path, base_path: Path) -> bool:
    """Whether `path`, with every symlink resolved, stays inside `base_path`."""
    try:
        return path.resolve().is_relative_to(base_path.resolve())
    except OSError:
        return False


def find_model_file(version_dir: Path) -> Path:
    """The file (or SavedModel directory) read_model should open. Files are only read from inside the
    model's base path: a symlink that leads out of it is refused."""
    base_path = version_dir.parent
    for pattern in _PATTERNS:
        for candidate in sorted(version_dir.glob(pattern)):
            if not confined(candidate, base_path) or not confined(
                candidate.with_suffix(".bin"), base_path
            ):
                raise PermissionError(f"Model file outside the model's base path: {candidate}")
            if candidate.suffix == ".xml" and not candidate.with_suffix(".bin").exists():
                continue
            if candidate.name == "saved_model.pb":
                return version_dir
            return candidate
    raise FileNotFoundError(
        f"Could not find a model file (.xml+.bin, .onnx, .tflite, .pdmodel, .pb) in {version_dir}"
    )


def read_mapping(version_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """mapping_config.json: ({model input name: public name}, {model output name: public name})."""
    path = version_dir / MAPPING_FILE
    if not path.exists():
        return {}, {}
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        log.warning("Ignoring invalid %s: %s", path, e)
        return {}, {}
    if not isinstance(doc, dict):
        log.warning("Ignoring invalid %s: not a JSON object", path)
        return {}, {}
    inputs = doc.get("inputs", {})
    outputs = doc.get("outputs", {})
    if not isinstance(inputs, dict) or not isinstance(outputs, dict):
        log.warning("Ignoring invalid %s: inputs/outputs must be objects", path)
        return {}, {}
    return {str(k): str(v) for k, v in inputs.items()}, {str(k): str(v) for k, v in outputs.items()}
