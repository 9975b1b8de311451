"""Model repositories made on the fly for tests: tiny real OpenVINO models whose answer tells the version."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import openvino as ov
import openvino.opset13 as ops
from helpers import (
    DEMO_MODEL_PATH,
    ServerProcess,
    output_array,
    predict_request,
    status_request,
    tensor_proto,
)


def tiny_model(version_dir: Path, scale: float, shape: list[int] | None = None) -> Path:
    """y = x * scale, input `x` (default [1,4] f32), output `y`: version n uses scale n."""
    x = ops.parameter(shape or [1, 4], ov.Type.f32, name="x")
    y = ops.multiply(x, ops.constant(np.array(scale, np.float32)))
    y.output(0).get_tensor().set_names({"y"})
    version_dir.mkdir(parents=True, exist_ok=True)
    path = version_dir / "model.xml"
    ov.save_model(ov.Model([ops.result(y)], [x], "tiny"), str(path))
    return path


def tiny_repo(root: Path, versions: list[int], shape: list[int] | None = None) -> Path:
    for v in versions:
        tiny_model(root / str(v), float(v), shape)
    return root


def demo_repo(root: Path, versions: list[int]) -> Path:
    for v in versions:
        shutil.copytree(DEMO_MODEL_PATH / "1", root / str(v))
    return root


def write_config(path: Path, models: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"model_config_list": [{"config": m} for m in models]}, indent=1))
    return path


def ask_tiny(
    server: ServerProcess, model: str, version: int | None = None, batch: int = 1
) -> float:
    """Predict on a tiny model; returns the scale that answered (= the version that served it)."""
    x = np.ones((batch, 4), np.float32)
    reply = server.prediction_stub().Predict(
        predict_request({"x": tensor_proto(x)}, model=model, version=version), timeout=30
    )
    return float(output_array(reply.outputs["y"]).ravel()[0])


def states(server: ServerProcess, model: str) -> dict[int, int]:
    """{version: state} from GetModelStatus."""
    try:
        reply = server.model_stub().GetModelStatus(status_request(model), timeout=10)
    except grpc.RpcError:
        return {}
    return {s.version: s.state for s in reply.model_version_status}


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


AVAILABLE, END, LOADING = 30, 50, 20
