"""TensorProto in and out: Rust parse/build vs protobuf's Python classes + numpy, in the same run.

Run: .venv/bin/python -m pytest benches/bench_proto.py -q -s
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from ovms_rs import _native
from ovms_rs._proto.tensorflow.core.framework import tensor_shape_pb2
from ovms_rs._proto.tensorflow_serving.apis import predict_pb2
from pytest_benchmark.fixture import BenchmarkFixture

from benches.compare import compare

IMAGE = (1, 3, 224, 224)


def _request(x: np.ndarray[Any, Any], typed: bool) -> bytes:
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "efficientnet-lite0"
    t = req.inputs["data"]
    t.dtype = 1
    t.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in x.shape)
    if typed:
        t.float_val.extend(x.ravel().tolist())
    else:
        t.tensor_content = x.tobytes()
    return req.SerializeToString()  # type: ignore[no-any-return]


def _protobuf_parse(data: bytes) -> np.ndarray[Any, Any]:
    t = predict_pb2.PredictRequest.FromString(data).inputs["data"]
    shape = [d.size for d in t.tensor_shape.dim]
    if t.tensor_content:
        return np.frombuffer(t.tensor_content, np.float32).reshape(shape)
    return np.array(t.float_val, np.float32).reshape(shape)


def _ours_parse(data: bytes) -> np.ndarray[Any, Any]:
    _, _, _, inputs, _ = _native.parse_predict_request(data)
    array = inputs["data"].array
    assert array is not None
    return array


@pytest.mark.parametrize("typed", [False, True], ids=["tensor_content", "float_val"])
def test_parse(benchmark: BenchmarkFixture, typed: bool) -> None:
    x = np.random.default_rng(0).random(IMAGE, dtype=np.float32) * 255
    data = _request(x, typed)
    np.testing.assert_array_equal(_ours_parse(data), _protobuf_parse(data))
    compare(benchmark, lambda: _ours_parse(data), {"protobuf_numpy": lambda: _protobuf_parse(data)})


def _protobuf_build(outputs: list[tuple[str, np.ndarray[Any, Any]]]) -> bytes:
    reply = predict_pb2.PredictResponse()
    reply.model_spec.name = "efficientnet-lite0"
    reply.model_spec.version.value = 1
    for name, array in outputs:
        t = reply.outputs[name]
        t.dtype = 1
        t.tensor_shape.CopyFrom(
            tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape]
            )
        )
        t.tensor_content = array.tobytes()
    return reply.SerializeToString()  # type: ignore[no-any-return]


@pytest.mark.parametrize("shape", [(1, 1000), IMAGE], ids=["1x1000", "1x3x224x224"])
def test_build(benchmark: BenchmarkFixture, shape: tuple[int, ...]) -> None:
    out = np.random.default_rng(0).random(shape, dtype=np.float32)
    outputs = [("prob", out)]
    ours = _native.build_predict_response("efficientnet-lite0", 1, outputs)
    assert predict_pb2.PredictResponse.FromString(ours) == predict_pb2.PredictResponse.FromString(
        _protobuf_build(outputs)
    )
    compare(
        benchmark,
        lambda: _native.build_predict_response("efficientnet-lite0", 1, outputs),
        {"protobuf": lambda: _protobuf_build(outputs)},
    )
