"""The physical limit: the same model run in-process with OpenVINO (same device, hint, number of infer
requests and CPU pinning as the servers), no network, no serialization.

Runs as a child process (pinned with taskset like the servers) that answers JSON lines on stdin/stdout:
  {"cmd": "load", "model_path": ..., "batch": 1, "nireq": 0, "plugin_config": {...}}  -> {"nireq": n}
  {"cmd": "run", "concurrency": c, "count": n, "seconds": s, "warmup": w}           -> point result
  {"cmd": "async", "seconds": s, "warmup": w}   -> point result of OpenVINO's AsyncInferQueue (nireq jobs)
  {"cmd": "decode", "seconds": s}   -> per-image cost of both JPEG paths (ovms_rs's Rust one, OpenCV's)
Closed loop: `concurrency` threads, each taking an infer request from the pool, setting the (already
decoded, shared) input, inferring and copying the outputs out, as a server's worker would. The pool hands
requests over first come, first served, so latency percentiles at concurrency > nireq are the ideal ones
(about concurrency x inference time), not those of threads barging past each other.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from .stats import cpu_seconds, rss_bytes


class FifoPool:
    """Infer requests handed to waiting threads in arrival order (queue.SimpleQueue lets the thread that
    just returned a request take it straight back while others wait)."""

    def __init__(self, items: list[ov.InferRequest]) -> None:
        self._free = list(items)
        self._waiters: deque[list[Any]] = deque()
        self._lock = threading.Lock()

    def get(self) -> ov.InferRequest:
        with self._lock:
            if self._free and not self._waiters:
                return self._free.pop()
            slot: list[Any] = [threading.Event(), None]
            self._waiters.append(slot)
        slot[0].wait()
        return slot[1]

    def put(self, item: ov.InferRequest) -> None:
        with self._lock:
            if self._waiters:
                slot = self._waiters.popleft()
                slot[1] = item
                slot[0].set()
            else:
                self._free.append(item)


class InProcess:
    def __init__(self) -> None:
        self.core = ov.Core()
        self.pool = FifoPool([])
        self.compiled: ov.CompiledModel | None = None
        self.nireq = 0
        self.input: np.ndarray[Any, Any] | None = None
        self.input_bytes = b""

    def load(
        self, model_path: str, batch: int, nireq: int, plugin_config: dict[str, str]
    ) -> dict[str, Any]:
        version = max(
            (p for p in Path(model_path).iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
        )
        model = self.core.read_model(str(version / "model.xml"))
        if batch != 1:
            model.reshape(
                {model.input(0).get_any_name(): [batch, *list(model.input(0).get_shape())[1:]]}
            )
        props = dict(plugin_config)
        if "PERFORMANCE_HINT" not in props and "NUM_STREAMS" not in props:
            props["PERFORMANCE_HINT"] = "LATENCY"  # as OVMS and ovms_rs
        compiled = self.core.compile_model(model, "CPU", props)
        n = nireq or int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.compiled, self.nireq = compiled, max(n, 1)
        self.pool = FifoPool([compiled.create_infer_request() for _ in range(self.nireq)])
        shape = tuple(compiled.input(0).get_shape())
        self.input = np.random.default_rng(0).uniform(0, 255, size=shape).astype(np.float32)
        self.input_bytes = self.input.tobytes()
        return {
            "nireq": n,
            "streams": int(compiled.get_property("NUM_STREAMS")),
            "threads": int(compiled.get_property("INFERENCE_NUM_THREADS")),
        }

    def _one(self, fresh: bool = False) -> None:
        """One inference on the shared input, or (`fresh`) on a copy of it in a new buffer, as a server
        infers each request's freshly received bytes (the load benchmark's `in-process+fresh`)."""
        assert self.input is not None
        array = self.input
        if fresh:
            copy = np.frombuffer(bytearray(self.input_bytes), self.input.dtype)
            array = copy.reshape(array.shape)
        request = self.pool.get()
        try:
            request.set_input_tensor(0, ov.Tensor(array, shared_memory=True))
            request.infer()
            for port in range(len(request.model_outputs)):
                request.get_output_tensor(port).data.tobytes()
        finally:
            self.pool.put(request)

    def run(
        self, concurrency: int, count: int, seconds: float, warmup: int, fresh: bool = False
    ) -> dict[str, Any]:
        for _ in range(warmup):
            self._one(fresh)
        tickets = iter(range(count))
        lock = threading.Lock()
        deadline = time.perf_counter() + seconds
        latencies: list[list[int]] = [[] for _ in range(concurrency)]
        spans: list[tuple[float, float]] = [(0.0, 0.0)] * concurrency

        def worker(i: int) -> None:
            out = latencies[i]
            start = time.perf_counter()
            while True:
                with lock:
                    if next(tickets, None) is None or time.perf_counter() > deadline:
                        break
                t0 = time.perf_counter_ns()
                self._one(fresh)
                out.append(time.perf_counter_ns() - t0)
            spans[i] = (start, time.perf_counter())

        cpu0 = cpu_seconds(os.getpid())
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cpu = cpu_seconds(os.getpid()) - cpu0
        flat = [x for lat in latencies for x in lat]
        return {
            "latencies_ns": flat,
            "errors": 0,
            "first_error": None,
            "start": min(s for s, _ in spans),
            "end": max(e for _, e in spans),
            "target_cpu_s": cpu,
            "client_cpu_s": 0.0,
            "rss": rss_bytes(os.getpid()),
        }


def run_async(target: InProcess, seconds: float, warmup: int) -> dict[str, Any]:
    """OpenVINO's own pipelining, the two-core workload's limit: an AsyncInferQueue of the compiled model's
    nireq jobs kept full for `seconds`, each job's outputs copied out in its callback (as a server's
    reply does); a latency runs from start_async to the callback."""
    assert target.compiled is not None, "load first"
    queue = ov.AsyncInferQueue(target.compiled, target.nireq)
    latencies: list[int] = []

    def done(request: ov.InferRequest, started: int) -> None:
        for port in range(len(request.model_outputs)):
            request.get_output_tensor(port).data.tobytes()
        latencies.append(time.perf_counter_ns() - started)

    queue.set_callback(done)
    tensor = ov.Tensor(target.input, shared_memory=True)
    for _ in range(warmup):
        queue.start_async({0: tensor}, time.perf_counter_ns())
    queue.wait_all()
    latencies.clear()
    cpu0 = cpu_seconds(os.getpid())
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        queue.start_async({0: tensor}, time.perf_counter_ns())  # blocks while every job is busy
    queue.wait_all()
    end = time.perf_counter()
    return {
        "latencies_ns": latencies,
        "errors": 0,
        "first_error": None,
        "start": start,
        "end": end,
        "target_cpu_s": cpu_seconds(os.getpid()) - cpu0,
        "client_cpu_s": 0.0,
        "rss": rss_bytes(os.getpid()),
    }


def decode_costs(seconds: float) -> dict[str, Any]:
    """Per-image decode + resize to 224x224 + NHWC->NCHW + float32: ovms_rs's path vs OpenCV's."""
    from ovms_rs import _native

    from .plain_server import decode_jpegs
    from .workloads import demo_jpegs

    images = demo_jpegs()

    def rust(data: bytes) -> None:
        batch = _native.decode_images([data], 224, 224)
        _native.transpose_layout(batch, "NCHW").astype(np.float32)

    def opencv(data: bytes) -> None:
        decode_jpegs([data], 224, 224, nchw=True)

    result: dict[str, Any] = {"images": len(images)}
    usable = {}
    for name, fn in (("ovms_rs", rust), ("opencv", opencv)):
        try:
            for data in images:
                fn(data)
        except Exception as e:  # e.g. NotImplementedError while the Rust decoder is unfinished
            result[name] = {"error": f"{type(e).__name__}: {e}"}
            continue
        usable[name] = fn
    # The two paths take turns image by image (the first one alternating): this machine's speed
    # changes for seconds at a time, and one path timed after the other would catch different states.
    per_image: dict[str, list[float]] = {name: [] for name in usable}
    deadline = time.perf_counter() + seconds * len(usable)
    turn = 0
    while usable and (
        time.perf_counter() < deadline or min(map(len, per_image.values())) < 3 * len(images)
    ):
        for data in images:
            order = list(usable.items())
            for name, fn in order if turn % 2 == 0 else order[::-1]:
                t0 = time.perf_counter_ns()
                fn(data)
                per_image[name].append((time.perf_counter_ns() - t0) / 1e3)
            turn += 1
    for name, samples in per_image.items():
        result[name] = {
            "median_us": float(np.median(samples)),
            "mean_us": float(np.mean(samples)),
            "samples": len(samples),
        }
    return result


def main() -> None:
    target = InProcess()
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "load":
            reply = target.load(cmd["model_path"], cmd["batch"], cmd["nireq"], cmd["plugin_config"])
        elif cmd["cmd"] == "run":
            reply = target.run(
                cmd["concurrency"],
                cmd["count"],
                cmd["seconds"],
                cmd["warmup"],
                cmd.get("fresh", False),
            )
        elif cmd["cmd"] == "async":
            reply = run_async(target, cmd["seconds"], cmd["warmup"])
        elif cmd["cmd"] == "decode":
            reply = decode_costs(cmd["seconds"])
        else:
            break
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
