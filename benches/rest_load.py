"""The REST load benchmark: ovms_rs's REST predict vs the plain-Python REST server
(benches/plain_rest_server.py) on the demo model and the tiny model, row format, [1,3,224,224] f32, with
wrk (Debian's package; compiled, HTTP/1.1 keep-alive) at concurrency 1 and 8; and, at concurrency 1,
ovms_rs's REST vs its gRPC latency with the same kind of client: a Python loop each (http.client and
grpcio's stub), and a compiled one each (wrk and benches/loadgen). Two inputs (`--inputs`): a demo
photo as the demo model takes it (integer pixels: `78.0`, a 1.0 MB body) and uniform floats (17 digits,
2.9 MB).

    python -m benches.rest_load [--seconds 5] [--inputs photo,uniform] [--out benches/results]

Targets take turns point by point; every figure is a same-run ratio. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import ovms_rs

from benches.stats import cpu_model
from benches.targets import exit_on_sigterm
from benches.workloads import DEMO_MODEL, build_tiny_model, demo_photo_tensor

ROOT = Path(__file__).resolve().parent.parent
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb"); wrk.body = f:read("*all"); f:close()
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(port: int, path: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", path)
            c.getresponse().read()
            c.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"port {port} did not answer")


def _start(
    kind: str, name: str, path: Path, env_changes: Mapping[str, str | None] | None = None
) -> tuple[subprocess.Popen[bytes], int, int]:
    """A server of `kind` on free ports; `env_changes`: variables its environment gets (or, None,
    loses) beside this process's, which it inherits without the proxy ones."""
    rest, grpc_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    for key, value in (env_changes or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    if kind == "ovms_rs":
        cmd = [
            sys.executable,
            "-m",
            "ovms_rs",
            "serve",
            "--model_name",
            name,
            "--model_path",
            str(path),
            "--port",
            str(grpc_port),
            "--rest_port",
            str(rest),
            "--grpc_bind_address",
            "127.0.0.1",
            "--rest_bind_address",
            "127.0.0.1",
        ]
    else:
        cmd = [
            sys.executable,
            "-m",
            "benches.plain_rest_server",
            "--port",
            str(rest),
            "--model_name",
            name,
            "--model_path",
            str(path),
        ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_http(rest, f"/v1/models/{name}")
    except BaseException:
        proc.terminate()
        proc.wait(timeout=60)
        raise
    time.sleep(1.0)  # let the model finish loading (ovms_rs answers status while loading)
    return proc, rest, grpc_port


def _wrk(port: int, name: str, lua: Path, connections: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "--latency",
            "-s",
            str(lua),
            f"http://127.0.0.1:{port}/v1/models/{name}:predict",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": float(p50.group(1)) * scale[p50.group(2)] if p50 else float("nan"),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def _python_p50(
    rest: int, grpc_port: int, name: str, body: bytes, x: np.ndarray, n: int
) -> dict[str, float]:
    """Concurrency 1, a Python client each: REST (http.client, keep-alive) and gRPC (grpcio), alternating."""
    import grpc
    from ovms_rs._proto.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
    from ovms_rs._proto.tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    req = predict_pb2.PredictRequest()
    req.model_spec.name = name
    req.inputs["data"].CopyFrom(
        tensor_pb2.TensorProto(
            dtype=1,  # type: ignore[arg-type]
            tensor_shape=tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in x.shape]
            ),
            tensor_content=x.tobytes(),
        )
    )
    channel = grpc.insecure_channel(
        f"127.0.0.1:{grpc_port}", options=[("grpc.max_receive_message_length", 1 << 30)]
    )
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    conn = http.client.HTTPConnection("127.0.0.1", rest, timeout=60)
    times: dict[str, list[float]] = {"rest": [], "grpc": []}
    for i in range(n + 10):
        t = time.perf_counter()
        conn.request(
            "POST", f"/v1/models/{name}:predict", body, {"Content-Type": "application/json"}
        )
        reply = conn.getresponse()
        reply.read()
        assert reply.status == 200
        rest_t = time.perf_counter() - t
        t = time.perf_counter()
        stub.Predict(req, timeout=60)
        grpc_t = time.perf_counter() - t
        if i >= 10:
            times["rest"].append(rest_t)
            times["grpc"].append(grpc_t)
    channel.close()
    conn.close()
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def _compiled_p50(
    rest: int, grpc_port: int, name: str, lua: Path, x: np.ndarray, seconds: float
) -> dict[str, float]:
    """Concurrency 1, a compiled client each, taking turns: wrk (REST) and benches/loadgen (gRPC), so
    that the difference is the server's, not a Python client's. `2 * seconds` turns of 1 s each, the
    median of the turns' p50s: on a shared VM the inference's speed drifts by ~20 % within a minute
    (session 10: the demo's gRPC p50 moved 6.8-8.8 ms across 1 s turns), and short turns put both
    sides in the same stretches."""
    from benches.loadgen_native import NativeLoadGenerator
    from benches.workloads import tensor_request

    gen = NativeLoadGenerator(1, None)
    try:
        gen.load("p50", [tensor_request(name, x)])
        rest_p50, grpc_p50 = [], []
        for _ in range(max(2, int(2 * seconds))):
            rest_p50.append(_wrk(rest, name, lua, 1, 1)["p50_ms"])
            raw = gen.run("p50", f"127.0.0.1:{grpc_port}", 1, 10**9, 1, 10)
            grpc_p50.append(float(np.percentile(raw["latencies_ns"], 50)) / 1e6)
    finally:
        gen.close()
    return {"rest": statistics.median(rest_p50), "grpc": statistics.median(grpc_p50)}


def _inputs(kinds: list[str]) -> dict[str, np.ndarray]:
    """The [1,3,224,224] f32 inputs by name: `photo`, a demo photo as the demo model takes it
    (`workloads.demo_photo_tensor`: integer pixels written as `78.0`, ~1.0 MB of JSON), and `uniform`,
    floats drawn uniformly from 0..255 (17-digit text, ~2.9 MB: the parser's worst common case)."""
    made: dict[str, Callable[[], np.ndarray[Any, Any]]] = {
        "photo": demo_photo_tensor,
        "uniform": lambda: (
            np.random.default_rng(0).uniform(0, 255, (1, 3, 224, 224)).astype(np.float32)
        ),
    }
    return {k: made[k]() for k in kinds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benches" / "results")
    parser.add_argument(
        "--requests", type=int, default=200, help="per side, for the Python-client p50"
    )
    parser.add_argument(
        "--inputs",
        default="photo,uniform",
        help="comma-separated: photo (a real image, ~1.0 MB body), uniform (17-digit floats, ~2.9 MB)",
    )
    args = parser.parse_args()
    exit_on_sigterm()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="rest_load_"))
    inputs = _inputs(args.inputs.split(","))
    bodies = {}
    for kind, x in inputs.items():
        body = json.dumps({"instances": x.tolist()}).encode()
        (tmp / f"{kind}.json").write_bytes(body)
        lua = tmp / f"{kind}.lua"
        lua.write_text(LUA.format(body=tmp / f"{kind}.json"))
        bodies[kind] = (x, body, lua)
    models = {
        "demo": (ovms_rs.DEMO_MODEL_NAME, DEMO_MODEL),
        "tiny": ("tiny", build_tiny_model(tmp / "tiny")),
    }
    results: dict[str, Any] = {
        "cpu": f"{cpu_model()}, {os.cpu_count()} cores",
        "body_bytes": {kind: len(body) for kind, (_, body, _) in bodies.items()},
        "points": [],
    }
    rows = []
    for model, (name, path) in models.items():
        servers: dict[str, tuple[subprocess.Popen[bytes], int, int]] = {}
        try:
            # A server that fails to start ends those started before it (the finally below).
            for kind in ("ovms_rs", "plain"):
                servers[kind] = _start(kind, name, path)
            for input_kind, (x, body, lua) in bodies.items():
                label = f"{model}, {input_kind}"
                for c in (1, 8):
                    point = {
                        k: _wrk(servers[k][1], name, lua, c, args.seconds)
                        for k in ("ovms_rs", "plain")
                    }
                    point2 = {
                        k: _wrk(servers[k][1], name, lua, c, args.seconds)
                        for k in ("plain", "ovms_rs")
                    }
                    merged = {
                        k: {m: (point[k][m] + point2[k][m]) / 2 for m in point[k]} for k in point
                    }
                    ratio = merged["ovms_rs"]["rps"] / merged["plain"]["rps"]
                    results["points"].append(
                        {
                            "model": model,
                            "input": input_kind,
                            "concurrency": c,
                            **merged,
                            "ratio": ratio,
                        }
                    )
                    rows.append(
                        f"| {label} | {c} | {merged['ovms_rs']['rps']:.0f} | {merged['plain']['rps']:.0f} | "
                        f"**{ratio:.2f}x** | {merged['ovms_rs']['p50_ms']:.2f} | {merged['plain']['p50_ms']:.2f} | "
                        f"{merged['ovms_rs']['errors']:.0f} / {merged['plain']['errors']:.0f} |"
                    )
                _, rest, grpc_port = servers["ovms_rs"]
                p50 = _python_p50(rest, grpc_port, name, body, x, args.requests)
                results[f"{model}_{input_kind}_c1_python_client_p50_ms"] = p50
                rows.append(
                    f"| {label} | 1 (Python clients) | REST p50 {p50['rest']:.2f} ms | gRPC p50 {p50['grpc']:.2f} ms | "
                    f"REST - gRPC **{p50['rest'] - p50['grpc']:+.2f} ms** | | | |"
                )
                p50 = _compiled_p50(rest, grpc_port, name, lua, x, args.seconds)
                results[f"{model}_{input_kind}_c1_compiled_client_p50_ms"] = p50
                rows.append(
                    f"| {label} | 1 (wrk / benches/loadgen) | REST p50 {p50['rest']:.2f} ms | gRPC p50 {p50['grpc']:.2f} ms | "
                    f"REST - gRPC **{p50['rest'] - p50['grpc']:+.2f} ms** | | | |"
                )
        finally:
            for proc, _, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=60)
    sizes = ", ".join(f"{kind} {len(body)} bytes" for kind, (_, body, _) in bodies.items())
    table = "\n".join(
        [
            f"CPU: {results['cpu']}; bodies (row format, [1,3,224,224] f32): {sizes}; wrk -t1, {args.seconds:.0f} s x 2 turns per point; compiled-client p50s in 1 s turns",
            "",
            "| model, input | concurrency | ovms_rs REST req/s | plain-Python REST req/s | ratio | ovms_rs p50 ms | plain p50 ms | non-2xx |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rest_load.json").write_text(json.dumps(results, indent=1))
    (args.out / "rest_load.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
