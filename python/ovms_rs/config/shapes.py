"""Dimensions (`Dim`) and the parsing of OVMS's --shape and --batch_size values (CLI strings or
config.json values)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Union

from ..errors import ConfigError


@dataclass(frozen=True)
class Dim:
    """One dimension: static when lo == hi; hi == -1 means no upper bound. (OpenVINO's Dimension
    converts to and from it in `models/tensor_spec.py`.)"""

    lo: int
    hi: int

    @staticmethod
    def static(n: int) -> Dim:
        return Dim(n, n)

    @property
    def is_static(self) -> bool:
        return self.lo == self.hi

    def accepts(self, n: int) -> bool:
        return n >= self.lo and (self.hi == -1 or n <= self.hi)

    def __str__(self) -> str:
        if self.is_static:
            return str(self.lo)
        if self.lo <= 1 and self.hi == -1:
            return "-1"
        return f"{self.lo}:{self.hi}"

    @property
    def metadata_size(self) -> int:
        """The size TF Serving metadata reports: -1 for anything dynamic."""
        return self.lo if self.is_static else -1


def shape_str(dims: tuple[Dim, ...] | tuple[int, ...] | list[int]) -> str:
    """OVMS prints shapes as (1,3,224,224)."""
    return "(" + ",".join(str(d) for d in dims) + ")"


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
