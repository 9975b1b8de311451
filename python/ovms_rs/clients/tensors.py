"""numpy arrays <-> TensorProto, as TensorFlow's make_tensor_proto / make_ndarray do for the clients."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import dtypes
from .._proto.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

# The wire dtypes numpy has a type of their own for, by wire number.
_BY_WIRE = {d.wire: d for d in dtypes.BY_NUMPY.values()}


def _shape(dims: Sequence[int]) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in dims]
    )


def make_tensor_proto(array: npt.NDArray[Any]) -> tensor_pb2.TensorProto:
    """A numeric array as raw little-endian bytes in tensor_content."""
    dtype = dtypes.BY_NUMPY.get(array.dtype)
    if dtype is None:
        raise ValueError(f"no TensorFlow dtype for numpy {array.dtype}")
    data = np.ascontiguousarray(array, dtype=dtype.numpy)  # little-endian, as on the wire
    return tensor_pb2.TensorProto(
        dtype=dtype.name, tensor_shape=_shape(array.shape), tensor_content=data.tobytes()
    )


def make_string_tensor_proto(items: Sequence[bytes]) -> tensor_pb2.TensorProto:
    """A [N] DT_STRING tensor: how encoded images (JPEG/PNG) travel in string_val."""
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING, tensor_shape=_shape([len(items)]), string_val=list(items)
    )


def make_ndarray(tensor: tensor_pb2.TensorProto) -> npt.NDArray[Any]:
    """The array a numeric TensorProto holds (tensor_content, else its typed *_val field)."""
    entry = _BY_WIRE.get(tensor.dtype)
    if entry is None:
        raise ValueError(f"unsupported output dtype {types_pb2.DataType.Name(tensor.dtype)}")
    dtype = entry.numpy
    shape = [d.size for d in tensor.tensor_shape.dim]
    if tensor.tensor_content:
        flat = np.frombuffer(tensor.tensor_content, dtype=dtype)
    elif tensor.dtype == types_pb2.DT_HALF:
        flat = np.array(tensor.half_val, dtype=np.uint16).view(np.float16)
    else:
        flat = np.array(getattr(tensor, entry.val_field), dtype=dtype)
    count = int(np.prod(shape))
    if flat.size == 1 and count > 1:  # TF's convention: one value fills the tensor
        flat = np.full(count, flat[0], dtype=dtype)
    return flat.astype(dtype, copy=False).reshape(shape)
