"""Unchanged third-party clients against the real server, each in its own process (their generated protos
register the same message names as ours): ovmsclient, and TF Serving's own Python stubs
(tensorflow-serving-api, with tensorflow's `make_tensor_proto` / `make_ndarray`)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest
from helpers import DEMO, ServerProcess, env_without_proxy, labeled_photos

pytest.importorskip("ovmsclient")
pytest.importorskip("cv2")

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import cv2, numpy as np, ovmsclient
    address, model, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
    client = ovmsclient.make_grpc_client(address)
    status = client.get_model_status(model_name=model)
    meta = client.get_model_metadata(model_name=model)
    classes = []
    for p in paths:
        img = cv2.resize(cv2.imread(p), (224, 224), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        out = client.predict(inputs={"data": img.transpose(2, 0, 1)[None]}, model_name=model)
        classes.append(int(np.argmax(out)))
    print(json.dumps({"status": {str(k): v for k, v in status.items()}, "meta": meta, "classes": classes}))
    """
)


def test_ovmsclient(demo_server: ServerProcess) -> None:
    photos = labeled_photos()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            f"127.0.0.1:{demo_server.port}",
            DEMO,
            *[str(p) for p, _ in photos],
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env_without_proxy(),
    )
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["status"] == {"1": {"state": "AVAILABLE", "error_code": 0, "error_message": "OK"}}
    assert got["meta"]["model_version"] == 1
    assert got["meta"]["inputs"]["data"] == {"shape": [1, 3, 224, 224], "dtype": "DT_FLOAT"}
    assert got["meta"]["outputs"]["prob"] == {"shape": [1, 1000], "dtype": "DT_FLOAT"}
    assert got["classes"] == [label for _, label in photos]


TFS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import cv2, grpc, numpy as np, tensorflow as tf
    from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2
    from tensorflow_serving.apis import model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc
    address, model, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
    channel = grpc.insecure_channel(address)
    prediction = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    status = models.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(model_spec={"name": model}), 10)
    meta = prediction.GetModelMetadata(get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec={"name": model}, metadata_field=["signature_def"]), 10)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    meta.metadata["signature_def"].Unpack(signatures)
    signature = signatures.signature_def["serving_default"]
    def spec(tensors):
        return {k: [tf.dtypes.as_dtype(v.dtype).name, [d.size for d in v.tensor_shape.dim]]
                for k, v in tensors.items()}
    classes = []
    for p in paths:
        img = cv2.resize(cv2.imread(p), (224, 224), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model
        request.inputs["data"].CopyFrom(tf.make_tensor_proto(img.transpose(2, 0, 1)[None]))
        reply = prediction.Predict(request, 30)
        classes.append(int(np.argmax(tf.make_ndarray(reply.outputs["prob"]))))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "no-such-model"
    try:
        prediction.Predict(request, 10)
        missing = None
    except grpc.RpcError as e:
        missing = [e.code().name, e.details()]
    print(json.dumps({
        "status": [[v.version, get_model_status_pb2.ModelVersionStatus.State.Name(v.state),
                    v.status.error_code] for v in status.model_version_status],
        "version": meta.model_spec.version.value,
        "inputs": spec(signature.inputs), "outputs": spec(signature.outputs),
        "classes": classes, "missing": missing}))
    """
)


def test_tensorflow_serving_api(demo_server: ServerProcess) -> None:
    # find_spec, not importorskip: importing its protos here would clash with ours.
    if importlib.util.find_spec("tensorflow_serving") is None:
        if os.environ.get("OVMS_RS_REQUIRE_TFS_API"):
            pytest.fail("tensorflow-serving-api is required here (scripts/test.sh installs it)")
        pytest.skip("tensorflow-serving-api is not installed (scripts/test.sh installs it)")
    photos = labeled_photos()
    env = env_without_proxy() | {"TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            TFS_SCRIPT,
            f"127.0.0.1:{demo_server.port}",
            DEMO,
            *[str(p) for p, _ in photos],
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["status"] == [[1, "AVAILABLE", 0]]
    assert got["version"] == 1
    assert got["inputs"] == {"data": ["float32", [1, 3, 224, 224]]}
    assert got["outputs"] == {"prob": ["float32", [1, 1000]]}
    assert got["classes"] == [label for _, label in photos]
    assert got["missing"] == ["NOT_FOUND", "Model with requested name is not found"]
