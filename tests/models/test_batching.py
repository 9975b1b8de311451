"""Dynamic batching (TF Serving's BatchingParameters): concurrent requests of 1..k rows are merged, run as
one inference, and each gets exactly its own rows back; queue deadlines, a full queue, retirement."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
import requests
from helpers import (
    DEMO_MODEL_PATH,
    ServerProcess,
    labeled_photos,
    output_array,
    predict_request,
    tensor_proto,
)
from model_repo import tiny_repo, write_config
from ovms_rs.config.batching import BatchingParameters, load_batching_file, parse_text_format
from ovms_rs.config.config_json import load_config_file
from ovms_rs.config.model import model_config
from ovms_rs.errors import BATCH_DEADLINE_EXCEEDED, BATCH_QUEUE_FULL, ConfigError, ServingError
from ovms_rs.models.version import ModelVersion
from ovms_rs.request.validation import Validated

DTYPES: list[tuple[Any, ov.Type]] = [
    (np.float32, ov.Type.f32),
    (np.float64, ov.Type.f64),
    (np.float16, ov.Type.f16),
    (np.int8, ov.Type.i8),
    (np.int16, ov.Type.i16),
    (np.int32, ov.Type.i32),
    (np.int64, ov.Type.i64),
    (np.uint8, ov.Type.u8),
    (np.uint16, ov.Type.u16),
    (np.uint32, ov.Type.u32),
    (np.uint64, ov.Type.u64),
    (np.bool_, ov.Type.boolean),
]
BATCHING = {"max_batch_size": 8, "batch_timeout_micros": 30000, "allowed_batch_sizes": [2, 4, 8]}
BATCH_LINE = re.compile(r"Batch of (\d+) rows \((\d+) requests, run at (\d+)\) for (\S+) version")


def _identity_model(root: Path, name: str, ov_type: ov.Type, batch: int) -> None:
    """y = convert(x, f64), x [batch, 8] of the dtype (batch -1: dynamic)."""
    x = ops.parameter([batch, 8], ov_type, name="x")
    y = ops.convert(x, ov.Type.f64)
    y.output(0).get_tensor().set_names({"y"})
    (root / name / "1").mkdir(parents=True)
    ov.save_model(
        ov.Model([ops.result(y)], [x], name),
        str(root / name / "1" / "model.xml"),
        compress_to_fp16=False,
    )


def _rows(np_dtype: Any, ids: list[int]) -> np.ndarray[Any, Any]:
    """One distinct row of 8 values per id (any id < 100), exact in every dtype."""
    if np_dtype is np.bool_:
        return np.array([[(i >> j) & 1 for j in range(8)] for i in ids], dtype=bool)
    values = np.array([[(i + 7 * j) % 100 for j in range(8)] for i in ids])
    if np.issubdtype(np_dtype, np.floating):
        return (values / 4.0 - 10.0).astype(np_dtype)
    return values.astype(np_dtype)


def _batches(log: str) -> list[tuple[int, int, int, str]]:
    return [(int(r), int(n), int(p), m) for r, n, p, m in BATCH_LINE.findall(log)]


@pytest.fixture(scope="module")
def batch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Every dtype (fixed batch dim 1), a dynamic-batch model, the tiny model with fixed and dynamic
    batch, and the tiny model without batching, for comparison."""
    root = Path(tmp_path_factory.mktemp("batching"))
    models: list[dict[str, Any]] = []
    for np_dtype, ov_type in DTYPES:
        name = np.dtype(np_dtype).name
        _identity_model(root, name, ov_type, 1)
        models.append({"name": name, "base_path": name, "batching": BATCHING})
    _identity_model(root, "dynamic", ov.Type.f32, -1)
    models.append({"name": "dynamic", "base_path": "dynamic", "batching": BATCHING})
    tiny_repo(root / "tiny", [3])
    tiny_repo(root / "tiny_dyn", [3], shape=[-1, 4])
    models.append(
        {
            "name": "tiny",
            "base_path": "tiny",
            "batching": {"max_batch_size": 4, "batch_timeout_micros": 30000},
        }
    )
    models.append({"name": "tiny_dyn", "base_path": "tiny_dyn", "batching": BATCHING})
    models.append({"name": "tiny_off", "base_path": "tiny"})
    # No batching window: a request finding nothing queued and a free infer request runs inline.
    models.append({"name": "tiny_0", "base_path": "tiny_dyn", "batching": {"max_batch_size": 8}})
    config = write_config(root / "config.json", models)
    server = ServerProcess(
        "--config_path",
        str(config),
        "--log_level",
        "DEBUG",
        log_path=root / "server.log",
        rest=True,
    )
    with server:
        yield server


def _concurrent(server: ServerProcess, model: str, np_dtype: Any, sizes: list[int]) -> None:
    """Requests of `sizes` rows at once, each with its own rows; each must get exactly its rows."""
    stub = server.prediction_stub()
    starts = np.cumsum([0, *sizes])
    inputs = [_rows(np_dtype, list(range(starts[i], starts[i + 1]))) for i in range(len(sizes))]

    def ask(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        reply = stub.Predict(predict_request({"x": tensor_proto(x)}, model=model), timeout=30)
        return output_array(reply.outputs["y"])

    with ThreadPoolExecutor(len(sizes)) as pool:
        answers = list(pool.map(ask, inputs))
    for x, y in zip(inputs, answers):
        assert y.shape == x.shape
        np.testing.assert_array_equal(y, x.astype(np.float64))


@pytest.mark.parametrize(
    "np_dtype", [d for d, _ in DTYPES], ids=[np.dtype(d).name for d, _ in DTYPES]
)
def test_every_dtype_gets_its_own_rows(batch_server: ServerProcess, np_dtype: Any) -> None:
    name = np.dtype(np_dtype).name
    _concurrent(batch_server, name, np_dtype, [1, 2, 1, 1, 2, 1, 1, 1, 2, 1, 1, 1])
    batches = [b for b in _batches(batch_server.log()) if b[3] == name]
    assert any(rows > 1 and n > 1 for rows, n, _, _ in batches), batches
    assert all(padded in (2, 4, 8) and rows <= padded for rows, _, padded, _ in batches)


def test_dynamic_batch_dim_and_padding(batch_server: ServerProcess) -> None:
    _concurrent(batch_server, "dynamic", np.float32, [1, 1, 1, 2, 3, 1, 1])
    batches = [b for b in _batches(batch_server.log()) if b[3] == "dynamic"]
    assert any(rows > 1 for rows, _, _, _ in batches), batches
    assert all(padded == next(s for s in (2, 4, 8) if s >= rows) for rows, _, padded, _ in batches)


def test_fixed_and_dynamic_tiny_match_unbatched(batch_server: ServerProcess) -> None:
    """The tiny model (y = 3x) batched, fixed [1,4] and dynamic [-1,4] (and with no batching window),
    against it unbatched; gRPC and
    REST requests in the same batches."""
    stub = batch_server.prediction_stub()
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((1 + i % 2, 4)).astype(np.float32) for i in range(12)]
    expected = [
        output_array(
            stub.Predict(
                predict_request({"x": tensor_proto(x)}, model="tiny_off"), timeout=30
            ).outputs["y"]
        )
        for x in inputs[:1]
    ]
    assert expected[0].shape == (1, 4)  # tiny_off keeps its fixed batch of 1; the formula is 3x

    def grpc_ask(model: str, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        reply = stub.Predict(predict_request({"x": tensor_proto(x)}, model=model), timeout=30)
        return output_array(reply.outputs["y"])

    def rest_ask(model: str, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        reply = requests.post(
            f"{batch_server.rest_url}/v1/models/{model}:predict",
            json={"instances": x.tolist()},
            timeout=30,
            proxies={"http": "", "https": ""},
        )
        assert reply.status_code == 200, reply.text
        return np.array(reply.json()["predictions"], np.float32)

    for model in ("tiny", "tiny_dyn", "tiny_0"):
        with ThreadPoolExecutor(len(inputs)) as pool:
            futures = [
                pool.submit(rest_ask if i % 3 == 0 else grpc_ask, model, x)
                for i, x in enumerate(inputs)
            ]
            answers = [f.result() for f in futures]
        for x, y in zip(inputs, answers):
            np.testing.assert_allclose(y, x * np.float32(3), rtol=1e-6)
        batches = [b for b in _batches(batch_server.log()) if b[3] == model]
        assert any(n > 1 for _, n, _, _ in batches) or model == "tiny_0", batches
        assert all(rows <= (4 if model == "tiny" else 8) for rows, _, _, _ in batches)


def test_invalid_requests_never_join_a_batch(batch_server: ServerProcess) -> None:
    stub = batch_server.prediction_stub()
    good = [_rows(np.float32, [i]) for i in range(6)]
    bad = [np.zeros((1, 7), np.float32), np.zeros((9, 8), np.float32), np.zeros((1, 8), np.int32)]

    def ask(x: np.ndarray[Any, Any]) -> Any:
        try:
            reply = stub.Predict(
                predict_request({"x": tensor_proto(x)}, model="dynamic"), timeout=30
            )
        except grpc.RpcError as e:
            return e.code(), e.details()
        return output_array(reply.outputs["y"])

    with ThreadPoolExecutor(9) as pool:
        answers = list(pool.map(ask, [*good[:3], *bad, *good[3:]]))
    errors = answers[3:6]
    assert [code for code, _ in errors] == [grpc.StatusCode.INVALID_ARGUMENT] * 3
    assert errors[0][1].startswith("Invalid input shape")
    assert errors[1][1].startswith("Invalid input batch size - Expected: 1:8; Actual: 9")
    assert errors[2][1].startswith("Invalid input precision")
    for x, y in zip(good, [*answers[:3], *answers[6:]]):
        np.testing.assert_array_equal(y, x.astype(np.float64))


def test_metadata_shows_the_batch_range(batch_server: ServerProcess) -> None:
    reply = requests.get(
        f"{batch_server.rest_url}/v1/models/float32/metadata", timeout=30, proxies={"http": ""}
    )
    shape = reply.json()["metadata"]["signature_def"]["signatureDef"]["serving_default"]["inputs"][
        "x"
    ]["tensorShape"]
    assert [int(d["size"]) for d in shape["dim"]] == [-1, 8]


# ---- JPEG inputs, the CLI flags and the text format ----

TEXT_PARAMS = """# TF Serving's format
max_batch_size { value: 4 }
batch_timeout_micros { value: 50000 }
num_batch_threads { value: 2 }
max_enqueued_batches { value: 100 }
allowed_batch_sizes: 2
allowed_batch_sizes: 4
"""


def test_jpeg_inputs_batch(tmp_path: Path, nhwc_server: ServerProcess) -> None:
    cv2 = pytest.importorskip("cv2")
    del cv2
    from ovms_rs._proto.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2

    params = tmp_path / "batching.txt"
    params.write_text(TEXT_PARAMS)
    args = [
        "--model_name",
        "efficientnet-lite0",
        "--model_path",
        str(DEMO_MODEL_PATH),
        "--layout",
        "NHWC:NCHW",
        "--enable_batching",
        "--batching_parameters_file",
        str(params),
        "--log_level",
        "DEBUG",
    ]
    photos = labeled_photos()

    def request(path: Path) -> Any:
        return predict_request(
            {
                "data": tensor_pb2.TensorProto(
                    dtype=7,  # type: ignore[arg-type]
                    tensor_shape=tensor_shape_pb2.TensorShapeProto(
                        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=1)]
                    ),
                    string_val=[path.read_bytes()],
                )
            }
        )

    unbatched = [
        output_array(nhwc_server.prediction_stub().Predict(request(p), timeout=60).outputs["prob"])
        for p, _ in photos
    ]
    with ServerProcess(*args, log_path=tmp_path / "server.log") as server:
        stub = server.prediction_stub()
        jobs = [photos[i % len(photos)] for i in range(8)]
        with ThreadPoolExecutor(len(jobs)) as pool:
            answers = list(
                pool.map(
                    lambda job: output_array(
                        stub.Predict(request(job[0]), timeout=60).outputs["prob"]
                    ),
                    jobs,
                )
            )
        log = server.log()
    for i, ((_, label), prob) in enumerate(zip(jobs, answers)):
        assert int(prob.argmax()) == label
        np.testing.assert_allclose(prob, unbatched[i % len(photos)], rtol=1e-3, atol=1e-5)
    batches = _batches(log)
    assert any(n > 1 for _, n, _, _ in batches), batches
    assert all(padded in (2, 4) for _, _, padded, _ in batches)


def test_cli_file_without_enable_batching_is_refused(tmp_path: Path) -> None:
    from ovms_rs.__main__ import main

    params = tmp_path / "batching.txt"
    params.write_text(TEXT_PARAMS)
    assert main(["serve", "--batching_parameters_file", str(params)]) != 0


def test_text_format_and_json() -> None:
    assert parse_text_format(TEXT_PARAMS, "test") == BatchingParameters(4, 50000, 100, 2, (2, 4))
    assert parse_text_format(
        "max_batch_size: { value: 3 } batch_timeout_micros {value:5}", "t"
    ) == (BatchingParameters(max_batch_size=3, batch_timeout_micros=5))
    assert parse_text_format("", "t") == BatchingParameters()  # TF Serving's defaults
    assert BatchingParameters() == BatchingParameters(1000, 0, 10, 0, ())
    for bad in (
        "max_batch_size { value: 0 }",
        "no_such_field { value: 1 }",
        "max_batch_size {",
        "max_batch_size { value: 8 } allowed_batch_sizes: 4",
        "max_batch_size { value: 8 } allowed_batch_sizes: 4 allowed_batch_sizes: 2 allowed_batch_sizes: 8",
    ):
        with pytest.raises(ConfigError):
            parse_text_format(bad, "t")


def test_json_file_and_config(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text('{"max_batch_size": {"value": 16}, "batch_timeout_micros": 100}')
    assert load_batching_file(path) == BatchingParameters(
        max_batch_size=16, batch_timeout_micros=100
    )
    tiny_repo(tmp_path / "m", [1])
    config = write_config(
        tmp_path / "config.json",
        [
            {"name": "a", "base_path": "m", "batching": {"max_batch_size": 4}},
            {"name": "b", "base_path": "m"},
        ],
    )
    a, b = load_config_file(config)
    assert a.batching == BatchingParameters(max_batch_size=4) and b.batching is None
    a, b = load_config_file(config, BatchingParameters(max_batch_size=2))
    assert a.batching == BatchingParameters(max_batch_size=4)
    assert b.batching == BatchingParameters(max_batch_size=2)
    write_config(config, [{"name": "a", "base_path": "m", "batching": {"max_batch_size": "x"}}])
    with pytest.raises(ConfigError):
        load_config_file(config)
    with pytest.raises(ConfigError, match="auto"):
        model_config("a", tmp_path / "m", batch_size="auto", batching={})


# ---- in process: queue deadline, full queue, retirement drains ----


def _version(tmp_path: Path, **batching: Any) -> ModelVersion:
    tiny_repo(tmp_path / "m", [2], shape=[1, 4])
    config = model_config("tiny", tmp_path / "m", batching=batching)
    mv = ModelVersion("tiny", 2, tmp_path / "m" / "2", config)
    assert mv.load(ov.Core())
    assert mv.batcher is not None
    return mv


def _submit(mv: ModelVersion, rows: int, timeout: float | None = None) -> Any:
    mv.acquire()
    try:
        arrays = {0: np.full((rows, 4), rows, np.float32)}
        reply = mv.submit(Validated(arrays, mv.compiled(), mv.compiled().output_ports), timeout)
    except ServingError as e:
        return e
    finally:
        mv.release()
    from ovms_rs._proto.tensorflow_serving.apis import predict_pb2

    return output_array(predict_pb2.PredictResponse.FromString(reply).outputs["y"])


def test_deadline_in_queue(tmp_path: Path) -> None:
    mv = _version(tmp_path, max_batch_size=8, batch_timeout_micros=1_000_000)
    try:
        t0 = time.monotonic()
        error = _submit(mv, 1, timeout=0.1)
        assert isinstance(error, ServingError)
        assert (
            error.code == grpc.StatusCode.DEADLINE_EXCEEDED
            and error.message == BATCH_DEADLINE_EXCEEDED
        )
        assert time.monotonic() - t0 < 0.9
        # A request without a deadline waits out the batch timeout and is answered.
        np.testing.assert_array_equal(_submit(mv, 2), np.full((2, 4), 4, np.float32))
    finally:
        mv.retire()


def test_full_queue_and_retire_drains(tmp_path: Path) -> None:
    mv = _version(
        tmp_path, max_batch_size=4, batch_timeout_micros=1_500_000, max_enqueued_batches=1
    )
    results: list[Any] = [None] * 3
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, _submit(mv, 1)))
        for i in range(3)
    ]
    for t in threads:
        t.start()
    time.sleep(0.3)  # three rows queued: one batch of four, waiting for its timeout
    error = _submit(mv, 2)
    assert isinstance(error, ServingError)
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and error.message == BATCH_QUEUE_FULL
    retire = threading.Thread(target=mv.retire)
    retire.start()  # waits for the three queued requests, which the batcher still answers
    for t in threads:
        t.join(10)
    retire.join(10)
    assert not retire.is_alive()
    for result in results:
        np.testing.assert_array_equal(result, np.full((1, 4), 2, np.float32))
    assert mv.batcher is not None and mv.batcher.batch_sizes == Counter({3: 1})


def test_a_batch_of_one_runs_on_a_static_twin(tmp_path: Path) -> None:
    """With batching, one row runs on its infer request's twin compiled at a static batch of one (the
    `1:max_batch_size` range is slower at batch 1); more rows run on the range; padding the batch of
    one (allowed_batch_sizes without 1) needs no twin."""
    mv = _version(tmp_path, max_batch_size=8)
    try:
        active = mv.compiled()
        assert len(active.twins) == active.nireq and active.twin_shapes == {0: (1, 4)}
        expected = _submit(mv, 1)
        np.testing.assert_array_equal(expected, np.full((1, 4), 2, np.float32))
        assert any(
            np.array_equal(t.get_output_tensor(0).data, expected) for t in active.twins.values()
        ), "no twin ran the row"
        np.testing.assert_array_equal(_submit(mv, 3), np.full((3, 4), 6, np.float32))
    finally:
        mv.retire()
    padded = _version(tmp_path / "padded", max_batch_size=8, allowed_batch_sizes=[2, 4, 8])
    try:
        assert padded.compiled().twins == {}
        np.testing.assert_array_equal(_submit(padded, 1), np.full((1, 4), 2, np.float32))
    finally:
        padded.retire()


def test_no_batch_dimension_no_batcher_and_no_twin(tmp_path: Path) -> None:
    """An input whose layout has no N: the version serves unbatched, with no batch-1 twin compiled."""
    tiny_repo(tmp_path / "m", [2], shape=[1, 4])
    config = model_config("tiny", tmp_path / "m", batching={"max_batch_size": 8}, layout="CW")
    mv = ModelVersion("tiny", 2, tmp_path / "m" / "2", config)
    assert mv.load(ov.Core())
    try:
        assert mv.batcher is None and mv.compiled().twins == {}
        np.testing.assert_array_equal(_submit(mv, 1), np.full((1, 4), 2, np.float32))
    finally:
        mv.retire()
