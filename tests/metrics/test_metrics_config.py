"""Turning metrics on and off: OVMS's flags and config.json's monitoring section, a list that replaces the
defaults, OVMS's start-up errors, and /metrics as OVMS answers it when metrics are off."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from helpers import ServerProcess, free_port, predict_request, tensor_proto
from metrics_support import scrape, write_config


def _start_error(*args: str) -> str:
    """Runs `serve` with these flags; it must exit 1 at once; returns its stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "ovms_rs", "serve", "--port", str(free_port()), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    return result.stderr


def _tiny_args(metrics_root: Path) -> list[str]:
    return ["--model_name", "tiny", "--model_path", str(metrics_root / "tiny")]


def test_metrics_without_rest_port_is_a_start_up_error(metrics_root: Path) -> None:
    err = _start_error(*_tiny_args(metrics_root), "--metrics_enable")
    assert "ovms_rs: error: rest_port setting is missing, metrics are enabled on rest port" in err


def test_metrics_list_without_enable_is_a_start_up_error(metrics_root: Path) -> None:
    err = _start_error(
        *_tiny_args(metrics_root), "--rest_port", str(free_port()), "--metrics_list", "ovms_streams"
    )
    assert "metrics_enable setting is missing, required when metrics_list is provided" in err


@pytest.mark.parametrize(
    "name", ["ovms_nope", "ovms_graph_request_latency_us", "ovms_requests_success_total"]
)
def test_unknown_family_names_are_named(metrics_root: Path, name: str) -> None:
    err = _start_error(
        *_tiny_args(metrics_root),
        "--rest_port",
        str(free_port()),
        "--metrics_enable",
        "--metrics_list",
        f"ovms_streams, {name}",
    )
    assert f"Invalid metrics family name in metrics_list: '{name}'" in err


def _config(tmp_path: Path, metrics_root: Path, monitoring: object) -> Path:
    return write_config(
        tmp_path / "config.json",
        [{"name": "tiny", "base_path": str(metrics_root / "tiny")}],
        monitoring,
    )


def test_flag_and_monitoring_section_together_is_an_error(
    tmp_path: Path, metrics_root: Path
) -> None:
    config = _config(tmp_path, metrics_root, {"metrics": {"enable": True}})
    err = _start_error(
        "--config_path", str(config), "--rest_port", str(free_port()), "--metrics_enable"
    )
    assert "configured both on the command line" in err


@pytest.mark.parametrize(
    "monitoring, message",
    [
        ({"metrics": {"enable": True}}, "Missing rest_port parameter in server CLI"),
        (
            {"metrics": {"enable": True, "metrics_list": ["ovms_streams", "ovms_bogus"]}},
            "Invalid metrics family name in metrics_list: 'ovms_bogus'",
        ),
        ({"metrics": {"enable": "yes"}}, "monitoring.metrics.enable must be true or false"),
        ({"metrics": {"enable": True, "endpoint_path": "/a/b"}}, "endpoint_path must match"),
    ],
)
def test_bad_monitoring_sections_are_start_up_errors(
    tmp_path: Path, metrics_root: Path, monitoring: object, message: str
) -> None:
    config = _config(tmp_path, metrics_root, monitoring)
    rest = [] if "rest_port" in message else ["--rest_port", str(free_port())]
    assert message in _start_error("--config_path", str(config), *rest)


@pytest.fixture()
def server_without_metrics(metrics_root: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(
        *_tiny_args(metrics_root), log_path=tmp_path / "server.log", rest=True
    ) as server:
        yield server


def test_metrics_off_answers_invalid_request_url(server_without_metrics: ServerProcess) -> None:
    reply = requests.get(f"{server_without_metrics.rest_url}/metrics", timeout=30)
    assert reply.status_code == 400
    assert reply.json() == {"error": "Invalid request URL"}


@pytest.fixture()
def grpcio_listed_server(metrics_root: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    """--metrics_list with spaces (trimmed), the grpcio transport, two infer requests."""
    args = [
        *_tiny_args(metrics_root),
        "--grpc_transport",
        "grpcio",
        "--nireq",
        "2",
        "--metrics_enable",
        "--metrics_list",
        " ovms_requests_success ,ovms_infer_req_queue_size,ovms_infer_req_active,"
        "ovms_rs_request_bytes, ovms_current_graphs",
    ]
    with ServerProcess(*args, log_path=tmp_path / "server.log", rest=True) as server:
        yield server


def test_a_list_replaces_the_defaults(grpcio_listed_server: ServerProcess) -> None:
    request = predict_request({"x": tensor_proto(np.ones((1, 4), np.float32))}, model="tiny")
    for _ in range(4):
        grpcio_listed_server.prediction_stub().Predict(request, timeout=30)
    s = scrape(grpcio_listed_server)
    # ovms_current_graphs is a valid (MediaPipe) name with nothing to show here.
    assert set(s.families) == {
        "ovms_requests_success",
        "ovms_infer_req_queue_size",
        "ovms_infer_req_active",
        "ovms_rs_request_bytes",
    }
    labels = {
        "api": "TensorFlowServing",
        "interface": "gRPC",
        "method": "Predict",
        "name": "tiny",
        "version": "1",
    }
    assert s.value("ovms_requests_success", **labels) == 4  # counted on the grpcio transport too
    assert s.value("ovms_infer_req_queue_size", name="tiny", version="1") == 2
    assert s.value("ovms_infer_req_active", name="tiny", version="1") == 0
    assert s.value("ovms_rs_request_bytes", interface="gRPC") == 4 * len(
        request.SerializeToString()
    )
    assert s.value("ovms_rs_request_bytes", interface="REST") == 0
