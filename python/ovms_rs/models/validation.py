"""Request validation in OVMS's order, with OVMS's messages: the one place a Predict is checked.

Order (OVMS's): number of inputs, then per input: present, no negative/zero dims, binary path, precision,
rank, batch, shape, content size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from .. import _native
from ..config.shapes import shape_str
from ..dtypes import DT_STRING, precision_of_dtype
from ..errors import (
    INVALID_BATCH_SIZE,
    INVALID_MISSING_INPUT,
    INVALID_NO_OF_INPUTS,
    INVALID_NO_OF_SHAPE_DIMENSIONS,
    INVALID_PRECISION,
    INVALID_SHAPE,
    invalid_argument,
)
from . import binary_input
from .model_io import InputBinding
from .tensor_spec import TensorSpec
from .version import Compiled, ModelVersion


class Validated(NamedTuple):
    """A request that passed: {model port: array in model layout}, and the compiled model they were
    checked against (an `auto` reshape by another request may replace the version's meanwhile; this
    request still runs on its own)."""

    arrays: dict[int, np.ndarray[Any, Any]]
    compiled: Compiled


def validate(version: ModelVersion, inputs: Mapping[str, _native.RequestInput]) -> Validated:
    """Checks a request against the version's current compiled model (reshaping it first when the
    version is `auto` and the request asks for other shapes)."""
    compiled = version.compiled()
    expected = compiled.inputs
    if len(inputs) != len(expected):
        raise invalid_argument(
            INVALID_NO_OF_INPUTS, f"Expected: {len(expected)}; Actual: {len(inputs)}"
        )
    for name in expected:
        if name not in inputs:
            raise invalid_argument(INVALID_MISSING_INPUT, f"Required input: {name}")
    reshape = _auto_reshape_wanted(version.auto_reshape, expected, inputs)
    if reshape:
        compiled = version.reshape(reshape)
        expected = compiled.inputs
    arrays = {
        binding.port: _validate_input(name, binding, inputs[name])
        for name, binding in expected.items()
    }
    return Validated(arrays, compiled)


def _auto_reshape_wanted(
    mode: str | None,
    expected: Mapping[str, InputBinding],
    inputs: Mapping[str, _native.RequestInput],
) -> dict[str, tuple[int, ...]]:
    """With shape/batch `auto` (`mode`): the shapes to reshape to, when a request differs only where
    allowed."""
    if mode is None:
        return {}
    wanted: dict[str, tuple[int, ...]] = {}
    for name, binding in expected.items():
        shape, spec = inputs[name].shape, binding.spec
        if (
            inputs[name].dtype == DT_STRING
            or len(shape) != len(spec.shape)
            or any(d <= 0 for d in shape)
        ):
            continue
        if all(dim.accepts(n) for dim, n in zip(spec.shape, shape)):
            continue
        axis = spec.batch_axis
        if mode == "batch" and any(
            not dim.accepts(n) for i, (dim, n) in enumerate(zip(spec.shape, shape)) if i != axis
        ):
            continue
        wanted[name] = tuple(shape)
    return wanted


def _validate_input(
    name: str, binding: InputBinding, tensor: _native.RequestInput
) -> np.ndarray[Any, Any]:
    spec = binding.spec
    shape: tuple[int, ...] = tensor.shape
    if any(d <= 0 for d in shape):
        raise invalid_argument(
            INVALID_SHAPE,
            f"Negative or zero dimension size is not acceptable: {shape_str(shape)}; input name: {name}",
        )
    if tensor.dtype == DT_STRING and spec.precision != "STRING" and len(spec.shape) in (4, 5):
        return binary_input.decode(name, binding, tensor)
    actual = precision_of_dtype(tensor.dtype)
    if actual != spec.precision:
        raise invalid_argument(
            INVALID_PRECISION, f"Expected: {spec.precision}; Actual: {actual}; input name: {name}"
        )
    check_shape(name, spec, shape)
    if tensor.error is not None:
        raise invalid_argument(tensor.error)
    array = tensor.array
    if array is None:  # strings for a STRING model input: not served by this server
        raise invalid_argument(
            INVALID_PRECISION, f"Expected: {spec.precision}; Actual: {actual}; input name: {name}"
        )
    if binding.transpose_to is not None:
        array = _native.transpose_layout(array, binding.transpose_to)
    return array


def check_shape(name: str, spec: TensorSpec, shape: tuple[int, ...]) -> None:
    """Rank, then batch, then the other dimensions."""
    expected = spec.shape
    if len(shape) != len(expected):
        raise invalid_argument(
            INVALID_NO_OF_SHAPE_DIMENSIONS,
            f"Expected: {shape_str(expected)}; Actual: {shape_str(shape)}; input name: {name}",
        )
    axis = spec.batch_axis
    if axis is not None and not expected[axis].accepts(shape[axis]):
        raise invalid_argument(
            INVALID_BATCH_SIZE,
            f"Expected: {expected[axis]}; Actual: {shape[axis]}; input name: {name}",
        )
    if not all(dim.accepts(n) for dim, n in zip(expected, shape)):
        raise invalid_argument(
            INVALID_SHAPE,
            f"Expected: {shape_str(expected)}; Actual: {shape_str(shape)}; input name: {name}",
        )
