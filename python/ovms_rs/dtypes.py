"""The tensor dtypes the server handles, in one table: TensorFlow's DataType (wire number and name),
the numpy dtype its values travel as, OVMS's precision name (as error messages spell it), bytes per
element in `tensor_content` and the typed `*_val` field of TensorProto that carries it otherwise.

Rust's twin is `rust/dtype.rs` (`_native.dtype_table()`); a test checks that the two agree. Pure Python
and numpy: the example clients use it on the base install.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DType:
    wire: int  # tensorflow.DataType number
    name: str  # tensorflow.DataType name
    precision: str  # OVMS's precision name
    numpy: np.dtype[Any]  # bfloat16 has no numpy type: its raw 16-bit pattern; strings: objects
    size: int  # bytes per element in tensor_content (strings have none)
    val_field: str  # TensorProto's field for values not in tensor_content


DT_STRING = 7
DT_BFLOAT16 = 14

TABLE: tuple[DType, ...] = (
    DType(1, "DT_FLOAT", "FP32", np.dtype("<f4"), 4, "float_val"),
    DType(2, "DT_DOUBLE", "FP64", np.dtype("<f8"), 8, "double_val"),
    DType(3, "DT_INT32", "I32", np.dtype("<i4"), 4, "int_val"),
    DType(4, "DT_UINT8", "U8", np.dtype("u1"), 1, "int_val"),
    DType(5, "DT_INT16", "I16", np.dtype("<i2"), 2, "int_val"),
    DType(6, "DT_INT8", "I8", np.dtype("i1"), 1, "int_val"),
    DType(DT_STRING, "DT_STRING", "STRING", np.dtype("O"), 0, "string_val"),
    DType(9, "DT_INT64", "I64", np.dtype("<i8"), 8, "int64_val"),
    DType(10, "DT_BOOL", "BOOL", np.dtype("?"), 1, "bool_val"),
    DType(DT_BFLOAT16, "DT_BFLOAT16", "BF16", np.dtype("<u2"), 2, "half_val"),
    DType(17, "DT_UINT16", "U16", np.dtype("<u2"), 2, "int_val"),
    DType(19, "DT_HALF", "FP16", np.dtype("<f2"), 2, "half_val"),
    DType(22, "DT_UINT32", "U32", np.dtype("<u4"), 4, "uint32_val"),
    DType(23, "DT_UINT64", "U64", np.dtype("<u8"), 8, "uint64_val"),
)

BY_WIRE = {d.wire: d for d in TABLE}
BY_PRECISION = {d.precision: d for d in TABLE}
# An array's dtype -> its wire dtype: every dtype that numpy has a type of its own for (not bfloat16,
# whose uint16 bits are DT_UINT16's, nor strings), as Rust's `DType::from_numpy`.
BY_NUMPY = {d.numpy: d for d in TABLE if d.wire not in (DT_STRING, DT_BFLOAT16)}


def precision_of_dtype(wire: int) -> str:
    """OVMS's precision name for a wire dtype ("UNDEFINED" for any other number)."""
    dtype = BY_WIRE.get(wire)
    return dtype.precision if dtype is not None else "UNDEFINED"
