"""Server CPU per request with metrics on vs off, same run: the tiny model's [1,3,224,224] gRPC Predict
(workload c: server overhead dominates). Two servers run side by side (metrics off, metrics on) and take
turns, batch by batch, so both see the same load from the rest of the machine; CPU is each server
process's utime+stime from /proc/<pid>/stat around its own batches. Also prints what the counting a
Predict does costs when timed alone in this process (the calls ModelVersion and the services make).

    python -m benches.metrics_cpu [--requests 8000] [--batch 500] [--pairs 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import numpy as np

from benches.stats import cpu_model
from benches.workloads import TINY_MODEL_NAME, build_tiny_model, tensor_request

PREDICT = "/tensorflow.serving.PredictionService/Predict"
TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


class Server:
    def __init__(self, repo: Path, metrics: bool) -> None:
        self.metrics = metrics
        self.port, self.rest_port = _free_port(), _free_port()
        args = [
            sys.executable,
            "-m",
            "ovms_rs",
            "serve",
            "--model_name",
            TINY_MODEL_NAME,
            "--model_path",
            str(repo),
            "--port",
            str(self.port),
            "--grpc_bind_address",
            "127.0.0.1",
            "--rest_port",
            str(self.rest_port),
            "--rest_bind_address",
            "127.0.0.1",
            *(["--metrics_enable"] if metrics else []),
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.cpu_s = 0.0
        self.requests = 0

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.1)

    def drive(
        self, predict: grpc.UnaryUnaryMultiCallable, request: bytes, n: int, measured: bool
    ) -> None:
        before = _cpu_seconds(self.proc.pid)
        for _ in range(n):
            predict(request, timeout=30)
        if measured:
            self.cpu_s += _cpu_seconds(self.proc.pid) - before
            self.requests += n

    def successes(self) -> float:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.rest_port}/metrics", timeout=30
        ) as reply:
            text = reply.read().decode()
        line = next(
            x
            for x in text.splitlines()
            if x.startswith("ovms_requests_success{") and 'interface="gRPC",method="Predict"' in x
        )
        return float(line.rsplit(" ", 1)[1])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


@contextmanager
def servers(repo: Path, on_first: bool) -> Iterator[tuple[Server, Server]]:
    if on_first:
        on, off = Server(repo, True), Server(repo, False)
    else:
        off, on = Server(repo, False), Server(repo, True)
    try:
        off.wait_ready()
        on.wait_ready()
        yield off, on
    finally:
        off.stop()
        on.stop()


def counting_cost_us(n: int = 200_000) -> float:
    """The metric calls one successful Predict makes with metrics on, timed alone (µs)."""
    from ovms_rs import _native

    _native.enable_metrics()
    metrics = _native.version_metrics("bench", 1)
    assert metrics is not None
    clock = time.perf_counter_ns
    start = time.perf_counter()
    for _ in range(n):
        waiting = clock()
        metrics.infer_started(clock() - waiting)
        inferring = clock()
        metrics.infer_finished(clock() - inferring)
        metrics.succeeded(0, 0, clock() - waiting)
    return (time.perf_counter() - start) / n * 1e6


def measure_pair(
    repo: Path, request: bytes, args: argparse.Namespace, on_first: bool
) -> tuple[float, float]:
    """(off, on) server CPU µs per request for one pair of fresh servers."""
    options = [
        ("grpc.max_receive_message_length", 1 << 30),
        ("grpc.max_send_message_length", 1 << 30),
    ]
    with (
        servers(repo, on_first) as (off, on),
        grpc.insecure_channel(f"127.0.0.1:{off.port}", options=options) as off_channel,
        grpc.insecure_channel(f"127.0.0.1:{on.port}", options=options) as on_channel,
    ):
        calls = {off: off_channel.unary_unary(PREDICT), on: on_channel.unary_unary(PREDICT)}
        for server, predict in calls.items():
            server.drive(predict, request, args.warmup, measured=False)
        for turn in range(max(1, args.requests // args.batch)):
            order = (off, on) if turn % 2 == 0 else (on, off)
            for server in order:
                server.drive(calls[server], request, args.batch, measured=True)
        assert on.successes() == args.warmup + on.requests  # the counters did count
    return off.cpu_s / off.requests * 1e6, on.cpu_s / on.requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=8000, help="measured requests per server")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--pairs", type=int, default=3, help="pairs of fresh servers, in turn")
    args = parser.parse_args()
    pixels = np.random.default_rng(0).uniform(0, 255, size=(1, 3, 224, 224)).astype(np.float32)
    request = tensor_request(TINY_MODEL_NAME, pixels)
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        repo = build_tiny_model(Path(tmp) / TINY_MODEL_NAME)
        for pair in range(args.pairs):
            off_us, on_us = measure_pair(repo, request, args, on_first=pair % 2 == 1)
            figures.append((off_us, on_us))
            print(
                f"pair {pair}: off {off_us:.1f} µs, on {on_us:.1f} µs, on/off {on_us / off_us:.4f} "
                f"(load average {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    off_us = statistics.mean(f[0] for f in figures)
    on_us = statistics.mean(f[1] for f in figures)
    ratios = sorted(on / off for off, on in figures)
    counting = counting_cost_us()
    print(
        f"CPU: {cpu_model()}, {os.cpu_count()} CPUs; {args.pairs} pairs x {args.requests} requests per "
        f"server in batches of {args.batch}, taking turns"
    )
    print(
        f"server CPU per request, mean: metrics off {off_us:.1f} µs (baseline), on {on_us:.1f} µs; "
        f"ratio on/off {on_us / off_us:.4f} (pairs: median {statistics.median(ratios):.4f}, "
        f"{ratios[0]:.4f}..{ratios[-1]:.4f})"
    )
    print(
        f"counting per Predict timed alone: {counting:.2f} µs = {counting / off_us:.2%} of the baseline"
    )


if __name__ == "__main__":
    main()
