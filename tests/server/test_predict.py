"""Predict on the demo model through the project's stubs: right answers, all dtypes, output_filter."""

from __future__ import annotations

import threading

import grpc
import numpy as np
import pytest
from helpers import (
    DEMO,
    ServerProcess,
    labeled_photos,
    output_array,
    photo_nchw,
    predict_request,
    tensor_proto,
)

pytest.importorskip("cv2")


def test_ten_photos_are_classified_correctly(demo_server: ServerProcess) -> None:
    stub = demo_server.prediction_stub()
    for path, label in labeled_photos():
        reply = stub.Predict(predict_request({"data": tensor_proto(photo_nchw(path))}), timeout=30)
        prob = output_array(reply.outputs["prob"])
        assert prob.shape == (1, 1000)
        assert int(prob.argmax()) == label, path.name
        assert reply.model_spec.name == DEMO
        assert reply.model_spec.version.value == 1


def test_explicit_version_and_output_filter(demo_server: ServerProcess) -> None:
    stub = demo_server.prediction_stub()
    path, label = labeled_photos()[0]
    req = predict_request(
        {"data": tensor_proto(photo_nchw(path))}, version=1, output_filter=["prob"]
    )
    reply = stub.Predict(req, timeout=30)
    assert list(reply.outputs) == ["prob"]
    assert int(output_array(reply.outputs["prob"]).argmax()) == label


def test_unknown_output_filter_is_invalid_argument(demo_server: ServerProcess) -> None:
    stub = demo_server.prediction_stub()
    req = predict_request(
        {"data": tensor_proto(np.zeros((1, 3, 224, 224), np.float32))}, output_filter=["nope"]
    )
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(req, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "nope" in err.value.details()


def test_float_val_gives_the_same_answer_as_tensor_content(demo_server: ServerProcess) -> None:
    stub = demo_server.prediction_stub()
    path, label = labeled_photos()[1]
    x = photo_nchw(path)
    t = tensor_proto(x)
    t.ClearField("tensor_content")
    t.float_val.extend(x.ravel().tolist())
    reply = stub.Predict(predict_request({"data": t}), timeout=30)
    assert int(output_array(reply.outputs["prob"]).argmax()) == label


def test_half_val_needs_fp16_model_so_precision_is_checked(demo_server: ServerProcess) -> None:
    stub = demo_server.prediction_stub()
    t = tensor_proto(np.zeros((1, 3, 224, 224), np.float16))
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(predict_request({"data": t}), timeout=30)
    assert err.value.details() == (
        "Invalid input precision - Expected: FP32; Actual: FP16; input name: data"
    )


def test_concurrent_requests_all_answered(demo_server: ServerProcess) -> None:
    stub = demo_server.prediction_stub()
    photos = labeled_photos()
    inputs = [(tensor_proto(photo_nchw(p)), label) for p, label in photos]
    errors: list[str] = []

    def worker(offset: int) -> None:
        for i in range(10):
            t, label = inputs[(i + offset) % len(inputs)]
            reply = stub.Predict(predict_request({"data": t}), timeout=60)
            if int(output_array(reply.outputs["prob"]).argmax()) != label:
                errors.append(f"wrong class in worker {offset}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors
    assert not any(th.is_alive() for th in threads)


def test_nhwc_layout_serves_nhwc_tensors(nhwc_server: ServerProcess) -> None:
    stub = nhwc_server.prediction_stub()
    for path, label in labeled_photos()[:3]:
        nhwc = photo_nchw(path).transpose(0, 2, 3, 1)
        reply = stub.Predict(predict_request({"data": tensor_proto(nhwc)}), timeout=30)
        assert int(output_array(reply.outputs["prob"]).argmax()) == label
