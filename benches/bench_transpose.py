"""transpose_layout vs numpy's transpose + ascontiguousarray, measured in the same run.

Run: .venv/bin/python -m pytest benches/bench_transpose.py -q -s

Each test alternates numpy and ours in blocks of calls (benches/compare.py) and prints numpy / ours for
the means and the medians (> 1 means ours is faster); the ratios are also stored in
`benchmark.extra_info`.
"""

from __future__ import annotations

import numpy as np
import pytest
from ovms_rs._native import transpose_layout
from pytest_benchmark.fixture import BenchmarkFixture

from benches.compare import compare

# (id, shape, dtype, target layout): the shapes a server sees for 224x224 RGB models.
CASES = [
    ("nhwc_to_nchw-1x224x224x3-uint8", (1, 224, 224, 3), np.uint8, "NCHW"),
    ("nhwc_to_nchw-1x224x224x3-float32", (1, 224, 224, 3), np.float32, "NCHW"),
    ("nhwc_to_nchw-32x224x224x3-float32", (32, 224, 224, 3), np.float32, "NCHW"),
    ("nchw_to_nhwc-1x3x224x224-float32", (1, 3, 224, 224), np.float32, "NHWC"),
    # A feature map with many channels: the tiled (wide-C) kernels.
    ("nhwc_to_nchw-1x56x56x64-float32", (1, 56, 56, 64), np.float32, "NCHW"),
]

AXES = {"NCHW": (0, 3, 1, 2), "NHWC": (0, 2, 3, 1)}


@pytest.mark.parametrize(
    ("shape", "dtype", "to"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_transpose_vs_numpy(
    benchmark: BenchmarkFixture, shape: tuple[int, ...], dtype: type[np.generic], to: str
) -> None:
    x = np.random.default_rng(0).integers(0, 255, shape).astype(dtype)
    axes = AXES[to]

    def numpy_way() -> np.ndarray:
        return np.ascontiguousarray(x.transpose(axes))

    def ours() -> np.ndarray:
        return transpose_layout(x, to)

    np.testing.assert_array_equal(ours(), numpy_way())
    compare(benchmark, ours, {"numpy": numpy_way})
