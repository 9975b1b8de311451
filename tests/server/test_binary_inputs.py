"""Binary (JPEG/PNG) inputs in string_val: decoded, resized and laid out by the server, as OVMS does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
from helpers import (
    DEMO_MODEL_PATH,
    ServerProcess,
    labeled_photos,
    output_array,
    photo_nchw,
    predict_request,
    tensor_proto,
)
from ovms_rs._proto.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2

cv2 = pytest.importorskip("cv2")


def binary_proto(images: list[bytes], dim0: int | None = None) -> tensor_pb2.TensorProto:
    return tensor_pb2.TensorProto(
        dtype=7,  # type: ignore[arg-type]
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=len(images) if dim0 is None else dim0)]
        ),
        string_val=images,
    )


def _error(server: ServerProcess, request: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        server.prediction_stub().Predict(request, timeout=30)
    return err.value.code(), err.value.details()


def test_jpegs_classify_like_the_float_path(
    nhwc_server: ServerProcess, demo_server: ServerProcess
) -> None:
    for path, label in labeled_photos():
        reply = nhwc_server.prediction_stub().Predict(
            predict_request({"data": binary_proto([path.read_bytes()])}), timeout=30
        )
        binary = output_array(reply.outputs["prob"])
        reply = demo_server.prediction_stub().Predict(
            predict_request({"data": tensor_proto(photo_nchw(path))}), timeout=30
        )
        floats = output_array(reply.outputs["prob"])
        assert int(binary.argmax()) == int(floats.argmax()) == label, path.name


def test_png_input(nhwc_server: ServerProcess) -> None:
    path, label = labeled_photos()[0]
    ok, png = cv2.imencode(".png", cv2.imread(str(path)))
    assert ok
    reply = nhwc_server.prediction_stub().Predict(
        predict_request({"data": binary_proto([png.tobytes()])}), timeout=30
    )
    assert int(output_array(reply.outputs["prob"]).argmax()) == label


@pytest.fixture(scope="module")
def batch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = Path(tmp_path_factory.mktemp("batch")) / "server.log"
    args = [
        "--model_name",
        "demo",
        "--model_path",
        str(DEMO_MODEL_PATH),
        "--layout",
        "NHWC:NCHW",
        "--batch_size",
        "-1",
    ]
    with ServerProcess(*args, log_path=log) as server:
        yield server


def test_batch_of_ten_photos(batch_server: ServerProcess) -> None:
    photos = labeled_photos()
    reply = batch_server.prediction_stub().Predict(
        predict_request({"data": binary_proto([p.read_bytes() for p, _ in photos])}, model="demo"),
        timeout=60,
    )
    prob = output_array(reply.outputs["prob"])
    assert prob.shape == (10, 1000)
    assert prob.argmax(axis=1).tolist() == [label for _, label in photos]


def test_binary_errors(nhwc_server: ServerProcess, demo_server: ServerProcess) -> None:
    jpeg = labeled_photos()[0][0].read_bytes()
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert _error(nhwc_server, predict_request({"data": binary_proto([b"not an image"])})) == (
        invalid,
        "Image parsing failed",
    )
    assert _error(
        nhwc_server, predict_request({"data": binary_proto([jpeg[: len(jpeg) // 3]])})
    ) == (invalid, "Image parsing failed")
    assert _error(nhwc_server, predict_request({"data": binary_proto([b""])})) == (
        invalid,
        "String val is empty",
    )
    t = binary_proto([jpeg])
    t.tensor_shape.dim.extend([tensor_shape_pb2.TensorShapeProto.Dim(size=1)] * 3)
    assert _error(nhwc_server, predict_request({"data": t})) == (
        invalid,
        "Invalid number of shape dimensions - Expected number of binary input shape dimensions: 1; "
        "Actual: 4; input name: data",
    )
    code, details = _error(nhwc_server, predict_request({"data": binary_proto([jpeg], dim0=2)}))
    assert (code, details.split(" - ")[0]) == (invalid, "Invalid input batch size")
    code, details = _error(nhwc_server, predict_request({"data": binary_proto([jpeg, jpeg])}))
    assert (code, details) == (
        invalid,
        "Invalid input batch size - Expected: 1; Actual: 2; input name: data",
    )
    assert _error(demo_server, predict_request({"data": binary_proto([jpeg])})) == (
        invalid,
        "Received binary image input but resource not configured to accept NHWC layout",
    )
    _, gray = cv2.imencode(".png", np.zeros((50, 60), np.uint8))
    assert _error(nhwc_server, predict_request({"data": binary_proto([gray.tobytes()])})) == (
        invalid,
        "Invalid number of channels in binary input",
    )


def test_huge_announced_image_is_rejected(nhwc_server: ServerProcess) -> None:
    """A PNG header announcing 60000x60000 pixels: rejected before anything that size is allocated."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    png = b"\x89PNG\r\n\x1a\n" + chunk(
        b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    )
    png += chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    assert _error(nhwc_server, predict_request({"data": binary_proto([png])})) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Image parsing failed",
    )
    assert nhwc_server.alive


@pytest.fixture(scope="module")
def dynamic_nhwc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """An NHWC model with dynamic height and width: no resize, images must share one size."""
    root = Path(tmp_path_factory.mktemp("dyn"))
    x = ops.parameter([-1, -1, -1, 3], ov.Type.f32, name="image")
    y = ops.reduce_mean(x, ops.constant(np.array([1, 2], np.int64)), keep_dims=False)
    y.output(0).get_tensor().set_names({"mean"})
    (root / "m" / "1").mkdir(parents=True)
    ov.save_model(ov.Model([ops.result(y)], [x], "mean"), str(root / "m" / "1" / "model.xml"))
    with ServerProcess(
        "--model_name",
        "m",
        "--model_path",
        str(root / "m"),
        "--layout",
        "NHWC",
        log_path=root / "server.log",
    ) as server:
        yield server


def test_dynamic_size_keeps_resolution_and_pixels_unscaled(
    dynamic_nhwc_server: ServerProcess,
) -> None:
    img = np.full((30, 40, 3), (10, 20, 30), np.uint8)  # BGR
    _, png = cv2.imencode(".png", img)
    reply = dynamic_nhwc_server.prediction_stub().Predict(
        predict_request({"image": binary_proto([png.tobytes()])}, model="m"), timeout=30
    )
    # Pixels arrive in BGR order, 0..255 unscaled.
    assert output_array(reply.outputs["mean"]).tolist() == [[10.0, 20.0, 30.0]]
    _, other = cv2.imencode(".png", np.zeros((31, 40, 3), np.uint8))
    assert _error(
        dynamic_nhwc_server,
        predict_request({"image": binary_proto([png.tobytes(), other.tobytes()])}, model="m"),
    ) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Binary input images for this endpoint are required to have the same resolution",
    )
