"""Where ovms_rs spends a request: py-spy on a pinned ovms_rs server under closed-loop load.

    .venv/bin/python -m benches.profile --out bench-profile [--workload c] [--seconds 15] [--native]

Needs py-spy (`pip install py-spy`; ptrace rights). Writes a flame graph (profile.svg), the raw
collapsed stacks (profile.txt) and prints the functions with the most samples (self and inclusive), as a
share of all samples taken in the server's busy threads.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .load import choose_cpus
from .loadgen_native import CLIENTS, AnyLoadGenerator
from .targets import Server
from .workloads import all_workloads, build_tiny_model


def top_functions(collapsed: Path, limit: int = 25) -> str:
    self_counts: collections.Counter[str] = collections.Counter()
    incl_counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        self_counts[frames[-1]] += n
        for frame in set(frames):
            incl_counts[frame] += n
    lines = [f"{total} samples"]
    for title, counts in (("self", self_counts), ("inclusive", incl_counts)):
        lines.append(f"-- top {limit} by {title}")
        for frame, n in counts.most_common(limit):
            lines.append(f"{100 * n / max(total, 1):6.1f}%  {frame}")
    return "\n".join(lines)


def perf_profile(
    pid: int, gen: AnyLoadGenerator, key: str, address: str, args: argparse.Namespace
) -> None:
    """perf record (cpu-clock, all threads of the server) under the same load; writes perf-dso.txt and
    perf-symbols.txt (share of the server's CPU samples)."""
    data = args.out / "perf.data"
    perf = subprocess.Popen(
        [
            "perf",
            "record",
            "-e",
            "cpu-clock",
            "-F",
            "999",
            "-p",
            str(pid),
            "-o",
            str(data),
            "--",
            "sleep",
            str(int(args.seconds)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    raw = gen.run(key, address, args.concurrency, 10**9, args.seconds, 0)
    _, err = perf.communicate(timeout=args.seconds + 60)
    if perf.returncode != 0:
        print("perf failed:", err.decode(errors="replace"))
        return
    print(f"perf: {len(raw['latencies_ns'])} requests in {raw['end'] - raw['start']:.1f} s")
    for sort, name in (("dso", "perf-dso.txt"), ("dso,symbol", "perf-symbols.txt")):
        report = subprocess.run(
            [
                "perf",
                "report",
                "-i",
                str(data),
                "--stdio",
                "--sort",
                sort,
                "--percent-limit",
                "0.5",
            ],
            capture_output=True,
            text=True,
        )
        (args.out / name).write_text(report.stdout)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benches.profile", description=__doc__.split("\n")[0]
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--workload", default="c", choices="abcd")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--rate", type=int, default=1000, help="py-spy samples per second")
    p.add_argument("--native", action="store_true", help="py-spy --native (C/Rust frames too)")
    p.add_argument(
        "--perf",
        action="store_true",
        help="also `perf record` the server: CPU by library and symbol",
    )
    p.add_argument("--server-cpu", type=int, default=None)
    p.add_argument("--client-cpu", type=int, default=None)
    p.add_argument("--no-pin", action="store_true")
    p.add_argument("--client", choices=CLIENTS, default="native", help="load generator")
    p.add_argument(
        "--server-args",
        default="",
        help="extra server flags, space-separated (e.g. '--enable_batching --batching_parameters_file F')",
    )
    args = p.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        print("py-spy not found: pip install py-spy")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    server_cpu, client_cpu = choose_cpus(args)
    gen = CLIENTS[args.client](args.concurrency, client_cpu)
    server = None
    try:
        with tempfile.TemporaryDirectory(prefix="ovms_rs_profile_") as tmp:
            workload = all_workloads(Path(tmp))[args.workload]
            if workload.key == "c":
                build_tiny_model(workload.model_path)
            server = Server(
                "ovms_rs",
                ["ovms_rs", "serve"],
                [*workload.serve_args(), *args.server_args.split()],
                server_cpu,
                args.out / "server.log",
            )
            server.wait_ready()
            gen.load(workload.key, workload.requests())
            gen.run(workload.key, server.address, args.concurrency, 200, 10, 5)  # warm up
            for fmt, name in (("raw", "profile.txt"), ("flamegraph", "profile.svg")):
                cmd = [
                    py_spy,
                    "record",
                    "-p",
                    str(server.pid),
                    "-r",
                    str(args.rate),
                    "-d",
                    str(int(args.seconds)),
                    "-f",
                    fmt,
                    "-o",
                    str(args.out / name),
                    "--nonblocking",
                ]
                if args.native:
                    cmd.append("--native")
                spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                raw = gen.run(
                    workload.key, server.address, args.concurrency, 10**9, args.seconds, 0
                )
                _, err = spy.communicate(timeout=args.seconds + 60)
                if spy.returncode != 0:
                    print(err.decode(errors="replace"))
                    return 1
                n = len(raw["latencies_ns"])
                print(
                    f"{name}: {n} requests in {raw['end'] - raw['start']:.1f} s, {raw['errors']} errors"
                )
            if args.perf:
                perf_profile(server.pid, gen, workload.key, server.address, args)
            summary = top_functions(args.out / "profile.txt")
            (args.out / "top.txt").write_text(summary + "\n")
            print(summary)
    finally:
        if server is not None:
            server.stop()
        gen.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
