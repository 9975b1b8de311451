"""The Rust PredictRequest parser in-process, over random and mutated bytes: every call returns or raises
`_native.InvalidInput`, never anything else and never a crash, and what it returns is bounded by the
bytes it was given (a request can't make it allocate more than its content).

The CI-sized counterpart of fuzz/fuzz_targets/parse_predict.rs (cargo fuzz, run by hand). Longer:
    OVMS_RS_FUZZ_PARSER_EXAMPLES=50000 pytest tests/reliability/test_fuzz_parser.py
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from ovms_rs import _native
from ovms_rs._proto.tensorflow_serving.apis import predict_pb2
from predict_fuzzing import MUTATIONS, NCHW, fuzz_settings, maybe_seeded, mutate, predict_requests

EXAMPLES_ENV = "OVMS_RS_FUZZ_PARSER_EXAMPLES"
RANDOM_BYTES_EXAMPLES = 3000
MUTATED_EXAMPLES = 600
AGREEMENT_EXAMPLES = 300

NUMPY_BY_DTYPE = {
    1: "<f4",
    2: "<f8",
    3: "<i4",
    4: "u1",
    5: "<i2",
    6: "i1",
    9: "<i8",
    10: "?",
    14: "<u2",
    17: "<u2",
    19: "<f2",
    22: "<u4",
    23: "<u8",
}


def parse(payload: bytes) -> tuple[str, int, str | None, dict[str, Any], list[str]] | None:
    """The parse result, or None when the parser refused the bytes with InvalidInput."""
    try:
        return _native.parse_predict_request(payload)
    except _native.InvalidInput as e:
        assert str(e), "InvalidInput without a message"
        return None


def check_bounded(
    payload: bytes, parsed: tuple[str, int, str | None, dict[str, Any], list[str]]
) -> None:
    """Everything returned is made of the request's bytes: no array larger than the payload."""
    name, version, label, inputs, output_filter = parsed
    assert isinstance(name, str) and isinstance(version, int)
    assert label is None or (isinstance(label, str) and version == 0)
    assert all(isinstance(f, str) for f in output_filter)
    for input_name, tensor in inputs.items():
        assert isinstance(input_name, str)
        assert isinstance(tensor, _native.RequestInput)
        shape = tensor.shape
        assert isinstance(shape, tuple) and all(isinstance(d, int) for d in shape)
        array, strings, error = tensor.array, tensor.strings, tensor.error
        if error is not None:
            # empty only for negative or zero dims, which the shape checks reject before `error` is read
            assert array is None and (error or any(d <= 0 for d in shape))
        if array is not None:
            assert strings is None
            assert array.shape == shape
            assert array.dtype == np.dtype(NUMPY_BY_DTYPE[tensor.dtype])
            # every value occupies at least one byte of the request (a varint, a bool, a content byte)
            assert array.size <= len(payload)
        if strings is not None:
            assert tensor.dtype == 7
            assert sum(len(s) for s in strings) <= len(payload)


def float_request(dims: list[int], values: list[float] | None = None) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    tensor = request.inputs["x"]
    tensor.dtype = 1
    for d in dims:
        tensor.tensor_shape.dim.add(size=d)
    tensor.float_val.extend(values or [])
    return request


@maybe_seeded
@fuzz_settings(EXAMPLES_ENV, RANDOM_BYTES_EXAMPLES)
@given(payload=st.binary(max_size=512))
@example(payload=b"")
@example(payload=b"\x12\xff\xff\xff\xff\xff\xff\xff\xff\x7f")  # a length of 2^63-1
@example(payload=b"\x0a\x80\x80\x80\x80\x10")  # a length of 2^32, nothing after it
@example(payload=b"\x13\x14")  # start/end group
@example(payload=b"\x00")  # field number 0
@example(payload=b"\xff" * 11)  # a varint longer than 10 bytes
def test_random_bytes(payload: bytes) -> None:
    parsed = parse(payload)
    if parsed is not None:
        check_bounded(payload, parsed)


@maybe_seeded
@fuzz_settings(EXAMPLES_ENV, MUTATED_EXAMPLES)
@given(request=predict_requests(NCHW, small=True), mutations=MUTATIONS)
def test_mutated_requests(
    request: predict_pb2.PredictRequest, mutations: list[tuple[str, int, bytes]]
) -> None:
    payload = mutate(request.SerializeToString(), mutations)
    parsed = parse(payload)
    if parsed is not None:
        check_bounded(payload, parsed)


@maybe_seeded
@fuzz_settings(EXAMPLES_ENV, AGREEMENT_EXAMPLES)
@given(request=predict_requests(NCHW, small=True))
@example(request=float_request([1, 3, 0, 2**62]))  # found by this test: a zero dim beside huge ones
def test_agrees_with_protobuf(request: predict_pb2.PredictRequest) -> None:
    """Well-formed requests (as protobuf writes them) parse to what protobuf itself reads."""
    payload = request.SerializeToString()
    parsed = parse(payload)
    assert parsed is not None, "a message protobuf wrote was refused"
    check_bounded(payload, parsed)
    name, version, label, inputs, output_filter = parsed
    assert name == request.model_spec.name
    assert version == request.model_spec.version.value
    assert label == (
        request.model_spec.version_label
        if request.model_spec.WhichOneof("version_choice") == "version_label"
        else None
    )
    assert output_filter == list(request.output_filter)
    assert set(inputs) == set(request.inputs)
    for input_name, tensor in request.inputs.items():
        got = inputs[input_name]
        assert got.dtype == tensor.dtype % 2**64
        assert got.shape == tuple(d.size for d in tensor.tensor_shape.dim)
        if tensor.dtype == 7:
            assert got.strings is not None and list(got.strings) == list(tensor.string_val)
        elif got.array is not None and tensor.tensor_content:
            assert got.array.tobytes() == tensor.tensor_content
        elif got.array is not None and tensor.dtype == 1:
            np.testing.assert_array_equal(got.array.ravel(), np.array(tensor.float_val, np.float32))


@pytest.mark.parametrize(
    "dims",
    [
        [2**40, 2**40, 3],
        [2**62, 4],
        [2**31, 2**31, 2**31],
        [2**63 - 1, 2],
        [0, 2**40, 2**40],
        [1, 3, 0, 2**62],
    ],
)
@pytest.mark.parametrize("values", [[], [1.0, 2.0]], ids=["no-values", "two-values"])
def test_huge_declared_shapes_allocate_nothing(dims: list[int], values: list[float]) -> None:
    """A shape whose element count overflows or dwarfs the content: an error message, no array (with a
    zero dim the count is 0, but numpy cannot make an array of that shape either)."""
    parsed = parse(float_request(dims, values).SerializeToString())
    assert parsed is not None
    got = parsed[3]["x"]
    assert got.array is None and got.error
