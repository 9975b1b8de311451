"""A batch of one row with batching on: through `ModelVersion.submit` on its static batch-1 twin
(`ModelVersion._twins`) against the same version with the twins dropped (the `1:max_batch_size` range
compiled for batching), in one process, same core, alternating rounds.

    .venv/bin/python -m benches.batch_one [--model PATH] [--max-batch-size 4] [--calls 100] [--rounds 12]

Prints each side's median and minimum ms per submit and the ratio twin / range per round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import openvino as ov
from ovms_rs.config.model import model_config
from ovms_rs.models.version import ModelVersion
from ovms_rs.request.validation import Validated

from .stats import cpu_model
from .workloads import DEMO_MODEL


def _version(core: ov.Core, repo: Path, max_batch_size: int, twins: bool) -> ModelVersion:
    config = model_config("m", repo, batching={"max_batch_size": max_batch_size})
    version = ModelVersion("m", 1, repo / "1", config)
    assert version.load(core), version.load_error
    if not twins:
        version.compiled().twins.clear()
    return version


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", type=Path, default=DEMO_MODEL, help="a model repository (version 1)")
    p.add_argument("--max-batch-size", type=int, default=4)
    p.add_argument("--calls", type=int, default=100, help="submits per round")
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--cpu", type=int, default=0, help="the core to run on")
    args = p.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    core = ov.Core()
    sides = {
        "twin": _version(core, args.model, args.max_batch_size, True),
        "range": _version(core, args.model, args.max_batch_size, False),
    }
    assert sides["twin"].compiled().twins, "no twin compiled: nothing to compare"
    shape = sides["twin"].compiled().twin_shapes[0]
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    times: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(args.rounds):
        order = list(sides) if r % 2 == 0 else list(sides)[::-1]
        for name in order:
            version = sides[name]
            compiled = version.compiled()
            validated = Validated({0: x}, compiled, compiled.output_ports)
            version.acquire()
            try:
                version.submit(validated)
                started = time.perf_counter()
                for _ in range(args.calls):
                    version.submit(validated)
                times[name].append((time.perf_counter() - started) / args.calls * 1e3)
            finally:
                version.release()
    for version in sides.values():
        version.retire()
    print(
        f"CPU: {cpu_model()}, core {args.cpu}; load average {os.getloadavg()[0]:.1f}; model "
        f"{args.model}, input {shape}, max_batch_size {args.max_batch_size}"
    )
    for name, ms in times.items():
        print(
            f"{name:5s}: median {statistics.median(ms):.3f} ms, min {min(ms):.3f} ms per submit"
            f" ({' '.join(f'{t:.2f}' for t in ms)})"
        )
    ratios = sorted(t / r for t, r in zip(times["twin"], times["range"]))
    print(
        f"twin / range per round: median {statistics.median(ratios):.3f}"
        f" ({ratios[0]:.3f}..{ratios[-1]:.3f}); ratio of minima"
        f" {min(times['twin']) / min(times['range']):.3f}"
    )


if __name__ == "__main__":
    main()
