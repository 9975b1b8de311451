"""Decode + resize of the ten demo photos to 224x224: Rust (decode_images) vs OpenCV and vs Pillow,
in the same run. The Rust path decodes the batch in parallel; the baselines are what a Python server
would call, one image at a time. `test_binary_input_validation`: a parsed Predict of eight photos
through the binary-input checks and decode into a 224x224 NHWC input of the model's precision, vs
protobuf + OpenCV + numpy's cast.

Run: .venv/bin/python -m pytest benches/bench_image.py -q -s
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ovms_rs
import pytest
from ovms_rs import _native
from ovms_rs._proto.tensorflow.core.framework import tensor_pb2
from ovms_rs._proto.tensorflow_serving.apis import predict_pb2
from ovms_rs.config.shapes import Dim
from ovms_rs.models.model_io import InputBinding
from ovms_rs.models.tensor_spec import TensorSpec
from ovms_rs.request import binary_input
from pytest_benchmark.fixture import BenchmarkFixture

from benches.compare import compare

cv2 = pytest.importorskip("cv2")
Image = pytest.importorskip("PIL.Image")

PHOTOS = sorted((ovms_rs.demo_dir() / "data" / "images").glob("*.jpeg"))
BLOBS = [p.read_bytes() for p in PHOTOS]


def _opencv(blobs: list[bytes]) -> np.ndarray[Any, Any]:
    out = []
    for blob in blobs:
        img = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)
        out.append(cv2.resize(img, (224, 224), interpolation=cv2.INTER_LINEAR))
    return np.stack(out)


def _pillow(blobs: list[bytes]) -> np.ndarray[Any, Any]:
    import io

    out = []
    for blob in blobs:
        img = Image.open(io.BytesIO(blob)).convert("RGB").resize((224, 224), Image.BILINEAR)
        out.append(np.asarray(img)[:, :, ::-1])  # BGR, as OVMS feeds models
    return np.stack(out)


def _ours(blobs: list[bytes]) -> np.ndarray[Any, Any]:
    return _native.decode_images(blobs, 224, 224)


def test_decode_resize_ten_photos(benchmark: BenchmarkFixture) -> None:
    ours, reference = _ours(BLOBS), _opencv(BLOBS)
    diff = np.abs(ours.astype(np.int16) - reference.astype(np.int16))
    print(f"\n  vs OpenCV: max abs pixel diff {diff.max()}, mean {diff.mean():.3f}")
    compare(
        benchmark,
        lambda: _ours(BLOBS),
        {"opencv": lambda: _opencv(BLOBS), "pillow": lambda: _pillow(BLOBS)},
        seconds=4,
    )


def test_decode_resize_one_photo(benchmark: BenchmarkFixture) -> None:
    one = BLOBS[:1]
    compare(
        benchmark,
        lambda: _ours(one),
        {"opencv": lambda: _opencv(one), "pillow": lambda: _pillow(one)},
    )


def _binary_request(blobs: list[bytes]) -> bytes:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "resnet"
    tensor = tensor_pb2.TensorProto(dtype=7, string_val=blobs)  # type: ignore[arg-type]
    tensor.tensor_shape.dim.add().size = len(blobs)
    request.inputs["images"].CopyFrom(tensor)
    return request.SerializeToString()  # type: ignore[no-any-return]


def _nhwc_binding(precision: str) -> InputBinding:
    shape = tuple(Dim.static(n) for n in (8, 224, 224, 3))
    return InputBinding(TensorSpec("images", precision, shape), 0, "NHWC", None)


def _ours_validated(raw: bytes | bytearray, binding: InputBinding) -> np.ndarray[Any, Any]:
    inputs = _native.parse_predict_request(raw)[3]
    return binary_input.decode("images", binding, inputs["images"])


def _python_validated(raw: bytes, target: np.dtype[Any]) -> np.ndarray[Any, Any]:
    entries = predict_pb2.PredictRequest.FromString(raw).inputs["images"].string_val
    return _opencv(list(entries)).astype(target)


@pytest.mark.parametrize("precision", ["U8", "FP32"])
def test_binary_input_validation(benchmark: BenchmarkFixture, precision: str) -> None:
    raw, binding = _binary_request(BLOBS[:8]), _nhwc_binding(precision)
    target = np.dtype(np.uint8 if precision == "U8" else np.float32)
    ours = _ours_validated(raw, binding)
    assert ours.dtype == target and ours.shape == (8, 224, 224, 3)
    np.testing.assert_array_equal(ours, _ours_validated(bytearray(raw), binding))
    compare(
        benchmark,
        lambda: _ours_validated(raw, binding),
        {"protobuf_opencv": lambda: _python_validated(raw, target)},
        seconds=4,
    )
