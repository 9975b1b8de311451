"""Parsing of OVMS's --shape, --batch_size and --layout values (CLI strings or config.json values)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Union

from ..errors import ConfigError
from .tensor_spec import Dim

AUTO = "auto"
# A shape request: "auto", or one Dim per axis.
ShapeRequest = Union[str, tuple[Dim, ...]]

_DIM = re.compile(r"^\s*(-1|\d+)(?::(-1|\d+))?\s*$")


def parse_dim(text: str) -> Dim:
    """'8' -> static 8; '-1' -> any; '1:8' -> range."""
    m = _DIM.match(text)
    if not m:
        raise ConfigError(f"Invalid dimension: {text!r}")
    lo, hi = m.group(1), m.group(2)
    if hi is None:
        return Dim(0, -1) if lo == "-1" else Dim.static(int(lo))
    return Dim(int(lo), int(hi))


def parse_shape(text: str) -> ShapeRequest:
    """'(1,3,224,224)', '[1,3,-1,-1]', '(1:8,3,224,224)' or 'auto'."""
    text = text.strip()
    if text == AUTO:
        return AUTO
    if len(text) < 2 or text[0] + text[-1] not in ("()", "[]"):
        raise ConfigError(f"Invalid shape: {text!r}")
    body = text[1:-1].strip()
    if not body:
        raise ConfigError(f"Invalid shape: {text!r}")
    return tuple(parse_dim(part) for part in body.split(","))


def parse_shape_param(value: object) -> ShapeRequest | dict[str, ShapeRequest] | None:
    """--shape / config 'shape': one shape for a single-input model, or {input: shape}."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return {str(k): parse_shape(str(v)) for k, v in value.items()}
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("{"):
            try:
                parsed = json.loads(stripped)
            except json.JSONDecodeError as e:
                raise ConfigError(f"Invalid shape: {value!r}: {e}") from None
            return parse_shape_param(parsed)
        return parse_shape(stripped)
    if isinstance(value, list):
        return tuple(Dim(0, -1) if int(d) == -1 else Dim.static(int(d)) for d in value)
    raise ConfigError(f"Invalid shape: {value!r}")


def parse_batch_size(value: object) -> Dim | str | None:
    """--batch_size: '8', '-1', '1:8' or 'auto'; '0' or empty means: keep the model's."""
    if value is None:
        return None
    text = str(value).strip()
    if text in ("", "0"):
        return None
    if text == AUTO:
        return AUTO
    return parse_dim(text)


@dataclass(frozen=True)
class LayoutRequest:
    """'NHWC:NCHW' = clients send NHWC, the model takes NCHW (the server transposes)."""

    tensor: str
    model: str

    @property
    def transposes(self) -> bool:
        return self.tensor != self.model


_LAYOUT = re.compile(r"^[A-Z?.]+$")


def parse_layout(text: str) -> LayoutRequest:
    parts = text.strip().split(":")
    if len(parts) not in (1, 2) or not all(_LAYOUT.match(p) for p in parts):
        raise ConfigError(f"Invalid layout: {text!r}")
    tensor = parts[0]
    model = parts[1] if len(parts) == 2 else parts[0]
    if sorted(tensor) != sorted(model):
        raise ConfigError(f"Invalid layout: {text!r}: both sides must name the same dimensions")
    if tensor != model and {tensor, model} not in ({"NHWC", "NCHW"},):
        raise ConfigError(f"Unsupported layout conversion: {text!r} (only NHWC:NCHW is)")
    return LayoutRequest(tensor, model)


def parse_layout_param(value: object) -> LayoutRequest | dict[str, LayoutRequest] | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return {str(k): parse_layout(str(v)) for k, v in value.items()}
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("{"):
            try:
                return parse_layout_param(json.loads(stripped))
            except json.JSONDecodeError as e:
                raise ConfigError(f"Invalid layout: {value!r}: {e}") from None
        return parse_layout(stripped)
    raise ConfigError(f"Invalid layout: {value!r}")
