"""REST fixtures: real servers with --rest_port on 127.0.0.1, and a tiny two-input, two-output model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openvino as ov
import openvino.opset13 as ops
import pytest
from helpers import DEMO, DEMO_MODEL_PATH, ServerProcess


@pytest.fixture(scope="session")
def rest_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The demo model, gRPC and REST."""
    log = Path(tmp_path_factory.mktemp("rest")) / "server.log"
    with ServerProcess(log_path=log, rest=True) as server:
        yield server


@pytest.fixture(scope="session")
def rest_nhwc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The demo model accepting NHWC and JPEG/PNG (b64) inputs."""
    log = Path(tmp_path_factory.mktemp("rest_nhwc")) / "server.log"
    args = ["--model_name", DEMO, "--model_path", str(DEMO_MODEL_PATH), "--layout", "NHWC:NCHW"]
    with ServerProcess(*args, log_path=log, rest=True) as server:
        yield server


def pair_model(version_dir: Path) -> None:
    """Inputs a, b [-1, 2] f32 (dynamic batch); outputs sum = a + b [-1, 2], prod = a * b [-1, 2]."""
    a = ops.parameter([-1, 2], ov.Type.f32, name="a")
    b = ops.parameter([-1, 2], ov.Type.f32, name="b")
    total = ops.add(a, b)
    total.output(0).get_tensor().set_names({"sum"})
    prod = ops.multiply(a, b)
    prod.output(0).get_tensor().set_names({"prod"})
    version_dir.mkdir(parents=True, exist_ok=True)
    model = ov.Model([ops.result(total), ops.result(prod)], [a, b], "pair")
    ov.save_model(model, str(version_dir / "model.xml"))


@pytest.fixture(scope="session")
def pair_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = Path(tmp_path_factory.mktemp("pair"))
    pair_model(root / "pair" / "1")
    args = ["--model_name", "pair", "--model_path", str(root / "pair")]
    with ServerProcess(*args, log_path=root / "server.log", rest=True) as server:
        yield server
