"""Decode + resize of the ten demo photos to 224x224: Rust (decode_images) vs OpenCV and vs Pillow,
in the same run. The Rust path decodes the batch in parallel; the baselines are what a Python server
would call, one image at a time.

Run: .venv/bin/python -m pytest benches/bench_image.py -q -s
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ovms_rs
import pytest
from ovms_rs import _native
from pytest_benchmark.fixture import BenchmarkFixture

from benches.compare import compare

cv2 = pytest.importorskip("cv2")
Image = pytest.importorskip("PIL.Image")

PHOTOS = sorted((ovms_rs.demo_dir() / "data" / "images").glob("*.jpeg"))
BLOBS = [p.read_bytes() for p in PHOTOS]


def _opencv(blobs: list[bytes]) -> np.ndarray[Any, Any]:
    out = []
    for blob in blobs:
        img = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)
        out.append(cv2.resize(img, (224, 224), interpolation=cv2.INTER_LINEAR))
    return np.stack(out)


def _pillow(blobs: list[bytes]) -> np.ndarray[Any, Any]:
    import io

    out = []
    for blob in blobs:
        img = Image.open(io.BytesIO(blob)).convert("RGB").resize((224, 224), Image.BILINEAR)
        out.append(np.asarray(img)[:, :, ::-1])  # BGR, as OVMS feeds models
    return np.stack(out)


def _ours(blobs: list[bytes]) -> np.ndarray[Any, Any]:
    return _native.decode_images(blobs, 224, 224)


def test_decode_resize_ten_photos(benchmark: BenchmarkFixture) -> None:
    ours, reference = _ours(BLOBS), _opencv(BLOBS)
    diff = np.abs(ours.astype(np.int16) - reference.astype(np.int16))
    print(f"\n  vs OpenCV: max abs pixel diff {diff.max()}, mean {diff.mean():.3f}")
    compare(
        benchmark,
        lambda: _ours(BLOBS),
        {"opencv": lambda: _opencv(BLOBS), "pillow": lambda: _pillow(BLOBS)},
        seconds=4,
    )


def test_decode_resize_one_photo(benchmark: BenchmarkFixture) -> None:
    one = BLOBS[:1]
    compare(
        benchmark,
        lambda: _ours(one),
        {"opencv": lambda: _opencv(one), "pillow": lambda: _pillow(one)},
    )
