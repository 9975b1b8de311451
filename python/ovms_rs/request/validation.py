"""Request validation in OVMS's order: the one place a Predict is checked (both APIs).

Order (OVMS's): number of inputs, then per input: present, no negative/zero dims, binary path, precision,
rank, batch, shape, content size. Each refusal is a kind of `errors.REQUEST_ERRORS` (which has the
wording); the parsers (Rust) find the zero dims and the content errors, this module raises them in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from .. import _native
from ..dtypes import DT_STRING, precision_of_dtype
from ..errors import request_error
from ..models.model_io import InputBinding
from ..models.tensor_spec import TensorSpec
from ..models.version import Compiled, ModelVersion, Ports
from . import binary_input


class Validated(NamedTuple):
    """A request that passed: {model port: array in model layout}, the compiled model they were
    checked against (an `auto` reshape by another request may replace the version's meanwhile; this
    request still runs on its own), and the outputs to answer with (the request's output filter,
    resolved here once: inference and the batcher take ports, never names)."""

    arrays: dict[int, np.ndarray[Any, Any]]
    compiled: Compiled
    ports: Ports


def validate(
    version: ModelVersion,
    inputs: Mapping[str, _native.RequestInput],
    output_filter: Sequence[str] = (),
) -> Validated:
    """Checks a request against the version's current compiled model (reshaping it first when the
    version is `auto` and the request asks for other shapes), then its output filter."""
    compiled = version.compiled()
    expected = compiled.inputs
    if len(inputs) != len(expected):
        raise request_error("INVALID_NO_OF_INPUTS", expected=len(expected), actual=len(inputs))
    for name in expected:
        if name not in inputs:
            raise request_error("INVALID_MISSING_INPUT", name=name)
    reshape = _auto_reshape_wanted(version.auto_reshape, expected, inputs)
    if reshape:
        compiled = version.reshape(reshape)
        expected = compiled.inputs
    arrays = {
        binding.port: _validate_input(name, binding, inputs[name])
        for name, binding in expected.items()
    }
    return Validated(arrays, compiled, output_ports(compiled, output_filter))


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
        tensor, spec = inputs[name], binding.spec
        shape = tensor.shape
        if tensor.dtype == DT_STRING or len(shape) != len(spec.shape) or _zero_dimension(tensor):
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


def _zero_dimension(tensor: _native.RequestInput) -> bool:
    """Whether the parser found a zero or negative dimension (it checks every input, of both APIs)."""
    error = tensor.error
    return error is not None and error[0] == "ZERO_DIMENSION"


def _validate_input(
    name: str, binding: InputBinding, tensor: _native.RequestInput
) -> np.ndarray[Any, Any]:
    spec = binding.spec
    shape: tuple[int, ...] = tensor.shape
    error = tensor.error
    if error is not None and error[0] == "ZERO_DIMENSION":
        raise request_error(*error)
    if tensor.dtype == DT_STRING and spec.precision != "STRING" and len(spec.shape) in (4, 5):
        return binary_input.decode(name, binding, tensor)
    actual = precision_of_dtype(tensor.dtype)
    if actual != spec.precision:
        raise request_error("INVALID_PRECISION", expected=spec.precision, actual=actual, name=name)
    check_shape(name, spec, shape)
    if error is not None:  # content that does not match the shape (the parser's kinds)
        raise request_error(*error)
    array = tensor.array
    if array is None:  # strings for a STRING model input: not served by this server
        raise request_error("INVALID_PRECISION", expected=spec.precision, actual=actual, name=name)
    if binding.transpose_to is not None:
        array = _native.transpose_layout(array, binding.transpose_to)
    return array


def check_shape(name: str, spec: TensorSpec, shape: tuple[int, ...]) -> None:
    """Rank, then batch, then the other dimensions."""
    expected = spec.shape
    if len(shape) != len(expected):
        raise request_error(
            "INVALID_NO_OF_SHAPE_DIMENSIONS", expected=expected, actual=shape, name=name
        )
    axis = spec.batch_axis
    if axis is not None and not expected[axis].accepts(shape[axis]):
        raise request_error(
            "INVALID_BATCH_SIZE", expected=expected[axis], actual=shape[axis], name=name
        )
    if not all(dim.accepts(n) for dim, n in zip(expected, shape)):
        raise request_error("INVALID_SHAPE", expected=expected, actual=shape, name=name)


def output_ports(compiled: Compiled, output_filter: Sequence[str]) -> Ports:
    """After the inputs (OVMS's order): every name in `output_filter` must be an output of the model;
    the ports to answer with (all of them without a filter)."""
    if not output_filter:
        return compiled.output_ports
    outputs = compiled.outputs
    for name in output_filter:
        if name not in outputs:
            known = ",".join(sorted(outputs))
            raise request_error("INVALID_OUTPUT_FILTER", name=name, known=known)
    wanted = set(output_filter)
    return tuple(named for named in compiled.output_ports if named[0] in wanted)
