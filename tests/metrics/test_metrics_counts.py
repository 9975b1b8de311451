"""Every count on /metrics after a known mix of requests on both APIs: valid, invalid, unknown model and
version, binary inputs; OVMS's families with OVMS's labels, and ovms_rs's transport families."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import cv2
import grpc
import numpy as np
import openvino as ov
import pytest
import requests
from helpers import ServerProcess, predict_request, status_request, tensor_proto
from metrics_support import Scrape, scrape
from ovms_rs._proto.tensorflow.core.framework import tensor_pb2
from ovms_rs._proto.tensorflow_serving.apis import get_model_metadata_pb2

TFS = "TensorFlowServing"
BUCKETS = [int(10 * 1.8**i) for i in range(33)]


class Traffic:
    """Sends requests and adds up what the transport families should say: bytes that reached a
    handler and the replies it gave."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.bytes = {"gRPC": [0, 0], "REST": [0, 0]}  # [request, reply]

    def grpc(self, method: str, request: Any) -> grpc.StatusCode:
        stub = (
            self.server.model_stub()
            if method == "GetModelStatus"
            else self.server.prediction_stub()
        )
        self.bytes["gRPC"][0] += len(request.SerializeToString())
        try:
            reply = getattr(stub, method)(request, timeout=30)
        except grpc.RpcError as e:
            return e.code()
        self.bytes["gRPC"][1] += len(reply.SerializeToString())
        return grpc.StatusCode.OK

    def rest(self, method: str, path: str, body: bytes = b"") -> int:
        url = f"{self.server.rest_url}{path}"
        reply = requests.request(method, url, data=body or None, timeout=30)
        self.bytes["REST"][0] += len(body)
        self.bytes["REST"][1] += len(reply.content)
        return reply.status_code


def _tiny(model: str = "tiny", version: int | None = None, shape: tuple[int, ...] = (1, 4)) -> Any:
    return predict_request(
        {"x": tensor_proto(np.ones(shape, np.float32))}, model=model, version=version
    )


def _metadata(model: str) -> get_model_metadata_pb2.GetModelMetadataRequest:
    req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    req.model_spec.name = model
    return req


def _jpeg() -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", pixels)
    assert ok
    return bytes(data)


def _binary_grpc() -> Any:
    image = tensor_pb2.TensorProto(dtype=7, string_val=[_jpeg()])  # type: ignore[arg-type]  # DT_STRING
    image.tensor_shape.dim.add().size = 1
    return predict_request({"x": image}, model="img")


@pytest.fixture(scope="module")
def after_mix(metrics_server: ServerProcess) -> tuple[Scrape, Traffic]:
    t = Traffic(metrics_server)
    ok, invalid, not_found = (
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
    )
    for _ in range(3):
        assert t.grpc("Predict", _tiny()) == ok
    assert t.grpc("Predict", _tiny(shape=(1, 5))) == invalid
    assert t.grpc("Predict", _tiny(shape=(2, 4))) == invalid
    assert t.grpc("Predict", _tiny(model="nope")) == not_found
    assert t.grpc("Predict", _tiny(version=7)) == not_found
    assert t.grpc("Predict", _binary_grpc()) == ok
    assert t.grpc("GetModelMetadata", _metadata("tiny")) == ok
    assert t.grpc("GetModelMetadata", _metadata("nope")) == not_found
    for _ in range(2):
        assert t.grpc("GetModelStatus", status_request("tiny")) == ok
    assert t.grpc("GetModelStatus", status_request("tiny", 9)) == not_found
    assert t.grpc("GetModelStatus", status_request("nope")) == not_found

    good = json.dumps({"instances": [[1.0, 2.0, 3.0, 4.0]]}).encode()
    for _ in range(2):
        assert t.rest("POST", "/v1/models/tiny:predict", good) == 200
    assert t.rest("POST", "/v1/models/tiny:predict", b"{not json") == 400
    assert (
        t.rest("POST", "/v1/models/tiny:predict", json.dumps({"instances": [[1.0]]}).encode())
        == 400
    )
    assert t.rest("POST", "/v1/models/nope:predict", good) == 404
    assert t.rest("POST", "/v1/models/tiny/versions/7:predict", good) == 404
    image = json.dumps({"instances": [{"b64": base64.b64encode(_jpeg()).decode()}]}).encode()
    assert t.rest("POST", "/v1/models/img:predict", image) == 200
    assert t.rest("GET", "/v1/models/tiny/metadata") == 200
    assert t.rest("GET", "/v1/models/tiny") == 200
    assert t.rest("GET", "/v1/models/nope") == 404
    assert t.rest("GET", "/v1/config") == 200  # counts nowhere, as in OVMS
    return scrape(metrics_server), t


def _requests(model: str, interface: str, method: str, version: str | None = "1") -> dict[str, str]:
    labels = {"api": TFS, "interface": interface, "method": method, "name": model}
    if version is not None:
        labels["version"] = version
    return labels


EXPECTED_SUCCESS = {
    ("tiny", "gRPC", "Predict"): 3,
    ("tiny", "REST", "Predict"): 2,
    ("tiny", "gRPC", "GetModelMetadata"): 1,
    ("tiny", "REST", "GetModelMetadata"): 1,
    ("tiny", "gRPC", "GetModelStatus"): 2,
    ("tiny", "REST", "GetModelStatus"): 1,
    ("img", "gRPC", "Predict"): 1,
    ("img", "REST", "Predict"): 1,
}
EXPECTED_FAIL = {("tiny", "gRPC", "Predict"): 2, ("tiny", "REST", "Predict"): 2}


@pytest.mark.parametrize(
    "family, expected",
    [("ovms_requests_success", EXPECTED_SUCCESS), ("ovms_requests_fail", EXPECTED_FAIL)],
)
def test_request_counters_count_as_ovms(
    after_mix: tuple[Scrape, Traffic], family: str, expected: dict[tuple[str, str, str], int]
) -> None:
    s, _ = after_mix
    want = {}
    for model in ("tiny", "img"):
        for interface in ("gRPC", "REST"):
            for method in ("Predict", "GetModelMetadata", "GetModelStatus"):
                version = (
                    None if method == "GetModelStatus" else "1"
                )  # OVMS: none for GetModelStatus
                labels = frozenset(_requests(model, interface, method, version).items())
                want[labels] = float(expected.get((model, interface, method), 0))
    assert s.series(family) == want  # 12 series per model version, every one exact


def test_families_have_ovms_types_and_help(after_mix: tuple[Scrape, Traffic]) -> None:
    s, _ = after_mix
    assert s.families["ovms_requests_success"] == (
        "counter",
        "Number of successful requests to a model or a DAG.",
    )
    assert s.families["ovms_requests_fail"] == (
        "counter",
        "Number of failed requests to a model or a DAG.",
    )
    assert s.families["ovms_request_time_us"] == (
        "histogram",
        "Processing time of requests to a model or a DAG.",
    )
    assert s.families["ovms_inference_time_us"] == (
        "histogram",
        "Inference execution time in the OpenVINO backend.",
    )
    assert s.families["ovms_wait_for_infer_req_time_us"] == (
        "histogram",
        "Request waiting time in the scheduling queue.",
    )
    assert s.families["ovms_streams"] == ("gauge", "Number of OpenVINO execution streams.")
    assert s.families["ovms_current_requests"] == (
        "gauge",
        "Number of inference requests currently in process.",
    )
    # Optional in OVMS: not in the default set.
    assert (
        "ovms_infer_req_queue_size" not in s.families and "ovms_infer_req_active" not in s.families
    )
    ours = {name for name in s.families if not name.startswith("ovms_rs_")}
    assert ours == {
        "ovms_requests_success",
        "ovms_requests_fail",
        "ovms_request_time_us",
        "ovms_streams",
        "ovms_inference_time_us",
        "ovms_wait_for_infer_req_time_us",
        "ovms_current_requests",
    }


def _histogram(s: Scrape, family: str, **labels: str) -> tuple[float, list[float]]:
    buckets = [s.value(f"{family}_bucket", **labels, le=str(b)) for b in BUCKETS]
    buckets.append(s.value(f"{family}_bucket", **labels, le="+Inf"))
    assert buckets == sorted(buckets)  # cumulative
    assert s.value(f"{family}_count", **labels) == buckets[-1]
    return buckets[-1], buckets


def test_histograms_have_ovms_buckets_and_count_successes(
    after_mix: tuple[Scrape, Traffic],
) -> None:
    s, _ = after_mix
    assert 'le="1474755971"' in s.text and 'le="10"' in s.text  # integers, as OVMS prints them
    # request_time_us: successful predicts only, by interface.
    for model, interface, n in [
        ("tiny", "gRPC", 3),
        ("tiny", "REST", 2),
        ("img", "gRPC", 1),
        ("img", "REST", 1),
    ]:
        count, _ = _histogram(
            s, "ovms_request_time_us", interface=interface, name=model, version="1"
        )
        assert count == n, (model, interface)
        assert s.value("ovms_request_time_us_sum", interface=interface, name=model, version="1") > 0
    # Inference and waiting: every predict that reached OpenVINO (validation failures don't).
    for model, n in [("tiny", 5), ("img", 2)]:
        for family in ("ovms_inference_time_us", "ovms_wait_for_infer_req_time_us"):
            assert _histogram(s, family, name=model, version="1")[0] == n, (family, model)


def test_gauges_after_the_mix(after_mix: tuple[Scrape, Traffic], metrics_root: Path) -> None:
    s, _ = after_mix
    for name in ("tiny", "img"):
        # What OpenVINO makes of the model with OVMS's default hint, as the server compiles it.
        core = ov.Core()
        compiled = core.compile_model(
            core.read_model(str(metrics_root / name / "1" / "model.xml")),
            "CPU",
            {"PERFORMANCE_HINT": "LATENCY"},
        )
        assert s.value("ovms_streams", name=name, version="1") == int(
            compiled.get_property("NUM_STREAMS")
        )
        assert s.value("ovms_current_requests", name=name, version="1") == 0


def test_transport_families_count_bytes_and_nothing_refused(
    after_mix: tuple[Scrape, Traffic],
) -> None:
    s, t = after_mix
    for interface, (sent, received) in t.bytes.items():
        assert s.value("ovms_rs_request_bytes", interface=interface) == sent, interface
        assert s.value("ovms_rs_reply_bytes", interface=interface) == received, interface
        # The scrape itself is answered in Rust, outside the in-flight count.
        assert s.value("ovms_rs_in_flight_requests", interface=interface) == 0
        for reason in ("concurrency_limit", "queue_full"):
            assert s.value("ovms_rs_requests_refused", interface=interface, reason=reason) == 0
    # One batch decoded per binary predict: gRPC string_val and REST b64.
    assert _histogram(s, "ovms_rs_image_decode_time_us")[0] == 2
