"""REST p50 at concurrency 1 with the JSON body parsed on one thread vs on rayon's pool (issue 15):
two ovms_rs servers of the same build, one started with RAYON_NUM_THREADS=1 (so `json/parallel.rs`
steps aside and the body is parsed serially, as before it), taking turns under wrk; the gRPC p50 of
the default server with benches/loadgen as the reference the REST p50 is compared with; at
concurrency 8 (both cores busy with requests) whether the parallel parse costs throughput.

    python -m benches.rest_parse_threads [--seconds 4] [--rounds 4] [--concurrency 1 8]

The body is benches.rest_load's: a [1,3,224,224] f32 image as `json.dumps(x.tolist())` writes it.
Prints a Markdown table; every figure is same-run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import ovms_rs

from benches import rest_load
from benches.stats import cpu_model
from benches.targets import exit_on_sigterm
from benches.workloads import DEMO_MODEL, build_tiny_model


def _server(name: str, path: Path, threads: str | None) -> tuple[subprocess.Popen[bytes], int, int]:
    """An ovms_rs server whose rayon pool has `threads` threads (None: rayon's default, one a CPU)."""
    return rest_load._start("ovms_rs", name, path, {"RAYON_NUM_THREADS": threads})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    exit_on_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix="rest_parse_threads_"))
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 224, 224)).astype(np.float32)
    (tmp / "body.json").write_bytes(json.dumps({"instances": x.tolist()}).encode())
    lua = tmp / "post.lua"
    lua.write_text(rest_load.LUA.format(body=tmp / "body.json"))
    models = {
        "demo": (ovms_rs.DEMO_MODEL_NAME, DEMO_MODEL),
        "tiny": ("tiny", build_tiny_model(tmp / "tiny")),
    }
    print(f"cpu: {cpu_model()}, {os.cpu_count()} cores; load average: {os.getloadavg()}")
    print(
        "| model | concurrency | REST p50, serial parse | REST p50, parallel parse | ratio "
        "| req/s serial / parallel | gRPC p50 | REST - gRPC, serial / parallel |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for model, (name, path) in models.items():
        servers = {"serial": _server(name, path, "1"), "parallel": _server(name, path, None)}
        try:
            for c in args.concurrency:
                runs: dict[str, list[dict[str, float]]] = {k: [] for k in servers}
                for r in range(args.rounds):
                    order = list(servers) if r % 2 == 0 else list(reversed(servers))
                    for k in order:
                        runs[k].append(rest_load._wrk(servers[k][1], name, lua, c, args.seconds))
                p50 = {k: statistics.median(w["p50_ms"] for w in v) for k, v in runs.items()}
                rps = {k: statistics.median(w["rps"] for w in v) for k, v in runs.items()}
                s, p = p50["serial"], p50["parallel"]
                grpc_cells = "| |"
                if c == 1:
                    _, rest, grpc_port = servers["parallel"]
                    grpc = rest_load._compiled_p50(rest, grpc_port, name, lua, x, args.seconds)
                    g = grpc["grpc"]
                    grpc_cells = f"| {g:.2f} ms | {s - g:+.2f} / **{p - g:+.2f} ms** |"
                print(
                    f"| {model} | {c} | {s:.2f} ms | {p:.2f} ms | **{s / p:.2f}x** "
                    f"| {rps['serial']:.0f} / {rps['parallel']:.0f} {grpc_cells}"
                )
                each = {k: [round(w["p50_ms"], 2) for w in v] for k, v in runs.items()}
                print(f"<!-- {model} c={c} p50 of each round, ms: {each} -->")
        finally:
            for proc, _, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=60)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
