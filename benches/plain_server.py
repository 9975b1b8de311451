"""The baseline: a TF Serving Predict server in plain Python (grpcio + generated protobuf classes + numpy +
OpenVINO + OpenCV), written the way a competent Python developer would without Rust.

    python -m benches.plain_server --port 9001 --model_name resnet --model_path /models/resnet \
        [--layout NHWC:NCHW] [--batch_size 8] [--nireq N] [--plugin_config '{...}']

Reasonably optimised: np.frombuffer over tensor_content (no per-element work), one
np.ascontiguousarray for transpose + cast, share_inputs=True into OpenVINO, an infer-request pool, the same
PERFORMANCE_HINT=LATENCY default as OVMS, OpenCV for JPEG decode and resize (as OVMS itself does).
"""

from __future__ import annotations

import argparse
import json
import queue
import signal
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import openvino as ov
from ovms_rs._proto.tensorflow.core.framework import tensor_pb2
from ovms_rs._proto.tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

DT_STRING = 7
NUMPY_OF_DTYPE = {
    1: np.float32,
    2: np.float64,
    3: np.int32,
    4: np.uint8,
    5: np.int16,
    6: np.int8,
    9: np.int64,
}
DTYPE_OF_NUMPY = {np.dtype(v): k for k, v in NUMPY_OF_DTYPE.items()}
MAX_MESSAGE = 1024 * 1024 * 1024


def decode_jpegs(images: list[bytes], height: int, width: int, nchw: bool) -> np.ndarray[Any, Any]:
    """OpenCV decode (BGR, as OVMS) + bilinear resize to the model's H x W + layout + float32."""
    import cv2

    decoded = []
    for data in images:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError("cannot decode image")
        if img.shape[0] != height or img.shape[1] != width:
            img = cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
        decoded.append(img)
    batch = np.stack(decoded)  # NHWC uint8
    if nchw:
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
    return batch.astype(np.float32)


class Model:
    def __init__(
        self,
        name: str,
        path: Path,
        batch_size: int | None,
        nhwc: bool,
        nireq: int,
        props: dict[str, str],
    ):
        version_dir = max(
            (p for p in path.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
        )
        self.name, self.version, self.nhwc = name, int(version_dir.name), nhwc
        core = ov.Core()
        model = core.read_model(str(version_dir / "model.xml"))
        if batch_size:
            model.reshape(
                {model.input(0).get_any_name(): [batch_size, *list(model.input(0).get_shape())[1:]]}
            )
        self.compiled = core.compile_model(model, "CPU", props)
        self.input_shapes = {i.get_any_name(): tuple(i.get_shape()) for i in self.compiled.inputs}
        self.outputs = [o.get_any_name() for o in self.compiled.outputs]
        n = nireq or int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.pool: queue.SimpleQueue[ov.InferRequest] = queue.SimpleQueue()
        for _ in range(max(n, 1)):
            self.pool.put(self.compiled.create_infer_request())

    def to_array(self, name: str, tensor: tensor_pb2.TensorProto) -> np.ndarray[Any, Any]:
        expected = self.input_shapes[name]
        if tensor.dtype == DT_STRING:
            return decode_jpegs(list(tensor.string_val), expected[2], expected[3], nchw=self.nhwc)
        shape = tuple(d.size for d in tensor.tensor_shape.dim)
        array = np.frombuffer(tensor.tensor_content, dtype=NUMPY_OF_DTYPE[tensor.dtype]).reshape(
            shape
        )
        if self.nhwc:
            array = np.ascontiguousarray(array.transpose(0, 3, 1, 2))
        if array.shape != expected:
            raise ValueError(f"Invalid input shape {array.shape}, expected {expected}")
        return array

    def infer(
        self, inputs: dict[str, np.ndarray[Any, Any]]
    ) -> list[tuple[str, np.dtype[Any], tuple[int, ...], bytes]]:
        """(name, dtype, shape, bytes) per output; the bytes are taken before the request goes back to the pool."""
        request = self.pool.get()
        try:
            request.infer(inputs, share_inputs=True)
            results = []
            for name in self.outputs:
                data = request.get_tensor(name).data
                results.append((name, data.dtype, data.shape, data.tobytes()))
            return results
        finally:
            self.pool.put(request)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, model: Model) -> None:
        self.model = model

    def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> predict_pb2.PredictResponse:
        model = self.model
        if request.model_spec.name != model.name:
            context.abort(grpc.StatusCode.NOT_FOUND, "Model with requested name is not found")
        try:
            inputs = {name: model.to_array(name, tensor) for name, tensor in request.inputs.items()}
        except (KeyError, ValueError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        outputs = model.infer(inputs)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = model.version
        for name, dtype, shape, content in outputs:
            tensor = response.outputs[name]
            tensor.dtype = DTYPE_OF_NUMPY[dtype]
            tensor.tensor_shape.dim.extend(tensor.tensor_shape.Dim(size=d) for d in shape)
            tensor.tensor_content = content
        return response


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--grpc_bind_address", default="127.0.0.1")
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_path", type=Path, required=True)
    parser.add_argument(
        "--layout", default=None, help="NHWC:NCHW to accept NHWC tensors and JPEG bytes"
    )
    parser.add_argument("--batch_size", type=int, default=None)
    parser.add_argument("--nireq", type=int, default=0)
    parser.add_argument("--plugin_config", default="{}")
    parser.add_argument("--grpc_workers", type=int, default=32)
    args = parser.parse_args(argv)
    props = {str(k): str(v) for k, v in json.loads(args.plugin_config).items()}
    props.setdefault("PERFORMANCE_HINT", "LATENCY")
    model = Model(
        args.model_name,
        args.model_path,
        args.batch_size,
        args.layout == "NHWC:NCHW",
        args.nireq,
        props,
    )
    server = grpc_server(args.grpc_workers)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(model), server
    )
    serve_until_signalled(server, args.grpc_bind_address, args.port)


def grpc_server(workers: int) -> grpc.Server:
    """grpcio's synchronous server with OVMS's 1 GB message limits."""
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
    ]
    return grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=options)


def serve_until_signalled(server: grpc.Server, bind_address: str, port: int) -> None:
    """Serves on bind_address:port until SIGTERM or SIGINT."""
    server.add_insecure_port(f"{bind_address}:{port}")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(5).wait()


if __name__ == "__main__":
    main()
