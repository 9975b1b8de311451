"""Server CPU per request with metrics on vs off, same run: the tiny model's [1,3,224,224] gRPC Predict
(workload c: server overhead dominates), N sequential requests per server, servers started afresh and
alternated on/off for a few rounds. CPU is the server process's utime+stime from /proc/<pid>/stat.

    python -m benches.metrics_cpu [--requests 4000] [--rounds 4]
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
from pathlib import Path

import grpc
import numpy as np

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


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def run_server(repo: Path, metrics: bool, requests: int, warmup: int) -> float:
    """Server CPU µs per request for one fresh server."""
    port, rest_port = _free_port(), _free_port()
    args = [sys.executable, "-m", "ovms_rs", "serve", "--model_name", TINY_MODEL_NAME, "--model_path",
            str(repo), "--port", str(port), "--grpc_bind_address", "127.0.0.1", "--rest_port", str(rest_port),
            "--rest_bind_address", "127.0.0.1", *(["--metrics_enable"] if metrics else [])]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.1)
        request = tensor_request(TINY_MODEL_NAME, _pixels())
        options = [("grpc.max_receive_message_length", 1 << 30), ("grpc.max_send_message_length", 1 << 30)]
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
            predict = channel.unary_unary(PREDICT)  # raw bytes both ways
            for _ in range(warmup):
                predict(request, timeout=30)
            before = _cpu_seconds(proc.pid)
            for _ in range(requests):
                predict(request, timeout=30)
            after = _cpu_seconds(proc.pid)
        if metrics:  # the counters did count: every request is in the scrape
            with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/metrics", timeout=30) as reply:
                text = reply.read().decode()
            line = next(x for x in text.splitlines()
                        if x.startswith("ovms_requests_success{") and 'interface="gRPC",method="Predict"' in x)
            assert float(line.rsplit(" ", 1)[1]) == warmup + requests, line
        return (after - before) / requests * 1e6
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _pixels() -> np.ndarray:  # type: ignore[type-arg]
    return np.random.default_rng(0).uniform(0, 255, size=(1, 3, 224, 224)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = build_tiny_model(Path(tmp) / TINY_MODEL_NAME)
        figures: dict[bool, list[float]] = {False: [], True: []}
        for r in range(args.rounds):
            order = (False, True) if r % 2 == 0 else (True, False)
            for metrics in order:
                figures[metrics].append(run_server(repo, metrics, args.requests, args.warmup))
            print(f"round {r}: off {figures[False][-1]:.1f} µs, on {figures[True][-1]:.1f} µs "
                  f"(on/off {figures[True][-1] / figures[False][-1]:.3f})", flush=True)
    off, on = statistics.median(figures[False]), statistics.median(figures[True])
    print(f"CPU: {_cpu_model()}, {os.cpu_count()} CPUs; {args.requests} requests x {args.rounds} rounds")
    print(f"server CPU per request, median: metrics off {off:.1f} µs (baseline), on {on:.1f} µs; "
          f"ratio on/off {on / off:.4f}")


if __name__ == "__main__":
    main()
