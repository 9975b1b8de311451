"""OVMS's --layout values: the layout clients send, and the model's (the server transposes between them)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..errors import ConfigError


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
