"""Same-run comparisons for pytest-benchmark: ours under the `benchmark` fixture, each baseline timed in
the same run, call by call, in alternating blocks.

A block is a few consecutive calls of one side (about `BLOCK_SECONDS`, at most `MAX_BLOCK` calls), and the
sides take turns block by block until the time budget is spent. Turns keep a shared, noisy machine fair
(both sides sample the same minutes); blocks keep each side in its own steady state, as in a process that
does this work over and over: with glibc's default allocator one side's large temporaries otherwise
change the heap under the other (alternating single calls, `build_predict_response` for a 602 KB reply
pays ~115 page faults per call that protobuf's build left behind, ~40 -> ~300 us; in a block of its own,
0.7). Each sample is one call timed with `time.perf_counter`, the same way on both sides; ratios are
baseline / ours (> 1: ours is faster), of the means and of the medians.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable

from pytest_benchmark.fixture import BenchmarkFixture

BLOCK_SECONDS = 0.02
MAX_BLOCK = 50


def compare(
    benchmark: BenchmarkFixture,
    ours: Callable[[], object],
    baselines: dict[str, Callable[[], object]],
    seconds: float = 2.0,
) -> dict[str, float]:
    """Benchmarks `ours` against each baseline for about `seconds` (at least 8 turns), prints and
    records the ratios; returns baseline-mean / ours-mean by baseline name."""
    start = time.perf_counter()
    ours()
    per_call = time.perf_counter() - start
    block = max(1, min(MAX_BLOCK, int(BLOCK_SECONDS / per_call)))
    start = time.perf_counter()
    for fn in baselines.values():
        fn()
    per_turn = block * (per_call + time.perf_counter() - start)
    turns = max(8, int(seconds / per_turn))

    times: dict[str, list[float]] = {name: [] for name in baselines}
    calls = itertools.count()

    def baselines_turn() -> (
        None
    ):  # pytest-benchmark's setup hook: before each of ours, untimed by it
        if next(calls) % block:
            return
        for name, fn in baselines.items():
            for _ in range(block):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)

    # The first turn (a block of each side) warms up and is not counted.
    benchmark.pedantic(
        ours, setup=baselines_turn, rounds=turns * block, warmup_rounds=block, iterations=1
    )
    if (
        benchmark.disabled
    ):  # --benchmark-disable (the smoke test): one call of each, nothing measured
        return {}
    assert benchmark.stats is not None
    ours_stats = benchmark.stats.stats
    ratios = {}
    for name, samples in times.items():
        measured = samples[block:]
        mean, median = statistics.fmean(measured), statistics.median(measured)
        ratios[name] = mean / ours_stats.mean
        median_ratio = median / ours_stats.median
        benchmark.extra_info[f"{name}_mean_us"] = round(mean * 1e6, 2)
        benchmark.extra_info[f"ratio_vs_{name}"] = round(ratios[name], 2)
        benchmark.extra_info[f"median_ratio_vs_{name}"] = round(median_ratio, 2)
        print(
            f"\n  {benchmark.name}: ours {ours_stats.mean * 1e6:.1f} us, {name} {mean * 1e6:.1f} us,"
            f" ratio {ratios[name]:.2f}x (medians {ours_stats.median * 1e6:.1f} / {median * 1e6:.1f} us,"
            f" {median_ratio:.2f}x; {turns} turns of {block})"
        )
    return ratios
