"""What a model's input or output looks like to a client (`TensorSpec`), and OpenVINO's vocabulary in
ours: element types as OVMS precision names, `ov.Dimension` as `Dim` and back (the OpenVINO side of the
pure `config.shapes` and `dtypes`).
"""

from __future__ import annotations

from dataclasses import dataclass

import openvino as ov

from .. import dtypes
from ..config.shapes import Dim

# OpenVINO element type name -> OVMS precision name.
_PRECISION_BY_OV_TYPE = {
    "f32": "FP32",
    "f16": "FP16",
    "f64": "FP64",
    "bf16": "BF16",
    "i8": "I8",
    "i16": "I16",
    "i32": "I32",
    "i64": "I64",
    "u8": "U8",
    "u16": "U16",
    "u32": "U32",
    "u64": "U64",
    "boolean": "BOOL",
    "string": "STRING",
    "u1": "BIN",
}


def precision_of(element_type: ov.Type) -> str:
    return _PRECISION_BY_OV_TYPE.get(element_type.get_type_name(), "UNDEFINED")


def dim_of(d: ov.Dimension) -> Dim:
    if d.is_static:
        return Dim.static(d.get_length())
    return Dim(max(d.get_min_length(), 0), d.get_max_length())


def ov_dimension(dim: Dim) -> ov.Dimension:
    if dim.is_static:
        return ov.Dimension(dim.lo)
    return ov.Dimension(dim.lo, dim.hi)


@dataclass(frozen=True)
class TensorSpec:
    """An input or output as the client sees it (public name after mapping, shape in client layout)."""

    name: str
    precision: str
    shape: tuple[Dim, ...]
    # Index of the batch dimension in `shape`, if the layout has one.
    batch_axis: int | None = 0

    @property
    def dtype(self) -> int:
        """The wire dtype (0, DT_INVALID, for a precision without one)."""
        dtype = dtypes.BY_PRECISION.get(self.precision)
        return dtype.wire if dtype is not None else 0
