"""parse_predict_request over `bytes` (grpcio transport) and `bytearray` (native transport): tensor_content
becomes a read-only view over the request either way; only the bytearray's may be shared with OpenVINO."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from helpers import free_port, predict_request, tensor_proto
from ovms_rs import _native
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


def test_a_bytearray_cannot_be_resized_under_its_views() -> None:
    raw = bytearray(
        predict_request({"data": tensor_proto(np.ones(4, np.float32))}).SerializeToString()
    )
    array = _native.parse_predict_request(raw)[3]["data"].array
    with pytest.raises(BufferError):
        raw.extend(b"\0" * 4096)  # would move the memory the view reads
    assert array is not None and array.sum() == 4


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
