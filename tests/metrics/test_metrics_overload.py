"""Overload refusals: a version's full waiting line (RESOURCE_EXHAUSTED, QUEUE_FULL) counts in
ovms_rs_requests_refused{reason="queue_full"} and as a fail, exactly as often as clients saw it."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
from helpers import DEMO, DEMO_MODEL_PATH, ServerProcess, predict_request, tensor_proto
from metrics_support import scrape

QUEUE_FULL = "Too many requests waiting for an inference request of this model version"
BATCH = 8  # slow enough (the demo classifier on 8 images) that concurrent requests find no infer request


@pytest.fixture()
def one_slot_server(tmp_path: Path) -> Iterator[ServerProcess]:
    args = [
        "--model_name",
        DEMO,
        "--model_path",
        str(DEMO_MODEL_PATH),
        "--batch_size",
        str(BATCH),
        "--nireq",
        "1",
        "--max_queue_size",
        "0",
        "--metrics_enable",
    ]
    with ServerProcess(*args, log_path=tmp_path / "server.log", rest=True) as server:
        yield server


def _predict(server: ServerProcess, request: object) -> tuple[grpc.StatusCode, str]:
    try:
        server.prediction_stub().Predict(request, timeout=60)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def test_full_queue_refusals_are_counted(one_slot_server: ServerProcess) -> None:
    pixels = np.random.default_rng(0).uniform(0, 255, (BATCH, 3, 224, 224)).astype(np.float32)
    request = predict_request({"data": tensor_proto(pixels)})
    outcomes = [_predict(one_slot_server, request)]  # warm-up
    with ThreadPoolExecutor(max_workers=6) as pool:
        for _ in range(5):  # waves until the queue was seen full at least once
            outcomes += pool.map(lambda _: _predict(one_slot_server, request), range(6))
            if any(code == grpc.StatusCode.RESOURCE_EXHAUSTED for code, _ in outcomes):
                break
    ok = sum(code == grpc.StatusCode.OK for code, _ in outcomes)
    refused = [(code, details) for code, details in outcomes if code != grpc.StatusCode.OK]
    assert refused and set(refused) == {(grpc.StatusCode.RESOURCE_EXHAUSTED, QUEUE_FULL)}
    s = scrape(one_slot_server)
    labels = {
        "api": "TensorFlowServing",
        "interface": "gRPC",
        "method": "Predict",
        "name": DEMO,
        "version": "1",
    }
    assert s.value("ovms_requests_success", **labels) == ok
    assert s.value("ovms_requests_fail", **labels) == len(refused)
    assert s.value("ovms_rs_requests_refused", interface="gRPC", reason="queue_full") == len(
        refused
    )
    assert s.value("ovms_rs_requests_refused", interface="gRPC", reason="concurrency_limit") == 0
    assert s.value("ovms_wait_for_infer_req_time_us_count", name=DEMO, version="1") == ok
