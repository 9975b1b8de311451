"""Helpers of the overload suites (`test_overload_*.py`): the compiled gRPC client (benches/loadgen),
a well-behaved client's latency while something else attacks, and figures printed for RELIABILITY.md."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from helpers import DEMO, ServerProcess, predict_request, status_request, tensor_proto
from ovms_rs._proto.tensorflow_serving.apis import model_service_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
PREDICT = "/tensorflow.serving.PredictionService/Predict"


def loadgen_binary() -> Path:
    """benches/loadgen, built (release) by cargo: a no-op when up to date."""
    sys.path.insert(0, str(ROOT))
    try:
        from benches.loadgen_native import build
    finally:
        sys.path.remove(str(ROOT))
    return build()


def wrong_size_request(size: int) -> bytes:
    """A demo-model Predict of about `size` bytes whose tensor_content has the wrong size: the server
    reads all of it and answers INVALID_ARGUMENT (no inference), so only the transport is measured."""
    req = predict_request({"data": tensor_proto(np.zeros((1, 3, 224, 224), np.float32))})
    req.inputs["data"].tensor_content = bytes(size)
    return req.SerializeToString()  # type: ignore[no-any-return]


def blast(
    server: ServerProcess, payload_file: Path, concurrency: int, count: int, seconds: float
) -> dict[str, Any]:
    """`count` calls of the one request in `payload_file` (u32 LE length + bytes) on `concurrency`
    connections at once from the compiled client, which shares one copy of the request between them.
    Returns its JSON result (`outcomes`: calls by gRPC status code)."""
    proc = subprocess.Popen(
        [str(loadgen_binary())], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:

        def say(line: str) -> str:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            return proc.stdout.readline().strip()

        assert say(f"load big {payload_file}") == "ok 1"
        ready = say(f"run big 127.0.0.1:{server.port} {PREDICT} {concurrency} {count} {seconds} 0")
        assert ready.startswith("ready"), ready
        result: dict[str, Any] = json.loads(say("go"))
        say("stop")
        return result
    finally:
        proc.stdin.close()
        proc.stdout.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def write_payload(path: Path, message: bytes) -> Path:
    with open(path, "wb") as out:
        out.write(struct.pack("<I", len(message)))
        out.write(message)
    return path


class LatencyProbe:
    """A well-behaved client in a thread: small GetModelStatus calls one after another on its own
    channel; `latencies` (s) of the ones that succeeded, `failures` of the others."""

    def __init__(self, server: ServerProcess, interval: float = 0.01) -> None:
        self.channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        stub = model_service_pb2_grpc.ModelServiceStub(self.channel)
        request = status_request(DEMO)
        self._call: Callable[[], object] = lambda: stub.GetModelStatus(request, timeout=10)
        self.interval = interval
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                self._call()
                self.latencies.append(time.perf_counter() - started)
            except grpc.RpcError as e:
                self.failures.append(f"{e.code()}: {e.details()}")
            self._stop.wait(self.interval)

    def __enter__(self) -> LatencyProbe:
        self._call()  # connected before anything is measured
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        self.channel.close()

    def percentiles(self) -> tuple[float, float]:
        """(p50, p99) in milliseconds."""
        if not self.latencies:
            return (float("nan"), float("nan"))
        ms = np.array(self.latencies) * 1000
        return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def baseline(server: ServerProcess, seconds: float = 1.5) -> LatencyProbe:
    """The probe's latencies with nothing else going on."""
    with LatencyProbe(server) as probe:
        time.sleep(seconds)
    return probe


def report(name: str, **figures: object) -> None:
    """One line of figures for RELIABILITY.md (pytest -s shows it; OVMS_RS_FIGURES=path appends it)."""
    line = json.dumps({"test": name, **figures}, default=str)
    print(line)
    target = os.environ.get("OVMS_RS_FIGURES")
    if target:
        with open(target, "a") as out:
            out.write(line + "\n")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"
