"""One inference on an OpenVINO infer request: the inputs shared rather than copied where OpenVINO
allows, the outputs as views of the request's buffers. Used by `ModelVersion.infer` and the batcher."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import openvino as ov


def run_inference(
    request: ov.InferRequest,
    arrays: Mapping[int, np.ndarray[Any, Any]],
    ports: Sequence[tuple[str, int]],
) -> tuple[list[tuple[str, np.ndarray[Any, Any]]], int]:
    """Sets the inputs (shared, not copied, where OpenVINO allows), infers (interpreter released) and
    returns the outputs [(name, view of the request's buffer)] and the inference's nanoseconds."""
    for port, array in arrays.items():
        shareable = shareable_view(array)
        request.set_input_tensor(
            port, ov.Tensor(shareable, shared_memory=shareable.flags.writeable)
        )
    inferring = time.perf_counter_ns()
    request.infer()
    inference_ns = time.perf_counter_ns() - inferring
    return [(name, request.get_output_tensor(port).data) for name, port in ports], inference_ns


def shareable_view(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """An array OpenVINO can read in place. It copies read-only arrays ("not writeable" workaround in
    its data dispatcher); a read-only view over a request's own bytearray (the native transport's) gets
    a writable alias instead: OpenVINO only reads inputs, and nothing else holds that buffer. Views over
    immutable `bytes` (the grpcio transport's) stay read-only and are copied."""
    if array.flags.writeable:
        return array
    alias = array.view()
    try:
        alias.flags.writeable = True
    except ValueError:
        return array
    return alias
