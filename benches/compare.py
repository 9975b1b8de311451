"""Same-run comparisons for pytest-benchmark: ours under the `benchmark` fixture, the baseline timed with
the same number of calls (half before, half after ours, so a drifting machine biases neither side)."""

from __future__ import annotations

import time
from collections.abc import Callable

from pytest_benchmark.fixture import BenchmarkFixture


def mean_seconds(fn: Callable[[], object], rounds: int, iterations: int) -> float:
    """Mean seconds per call over `rounds` timed batches of `iterations` calls."""
    total = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(iterations):
            fn()
        total += time.perf_counter() - start
    return total / (rounds * iterations)


def compare(
    benchmark: BenchmarkFixture,
    ours: Callable[[], object],
    baselines: dict[str, Callable[[], object]],
    rounds: int = 20,
    iterations: int = 10,
) -> dict[str, float]:
    """Benchmarks `ours`, times each baseline in the same run, prints and records baseline/ours ratios
    (> 1: ours is faster)."""
    before = {name: mean_seconds(fn, rounds // 2, iterations) for name, fn in baselines.items()}
    benchmark.pedantic(ours, rounds=rounds, iterations=iterations, warmup_rounds=1)
    after = {name: mean_seconds(fn, rounds - rounds // 2, iterations) for name, fn in baselines.items()}
    ours_mean = benchmark.stats.stats.mean
    ratios = {}
    for name in baselines:
        base = (before[name] + after[name]) / 2
        ratios[name] = base / ours_mean
        benchmark.extra_info[f"{name}_us"] = round(base * 1e6, 2)
        benchmark.extra_info[f"ratio_vs_{name}"] = round(ratios[name], 2)
        print(f"\n  {benchmark.name}: ours {ours_mean * 1e6:.1f} us, {name} {base * 1e6:.1f} us, "
              f"ratio {ratios[name]:.2f}x")
    return ratios
