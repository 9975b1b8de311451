"""--shape / --batch_size (static, dynamic, ranges, auto), mapping_config.json, and real ONNX models."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import grpc
import numpy as np
import pytest
from helpers import ServerProcess, output_array, predict_request, tensor_proto
from model_repo import ask_tiny, tiny_repo
from ovms_rs._proto.tensorflow_serving.apis import get_model_metadata_pb2


def _signature(server: ServerProcess, model: str) -> dict[str, dict[str, list[int]]]:
    req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    req.model_spec.name = model
    reply = server.prediction_stub().GetModelMetadata(req, timeout=30)
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    reply.metadata["signature_def"].Unpack(sig_map)
    sig = sig_map.signature_def["serving_default"]
    return {
        "inputs": {k: [d.size for d in v.tensor_shape.dim] for k, v in sig.inputs.items()},
        "outputs": {k: [d.size for d in v.tensor_shape.dim] for k, v in sig.outputs.items()},
    }


def test_static_shape_and_batch(tmp_path: Path) -> None:
    repo = tiny_repo(tmp_path / "tiny", [1])
    with ServerProcess(
        "--model_name", "tiny", "--model_path", str(repo), "--shape", "(2,4)"
    ) as server:
        assert _signature(server, "tiny")["inputs"] == {"x": [2, 4]}
        assert ask_tiny(server, "tiny", batch=2) == 1
    with ServerProcess(
        "--model_name", "tiny", "--model_path", str(repo), "--batch_size", "3"
    ) as server:
        assert _signature(server, "tiny")["inputs"] == {"x": [3, 4]}
        assert ask_tiny(server, "tiny", batch=3) == 1


def test_dynamic_batch_and_range(tmp_path: Path) -> None:
    repo = tiny_repo(tmp_path / "tiny", [1])
    with ServerProcess(
        "--model_name", "tiny", "--model_path", str(repo), "--batch_size", "-1"
    ) as server:
        assert _signature(server, "tiny")["inputs"] == {"x": [-1, 4]}
        for batch in (1, 5):
            assert ask_tiny(server, "tiny", batch=batch) == 1
    with ServerProcess(
        "--model_name", "tiny", "--model_path", str(repo), "--batch_size", "1:3"
    ) as server:
        assert ask_tiny(server, "tiny", batch=3) == 1
        with pytest.raises(grpc.RpcError) as err:
            ask_tiny(server, "tiny", batch=4)
        assert (err.value.code(), err.value.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "Invalid input batch size - Expected: 1:3; Actual: 4; input name: x",
        )


def test_auto_batch_and_shape(tmp_path: Path) -> None:
    repo = tiny_repo(tmp_path / "tiny", [1])
    with ServerProcess(
        "--model_name", "tiny", "--model_path", str(repo), "--batch_size", "auto"
    ) as server:
        assert ask_tiny(server, "tiny", batch=3) == 1
        assert _signature(server, "tiny")["inputs"] == {"x": [3, 4]}
        assert ask_tiny(server, "tiny", batch=1) == 1
        # batch auto does not reshape other dimensions
        reply_err = _predict_error(server, "tiny", np.ones((1, 5), np.float32))
        assert reply_err[0] == grpc.StatusCode.INVALID_ARGUMENT
    with ServerProcess(
        "--model_name", "tiny", "--model_path", str(repo), "--shape", "auto"
    ) as server:
        x = np.ones((2, 6), np.float32)
        reply = server.prediction_stub().Predict(
            predict_request({"x": tensor_proto(x)}, model="tiny"), timeout=30
        )
        assert output_array(reply.outputs["y"]).shape == (2, 6)
        assert _signature(server, "tiny")["inputs"] == {"x": [2, 6]}


def _predict_error(server: ServerProcess, model: str, x: np.ndarray) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        server.prediction_stub().Predict(
            predict_request({"x": tensor_proto(x)}, model=model), timeout=30
        )
    return err.value.code(), err.value.details()


def test_mapping_config_renames_inputs_and_outputs(tmp_path: Path) -> None:
    repo = tiny_repo(tmp_path / "tiny", [1])
    (repo / "1" / "mapping_config.json").write_text(
        json.dumps({"inputs": {"x": "pixels"}, "outputs": {"y": "scores"}})
    )
    with ServerProcess("--model_name", "tiny", "--model_path", str(repo)) as server:
        assert _signature(server, "tiny") == {
            "inputs": {"pixels": [1, 4]},
            "outputs": {"scores": [1, 4]},
        }
        x = np.full((1, 4), 2.0, np.float32)
        reply = server.prediction_stub().Predict(
            predict_request({"pixels": tensor_proto(x)}, model="tiny"), timeout=30
        )
        assert output_array(reply.outputs["scores"]).tolist() == [[2.0, 2.0, 2.0, 2.0]]
        _, details = _predict_error(server, "tiny", x)
        assert details == "Missing input with specific name - Required input: pixels"


@pytest.fixture(scope="module")
def ppocr_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real ONNX models (PP-OCR, Apache-2.0) from the rapidocr-onnxruntime wheel, fetched without deps."""
    where = tmp_path_factory.mktemp("ppocr")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "-d",
            str(where),
            "rapidocr-onnxruntime==1.4.4",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    wheels = list(where.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        pytest.skip(f"cannot download rapidocr-onnxruntime: {result.stderr[-300:]}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name in wheel.namelist():
            if name.endswith(".onnx") and ("cls" in name or "det" in name):
                target = where / ("cls" if "cls" in name else "det") / "1" / "model.onnx"
                target.parent.mkdir(parents=True)
                target.write_bytes(wheel.read(name))
    return where


def test_real_onnx_models_with_dynamic_shapes(ppocr_models: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "model_config_list": [
                    {"config": {"name": "cls", "base_path": str(ppocr_models / "cls")}},
                    {"config": {"name": "det", "base_path": str(ppocr_models / "det")}},
                ]
            }
        )
    )
    with ServerProcess("--config_path", str(config)) as server:
        sig = _signature(server, "cls")
        assert sig["inputs"] == {"x": [-1, 3, -1, -1]}
        stub = server.prediction_stub()
        rng = np.random.default_rng(0)
        x = rng.random((2, 3, 48, 192), dtype=np.float32)
        reply = stub.Predict(predict_request({"x": tensor_proto(x)}, model="cls"), timeout=60)
        (out,) = reply.outputs.values()
        probs = output_array(out)
        assert probs.shape == (2, 2)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)
        x = rng.random((1, 3, 64, 96), dtype=np.float32)
        reply = stub.Predict(predict_request({"x": tensor_proto(x)}, model="det"), timeout=60)
        (out,) = reply.outputs.values()
        assert output_array(out).shape == (1, 1, 64, 96)
