"""numpy arrays <-> TensorProto, as TensorFlow's make_tensor_proto / make_ndarray do for the clients."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .._proto.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

_DTYPES: dict[np.dtype[Any], types_pb2.DataType] = {
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.float64): types_pb2.DT_DOUBLE,
    np.dtype(np.float16): types_pb2.DT_HALF,
    np.dtype(np.int8): types_pb2.DT_INT8,
    np.dtype(np.int16): types_pb2.DT_INT16,
    np.dtype(np.int32): types_pb2.DT_INT32,
    np.dtype(np.int64): types_pb2.DT_INT64,
    np.dtype(np.uint8): types_pb2.DT_UINT8,
    np.dtype(np.uint16): types_pb2.DT_UINT16,
    np.dtype(np.uint32): types_pb2.DT_UINT32,
    np.dtype(np.uint64): types_pb2.DT_UINT64,
    np.dtype(np.bool_): types_pb2.DT_BOOL,
}
_NUMPY = {tf: np_dtype for np_dtype, tf in _DTYPES.items()}

# Where a TensorProto without tensor_content keeps its values, by dtype (TF Serving may use them).
_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
}


def _shape(dims: Sequence[int]) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in dims]
    )


def make_tensor_proto(array: npt.NDArray[Any]) -> tensor_pb2.TensorProto:
    """A numeric array as raw little-endian bytes in tensor_content."""
    dtype = _DTYPES.get(array.dtype)
    if dtype is None:
        raise ValueError(f"no TensorFlow dtype for numpy {array.dtype}")
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return tensor_pb2.TensorProto(
        dtype=dtype, tensor_shape=_shape(array.shape), tensor_content=data.tobytes()
    )


def make_string_tensor_proto(items: Sequence[bytes]) -> tensor_pb2.TensorProto:
    """A [N] DT_STRING tensor: how encoded images (JPEG/PNG) travel in string_val."""
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING, tensor_shape=_shape([len(items)]), string_val=list(items)
    )


def make_ndarray(tensor: tensor_pb2.TensorProto) -> npt.NDArray[Any]:
    """The array a numeric TensorProto holds (tensor_content, else its typed *_val field)."""
    dtype = _NUMPY.get(tensor.dtype)
    if dtype is None:
        raise ValueError(f"unsupported output dtype {types_pb2.DataType.Name(tensor.dtype)}")
    shape = [d.size for d in tensor.tensor_shape.dim]
    if tensor.tensor_content:
        flat = np.frombuffer(tensor.tensor_content, dtype=dtype.newbyteorder("<"))
    elif tensor.dtype == types_pb2.DT_HALF:
        flat = np.array(tensor.half_val, dtype=np.uint16).view(np.float16)
    else:
        flat = np.array(getattr(tensor, _VALUE_FIELDS[tensor.dtype]), dtype=dtype)
    count = int(np.prod(shape))
    if flat.size == 1 and count > 1:  # TF's convention: one value fills the tensor
        flat = np.full(count, flat[0], dtype=dtype)
    return flat.astype(dtype, copy=False).reshape(shape)
