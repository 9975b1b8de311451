"""parse_predict_request over `bytes` (grpcio transport) and `bytearray` (native transport): tensor_content
becomes a read-only view over the request either way; only the bytearray's may be shared with OpenVINO."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from helpers import predict_request, tensor_proto
from ovms_rs import _native
from ovms_rs._proto.tensorflow.core.framework import tensor_shape_pb2
from ovms_rs.models.inference import shareable_view as _shareable


@pytest.mark.parametrize("container", [bytes, bytearray])
def test_tensor_content_is_a_read_only_view(container: type) -> None:
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    raw = container(predict_request({"data": tensor_proto(x)}).SerializeToString())
    _, _, _, inputs, _ = _native.parse_predict_request(raw)
    array = inputs["data"].array
    assert array is not None
    np.testing.assert_array_equal(array, x)
    assert not array.flags.writeable
    assert np.shares_memory(array, np.frombuffer(raw, np.uint8))  # a view, not a copy
    with pytest.raises(ValueError):
        array[0, 0, 0] = 1


def test_only_a_bytearray_view_is_shared_with_the_model() -> None:
    x = np.ones((1, 3, 8, 8), np.float32)
    serialized = predict_request({"data": tensor_proto(x)}).SerializeToString()
    over_bytearray = _native.parse_predict_request(bytearray(serialized))[3]["data"].array
    over_bytes = _native.parse_predict_request(serialized)[3]["data"].array
    assert over_bytearray is not None and over_bytes is not None
    alias = _shareable(over_bytearray)
    assert alias.flags.writeable and np.shares_memory(alias, over_bytearray)
    assert not over_bytearray.flags.writeable  # the parsed view itself stays read-only
    assert _shareable(over_bytes) is over_bytes and not over_bytes.flags.writeable


def test_other_request_types_are_refused() -> None:
    with pytest.raises(TypeError):
        _native.parse_predict_request(memoryview(b"\x0a\x00"))  # type: ignore[arg-type]


def test_a_bytearray_cannot_be_resized_under_its_views() -> None:
    x = np.arange(6, dtype=np.int32)
    raw = bytearray(predict_request({"data": tensor_proto(x)}).SerializeToString())
    array = _native.parse_predict_request(raw)[3]["data"].array
    with pytest.raises(BufferError):
        raw.extend(b"more")
    del array
    gc.collect()
    raw.extend(b"more")  # the views are gone: the bytearray is the caller's again


def test_views_are_aligned_exactly_when_their_address_is() -> None:
    """numpy sets ALIGNED from the view's address; an unaligned view still reads right."""
    seen = set()
    for pad in range(1, 9):
        x = np.arange(12, dtype=np.float64).reshape(3, 4)
        request = predict_request({"data": tensor_proto(x)})
        request.model_spec.signature_name = "s" * pad  # moves the tensor's offset
        raw = request.SerializeToString()
        array = _native.parse_predict_request(raw)[3]["data"].array
        assert array is not None and array.flags.c_contiguous and not array.flags.writeable
        assert array.flags.aligned == (array.ctypes.data % 8 == 0)
        assert array.base is raw
        np.testing.assert_array_equal(array, x)
        seen.add(array.flags.aligned)
    assert seen == {True, False}


@pytest.mark.parametrize("typed", [False, True], ids=["tensor_content", "float_val"])
def test_a_shape_numpy_refuses_is_the_clients_error(typed: bool) -> None:
    """More dimensions than numpy has (64; 32 before numpy 2): refused as the request's error."""
    tensor = tensor_proto(np.ones(1, np.float32))
    del tensor.tensor_shape.dim[:]
    tensor.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=1) for _ in range(65))
    if typed:
        tensor.ClearField("tensor_content")
        tensor.float_val.append(1.0)
    with pytest.raises(_native.InvalidInput) as info:
        _native.parse_predict_request(predict_request({"data": tensor}).SerializeToString())
    assert info.value.args[0] == "SHAPE_REFUSED"
    assert "dimension" in str(info.value)
