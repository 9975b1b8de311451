"""ovms_rs_batch_size: the dynamic batcher's rows per inference, as a histogram per model version."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from helpers import ServerProcess, output_array, predict_request, tensor_proto
from metrics_support import scrape
from model_repo import tiny_repo

REQUESTS = 24


def test_batch_sizes_are_counted(tmp_path: Path) -> None:
    repo = tiny_repo(tmp_path / "tiny", [3], shape=[-1, 4])  # y = 3x, dynamic batch
    params = tmp_path / "batching.json"
    params.write_text(json.dumps({"max_batch_size": 8, "batch_timeout_micros": 50000}))
    args = (
        "--model_name",
        "tiny",
        "--model_path",
        str(repo),
        "--enable_batching",
        "--batching_parameters_file",
        str(params),
        "--metrics_enable",
        "--nireq",
        "1",
    )
    with ServerProcess(*args, log_path=tmp_path / "server.log", rest=True) as server:
        stub = server.prediction_stub()

        def ask(i: int) -> None:
            x = np.full((1, 4), i, np.float32)
            reply = stub.Predict(predict_request({"x": tensor_proto(x)}, model="tiny"), timeout=60)
            np.testing.assert_array_equal(output_array(reply.outputs["y"]), 3 * x)

        with ThreadPoolExecutor(REQUESTS) as pool:
            list(pool.map(ask, range(REQUESTS)))
        metrics = scrape(server)
    labels = {"name": "tiny", "version": "3"}
    assert metrics.families["ovms_rs_batch_size"][0] == "histogram"
    batches = metrics.value("ovms_rs_batch_size_count", **labels)
    assert metrics.value("ovms_rs_batch_size_sum", **labels) == REQUESTS  # every row counted once
    assert 0 < batches < REQUESTS  # some batches held more than one request
    assert metrics.value("ovms_rs_batch_size_bucket", **labels, le="8") == batches  # max_batch_size
    assert (
        metrics.value("ovms_inference_time_us_count", **labels) == batches
    )  # a batch: one inference
