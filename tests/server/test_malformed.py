"""Hostile bytes at the Predict method: INVALID_ARGUMENT, and the server keeps serving."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from helpers import (
    ServerProcess,
    labeled_photos,
    output_array,
    photo_nchw,
    predict_request,
    tensor_proto,
)

PREDICT = "/tensorflow.serving.PredictionService/Predict"


def _raw_predict(server: ServerProcess, payload: bytes) -> grpc.RpcError:
    assert server.channel is not None
    call = server.channel.unary_unary(PREDICT, request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as err:
        call(payload, timeout=30)
    return err.value


@pytest.mark.parametrize(
    "payload",
    [b"\xff\xff\xff\xff", b"\x0a\x10\x00", b"\x12\x05\x0a\x03abc\x00", bytes(range(256)) * 4],
    ids=["bad-varint", "truncated", "bad-nesting", "noise"],
)
def test_garbage_bytes(demo_server: ServerProcess, payload: bytes) -> None:
    e = _raw_predict(demo_server, payload)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    _still_serving(demo_server)


def test_shape_whose_element_count_overflows(demo_server: ServerProcess) -> None:
    t = tensor_proto(np.zeros((1,), np.float32))
    t.tensor_shape.ClearField("dim")
    for size in (1 << 40, 1 << 40, 1 << 40, 3):
        t.tensor_shape.dim.add(size=size)
    e = _raw_predict(demo_server, predict_request({"data": t}).SerializeToString())
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    _still_serving(demo_server)


def test_huge_declared_shape_with_small_content(
    demo_server: ServerProcess, tmp_path: object
) -> None:
    """A shape claiming 2^40 elements: rejected by the shape checks, nothing allocated."""
    t = tensor_proto(np.zeros((4,), np.float32))
    t.tensor_shape.ClearField("dim")
    for size in (1, 3, 1 << 19, 1 << 19):
        t.tensor_shape.dim.add(size=size)
    e = _raw_predict(demo_server, predict_request({"data": t}).SerializeToString())
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    _still_serving(demo_server)


def _still_serving(server: ServerProcess) -> None:
    assert server.alive
    path, label = labeled_photos()[0]
    reply = server.prediction_stub().Predict(
        predict_request({"data": tensor_proto(photo_nchw(path))}), timeout=30
    )
    assert int(output_array(reply.outputs["prob"]).argmax()) == label
