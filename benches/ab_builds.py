"""Two builds' `_native` in one process, timed in alternating blocks on the same data: the parse of a
[1,3,224,224] f32 Predict, the binary-input path (parse + decode of eight photos into 224x224, U8
and FP32) and REST predict bodies (row format, [1,4] and [1,3,224,224] f32, the latter random and a photo's pixels), each build called through its own API (builds before `RequestStrings` get a list of bytes
and numpy's cast). Separate processes on a shared machine swing by tens of percent; this does not.

Run: .venv/bin/python -m benches.ab_builds BEFORE/_native.abi3.so AFTER/_native.abi3.so [seconds]
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import Any

import numpy as np
import ovms_rs
from ovms_rs._proto.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
from ovms_rs._proto.tensorflow_serving.apis import predict_pb2

from benches.workloads import demo_photo_tensor


def _load(name: str, path: str) -> ModuleType:
    # An extension's init function is named after the last part of its name: both are `_native`.
    spec = importlib.util.spec_from_file_location(f"{name}._native", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _requests() -> tuple[bytes, bytes]:
    photos = sorted((ovms_rs.demo_dir() / "data" / "images").glob("*.jpeg"))[:8]
    binary = predict_pb2.PredictRequest()
    tensor = tensor_pb2.TensorProto(dtype=7, string_val=[p.read_bytes() for p in photos])  # type: ignore[arg-type]
    tensor.tensor_shape.dim.add().size = len(photos)
    binary.inputs["images"].CopyFrom(tensor)
    dense = predict_pb2.PredictRequest()
    x = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
    data = dense.inputs["data"]
    data.dtype = 1
    data.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in x.shape)
    data.tensor_content = x.tobytes()
    return binary.SerializeToString(), dense.SerializeToString()


def _parse(native: Any, raw: bytes) -> object:
    return native.parse_predict_request(raw)[3]["data"].array


def _json_bodies() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    bodies = {
        shape: json.dumps({"instances": rng.random(dims, dtype=np.float32).tolist()}).encode()
        for shape, dims in (("[1,4]", (1, 4)), ("[1,3,224,224]", (1, 3, 224, 224)))
    }
    photo = demo_photo_tensor()
    bodies["[1,3,224,224] (a photo's pixels)"] = json.dumps({"instances": photo.tolist()}).encode()
    return bodies


def _parse_json(native: Any, body: bytes) -> object:
    return native.parse_json_predict(body, [("data", 1)])[1]["data"].array


def _decode(native: Any, raw: bytes, target: np.dtype[Any]) -> np.ndarray[Any, Any]:
    images = native.parse_predict_request(raw)[3]["images"].strings
    if hasattr(native, "RequestStrings"):
        assert not images.has_empty
        return native.decode_images(images, 224, 224, target)  # type: ignore[no-any-return]
    assert not any(len(image) == 0 for image in images)
    batch = native.decode_images(images, 224, 224)
    return batch if target == np.uint8 else batch.astype(target)  # type: ignore[no-any-return]


def _time(sides: list[Callable[[], object]], block: int, seconds: float) -> list[list[float]]:
    times: list[list[float]] = [[] for _ in sides]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for fn, samples in zip(sides, times):
            for _ in range(block):
                start = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - start)
    return times


def main() -> None:
    before, after = _load("before", sys.argv[1]), _load("after", sys.argv[2])
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    binary, dense = _requests()
    cases: dict[str, tuple[Callable[[Any], object], int]] = {
        "parse [1,3,224,224] f32": (partial(_parse, raw=dense), 2000),
    }
    for target in (np.dtype(np.uint8), np.dtype(np.float32)):
        name = f"parse + decode 8 photos, 224x224 {target}"
        cases[name] = (partial(_decode, raw=binary, target=target), 5)
    for shape, body in _json_bodies().items():
        block = 2000 if len(body) < 1000 else 5
        cases[f"REST body {shape} f32, row format"] = (partial(_parse_json, body=body), block)
    for name, (case, block) in cases.items():
        np.testing.assert_array_equal(case(before), case(after))
        sides: list[Callable[[], object]] = [partial(case, before), partial(case, after)]
        tb, ta = _time(sides, block, seconds)
        mb, ma, db, da = (f(t) for f in (statistics.fmean, statistics.median) for t in (tb, ta))
        print(
            f"{name}: before {mb * 1e6:.1f} us (median {db * 1e6:.1f}), after {ma * 1e6:.1f} us"
            f" (median {da * 1e6:.1f}): before/after {mb / ma:.2f}x (medians {db / da:.2f}x),"
            f" {len(tb)} calls each"
        )


if __name__ == "__main__":
    main()
