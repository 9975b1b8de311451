"""Binary (JPEG/PNG) inputs: string_val batches decoded into the model's NHWC view, as OVMS does.

The checks (policy) are here; the entries stay spans of the request (`_native.RequestStrings`), which
`_native.decode_images` decodes in place, writing the model's precision directly."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _native, dtypes
from ..errors import request_error
from ..models.model_io import InputBinding

# The precisions a decoded image (uint8) may be cast to: the numeric ones (decode_images writes each).
_NUMPY_BY_PRECISION = {
    d.precision: d.numpy for d in dtypes.BY_NUMPY.values() if d.numpy.kind in "uif"
}


def decode(name: str, binding: InputBinding, tensor: _native.RequestInput) -> np.ndarray[Any, Any]:
    """Validates a binary input and returns the decoded batch in the model's layout and precision."""
    shape: tuple[int, ...] = tensor.shape
    if len(shape) != 1:
        raise request_error("BINARY_NO_OF_SHAPE_DIMENSIONS", actual=len(shape), name=name)
    images = tensor.strings  # both parsers give every DT_STRING input its entries
    count = 0 if images is None else len(images)
    if shape[0] != count:
        raise request_error("INVALID_BATCH_SIZE", expected=shape[0], actual=count, name=name)
    spec = binding.spec
    if binding.layout not in ("NHWC",):
        raise request_error("BINARY_NOT_NHWC")
    n_dim, h_dim, w_dim, c_dim = spec.shape
    if not n_dim.accepts(count):
        raise request_error("INVALID_BATCH_SIZE", expected=n_dim, actual=count, name=name)
    if images is not None and images.has_empty:
        raise request_error("IMAGE_EMPTY")
    # Resize to the model's H x W when both are fixed; otherwise images must share one size.
    resize = h_dim.is_static and w_dim.is_static
    # A precision with no numeric type is refused after the decode's errors (OVMS's order): the batch
    # is decoded as uint8 for them.
    target = _NUMPY_BY_PRECISION.get(spec.precision)
    batch = _native.decode_images(
        [] if images is None else images,
        h_dim.lo if resize else None,
        w_dim.lo if resize else None,
        target,
    )
    if not c_dim.accepts(batch.shape[3]):
        raise request_error("IMAGE_CHANNELS_MISMATCH")
    if not resize and not (h_dim.accepts(batch.shape[1]) and w_dim.accepts(batch.shape[2])):
        raise request_error("INVALID_SHAPE", expected=spec.shape, actual=batch.shape, name=name)
    if target is None:
        raise request_error("INVALID_PRECISION", expected=spec.precision, actual="U8", name=name)
    if binding.transpose_to is not None:
        batch = _native.transpose_layout(batch, binding.transpose_to)
    return batch
