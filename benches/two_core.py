"""Issue 20's two-core workload: the demo model with OpenVINO's THROUGHPUT hint and its optimal number of
infer requests, nothing pinned, tensor requests [1,3,224,224] f32 from the compiled load generator at
concurrency 8, against in-process OpenVINO's `AsyncInferQueue` with the same compiled configuration
and nireq (the limit: no transport, no serialization, no client sharing the cores).

    .venv/bin/python -m benches.two_core [--seconds 4] [--rounds 3] [--concurrency 8]

The two take turns round by round (the first alternating); prints req/s, p50 and CPU per request of
each, and the ratio server / in-process per round and over all rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from .load import measure, merge
from .loadgen_native import NativeLoadGenerator
from .stats import cpu_model, summarize
from .targets import InProcessTarget, Server, exit_on_sigterm
from .workloads import all_workloads

THROUGHPUT = {"PERFORMANCE_HINT": "THROUGHPUT"}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=4.0, help="per round and side")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--out", type=Path, default=None, help="write the points as JSON here")
    args = p.parse_args()
    exit_on_sigterm()
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "grpc_proxy"):
        os.environ.pop(var, None)
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        workload = all_workloads(logs)["a"]
        inprocess = InProcessTarget(None, logs / "inprocess.log")
        server = None
        gen = NativeLoadGenerator(args.concurrency, None)
        try:
            info = inprocess.ask(
                cmd="load",
                model_path=str(workload.model_path),
                batch=1,
                nireq=0,
                plugin_config=THROUGHPUT,
            )
            server = Server(
                "ovms_rs",
                ["ovms_rs", "serve"],
                [*workload.serve_args(), "--plugin_config", json.dumps(THROUGHPUT)],
                None,
                logs / "server.log",
            )
            server.wait_ready()
            gen.load(workload.key, workload.requests())
            raws: dict[str, list[dict[str, Any]]] = {"in-process": [], "ovms_rs": []}
            for turn in range(args.rounds):
                warmup = 8 if turn == 0 else 0
                sides = ["in-process", "ovms_rs"] if turn % 2 == 0 else ["ovms_rs", "in-process"]
                for side in sides:
                    if side == "in-process":
                        raw = inprocess.ask(cmd="async", seconds=args.seconds, warmup=warmup)
                    else:
                        raw = measure(
                            gen,
                            workload.key,
                            server,
                            args.concurrency,
                            10**9,
                            args.seconds,
                            warmup,
                        )
                    raws[side].append(raw)
        finally:
            gen.close()
            if server is not None:
                server.stop()
            inprocess.stop()
    points = {side: summarize(merge(rs)) for side, rs in raws.items()}
    rounds = [
        summarize(s)["rps"] / summarize(i)["rps"]
        for s, i in zip(raws["ovms_rs"], raws["in-process"])
    ]
    print(
        f"CPU: {cpu_model()}, {os.cpu_count()} CPUs, nothing pinned; load average "
        f"{os.getloadavg()[0]:.1f}; THROUGHPUT hint: {info['streams']} streams, {info['threads']} "
        f"threads, nireq {info['nireq']} (in-process and the server alike); ovms_rs at concurrency "
        f"{args.concurrency} from the compiled load generator; {args.rounds} rounds x {args.seconds} s"
    )
    for side, point in points.items():
        client = point["client_cpu_util"] * point["seconds"] / max(point["requests"], 1) * 1e3
        print(
            f"{side:10s}: {point['rps']:.1f} req/s, p50 {point['p50_ms']:.2f} ms, "
            f"CPU {point['target_cpu_ms_per_req']:.3f} ms per request"
            + (f" (+ the load generator's {client:.3f} ms)" if side == "ovms_rs" else "")
        )
    ratio = points["ovms_rs"]["rps"] / points["in-process"]["rps"]
    print(
        f"ovms_rs / in-process: {ratio:.3f} (rounds: {' '.join(f'{r:.3f}' for r in rounds)}; "
        f"median {statistics.median(rounds):.3f}, worst {min(rounds):.3f})"
    )
    if args.out is not None:
        args.out.write_text(
            json.dumps({"info": info, "points": points, "round_ratios": rounds}, indent=1)
        )


if __name__ == "__main__":
    main()
