"""What handing the reply's bytes to the transport without a copy buys (issue 14 point 3), measured alone.

The gRPC transport sends the handler's reply `bytes` object as it is (`py_buffer::bytes_of`: the
transport's `Bytes` owns a reference to it). Before session 5 it copied the reply into a new buffer with
the interpreter held. This compares the two with nothing else different: `benches/python_floor_server.py`
(ovms_rs's own transport entering a Python handler that answers a canned reply) under this checkout's
extension and under `--baseline-python`, an interpreter whose `ovms_rs` was built from the same commit with
the reply copied (see BENCHMARKS.md for how that build was made). Replies of several sizes (the demo's
[1,1000] float32 is 4 KB; the others stand for large outputs: segmentation maps, embeddings of a batch);
small requests, so the reply's cost is what varies. Each point: the compiled load generator (pinned to
the last CPU) against each server (pinned to CPU 0) in turn, which goes first alternating by round; the figures are the
servers' CPU time per request (all threads, /proc) and req/s, medians over the rounds, and the ratio
zero-copy / copy from the same rounds.

    python -m benches.reply_copy --baseline-python /tmp/copy-venv/bin/python [--seconds 3 --rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .loadgen_native import NativeLoadGenerator
from .stats import cpu_model, summarize
from .targets import Server, exit_on_sigterm
from .workloads import tensor_request

ZERO_COPY = "zero-copy"
COPY = "copy"
# [1,1000] (the demo's 4 KB), [1,150528] (602 KB, a [1,3,224,224] image's worth), [1,1048576] (4 MB).
SIZES = (1000, 150528, 1 << 20)


def servers(
    python: str, baseline_python: str, floats: int, cpu: int | None, logs: Path
) -> dict[str, Server]:
    args = ["--reply_floats", str(floats)]
    module = ["benches.python_floor_server"]
    return {
        ZERO_COPY: Server(
            ZERO_COPY,
            [],
            args,
            cpu,
            logs / f"{floats}-zero-copy.log",
            program=[python, "-m", *module],
        ),
        COPY: Server(
            COPY,
            [],
            args,
            cpu,
            logs / f"{floats}-copy.log",
            program=[baseline_python, "-m", *module],
        ),
    }


def point(
    gen: NativeLoadGenerator, server: Server, concurrency: int, seconds: float
) -> dict[str, Any]:
    cpu0: list[float] = []
    raw = gen.run(
        "small",
        server.address,
        concurrency,
        10**9,  # no count limit: the seconds end the point
        seconds,
        50,
        on_start=lambda: cpu0.append(server.cpu_seconds()),
    )
    raw["target_cpu_s"] = server.cpu_seconds() - cpu0[0]
    return summarize(raw)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--baseline-python", required=True, help="python whose ovms_rs copies replies"
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="python whose ovms_rs does not (default: this one)",
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,4")
    parser.add_argument(
        "--sizes", default=",".join(map(str, SIZES)), help="reply floats, each size"
    )
    args = parser.parse_args(argv)
    exit_on_sigterm()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = (cpus[0], cpus[-1]) if len(cpus) > 1 else (None, None)
    gen = NativeLoadGenerator(1, client_cpu)
    gen.load("small", [tensor_request("tiny", np.zeros((1, 4), np.float32))])
    print(f"CPU: {cpu_model()}, {len(cpus)} CPUs; load average {os.getloadavg()[0]:.2f}")
    print(
        "| reply | concurrency | CPU ms/req zero-copy | copy | ratio | req/s zero-copy | copy | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="ovms_rs_reply_copy_") as tmp:
        try:
            for floats in [int(s) for s in args.sizes.split(",")]:
                targets = servers(args.python, args.baseline_python, floats, server_cpu, Path(tmp))
                try:
                    for server in targets.values():
                        server.wait_ready()
                    for c in concurrencies:
                        got: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
                        order = list(targets.items())
                        for _ in range(args.rounds):
                            for name, server in order:
                                got[name].append(point(gen, server, c, args.seconds))
                            order.reverse()  # neither goes first every round
                        print(row(floats, c, got), flush=True)
                finally:
                    for server in targets.values():
                        server.stop()
        finally:
            gen.close()
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def row(floats: int, concurrency: int, got: dict[str, list[dict[str, Any]]]) -> str:
    def median(name: str, key: str) -> float:
        return float(statistics.median(p[key] for p in got[name]))

    errors = sum(p["errors"] for points in got.values() for p in points)
    if errors:
        raise RuntimeError(f"{errors} errors at {floats} floats, concurrency {concurrency}")
    cpu = [median(n, "target_cpu_ms_per_req") for n in (ZERO_COPY, COPY)]
    rps = [median(n, "rps") for n in (ZERO_COPY, COPY)]
    size = f"{4 * floats / 1024:.0f} KiB" if floats < 1 << 18 else f"{4 * floats >> 20} MiB"
    return (
        f"| {size} | {concurrency} | {cpu[0]:.3f} | {cpu[1]:.3f} | {cpu[0] / cpu[1]:.2f}x "
        f"| {rps[0]:.0f} | {rps[1]:.0f} | {rps[0] / rps[1]:.2f}x |"
    )


if __name__ == "__main__":
    main()
