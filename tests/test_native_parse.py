"""parse_predict_request over `bytes` (grpcio transport) and `bytearray` (native transport): tensor_content
becomes a read-only view over the request either way; only the bytearray's may be shared with OpenVINO."""

from __future__ import annotations

import gc

import grpc
import numpy as np
import ovms_rs
import pytest
from helpers import free_port, predict_request, tensor_proto
from ovms_rs import _native
from ovms_rs._proto.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
from ovms_rs.models.inference import shareable_view as _shareable


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    return [p.read_bytes() for p in sorted((ovms_rs.demo_dir() / "data" / "images").glob("*.jpeg"))]


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


def test_the_native_transports_body_is_shared_with_the_model() -> None:
    """Through the real transport: the handler gets the body where HTTP/2 received it (RequestBody);
    its tensor views are read-only, and their writable alias for OpenVINO reads the same memory."""
    seen: dict[str, object] = {}

    def handler(
        path: str, request: bytearray | _native.RequestBody, timeout: float | None
    ) -> tuple[int, str, bytes]:
        array = _native.parse_predict_request(request)[3]["data"].array
        assert array is not None
        alias = _shareable(array)
        seen.update(
            kind=type(request).__name__,
            read_only=not array.flags.writeable,
            alias_writable=alias.flags.writeable,
            shared=np.shares_memory(alias, array),
            total=float(array.sum()),
        )
        return 0, "", b""

    server = _native.GrpcServer(
        handler,
        "127.0.0.1",
        port := free_port(),
        max_message_bytes=1 << 30,
        max_concurrent_rpcs=4,
        handler_threads=1,
    )
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            predict = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
            x = np.ones((1, 3, 64, 64), np.float32)
            predict(predict_request({"data": tensor_proto(x)}).SerializeToString(), timeout=30)
    finally:
        server.stop(1.0)
    assert seen == {
        "kind": "RequestBody",
        "read_only": True,
        "alias_writable": True,
        "shared": True,
        "total": float(x.size),
    }


def test_other_request_types_are_refused() -> None:
    with pytest.raises(TypeError):
        _native.parse_predict_request(memoryview(b"\x0a\x00"))  # type: ignore[arg-type]


def _strings_request(entries: list[bytes]) -> bytes:
    tensor = tensor_pb2.TensorProto(dtype=7, string_val=entries)  # type: ignore[arg-type]
    tensor.tensor_shape.dim.add().size = len(entries)
    return predict_request({"images": tensor}).SerializeToString()  # type: ignore[no-any-return]


@pytest.mark.parametrize("container", [bytes, bytearray])
def test_string_entries_stay_spans_of_the_request(container: type) -> None:
    entries = [b"first", b"", b"\x00third\xff"]
    raw = container(_strings_request(entries))
    strings = _native.parse_predict_request(raw)[3]["images"].strings
    assert isinstance(strings, _native.RequestStrings)
    assert len(strings) == 3 and strings.has_empty
    assert list(strings) == entries
    assert (strings[0], strings[-1], strings[-3]) == (b"first", entries[2], b"first")
    with pytest.raises(IndexError):
        strings[3]
    with pytest.raises(IndexError):
        strings[-4]
    full = _native.parse_predict_request(container(_strings_request([b"a", b"bc"])))[3]
    assert not full["images"].strings.has_empty  # type: ignore[union-attr]


def test_a_requests_images_decode_in_place(photos: list[bytes]) -> None:
    """RequestStrings decode as the list of the same bytes does, in the asked precision, and outlive
    the name the request had."""
    want = _native.decode_images(photos, 24, 40)
    for container in (bytes, bytearray):
        strings = _native.parse_predict_request(container(_strings_request(photos)))[3]["images"]
        images = strings.strings
        assert images is not None
        del strings
        gc.collect()
        np.testing.assert_array_equal(_native.decode_images(images, 24, 40), want)
        got = _native.decode_images(images, 24, 40, np.dtype(np.float32))
        np.testing.assert_array_equal(got, want.astype(np.float32))


def test_a_bytearray_cannot_be_resized_under_its_views() -> None:
    x = np.arange(6, dtype=np.int32)
    raw = bytearray(predict_request({"data": tensor_proto(x)}).SerializeToString())
    array = _native.parse_predict_request(raw)[3]["data"].array
    with pytest.raises(BufferError):
        raw.extend(b"more")
    del array
    gc.collect()
    raw.extend(b"more")  # the views are gone: the bytearray is the caller's again
    strings = bytearray(_strings_request([b"x"]))
    entries = _native.parse_predict_request(strings)[3]["images"].strings
    with pytest.raises(BufferError):
        strings.clear()
    assert entries is not None and list(entries) == [b"x"]


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
