"""Warmup benchmark: the first client request's latency after a version turns AVAILABLE, against the
median of the next ones, on the demo model (efficientnet-lite0, f32 [1,3,224,224]), with no warmup,
`"warmup": "zeros"`, and a TF Serving warmup file (`assets.extra/tf_serving_warmup_requests`, one record
of the same request).

    python -m benches.warmup [--starts 3] [--next 20]

Each mode starts a fresh server `--starts` times; the client connects and asks GetModelStatus first, so
the first Predict pays for nothing but the model. Prints a Markdown table and the CPU model.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np
import ovms_rs
from ovms_rs._proto.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
from ovms_rs._proto.tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
)

from benches.stats import cpu_model
from benches.targets import exit_on_sigterm

MODEL = ovms_rs.DEMO_MODEL_NAME
MODES = ("none", "zeros", "file")


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def _masked_crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(records: list[bytes]) -> bytes:
    out = b""
    for data in records:
        length = struct.pack("<Q", len(data))
        out += length + struct.pack("<I", _masked_crc32c(length))
        out += data + struct.pack("<I", _masked_crc32c(data))
    return out


def predict_request(seed: int) -> predict_pb2.PredictRequest:
    array = np.random.default_rng(seed).random((1, 3, 224, 224), dtype=np.float32)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["data"].CopyFrom(
        tensor_pb2.TensorProto(
            dtype=1,  # type: ignore[arg-type]
            tensor_shape=tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape]
            ),
            tensor_content=array.tobytes(),
        )
    )
    return request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_start(root: Path, mode: str, n_next: int) -> tuple[float, float, float]:
    """Starts a server, waits for AVAILABLE; (first Predict ms, median of the next ms, load s)."""
    config = root / "config.json"
    repo = root / ("file" if mode == "file" else "plain")
    warmup = "file" if mode == "file" else mode
    config.write_text(
        json.dumps(
            {
                "model_config_list": [
                    {"config": {"name": MODEL, "base_path": str(repo), "warmup": warmup}}
                ]
            }
        )
    )
    port = free_port()
    started = time.monotonic()
    cmd = [sys.executable, "-m", "ovms_rs", "serve", "--config_path", str(config)]
    cmd += ["--port", str(port), "--grpc_bind_address", "127.0.0.1"]
    cmd += ["--file_system_poll_wait_seconds", "0"]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:  # the gRPC port opens once the models are AVAILABLE
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        load_s = time.monotonic() - started
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            status = get_model_status_pb2.GetModelStatusRequest()
            status.model_spec.name = MODEL
            reply = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
                status, timeout=30
            )
            assert reply.model_version_status[0].state == 30, reply
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            times = []
            for i in range(n_next + 1):
                request = predict_request(100 + i)
                t0 = time.perf_counter()
                stub.Predict(request, timeout=60)
                times.append((time.perf_counter() - t0) * 1000)
        return times[0], statistics.median(times[1:]), load_s
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--next", type=int, default=20, dest="n_next")
    args = parser.parse_args()
    exit_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="ovms_rs_warmup_") as tmp:
        root = Path(tmp)
        demo = ovms_rs.demo_dir() / MODEL / "1"
        shutil.copytree(demo, root / "plain" / "1")
        shutil.copytree(demo, root / "file" / "1")
        entry = prediction_log_pb2.PredictionLog()
        entry.predict_log.request.CopyFrom(predict_request(0))
        assets = root / "file" / "1" / "assets.extra"
        assets.mkdir()
        (assets / "tf_serving_warmup_requests").write_bytes(tfrecord([entry.SerializeToString()]))
        rows: dict[str, list[tuple[float, float, float]]] = {m: [] for m in MODES}
        for _ in range(args.starts):  # modes take turns, so drift hits them alike
            for mode in MODES:
                rows[mode].append(one_start(root, mode, args.n_next))
    print(
        f"CPU: {cpu_model()} ({len(open('/proc/cpuinfo').read().split('processor')) - 1} logical)"
    )
    print(
        f"{args.starts} server starts per mode; next = median of the {args.n_next} requests after the first\n"
    )
    print(
        "| warmup | first request (ms) | next, median (ms) | first / next | server start to AVAILABLE (s) |"
    )
    print("|---|---|---|---|---|")
    for mode in MODES:
        firsts = [r[0] for r in rows[mode]]
        nexts = [r[1] for r in rows[mode]]
        loads = [r[2] for r in rows[mode]]
        first, nxt = statistics.median(firsts), statistics.median(nexts)
        each = ", ".join(f"{f:.1f}" for f in firsts)
        print(
            f"| {mode} | {first:.1f} (each start: {each}) | {nxt:.1f} | {first / nxt:.1f}x "
            f"| {statistics.median(loads):.2f} |"
        )


if __name__ == "__main__":
    main()
