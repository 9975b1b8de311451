"""The four workloads of the load benchmark: which model, how each server is started, what clients send.

(a) demo classifier, [1,3,224,224] float32 in tensor_content
(b) the same model behind an NHWC view, one JPEG per request in string_val (binary input)
(c) a tiny model (a few ops) with the same 602 KB input: server overhead dominates
(d) the demo classifier reshaped to batch 8, [8,3,224,224] float32
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import ovms_rs
from ovms_rs._proto.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
from ovms_rs._proto.tensorflow_serving.apis import predict_pb2

DEMO_MODEL = ovms_rs.demo_dir() / ovms_rs.DEMO_MODEL_NAME
DEMO_IMAGES = ovms_rs.demo_dir() / "data" / "images"
DT_FLOAT = 1
DT_STRING = 7
TINY_MODEL_NAME = "tiny"


@dataclass(frozen=True)
class Workload:
    key: str  # "a".."d"
    title: str
    model_name: str
    model_path: Path  # a repository: <model_path>/1/model.xml
    batch: int  # the model's batch size (1 unless reshaped)
    binary: bool  # JPEG bytes in string_val, server-side decode + NHWC->NCHW
    # Extra flags for both servers (ovms_rs's CLI flag names; the plain server takes the same ones).
    server_args: tuple[str, ...] = field(default=())

    def serve_args(self) -> list[str]:
        """The flags that serve this workload's model: its name, its repository, `server_args`."""
        return [
            "--model_name",
            self.model_name,
            "--model_path",
            str(self.model_path),
            *self.server_args,
        ]

    def requests(self, seed: int = 0) -> list[bytes]:
        """Serialized PredictRequests, built once; the load generator cycles through them."""
        if self.binary:
            return [jpeg_request(self.model_name, data) for data in demo_jpegs()]
        rng = np.random.default_rng(seed)
        pixels = rng.uniform(0, 255, size=(self.batch, 3, 224, 224)).astype(np.float32)
        return [tensor_request(self.model_name, pixels)]

    def input_array(self, seed: int = 0) -> np.ndarray[Any, Any]:
        """What the in-process target infers on: the model's own input, already decoded."""
        rng = np.random.default_rng(seed)
        return rng.uniform(0, 255, size=(self.batch, 3, 224, 224)).astype(np.float32)


def demo_jpegs() -> list[bytes]:
    return [p.read_bytes() for p in sorted(DEMO_IMAGES.glob("*.jpeg"))]


def demo_photo_tensor() -> np.ndarray[Any, Any]:
    """A photo shipped with the demo model as that model takes it: [1,3,224,224] f32, BGR pixels
    0..255 (bilinear resize), what OVMS's example clients and ours send. Its values are integers, which
    json.dumps writes as `78.0` (~1.0 MB as a row-format body; uniform floats write 17 digits, ~2.9 MB)."""
    from ovms_rs.clients.images import read_bgr, to_nchw

    return to_nchw(read_bgr(DEMO_IMAGES / "airliner.jpeg", (224, 224)))


def tensor_request(model_name: str, array: np.ndarray[Any, Any]) -> bytes:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    tensor = request.inputs["data"]
    tensor.dtype = DT_FLOAT
    tensor.tensor_shape.CopyFrom(
        tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape]
        )
    )
    tensor.tensor_content = np.ascontiguousarray(array).tobytes()
    data: bytes = request.SerializeToString()
    return data


def jpeg_request(model_name: str, jpeg: bytes) -> bytes:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    tensor: tensor_pb2.TensorProto = request.inputs["data"]
    tensor.dtype = DT_STRING  # type: ignore[assignment]
    tensor.tensor_shape.dim.add(size=1)
    tensor.string_val.append(jpeg)
    data: bytes = request.SerializeToString()
    return data


def build_tiny_model(repository: Path) -> Path:
    """data [1,3,224,224] f32 -> ReduceMean over H,W -> MatMul [3,1000] -> Softmax -> prob [1,1000].

    Saved as <repository>/1/model.xml; returns the repository."""
    import openvino as ov
    import openvino.opset13 as ops

    data = ops.parameter([1, 3, 224, 224], np.float32, name="data")
    data.output(0).set_names({"data"})
    mean = ops.reduce_mean(data, ops.constant(np.array([2, 3], np.int64)), keep_dims=False)
    weights = np.random.default_rng(0).standard_normal((3, 1000)).astype(np.float32) / 255.0
    logits = ops.matmul(mean, ops.constant(weights), transpose_a=False, transpose_b=False)
    prob = ops.softmax(logits, 1)
    prob.output(0).set_names({"prob"})
    model = ov.Model([prob], [data], TINY_MODEL_NAME)
    (repository / "1").mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(repository / "1" / "model.xml"))
    return repository


def all_workloads(tmp: Path) -> dict[str, Workload]:
    demo = ovms_rs.DEMO_MODEL_NAME
    return {
        "a": Workload(
            "a", "demo classifier, f32 tensor_content [1,3,224,224]", demo, DEMO_MODEL, 1, False
        ),
        "b": Workload(
            "b",
            "demo classifier, JPEG in string_val (NHWC:NCHW)",
            demo,
            DEMO_MODEL,
            1,
            True,
            ("--layout", "NHWC:NCHW"),
        ),
        "c": Workload(
            "c", "tiny model (4 ops), f32 [1,3,224,224]", TINY_MODEL_NAME, tmp / "tiny", 1, False
        ),
        "d": Workload(
            "d",
            "demo classifier at batch 8, f32 [8,3,224,224]",
            demo,
            DEMO_MODEL,
            8,
            False,
            ("--batch_size", "8"),
        ),
    }
