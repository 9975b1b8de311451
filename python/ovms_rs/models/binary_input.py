"""Binary (JPEG/PNG) inputs: string_val batches decoded into the model's NHWC view, as OVMS does."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _native, dtypes
from ..config.shapes import shape_str
from ..errors import INVALID_BATCH_SIZE, INVALID_NO_OF_SHAPE_DIMENSIONS, invalid_argument
from .model_io import InputBinding

NOT_NHWC = "Received binary image input but resource not configured to accept NHWC layout"
CHANNELS = "Invalid number of channels in binary input"
EMPTY = "String val is empty"

# The precisions a decoded image (uint8) may be cast to: the numeric ones.
_NUMPY_BY_PRECISION = {
    d.precision: d.numpy for d in dtypes.BY_NUMPY.values() if d.numpy.kind in "uif"
}


def decode(name: str, binding: InputBinding, tensor: _native.RequestInput) -> np.ndarray[Any, Any]:
    """Validates a binary input and returns the decoded batch in the model's layout and precision."""
    shape: tuple[int, ...] = tensor.shape
    if len(shape) != 1:
        raise invalid_argument(
            INVALID_NO_OF_SHAPE_DIMENSIONS,
            f"Expected number of binary input shape dimensions: 1; Actual: {len(shape)}; input name: {name}",
        )
    images: list[bytes] = tensor.strings or []
    if shape[0] != len(images):
        raise invalid_argument(
            INVALID_BATCH_SIZE, f"Expected: {shape[0]}; Actual: {len(images)}; input name: {name}"
        )
    spec = binding.spec
    if binding.layout not in ("NHWC",):
        raise invalid_argument(NOT_NHWC)
    n_dim, h_dim, w_dim, c_dim = spec.shape
    if not n_dim.accepts(len(images)):
        raise invalid_argument(
            INVALID_BATCH_SIZE, f"Expected: {n_dim}; Actual: {len(images)}; input name: {name}"
        )
    if any(len(img) == 0 for img in images):
        raise invalid_argument(EMPTY)
    # Resize to the model's H x W when both are fixed; otherwise images must share one size.
    resize = h_dim.is_static and w_dim.is_static
    batch = _native.decode_images(
        images, h_dim.lo if resize else None, w_dim.lo if resize else None
    )
    if not c_dim.accepts(batch.shape[3]):
        raise invalid_argument(CHANNELS)
    if not resize and not (h_dim.accepts(batch.shape[1]) and w_dim.accepts(batch.shape[2])):
        raise invalid_argument(
            "Invalid input shape",
            f"Expected: {shape_str(spec.shape)}; Actual: {shape_str(batch.shape)}; input name: {name}",
        )
    target = _NUMPY_BY_PRECISION.get(spec.precision)
    if target is None:
        raise invalid_argument(
            "Invalid input precision", f"Expected: {spec.precision}; Actual: U8; input name: {name}"
        )
    if binding.transpose_to is not None:
        batch = _native.transpose_layout(batch, binding.transpose_to)
    # No scaling: 0..255 stays 0..255, as in OVMS.
    return batch if target == np.uint8 else batch.astype(target)
