"""Every error case of COMPAT.md that applies to Predict/metadata/status: code and exact message."""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
import pytest
from helpers import DEMO, ServerProcess, predict_request, status_request, tensor_proto
from ovms_rs._proto.tensorflow_serving.apis import get_model_metadata_pb2

IMAGE = np.zeros((1, 3, 224, 224), np.float32)


def _call(fn: Any, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        fn(request, timeout=30)
    return err.value


def _predict_error(server: ServerProcess, request: Any) -> tuple[grpc.StatusCode, str]:
    e = _call(server.prediction_stub().Predict, request)
    return e.code(), e.details()


INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "inputs, model, version, code, details",
    [
        (
            {"data": tensor_proto(IMAGE)},
            "nope",
            None,
            NOT_FOUND,
            "Model with requested name is not found",
        ),
        (
            {"data": tensor_proto(IMAGE)},
            DEMO,
            7,
            NOT_FOUND,
            "Model with requested version is not found",
        ),
        ({}, DEMO, None, INVALID, "Invalid number of inputs - Expected: 1; Actual: 0"),
        (
            {"data": tensor_proto(IMAGE), "extra": tensor_proto(IMAGE)},
            DEMO,
            None,
            INVALID,
            "Invalid number of inputs - Expected: 1; Actual: 2",
        ),
        (
            {"input": tensor_proto(IMAGE)},
            DEMO,
            None,
            INVALID,
            "Missing input with specific name - Required input: data",
        ),
        (
            {"data": tensor_proto(IMAGE.astype(np.int32))},
            DEMO,
            None,
            INVALID,
            "Invalid input precision - Expected: FP32; Actual: I32; input name: data",
        ),
        (
            {"data": tensor_proto(np.zeros((1, 3, 224), np.float32))},
            DEMO,
            None,
            INVALID,
            "Invalid number of shape dimensions - Expected: (1,3,224,224); Actual: (1,3,224); input name: data",
        ),
        (
            {"data": tensor_proto(np.zeros((2, 3, 224, 224), np.float32))},
            DEMO,
            None,
            INVALID,
            "Invalid input batch size - Expected: 1; Actual: 2; input name: data",
        ),
        (
            {"data": tensor_proto(np.zeros((1, 3, 224, 225), np.float32))},
            DEMO,
            None,
            INVALID,
            "Invalid input shape - Expected: (1,3,224,224); Actual: (1,3,224,225); input name: data",
        ),
        (
            {"data": tensor_proto(np.zeros((1, 3, 0, 224), np.float32))},
            DEMO,
            None,
            INVALID,
            "Invalid input shape - Negative or zero dimension size is not acceptable: (1,3,0,224); input name: data",
        ),
    ],
    ids=[
        "unknown-model",
        "unknown-version",
        "no-inputs",
        "too-many-inputs",
        "wrong-name",
        "wrong-dtype",
        "wrong-rank",
        "wrong-batch",
        "wrong-shape",
        "zero-dim",
    ],
)
def test_predict_errors(
    demo_server: ServerProcess,
    inputs: Any,
    model: str,
    version: int | None,
    code: grpc.StatusCode,
    details: str,
) -> None:
    assert _predict_error(demo_server, predict_request(inputs, model=model, version=version)) == (
        code,
        details,
    )


def test_negative_dim(demo_server: ServerProcess) -> None:
    t = tensor_proto(IMAGE)
    t.tensor_shape.dim[1].size = -3
    assert _predict_error(demo_server, predict_request({"data": t})) == (
        INVALID,
        "Invalid input shape - Negative or zero dimension size is not acceptable: (1,-3,224,224); input name: data",
    )


def test_tensor_content_of_wrong_size(demo_server: ServerProcess) -> None:
    t = tensor_proto(IMAGE)
    t.tensor_content = t.tensor_content[:-4]
    assert _predict_error(demo_server, predict_request({"data": t})) == (
        INVALID,
        "Invalid content size of tensor proto - Expected: 602112 bytes; Actual: 602108 bytes; input name: data",
    )
    t.ClearField("tensor_content")
    assert _predict_error(demo_server, predict_request({"data": t})) == (
        INVALID,
        "Invalid content size of tensor proto - Expected: 602112 bytes; Actual: 0 bytes; input name: data",
    )


def test_typed_value_count(demo_server: ServerProcess) -> None:
    t = tensor_proto(IMAGE)
    t.ClearField("tensor_content")
    t.float_val.extend([1.0, 2.0, 3.0])
    assert _predict_error(demo_server, predict_request({"data": t})) == (
        INVALID,
        "Invalid number of values in tensor proto container - Expected: 150528; Actual: 3; input name: data",
    )


def test_metadata_and_status_errors(demo_server: ServerProcess) -> None:
    meta = demo_server.prediction_stub().GetModelMetadata
    req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    e = _call(meta, req)
    assert (e.code(), e.details()) == (INVALID, "model_spec missing in request")
    req.model_spec.name = DEMO
    req.ClearField("metadata_field")
    req.metadata_field.append("bogus")
    e = _call(meta, req)
    assert (e.code(), e.details()) == (INVALID, "Invalid signature name")
    req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    req.model_spec.name = "nope"
    e = _call(meta, req)
    assert (e.code(), e.details()) == (NOT_FOUND, "Model with requested name is not found")
    req.model_spec.name = DEMO
    req.model_spec.version.value = 3
    e = _call(meta, req)
    assert (e.code(), e.details()) == (NOT_FOUND, "Model with requested version is not found")

    status = demo_server.model_stub().GetModelStatus
    e = _call(status, status_request("nope"))
    assert (e.code(), e.details()) == (NOT_FOUND, "Model with requested name is not found")
    e = _call(status, status_request(DEMO, 2))
    assert (e.code(), e.details()) == (NOT_FOUND, "Model with requested version is not found")
