"""REST predict bodies -> typed arrays: ours (`parse_json_predict`, serde_json streamed straight into the
model input's dtype) vs what a competent Python server does (`orjson.loads` + `np.asarray`, and the
standard library's `json.loads` + `np.asarray`), measured in the same run; and the reply side
(`build_json_predict_response` vs `orjson.dumps` of `.tolist()`).

Run: .venv/bin/python -m pytest benches/bench_json.py -q -s

Ratios are baseline / ours (> 1: ours is faster), of the means and of the medians (benches/compare.py).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
import pytest
from ovms_rs._native import build_json_predict_response, parse_json_predict
from pytest_benchmark.fixture import BenchmarkFixture

from benches.compare import compare
from benches.workloads import demo_photo_tensor

DT_FLOAT = 1

# (id, shape, writer): a demo-model image as a client's `tolist()` sends it (floats 0..255 with a
# fraction, as after a float resize; 17 significant digits), written by orjson (no spaces, 2.8 MB) and
# by the standard library's json.dumps (", " between numbers, 2.9 MB, what the load benchmark sends),
# a photo as the demo model takes it (`workloads.demo_photo_tensor`: integer pixels, `78.0`, 1.0 MB by
# json.dumps), and the tiny model's input.
CASES = [
    ("image-1x3x224x224-float32", (1, 3, 224, 224), "orjson"),
    ("image-1x3x224x224-float32-json.dumps", (1, 3, 224, 224), "json"),
    ("photo-1x3x224x224-float32-json.dumps", (1, 3, 224, 224), "json-photo"),
    ("tiny-1x4-float32", (1, 4), "orjson"),
]


def _body(shape: tuple[int, ...], writer: str = "orjson") -> bytes:
    if writer == "json-photo":
        return json.dumps({"instances": demo_photo_tensor().tolist()}).encode()
    x = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
    if writer == "json":
        return json.dumps({"instances": x.tolist()}).encode()
    return orjson.dumps({"instances": x.tolist()})


@pytest.mark.parametrize(("shape", "writer"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_vs_orjson_numpy(
    benchmark: BenchmarkFixture, shape: tuple[int, ...], writer: str
) -> None:
    body = _body(shape, writer)

    def ours() -> Any:
        return parse_json_predict(body, [("data", DT_FLOAT)])[1]["data"].array

    def orjson_numpy() -> Any:
        return np.asarray(orjson.loads(body)["instances"], dtype=np.float32)

    def json_numpy() -> Any:
        return np.asarray(json.loads(body)["instances"], dtype=np.float32)

    np.testing.assert_array_equal(ours(), orjson_numpy())
    compare(benchmark, ours, {"orjson+numpy": orjson_numpy, "json+numpy": json_numpy})


def test_reply_vs_orjson(benchmark: BenchmarkFixture) -> None:
    prob = np.random.default_rng(1).random((1, 1000), dtype=np.float32)

    def ours() -> bytes:
        return build_json_predict_response("row", [("prob", prob)])

    def orjson_tolist() -> bytes:
        return orjson.dumps({"predictions": prob.tolist()})

    np.testing.assert_array_equal(np.asarray(json.loads(ours())["predictions"], np.float32), prob)
    compare(benchmark, ours, {"orjson": orjson_tolist})
