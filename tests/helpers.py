"""Test helpers: a real server in a subprocess on 127.0.0.1, and request builders over the project's stubs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np
import ovms_rs
from ovms_rs import dtypes
from ovms_rs._proto.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
from ovms_rs._proto.tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

if TYPE_CHECKING:
    from typing_extensions import Self

DEMO = ovms_rs.DEMO_MODEL_NAME
DEMO_DATA = ovms_rs.demo_dir() / "data"
DEMO_MODEL_PATH = ovms_rs.demo_dir() / DEMO
MAX_MESSAGE = 1024 * 1024 * 1024

# Wire dtype <-> numpy: the package's one table (ovms_rs.dtypes, checked against Rust's).
NUMPY_OF_DTYPE = {d.wire: d.numpy for d in dtypes.BY_NUMPY.values()}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """`python -m ovms_rs serve ...` on 127.0.0.1 and a free port, ready when start() returns."""

    def __init__(self, *args: str, log_path: Path | None = None, rest: bool = False) -> None:
        self.port = free_port()
        self.args = ["--port", str(self.port), "--grpc_bind_address", "127.0.0.1", *args]
        # With `rest`, the REST API too, on its own free port (`rest_url`).
        self.rest_port = free_port() if rest else 0
        if rest:
            self.args += ["--rest_port", str(self.rest_port), "--rest_bind_address", "127.0.0.1"]
        self.rest_url = f"http://127.0.0.1:{self.rest_port}"
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.channel: grpc.Channel | None = None

    def start(self, timeout: float = 120.0) -> Self:
        if self.log_path is not None:
            with open(self.log_path, "wb") as out:  # the child keeps its own copy of the descriptor
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "ovms_rs", "serve", *self.args],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
        else:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ovms_rs", "serve", *self.args],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        self.channel = self.connect()
        # The gRPC port is bound once the models are loaded, so it accepting a connection means ready.
        # (Not grpc.channel_ready_future: its connectivity-polling thread outlives the future and raises
        # when the channel is closed soon after, which pytest reports as an unhandled thread exception.)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start in {timeout}s: {self.log()}")

    def connect(self) -> grpc.Channel:
        """The test process's channel to the server (subclasses change how it connects)."""
        return grpc.insecure_channel(
            f"127.0.0.1:{self.port}",
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
            ],
        )

    def log(self) -> str:
        return (
            self.log_path.read_text(errors="replace")
            if self.log_path and self.log_path.exists()
            else ""
        )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def prediction_stub(self) -> prediction_service_pb2_grpc.PredictionServiceStub:
        assert self.channel is not None
        return prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def model_stub(self) -> model_service_pb2_grpc.ModelServiceStub:
        assert self.channel is not None
        return model_service_pb2_grpc.ModelServiceStub(self.channel)

    def stop(self) -> int | None:
        if self.channel is not None:
            self.channel.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tensor_proto(array: np.ndarray[Any, Any], dtype: int | None = None) -> tensor_pb2.TensorProto:
    """A TensorProto with the array in tensor_content (as ovmsclient and OVMS's clients send it)."""
    array = np.ascontiguousarray(array)
    return tensor_pb2.TensorProto(
        dtype=dtype if dtype is not None else dtypes.BY_NUMPY[array.dtype].wire,  # type: ignore[arg-type]
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in array.shape]
        ),
        tensor_content=array.tobytes(),
    )


def predict_request(
    inputs: dict[str, tensor_pb2.TensorProto],
    model: str = DEMO,
    version: int | None = None,
    output_filter: list[str] | None = None,
) -> predict_pb2.PredictRequest:
    req = predict_pb2.PredictRequest()
    req.model_spec.name = model
    if version is not None:
        req.model_spec.version.value = version
    for name, t in inputs.items():
        req.inputs[name].CopyFrom(t)
    req.output_filter.extend(output_filter or [])
    return req


def output_array(tensor: tensor_pb2.TensorProto) -> np.ndarray[Any, Any]:
    dtype = NUMPY_OF_DTYPE[tensor.dtype]
    shape = [d.size for d in tensor.tensor_shape.dim]
    return np.frombuffer(tensor.tensor_content, dtype=dtype).reshape(shape)


def status_request(
    model: str, version: int | None = None
) -> get_model_status_pb2.GetModelStatusRequest:
    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = model
    if version is not None:
        req.model_spec.version.value = version
    return req


def labeled_photos() -> list[tuple[Path, int]]:
    """The ten demo photos with their ImageNet class ids."""
    lines = (DEMO_DATA / "input_images.txt").read_text().split("\n")
    return [(DEMO_DATA / p, int(c)) for p, c in (line.split() for line in lines if line.strip())]


def photo_nchw(path: Path) -> np.ndarray[Any, Any]:
    """[1,3,224,224] float32 BGR 0..255, bilinear resize: what OVMS's example clients send."""
    import cv2

    img = cv2.imread(str(path))
    assert img is not None, path
    img = cv2.resize(img, (224, 224), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    return img.transpose(2, 0, 1)[np.newaxis]


def env_without_proxy() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "grpc_proxy"):
        env.pop(key, None)
    return env
