"""The TF Serving REST API on --rest_port against real servers: status, metadata, predict (row and column,
named and unnamed, b64 images), config, health; with requests, curl, ovmsclient's HTTP client."""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
from typing import Any

import numpy as np
import pytest
import requests
from helpers import (
    DEMO,
    ServerProcess,
    labeled_photos,
    output_array,
    photo_nchw,
    predict_request,
    tensor_proto,
)


def _predict(server: ServerProcess, body: Any, model: str = DEMO) -> requests.Response:
    return requests.post(
        f"{server.rest_url}/v1/models/{model}:predict", data=json.dumps(body), timeout=60
    )


def test_status_as_ovms_renders_it(rest_server: ServerProcess) -> None:
    expected = {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": "OK"},
            }
        ]
    }
    for path in ("", "/versions/1"):
        reply = requests.get(f"{rest_server.rest_url}/v1/models/{DEMO}{path}", timeout=10)
        assert reply.status_code == 200
        assert reply.headers["Content-Type"] == "application/json"
        assert reply.json() == expected
    # Labels are TF Serving's (OVMS ignores them): the demo model has none.
    reply = requests.get(f"{rest_server.rest_url}/v1/models/{DEMO}/labels/stable", timeout=10)
    assert (reply.status_code, reply.json()) == (
        400,
        {"error": "Unrecognized servable version label: stable"},
    )
    missing = requests.get(f"{rest_server.rest_url}/v1/models/{DEMO}/versions/7", timeout=10)
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": "Model with requested version is not found"},
    )
    unknown = requests.get(f"{rest_server.rest_url}/v1/models/nope", timeout=10)
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"error": "Model with requested name is not found"},
    )


def test_metadata_is_the_signature_def_map_in_json(rest_server: ServerProcess) -> None:
    reply = requests.get(f"{rest_server.rest_url}/v1/models/{DEMO}/metadata", timeout=10)
    assert reply.status_code == 200
    body = reply.json()
    assert body["modelSpec"] == {"name": DEMO, "version": "1", "signatureName": ""}
    signature = body["metadata"]["signature_def"]
    assert signature["@type"] == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    inputs = signature["signatureDef"]["serving_default"]["inputs"]
    assert inputs["data"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in inputs["data"]["tensorShape"]["dim"]] == ["1", "3", "224", "224"]
    outputs = signature["signatureDef"]["serving_default"]["outputs"]
    assert [d["size"] for d in outputs["prob"]["tensorShape"]["dim"]] == ["1", "1000"]


@pytest.mark.parametrize("layout", ["row", "column", "column-named", "row-named"])
def test_ten_photos_classified_and_same_numbers_as_grpc(
    rest_server: ServerProcess, layout: str
) -> None:
    stub = rest_server.prediction_stub()
    for path, label in labeled_photos():
        x = photo_nchw(path)
        body = {
            "row": {"instances": x.tolist()},
            "row-named": {"instances": [{"data": x[0].tolist()}]},
            "column": {"inputs": x.tolist(), "signature_name": "serving_default"},
            "column-named": {"inputs": {"data": x.tolist()}},
        }[layout]
        reply = _predict(rest_server, body)
        assert reply.status_code == 200, reply.text
        key = "predictions" if layout.startswith("row") else "outputs"
        prob = np.asarray(reply.json()[key], dtype=np.float32)
        assert prob.shape == (1, 1000)
        assert int(prob.argmax()) == label
        grpc_prob = output_array(
            stub.Predict(predict_request({"data": tensor_proto(x)}), timeout=30).outputs["prob"]
        )
        np.testing.assert_array_equal(
            prob, grpc_prob
        )  # shortest round-trip floats: exactly the same


def test_body_in_one_piece_in_many_and_chunked_gives_the_same_answer(
    rest_server: ServerProcess,
) -> None:
    """The transport gathers a body's pieces as they arrive (`rust/rest/service.rs`): the same photo
    sent in one write, as a declared body in 64 KiB writes, and chunked (no Content-Length, pieces of
    odd sizes) gets the same numbers."""
    path, label = labeled_photos()[0]
    body = json.dumps({"instances": photo_nchw(path).tolist()}).encode()
    url = f"{rest_server.rest_url}/v1/models/{DEMO}:predict"
    whole = requests.post(url, data=body, timeout=60)
    connection = http.client.HTTPConnection("127.0.0.1", rest_server.rest_port, timeout=60)
    connection.putrequest("POST", f"/v1/models/{DEMO}:predict")
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders()
    for at in range(0, len(body), 65536):
        connection.send(body[at : at + 65536])
    declared = connection.getresponse()
    assert declared.status == 200
    declared_json = json.loads(declared.read())
    connection.close()
    pieces = (body[at : at + 40_001] for at in range(0, len(body), 40_001))
    chunked = requests.post(url, data=pieces, timeout=60)
    for reply in (whole, chunked):
        assert reply.status_code == 200, reply.text
    prob = np.asarray(whole.json()["predictions"], dtype=np.float32)
    assert int(prob.argmax()) == label
    assert chunked.json() == whole.json() == declared_json
    assert "Content-Length" not in chunked.request.headers


def test_b64_jpeg_photos_classified(rest_nhwc_server: ServerProcess) -> None:
    photos = labeled_photos()
    instances = [{"b64": base64.b64encode(p.read_bytes()).decode()} for p, _ in photos]
    correct = 0
    for instance, (_, label) in zip(instances, photos):
        reply = _predict(rest_nhwc_server, {"instances": [instance]})
        assert reply.status_code == 200, reply.text
        correct += int(np.argmax(reply.json()["predictions"][0]) == label)
    assert correct >= 9  # as the gRPC binary-input test: JPEG decode + resize, not OpenCV's
    named = _predict(rest_nhwc_server, {"inputs": {"data": [instances[0]]}})
    assert named.status_code == 200, named.text
    assert np.asarray(named.json()["outputs"]).shape == (1, 1000)


def test_tf_serving_documented_row_and_column_shapes(pair_server: ServerProcess) -> None:
    a = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    b = [[0.5, 0.5], [2.0, 2.0], [1.0, -1.0]]
    row = _predict(pair_server, {"instances": [{"a": x, "b": y} for x, y in zip(a, b)]}, "pair")
    assert row.status_code == 200, row.text
    predictions = row.json()["predictions"]
    assert len(predictions) == 3
    assert predictions[1] == {"sum": [5.0, 6.0], "prod": [6.0, 8.0]}
    column = _predict(pair_server, {"inputs": {"a": a, "b": b}}, "pair")
    assert column.status_code == 200, column.text
    assert column.json()["outputs"]["sum"] == (np.array(a) + np.array(b)).tolist()
    # Named instances must all have the same inputs.
    uneven = _predict(pair_server, {"instances": [{"a": a[0], "b": b[0]}, {"a": a[1]}]}, "pair")
    assert uneven.status_code == 400
    assert (
        uneven.json()["error"]
        == "Invalid JSON structure. Request inputs have different batch sizes"
    )
    # A model with two inputs has no unnamed format.
    unnamed = _predict(pair_server, {"instances": a}, "pair")
    assert (unnamed.status_code, unnamed.json()["error"]) == (
        400,
        "Inputs inside buffer does not match expected format.",
    )


def test_config_api_and_health(rest_server: ServerProcess) -> None:
    url = rest_server.rest_url
    config = requests.get(f"{url}/v1/config", timeout=10)
    assert config.status_code == 200
    assert list(config.json()) == [DEMO]
    assert config.json()[DEMO]["model_version_status"][0]["state"] == "AVAILABLE"
    # Without --config_path a reload rescans versions only: nothing changed.
    reload = requests.post(f"{url}/v1/config/reload", timeout=30)
    assert reload.status_code == 200 and list(reload.json()) == [DEMO]
    assert requests.get(f"{url}/v2/health/live", timeout=10).status_code == 200
    ready = requests.get(f"{url}/v2/health/ready", timeout=10)
    assert (ready.status_code, ready.content) == (200, b"")
    assert requests.get(f"{url}/v2/models/{DEMO}/ready", timeout=10).status_code == 200
    assert requests.get(f"{url}/v2/models/{DEMO}/versions/1/ready", timeout=10).status_code == 200
    assert requests.get(f"{url}/v2/models/{DEMO}/versions/3/ready", timeout=10).status_code == 404
    assert requests.get(f"{url}/v2/models/nope/ready", timeout=10).status_code == 404


def test_routing_refusals_and_cors(rest_server: ServerProcess) -> None:
    url = rest_server.rest_url
    cases = [
        ("GET", "/nope", 400, "Invalid request URL"),
        ("GET", f"/v1/models/{DEMO}/versions/one", 400, "Invalid request URL"),
        ("GET", f"/v1/models/{DEMO}:predict", 406, "Unsupported method"),
        ("POST", f"/v1/models/{DEMO}", 406, "Unsupported method"),
        ("PUT", f"/v1/models/{DEMO}", 406, "Unsupported method"),
        ("GET", "/v1/config/reload", 406, "Unsupported method"),
        ("POST", f"/v1/models/{DEMO}:classify", 404, "Requested REST resource not found"),
        (
            "GET",
            "/v1/models/../../etc/passwd",
            400,
            "The provided base path is invalid or doesn't exists",
        ),
        ("GET", "/metrics", 400, "Invalid request URL"),  # metrics not enabled
    ]
    for method, path, status, message in cases:
        # http.client sends the path as it is (requests would resolve the `..`).
        connection = http.client.HTTPConnection("127.0.0.1", rest_server.rest_port, timeout=10)
        connection.request(method, path)
        reply = connection.getresponse()
        body = json.loads(reply.read())
        connection.close()
        assert (reply.status, body) == (status, {"error": message}), (method, path)
        assert reply.getheader("Access-Control-Allow-Origin") == "*"
    options = requests.options(f"{url}/v1/models/{DEMO}:predict", timeout=10)
    assert (options.status_code, options.content) == (200, b"")


def test_curl(rest_server: ServerProcess) -> None:
    status = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", f"{rest_server.rest_url}/v1/models/{DEMO}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert json.loads(status.stdout)["model_version_status"][0]["state"] == "AVAILABLE"
    # h2c (HTTP/2 without TLS) is served on the same port.
    h2c = subprocess.run(
        [
            "curl",
            "-sS",
            "--noproxy",
            "*",
            "--http2-prior-knowledge",
            "-w",
            "%{http_version}",
            "-o",
            "/dev/null",
            f"{rest_server.rest_url}/v2/health/ready",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert h2c.stdout == "2"
    body = json.dumps({"instances": photo_nchw(labeled_photos()[0][0]).tolist()})
    predict = subprocess.run(
        [
            "curl",
            "-sS",
            "--noproxy",
            "*",
            "-X",
            "POST",
            "--data-binary",
            "@-",
            f"{rest_server.rest_url}/v1/models/{DEMO}:predict",
        ],
        input=body,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert int(np.argmax(json.loads(predict.stdout)["predictions"][0])) == labeled_photos()[0][1]


def test_ovmsclient_http_client(rest_server: ServerProcess) -> None:
    import ovmsclient

    client = ovmsclient.make_http_client(f"127.0.0.1:{rest_server.rest_port}")
    status = client.get_model_status(model_name=DEMO)
    assert status[1]["state"] == "AVAILABLE"
    metadata = client.get_model_metadata(model_name=DEMO)
    assert metadata["inputs"]["data"]["shape"] == [1, 3, 224, 224]
    path, label = labeled_photos()[1]
    prob = client.predict(inputs={"data": photo_nchw(path)}, model_name=DEMO)
    assert int(np.argmax(prob)) == label
