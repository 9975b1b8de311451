"""Dynamic batching benchmark: batch-1 requests on the demo model (a) and the tiny model (c) at
concurrency 1, 8, 32, ovms_rs with batching off vs on, against in-process OpenVINO at batch sizes
1..32 (the limit: the best rows/s of any batch size).

    .venv/bin/python -m benches.batching --out bench-out/batching            # ~3 min on 2 cores
    .venv/bin/python -m benches.batching --out bench-out/batching --smoke    # seconds, no claims
    .venv/bin/python -m benches.batching --out bench-out/batching --baseline /tmp/before-venv/bin/python

`--baseline PYTHON`: a third server, batching on, run by that interpreter (a venv with another build
of ovms_rs installed, e.g. the branch's start as a wheel), measured in the same rounds: before/after.

Pinning as benches.load: the servers and the in-process loop on one core, the load generator on another.
Both servers run at once (on the same core; the idle one costs nothing) and take turns, round by round.
Writes BENCH_DIR/batching.json and BENCH_DIR/batching.md (the tables).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import report
from .load import choose_cpus, measure, merge
from .loadgen_native import CLIENTS
from .stats import summarize
from .targets import InProcessTarget, Server, exit_on_sigterm
from .workloads import Workload, all_workloads, build_tiny_model

LEVELS = (1, 8, 32)
BATCH_SIZES = (1, 2, 4, 8, 16, 32)
OFF, ON, BEFORE = "batching off", "batching on", "batching on (baseline)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benches.batching", description=__doc__.split("\n")[0]
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--smoke", action="store_true", help="a second per point; asserts nothing")
    p.add_argument("--workloads", default="ac", help="subset of 'ac'")
    p.add_argument("--seconds", type=float, default=6.0, help="per server point (all rounds)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--levels",
        type=lambda v: tuple(int(c) for c in v.split(",")),
        default=LEVELS,
        help="concurrencies, comma-separated (default 1,8,32)",
    )
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--batch-timeout-micros", type=int, default=0)
    p.add_argument("--server-cpu", type=int, default=None)
    p.add_argument("--client-cpu", type=int, default=None)
    p.add_argument("--no-pin", action="store_true")
    p.add_argument("--nireq", type=int, default=0)
    p.add_argument("--client", choices=CLIENTS, default="native")
    p.add_argument("--baseline", default=None, help="a Python with the baseline ovms_rs installed")
    return p.parse_args(argv)


def inprocess_curve(
    workload: Workload, args: argparse.Namespace, cpu: int | None, logs: Path
) -> dict[str, Any]:
    """Rows/s of in-process OpenVINO per batch size (closed loop, concurrency = nireq)."""
    seconds = 1.0 if args.smoke else max(args.seconds / 2, 2.0)
    target = InProcessTarget(cpu, logs / f"{workload.key}-inprocess.log")
    curve: dict[str, Any] = {}
    try:
        for b in BATCH_SIZES:
            info = target.ask(
                cmd="load",
                model_path=str(workload.model_path),
                batch=b,
                nireq=args.nireq,
                plugin_config={},
            )
            point = summarize(
                target.ask(
                    cmd="run", concurrency=info["nireq"], count=1_000_000, seconds=seconds, warmup=2
                )
            )
            point["rows_per_s"] = point["rps"] * b
            point["nireq"] = info["nireq"]
            curve[str(b)] = point
            print(
                f"   in-process batch {b:2d}: {point['rows_per_s']:8.1f} rows/s "
                f"(p50 {point['p50_ms']:.2f} ms per inference)",
                flush=True,
            )
    finally:
        target.stop()
    return curve


def run_workload(
    workload: Workload,
    args: argparse.Namespace,
    gen: Any,
    cpus: tuple[int | None, int | None],
    logs: Path,
    params_file: Path,
) -> dict[str, Any]:
    server_cpu, _ = cpus
    print(f"== ({workload.key}) {workload.title}, batch-1 requests", flush=True)
    result: dict[str, Any] = {"title": workload.title, "inprocess": {}, "points": {}}
    result["inprocess"] = inprocess_curve(workload, args, server_cpu, logs)
    nireq = next(iter(result["inprocess"].values()))["nireq"]
    common = [*workload.serve_args(), "--nireq", str(nireq)]
    servers = {
        OFF: Server(
            OFF, ["ovms_rs", "serve"], common, server_cpu, logs / f"{workload.key}-off.log"
        ),
        ON: Server(
            ON,
            ["ovms_rs", "serve"],
            [*common, "--enable_batching", "--batching_parameters_file", str(params_file)],
            server_cpu,
            logs / f"{workload.key}-on.log",
        ),
    }
    if args.baseline:
        servers[BEFORE] = Server(
            BEFORE,
            ["ovms_rs", "serve"],
            [*common, "--enable_batching", "--batching_parameters_file", str(params_file)],
            server_cpu,
            logs / f"{workload.key}-baseline.log",
            program=[args.baseline, "-m", "ovms_rs", "serve"],
        )
    try:
        for server in servers.values():
            server.wait_ready()
        result["commands"] = {name: " ".join(s.cmd) for name, s in servers.items()}
        gen.load(workload.key, workload.requests())
        rounds = 1 if args.smoke else args.rounds
        seconds = 1.0 if args.smoke else args.seconds
        for c in args.levels:
            raws: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
            for turn in range(rounds):
                order = list(servers) if turn % 2 == 0 else list(servers)[::-1]
                for name in order:
                    raws[name].append(
                        measure(
                            gen,
                            workload.key,
                            servers[name],
                            c,
                            1_000_000,
                            seconds / rounds,
                            2 if turn == 0 else 0,
                        )
                    )
            points = {name: summarize(merge(rs)) for name, rs in raws.items()}
            for name, rs in raws.items():  # one round's p50 is less exposed to other jobs' bursts
                points[name]["round_p50s_ms"] = [summarize(r)["p50_ms"] for r in rs]
            result["points"][str(c)] = points
            print(
                f"   c={c:2d}  "
                + "  ".join(
                    f"{n}: {p['rps']:.1f} req/s p50 {p['p50_ms']:.2f} ms p99 {p['p99_ms']:.2f} ms err {p['errors']}"
                    for n, p in points.items()
                ),
                flush=True,
            )
    finally:
        for server in servers.values():
            server.stop()
    return result


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        f"Machine: {meta.get('cpu', '?')}, {meta.get('nproc', '?')} CPUs (shared with other jobs); "
        f"server and in-process loop pinned to CPU {meta['server_cpu']}, load generator to CPU "
        f"{meta['client_cpu']}. Batching: {meta['batching']}. Command: `{meta['command']}`.",
        "",
    ]
    for key, w in results["workloads"].items():
        curve = w["inprocess"]
        best_b, best = max(curve.items(), key=lambda kv: kv[1]["rows_per_s"])
        limit = best["rows_per_s"]
        lines += [
            f"**({key}) {w['title']}**, batch-1 requests",
            "",
            "In-process OpenVINO (the limit), rows/s by batch size: "
            + ", ".join(f"{b}: {p['rows_per_s']:.0f}" for b, p in curve.items())
            + f" (best: batch {best_b}, {limit:.0f} rows/s)",
            "",
            "| concurrency | server | req/s | on / off | on / limit | p50 ms | p50 ms, median of "
            "rounds | p99 ms | CPU ms per request | errors |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c, points in w["points"].items():
            off = points[OFF]
            for name, p in points.items():
                ratios = (
                    "| | |"
                    if name == OFF
                    else f"| {p['rps'] / off['rps']:.2f}x | {p['rps'] / limit:.2f}x |"
                )
                rounds = statistics.median(p["round_p50s_ms"])
                lines.append(
                    f"| {c} | {name} | {p['rps']:.1f} {ratios} {p['p50_ms']:.2f} | {rounds:.2f} "
                    f"| {p['p99_ms']:.2f} | {p['target_cpu_ms_per_req']:.3f} | {p['errors']} |"
                )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "grpc_proxy"):
        os.environ.pop(var, None)
    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.out / "logs"
    logs.mkdir(exist_ok=True)
    cpus = choose_cpus(args)
    if cpus[1] is not None:
        os.sched_setaffinity(0, {cpus[1]})
    params_file = args.out / "batching_parameters.txt"
    params_file.write_text(
        f"max_batch_size {{ value: {args.max_batch_size} }}\n"
        f"batch_timeout_micros {{ value: {args.batch_timeout_micros} }}\n"
    )
    started = time.time()
    meta = report.machine() | {
        "command": " ".join(
            [
                Path(sys.executable).name,
                "-m",
                "benches.batching",
                *(argv if argv is not None else sys.argv[1:]),
            ]
        ),
        "server_cpu": cpus[0],
        "client_cpu": cpus[1],
        "batching": params_file.read_text().replace("\n", " ").strip(),
        "loadavg_start": os.getloadavg(),
    }
    results: dict[str, Any] = {"meta": meta, "workloads": {}}
    gen = CLIENTS[args.client](max(args.levels), cpus[1])
    try:
        with tempfile.TemporaryDirectory(prefix="ovms_rs_bench_") as tmp:
            workloads = all_workloads(Path(tmp))
            if "c" in args.workloads:
                build_tiny_model(workloads["c"].model_path)
            for key in args.workloads:
                results["workloads"][key] = run_workload(
                    workloads[key], args, gen, cpus, logs, params_file
                )
    finally:
        gen.close()
    meta["loadavg_end"] = os.getloadavg()
    meta["wall_s"] = time.time() - started
    (args.out / "batching.json").write_text(json.dumps(results, indent=1))
    text = markdown(results)
    (args.out / "batching.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
