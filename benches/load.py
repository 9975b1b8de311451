"""End-to-end load benchmark: ovms_rs vs the physical limit (in-process OpenVINO) vs a plain-Python server.

    .venv/bin/python -m benches.load --out bench-out          # full run (~6 min on 2 cores)
    .venv/bin/python -m benches.load --out bench-out --smoke  # CI: a few hundred requests, no speed claims

Writes BENCH_DIR/results.json, BENCH_DIR/report.md (tables with ratios, targets met/missed) and
BENCH_DIR/load.png (throughput and p99 vs concurrency; skipped with a message without matplotlib).
The servers and the in-process loop are pinned to one core, the load generator to another (taskset).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import report
from .floor_server import canned_reply
from .loadgen_native import CLIENTS, FLOOR_BINARY, AnyLoadGenerator
from .loadgen_native import build as build_loadgen
from .stats import summarize
from .targets import InProcessTarget, Server, exit_on_sigterm
from .workloads import Workload, all_workloads, build_tiny_model

OVMS_RS = "ovms_rs"
PLAIN = "plain-python"
IN_PROCESS = "in-process"
FLOOR = "grpcio-floor"  # informational, workload (c) only: grpcio's own per-request cost
# Workload (c) only: tonic's server answering a canned reply, what no server on this stack can beat.
TRANSPORT_FLOOR = "transport-floor"
# With --floor-steps: the floor plus the steps the server takes besides Python (the reassembly copy, then
# also the hand-off to a handler thread and back), to split ovms_rs's overhead.
# With --floor-steps: ovms_rs's transport entering a Python handler that answers a canned reply.
PYTHON_FLOOR = "floor+python"
FLOOR_STEPS = {
    "floor+copy": ["--copy"],
    "floor+copy+hand-off": ["--copy", "--hand-off"],
}
# With --floor-steps, workloads (a) and (c): the transport floor doing what a Python-free Predict would
# (`ovms-rs-floor --infer`: ovms_rs_core's codec, OpenVINO's C API, one compiled model): the ceiling of
# BENCHMARKS.md's "design change that would remove Python from the floor".
OPENVINO_FLOOR = "floor+openvino"
OPENVINO_FLOOR_WORKLOADS = ("a", "c")
# The same with tensor_content copied into the infer request's own input tensor instead of wrapped ((c)).
OPENVINO_FLOOR_COPY = "floor+openvino+copy-in"
# With --floor-steps, every workload: in-process inferring each time on a copy of the input in a new
# buffer, as every server infers a request's freshly received bytes (the in-process limit reuses one
# untouched array: on (c)'s tiny model a fresh input costs ~50 us more, BENCHMARKS.md).
IN_PROCESS_FRESH = "in-process+fresh"
# Informational, workload (c) only: ovms_rs on grpcio's server instead of its Rust transport.
OVMS_RS_GRPCIO = "ovms_rs-grpcio"
TARGETS = (IN_PROCESS, OVMS_RS, PLAIN)
# With --baseline-python: ovms_rs as installed in another environment (an earlier build), every
# workload, so before/after figures come from the same run.
OVMS_RS_BEFORE = "ovms_rs@before"


@dataclass(frozen=True)
class Budget:
    """Requests per point, the time bound per point, and warm-up requests per client worker."""

    count: int
    seconds: float
    warmup: int


FULL = {
    "a": Budget(480, 16, 3),
    "b": Budget(480, 16, 3),
    "c": Budget(3000, 8, 20),
    "d": Budget(48, 15, 1),
}
SMOKE = {
    "a": Budget(16, 10, 1),
    "b": Budget(16, 10, 1),
    "c": Budget(100, 10, 2),
    "d": Budget(6, 15, 1),
}
# Inference time on this shared machine jumps between two levels (~12.5 and ~16.5 ms for (a)) for seconds
# at a time: many short turns let each target sample both alike.
ROUNDS = 12
MEMORY_FULL = (1_000, 20_000)
MEMORY_SMOKE = (100, 300)


def merge(raws: list[dict[str, Any]]) -> dict[str, Any]:
    """One point from several rounds: all latencies, summed busy time and CPU."""
    busy = sum(r["end"] - r["start"] for r in raws)
    return {
        "latencies_ns": [x for r in raws for x in r["latencies_ns"]],
        "errors": sum(r["errors"] for r in raws),
        "first_error": next((r["first_error"] for r in raws if r["first_error"]), None),
        "start": 0.0,
        "end": busy,
        "target_cpu_s": sum(r["target_cpu_s"] for r in raws),
        "client_cpu_s": sum(r["client_cpu_s"] for r in raws),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benches.load", description=__doc__.split("\n")[0])
    p.add_argument(
        "--out", type=Path, required=True, help="directory for results.json, report.md, load.png"
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--smoke", action="store_true", help="a few hundred requests (CI); asserts nothing"
    )
    mode.add_argument("--full", action="store_true", help="the measured run (default)")
    p.add_argument("--workloads", default="abcd", help="subset of 'abcd'")
    p.add_argument("--concurrency", default=None, help="comma list; default 1,2,4,8 (smoke: 1,4)")
    p.add_argument(
        "--server-cpu", type=int, default=None, help="core for the targets (default: first allowed)"
    )
    p.add_argument(
        "--client-cpu", type=int, default=None, help="core for the load generator (default: second)"
    )
    p.add_argument(
        "--no-pin", action="store_true", help="do not pin anything (results include CPU contention)"
    )
    p.add_argument(
        "--nireq", type=int, default=0, help="infer requests for all three (0: OpenVINO's optimum)"
    )
    p.add_argument(
        "--scale", type=float, default=1.0, help="multiply request counts and time bounds"
    )
    p.add_argument(
        "--baseline-python",
        default=None,
        help="also run ovms_rs from this interpreter's environment (an earlier build) as ovms_rs@before",
    )
    p.add_argument(
        "--floor-steps",
        action="store_true",
        help="(c): also the transport floor plus the server's copy and thread hand-off; (a) and (c): the "
        "floor inferring through OpenVINO's C API (floor+openvino) (informational)",
    )
    p.add_argument(
        "--client",
        choices=CLIENTS,
        default="native",
        help="load generator: the compiled one (benches/loadgen/, default) or grpcio's Python client",
    )
    return p.parse_args(argv)


def choose_cpus(args: argparse.Namespace) -> tuple[int | None, int | None]:
    if args.no_pin:
        return None, None
    allowed = sorted(os.sched_getaffinity(0))
    server = args.server_cpu if args.server_cpu is not None else allowed[0]
    others = [c for c in allowed if c != server]
    client = args.client_cpu if args.client_cpu is not None else (others[0] if others else server)
    return server, client


def check_outputs(
    workload: Workload, servers: dict[str, Server], requests: list[bytes]
) -> dict[str, Any]:
    """One request to each server, outside the timed loop: both answer, and answer the same."""
    import grpc
    from ovms_rs._proto.tensorflow_serving.apis import predict_pb2

    answers: dict[str, Any] = {}
    for name, server in servers.items():
        if name in (FLOOR, TRANSPORT_FLOOR, PYTHON_FLOOR, *FLOOR_STEPS):
            continue  # answers a canned reply by design
        channel = grpc.insecure_channel(
            server.address,
            options=[
                ("grpc.max_receive_message_length", 1 << 30),
                ("grpc.max_send_message_length", 1 << 30),
            ],
        )
        call = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
        try:
            reply = predict_pb2.PredictResponse.FromString(call(requests[0], timeout=60))
            tensor = reply.outputs["prob"]
            shape = [d.size for d in tensor.tensor_shape.dim]
            answers[name] = np.frombuffer(tensor.tensor_content, np.float32).reshape(shape)
        except grpc.RpcError as e:
            answers[name] = f"{e.code()}: {e.details()}"
        finally:
            channel.close()
    arrays = [a for a in answers.values() if isinstance(a, np.ndarray)]
    agree = len(arrays) == len(answers) and all(
        a.shape == arrays[0].shape and np.array_equal(a.argmax(-1), arrays[0].argmax(-1))
        for a in arrays
    )
    result: dict[str, Any] = {
        "agree": bool(agree),
        "errors": {k: v for k, v in answers.items() if isinstance(v, str)},
    }
    # The same input through the same OpenVINO: a Python-free Predict must give ovms_rs's numbers.
    ours, reference = answers.get(OPENVINO_FLOOR), answers.get(OVMS_RS)
    if isinstance(ours, np.ndarray) and isinstance(reference, np.ndarray):
        if ours.shape != reference.shape:
            result["errors"][OPENVINO_FLOOR] = (
                f"output shape {ours.shape}, ovms_rs {reference.shape}"
            )
        else:
            result["floor_openvino_max_abs_diff"] = float(np.abs(ours - reference).max())
    return result


def run_workload(
    workload: Workload,
    args: argparse.Namespace,
    gen: AnyLoadGenerator,
    levels: list[int],
    logs: Path,
    server_cpu: int | None,
) -> dict[str, Any]:
    budget = (SMOKE if args.smoke else FULL)[workload.key]
    count, seconds = max(1, int(budget.count * args.scale)), budget.seconds * max(args.scale, 0.5)
    print(f"== ({workload.key}) {workload.title}", flush=True)
    result: dict[str, Any] = {
        "title": workload.title,
        "count": count,
        "seconds": seconds,
        "points": {},
        "notes": [],
    }
    inproc = InProcessTarget(server_cpu, logs / f"{workload.key}-inprocess.log")
    servers: dict[str, Server] = {}
    try:
        info = inproc.ask(
            cmd="load",
            model_path=str(workload.model_path),
            batch=workload.batch,
            nireq=args.nireq,
            plugin_config={},
        )
        result["openvino"] = info
        common = [*workload.serve_args(), "--nireq", str(info["nireq"])]
        servers[OVMS_RS] = Server(
            OVMS_RS, ["ovms_rs", "serve"], common, server_cpu, logs / f"{workload.key}-ovms_rs.log"
        )
        servers[PLAIN] = Server(
            PLAIN, ["benches.plain_server"], common, server_cpu, logs / f"{workload.key}-plain.log"
        )
        if args.baseline_python:
            servers[OVMS_RS_BEFORE] = Server(
                OVMS_RS_BEFORE,
                [],
                common,
                server_cpu,
                logs / f"{workload.key}-ovms_rs-before.log",
                program=[args.baseline_python, "-m", "ovms_rs", "serve"],
            )
        floor_binary = ""
        if workload.key == "c" or (args.floor_steps and workload.key in OPENVINO_FLOOR_WORKLOADS):
            floor_binary = str(build_loadgen(FLOOR_BINARY))  # once: each cargo call costs a second
        openvino_floors = {OPENVINO_FLOOR: [], OPENVINO_FLOOR_COPY: ["--input-copy"]}
        for name, extra in openvino_floors.items() if args.floor_steps else ():
            if workload.key not in OPENVINO_FLOOR_WORKLOADS or (extra and workload.key != "c"):
                continue
            servers[name] = Server(
                name,
                [],
                [
                    "--infer",
                    str(model_xml(workload.model_path)),
                    "--openvino-c",
                    str(openvino_c_library()),
                    # As ovms_rs is configured: the same infer requests, and the threads OpenVINO
                    # chose for in-process (LATENCY on one pinned core), spelled out.
                    "--nireq",
                    str(info["nireq"]),
                    "--threads",
                    str(info["threads"]),
                    *extra,
                ],
                server_cpu,
                logs / f"{workload.key}-{name}.log",
                program=[floor_binary],
            )
        if workload.key == "c":
            servers[OVMS_RS_GRPCIO] = Server(
                OVMS_RS_GRPCIO,
                ["ovms_rs", "serve"],
                [*common, "--grpc_transport", "grpcio"],
                server_cpu,
                logs / f"{workload.key}-ovms_rs-grpcio.log",
            )
            servers[FLOOR] = Server(
                FLOOR,
                ["benches.floor_server"],
                common,
                server_cpu,
                logs / f"{workload.key}-floor.log",
            )
            reply = logs.parent / "floor-reply.bin"
            reply.write_bytes(canned_reply(workload.model_name))
            servers[TRANSPORT_FLOOR] = Server(
                TRANSPORT_FLOOR,
                [],
                ["--reply", str(reply)],
                server_cpu,
                logs / f"{workload.key}-transport-floor.log",
                program=[floor_binary],
            )
            if args.floor_steps:
                servers[PYTHON_FLOOR] = Server(
                    PYTHON_FLOOR,
                    ["benches.python_floor_server"],
                    common,
                    server_cpu,
                    logs / f"{workload.key}-python-floor.log",
                )
            for name, steps in FLOOR_STEPS.items() if args.floor_steps else ():
                servers[name] = Server(
                    name,
                    [],
                    ["--reply", str(reply), *steps],
                    server_cpu,
                    logs / f"{workload.key}-{name}.log",
                    program=[floor_binary],
                )
        for server in servers.values():
            server.wait_ready()
        result["commands"] = {name: " ".join(s.cmd) for name, s in servers.items()}
        result["commands"][IN_PROCESS] = " ".join(inproc.cmd)
        requests = workload.requests()
        check = check_outputs(workload, servers, requests)
        result["check"] = check
        for name, error in check["errors"].items():
            print(f"   {name} cannot serve this workload: {error}", flush=True)
            result["notes"].append(f"{name} skipped: {error}")
            servers.pop(name).stop()
        if not check["errors"] and not check["agree"]:
            result["notes"].append("WARNING: the servers' top-1 answers differ")
        if "floor_openvino_max_abs_diff" in check:
            diff = check["floor_openvino_max_abs_diff"]
            result["notes"].append(
                f"{OPENVINO_FLOOR}: a PredictResponse of the model's output shape, max |difference| "
                f"from ovms_rs's answer {diff:.3g}"
            )
        if workload.binary:
            result["decode"] = inproc.ask(cmd="decode", seconds=1.0 if args.smoke else 4.0)
        gen.load(workload.key, requests)
        rounds = 1 if args.smoke else ROUNDS
        for c in levels:
            # The targets take turns, `rounds` times, so that a burst of noise on this shared machine hits
            # them alike; each point is the union of its rounds.
            # A round keeps at least 4 requests per worker so its ramp-up and drain stay small.
            turns = max(1, min(rounds, count // (4 * c)))
            local = (IN_PROCESS, IN_PROCESS_FRESH) if args.floor_steps else (IN_PROCESS,)
            raws: dict[str, list[dict[str, Any]]] = {name: [] for name in (*local, *servers)}
            per_round = max(1, count // turns)
            for turn in range(turns):
                warmup = budget.warmup if turn == 0 else 0
                turn_seconds = seconds / turns

                inprocess = functools.partial(
                    inproc.ask,
                    cmd="run",
                    concurrency=c,
                    count=per_round,
                    seconds=turn_seconds,
                    warmup=warmup,
                )
                runs: dict[str, Callable[[], dict[str, Any]]] = {
                    name: functools.partial(inprocess, fresh=name == IN_PROCESS_FRESH)
                    for name in local
                } | {
                    name: functools.partial(
                        measure, gen, workload.key, server, c, per_round, turn_seconds, warmup
                    )
                    for name, server in servers.items()
                }
                # Who goes first moves round by round, so no target always follows the same one.
                order = list(runs)
                order = order[turn % len(order) :] + order[: turn % len(order)]
                for name in order:
                    raws[name].append(runs[name]())
            points: dict[str, Any] = {name: summarize(merge(rs)) for name, rs in raws.items()}
            for name, server in servers.items():
                points[name]["rss"] = server.rss()
            result["points"][str(c)] = points
            print(
                f"   c={c}  "
                + "  ".join(
                    f"{n}: {p['rps']:.1f} req/s p50 {p['p50_ms']:.2f} ms err {p['errors']}"
                    for n, p in points.items()
                    if p["requests"]
                ),
                flush=True,
            )
        if OPENVINO_FLOOR in servers:
            # What it compiled (threads, nireq) and whether inputs were wrapped or copied.
            lines = servers[OPENVINO_FLOOR].log().splitlines()
            result["notes"] += [line for line in lines if line.startswith(OPENVINO_FLOOR)][-4:]
        if workload.key == "c" and OVMS_RS in servers:
            result["memory"] = memory_check(workload, servers[OVMS_RS], gen, args)
    finally:
        for server in servers.values():
            server.stop()
        inproc.stop()
    return result


def model_xml(repository: Path) -> Path:
    """<repository>/<highest version>/model.xml, as ovms_rs serves it."""
    version = max((p for p in repository.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    return version / "model.xml"


def openvino_c_library() -> Path:
    """OpenVINO's C API library as the openvino wheel ships it (what floor+openvino dlopens)."""
    import openvino

    found = sorted((Path(openvino.__file__).parent / "libs").glob("libopenvino_c.so*"))
    if not found:
        raise RuntimeError("the openvino package has no libs/libopenvino_c.so*")
    return found[0]


def measure(
    gen: AnyLoadGenerator, key: str, server: Server, c: int, count: int, seconds: float, warmup: int
) -> dict[str, Any]:
    """One round against a server, with the server's CPU time over the measured requests (the workers'
    warm-up excluded)."""
    cpu0: list[float] = []
    raw = gen.run(
        key,
        server.address,
        c,
        count,
        seconds,
        warmup,
        on_start=lambda: cpu0.append(server.cpu_seconds()),
    )
    raw["target_cpu_s"] = server.cpu_seconds() - cpu0[0]
    return raw


def memory_check(
    workload: Workload, server: Server, gen: AnyLoadGenerator, args: argparse.Namespace
) -> dict[str, Any]:
    """RSS of the ovms_rs server after the first N requests and after the total, concurrency 4."""
    first, total = MEMORY_SMOKE if args.smoke else MEMORY_FULL
    raw1 = gen.run(workload.key, server.address, 4, first, 120, 0)
    rss1 = server.rss()
    raw2 = gen.run(workload.key, server.address, 4, total - first, 240, 0)
    rss2 = server.rss()
    done = len(raw1["latencies_ns"]) + len(raw2["latencies_ns"])
    growth = (rss2 - rss1) / rss1 if rss1 else None
    print(
        f"   memory: RSS {rss1 / 2**20:.1f} MiB after {first}, {rss2 / 2**20:.1f} MiB after {done}",
        flush=True,
    )
    return {
        "first": first,
        "total": done,
        "rss_first": rss1,
        "rss_total": rss2,
        "growth": growth,
        "errors": raw1["errors"] + raw2["errors"],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "grpc_proxy"):
        os.environ.pop(var, None)  # every channel here goes to 127.0.0.1
    args.out.mkdir(parents=True, exist_ok=True)
    levels = (
        [int(x) for x in args.concurrency.split(",")]
        if args.concurrency
        else ([1, 4] if args.smoke else [1, 2, 4, 8])
    )
    server_cpu, client_cpu = choose_cpus(args)
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})  # the orchestrator sits with the load generator
    started = time.time()
    meta = report.machine() | {
        "command": " ".join(
            [
                Path(sys.executable).name,
                "-m",
                "benches.load",
                *(argv if argv is not None else sys.argv[1:]),
            ]
        ),
        "mode": "smoke" if args.smoke else "full",
        "server_cpu": server_cpu,
        "client_cpu": client_cpu,
        "client": args.client,
        "concurrency": levels,
        "loadavg_start": os.getloadavg(),
    }
    results: dict[str, Any] = {"meta": meta, "workloads": {}}
    logs = args.out / "logs"
    logs.mkdir(exist_ok=True)
    gen = CLIENTS[args.client](max(levels), client_cpu)
    try:
        with tempfile.TemporaryDirectory(prefix="ovms_rs_bench_") as tmp:
            workloads = all_workloads(Path(tmp))
            if "c" in args.workloads:
                build_tiny_model(workloads["c"].model_path)
            for key in args.workloads:
                results["workloads"][key] = run_workload(
                    workloads[key], args, gen, levels, logs, server_cpu
                )
    finally:
        gen.close()
    meta["loadavg_end"] = os.getloadavg()
    meta["wall_s"] = time.time() - started
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    (args.out / "report.md").write_text(report.markdown(results))
    plotted = report.plot(results, args.out / "load.png")
    print(
        f"wrote {args.out / 'report.md'}, {args.out / 'results.json'}"
        + (f", {plotted}" if plotted else "")
    )
    print(f"total {meta['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
