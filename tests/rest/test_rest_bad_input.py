"""Bad REST input: each a clear `{"error"}` with OVMS's status, and the server still serving after it."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import DEMO, ServerProcess
from model_repo import tiny_repo, write_config

BAD_BODIES: list[tuple[str, str | bytes, int, str]] = [
    ("malformed", b'{"instances": [1, 2', 400, "The file is not valid json"),
    ("not utf-8", b'{"instances": ["\xff"]}', 400, "The file is not valid json"),
    ("not an object", b"[1, 2, 3]", 400, "Request body should be JSON object"),
    (
        "neither format",
        b'{"signature_name": ""}',
        400,
        "Invalid JSON structure. Could not detect row or column format",
    ),
    (
        "both formats",
        b'{"instances": [1], "inputs": [1]}',
        400,
        "Invalid JSON structure. Could not detect row or column format",
    ),
    (
        "instances not an array",
        b'{"instances": {"data": 1}}',
        400,
        "Invalid JSON structure. Nonamed instance is not an array.",
    ),
    (
        "empty instances",
        b'{"instances": []}',
        400,
        "Invalid JSON structure. Missing instances in row format",
    ),
    (
        "ragged",
        b'{"instances": [[1, 2], [3]]}',
        400,
        "Could not parse instance content. Not valid ndarray detected",
    ),
    (
        "wrong type",
        b'{"instances": [["a", "b"]]}',
        400,
        "Could not parse instance content. Not valid ndarray detected",
    ),
    (
        "null",
        b'{"instances": [[1, null]]}',
        400,
        "Could not parse instance content. Not valid ndarray detected",
    ),
    (
        "out of range",
        b'{"inputs": [[[[3.5e38, 1e39]]]]}',
        400,
        "Could not parse input content. Not valid ndarray detected",
    ),
    (
        "b64 garbage",
        b'{"instances": [{"b64": "not base64!"}]}',
        400,
        "Could not parse instance content. Not valid ndarray detected",
    ),
    (
        "b64 beside other keys",
        b'{"inputs": {"data": {"b64": "aGk=", "x": 1}}}',
        400,
        "Could not parse input content. Not valid ndarray detected",
    ),
    (
        "named not an object",
        b'{"instances": [{"data": [1]}, [1]]}',
        400,
        "Invalid JSON structure. One of named instances is not a JSON object.",
    ),
    (
        "empty inputs",
        b'{"inputs": {}}',
        400,
        "Invalid JSON structure. Missing inputs in column format",
    ),
    (
        "wrong input name",
        b'{"inputs": {"nope": [1]}}',
        400,
        "Missing input with specific name - Required input: data",
    ),
    (
        "wrong shape",
        b'{"inputs": [[1, 2]]}',
        400,
        "Invalid number of shape dimensions - Expected: (1,3,224,224); Actual: (1,2); input name: data",
    ),
    (
        "deep nesting",
        b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        400,
        "Could not parse instance content. Not valid ndarray detected",
    ),
]


def _alive(server: ServerProcess) -> None:
    status = requests.get(f"{server.rest_url}/v1/models/{DEMO}", timeout=10)
    assert status.status_code == 200
    assert server.alive


@pytest.mark.parametrize("case, body, status, message", BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_bad_body(
    rest_server: ServerProcess, case: str, body: bytes, status: int, message: str
) -> None:
    reply = requests.post(f"{rest_server.rest_url}/v1/models/{DEMO}:predict", data=body, timeout=60)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error == message or error.startswith(message + " - "), error
    _alive(rest_server)


def test_huge_declared_and_actual_sizes(tmp_path: Path) -> None:
    with ServerProcess(
        "--max_message_bytes", "1000000", log_path=tmp_path / "server.log", rest=True
    ) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=10)
        connection.putrequest("POST", f"/v1/models/{DEMO}:predict")
        connection.putheader("Content-Length", str(1 << 40))
        connection.endheaders()
        reply = connection.getresponse()
        assert (reply.status, json.loads(reply.read())) == (
            413,
            {"error": "Request body is larger than the server accepts"},
        )
        connection.close()
        # No Content-Length (chunked), larger than the limit as it arrives.
        chunks = (b"[" * 65536 for _ in range(20))
        reply2 = requests.post(
            f"{server.rest_url}/v1/models/{DEMO}:predict", data=chunks, timeout=30
        )
        assert reply2.status_code == 413
        _alive(server)


def test_half_a_request_then_gone(rest_server: ServerProcess) -> None:
    """A client that sends part of a body and disconnects costs nothing lasting."""
    with socket.create_connection(("127.0.0.1", rest_server.rest_port), timeout=10) as s:
        s.sendall(
            b"POST /v1/models/"
            + DEMO.encode()
            + b':predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"inst'
        )
    for _ in range(3):
        _alive(rest_server)


def test_grpc_health_check_and_strict_readiness(tmp_path: Path) -> None:
    """gRPC Health/Check and /v2/health/ready agree; a configured model that cannot load keeps both
    not-ready (OVMS would say ready)."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    good = tiny_repo(tmp_path / "good", [1])
    bad = tmp_path / "bad" / "1"
    bad.mkdir(parents=True)
    (bad / "model.xml").write_text("<not a model/>")
    config = write_config(tmp_path / "config.json", [{"name": "good", "base_path": str(good)}])
    with ServerProcess(
        "--config_path", str(config), log_path=tmp_path / "server.log", rest=True
    ) as server:
        stub = health_pb2_grpc.HealthStub(server.channel)

        def grpc_status(service: str = "") -> Any:
            return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status

        assert grpc_status() == health_pb2.HealthCheckResponse.SERVING
        assert (
            grpc_status("tensorflow.serving.PredictionService")
            == health_pb2.HealthCheckResponse.SERVING
        )
        assert grpc_status("no.such.Service") == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        assert requests.get(f"{server.rest_url}/v2/health/ready", timeout=10).status_code == 200
        # Add a model that fails to load: not ready until it is fixed or removed.
        write_config(
            config,
            [
                {"name": "good", "base_path": str(good)},
                {"name": "bad", "base_path": str(bad.parent)},
            ],
        )
        reload = requests.post(f"{server.rest_url}/v1/config/reload", timeout=60)
        assert reload.status_code == 201, reload.text
        assert set(reload.json()) == {"good", "bad"}
        assert reload.json()["bad"]["model_version_status"][0]["status"]["error_code"] == "UNKNOWN"
        ready = requests.get(f"{server.rest_url}/v2/health/ready", timeout=10)
        assert (ready.status_code, ready.json()) == (503, {"error": "Server is not ready"})
        assert grpc_status() == health_pb2.HealthCheckResponse.NOT_SERVING
        assert requests.get(f"{server.rest_url}/v2/models/bad/ready", timeout=10).status_code == 404
        # Remove it again: ready. Nothing changed on a second reload: 200.
        write_config(config, [{"name": "good", "base_path": str(good)}])
        assert requests.post(f"{server.rest_url}/v1/config/reload", timeout=60).status_code == 201
        assert requests.get(f"{server.rest_url}/v2/health/ready", timeout=10).status_code == 200
        assert requests.post(f"{server.rest_url}/v1/config/reload", timeout=60).status_code == 200
        # A config file that is not JSON: OVMS's 412 and message; the served models stay.
        config.write_text("{ nope")
        broken = requests.post(f"{server.rest_url}/v1/config/reload", timeout=60)
        assert (broken.status_code, broken.json()) == (
            412,
            {"error": "Reloading config file failed. Check server logs for more info."},
        )
        assert grpc_status() == health_pb2.HealthCheckResponse.SERVING


def test_rest_config_reload_picks_up_a_new_model(tmp_path: Path) -> None:
    first = tiny_repo(tmp_path / "first", [1])
    config = write_config(tmp_path / "config.json", [{"name": "first", "base_path": str(first)}])
    args = ("--config_path", str(config), "--file_system_poll_wait_seconds", "0")
    with ServerProcess(*args, log_path=tmp_path / "server.log", rest=True) as server:
        second = tiny_repo(tmp_path / "second", [2])
        write_config(
            config,
            [
                {"name": "first", "base_path": str(first)},
                {"name": "second", "base_path": str(second)},
            ],
        )
        reload = requests.post(f"{server.rest_url}/v1/config/reload", timeout=60)
        assert reload.status_code == 201
        assert sorted(reload.json()) == ["first", "second"]
        reply = requests.post(
            f"{server.rest_url}/v1/models/second:predict",
            json={"instances": [[1, 1, 1, 1]]},
            timeout=30,
        )
        assert reply.json() == {"predictions": [[2.0, 2.0, 2.0, 2.0]]}


def test_every_json_error_kind_has_a_catalogue_entry() -> None:
    """Rust reports kinds, Python owns their status and message: none may be missing."""
    from ovms_rs import _native, errors

    kinds = _native.json_error_kinds()
    assert len(kinds) == len(set(kinds)) > 10
    assert set(kinds) == set(errors.JSON_ERRORS)
