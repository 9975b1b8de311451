"""States and transitions while serving: new versions, retired versions, failed loads, in-flight requests."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from helpers import ServerProcess, output_array, predict_request, status_request, tensor_proto
from model_repo import (
    AVAILABLE,
    END,
    LOADING,
    ask_tiny,
    demo_repo,
    states,
    tiny_model,
    tiny_repo,
    wait_for,
)

POLL = ("--file_system_poll_wait_seconds", "0.5")


def test_new_version_becomes_default_and_removed_one_retires(tmp_path: Path) -> None:
    repo = tiny_repo(tmp_path / "tiny", [1])
    with ServerProcess("--model_name", "tiny", "--model_path", str(repo), *POLL) as server:
        assert ask_tiny(server, "tiny") == 1
        tiny_model(repo / "2", 2.0)
        wait_for(lambda: states(server, "tiny") == {1: END, 2: AVAILABLE}, what="version 2 to load")
        retired = server.model_stub().GetModelStatus(status_request("tiny", 1), timeout=10)
        assert retired.model_version_status[0].status.error_message == "OK"  # END is not an error
        assert ask_tiny(server, "tiny") == 2
        with pytest.raises(grpc.RpcError) as err:
            ask_tiny(server, "tiny", 1)
        assert (err.value.code(), err.value.details()) == (
            grpc.StatusCode.NOT_FOUND,
            "Model with requested version is retired",
        )
        shutil.rmtree(repo / "2")
        wait_for(
            lambda: states(server, "tiny") == {1: AVAILABLE, 2: END}, what="fall back to version 1"
        )
        assert ask_tiny(server, "tiny") == 1
        shutil.rmtree(repo / "1")
        wait_for(lambda: states(server, "tiny") == {1: END, 2: END}, what="everything retired")
        with pytest.raises(grpc.RpcError) as err:
            ask_tiny(server, "tiny")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_failed_load_reports_unknown_and_others_keep_serving(tmp_path: Path) -> None:
    repo = tiny_repo(tmp_path / "tiny", [1])
    with ServerProcess(
        "--model_name",
        "tiny",
        "--model_path",
        str(repo),
        "--model_version_policy",
        '{"all": {}}',
        *POLL,
        log_path=tmp_path / "server.log",
    ) as server:
        (repo / "2").mkdir()
        (repo / "2" / "model.xml").write_text("<net>this is not a model</net>")
        (repo / "2" / "model.bin").write_bytes(b"\0" * 16)

        def status_2() -> Any:
            try:
                return (
                    server.model_stub()
                    .GetModelStatus(status_request("tiny", 2), timeout=10)
                    .model_version_status[0]
                )
            except grpc.RpcError:
                return None

        wait_for(
            lambda: status_2() is not None and status_2().status.error_code != 0,
            what="version 2 to fail",
        )
        status = status_2()
        assert (status.state, status.status.error_code) == (LOADING, 2)  # UNKNOWN
        # error_message is the code's name, as OVMS sends it; why the load failed is in the log.
        assert status.status.error_message == "UNKNOWN"
        assert "Failed to load tiny version 2" in server.log()
        healthy = server.model_stub().GetModelStatus(status_request("tiny", 1), timeout=10)
        assert healthy.model_version_status[0].status.error_message == "OK"
        assert ask_tiny(server, "tiny") == 1  # the default is the highest AVAILABLE
        with pytest.raises(grpc.RpcError) as err:
            ask_tiny(server, "tiny", 2)
        assert (err.value.code(), err.value.details()) == (
            grpc.StatusCode.UNAVAILABLE,
            "Model with requested version is not loaded yet",
        )
        # Fixing the files is picked up by the poller.
        shutil.rmtree(repo / "2")
        tiny_model(repo / "2", 2.0)
        wait_for(
            lambda: states(server, "tiny") == {1: AVAILABLE, 2: AVAILABLE}, what="version 2 fixed"
        )
        assert ask_tiny(server, "tiny") == 2


def test_in_flight_requests_finish_before_unload(tmp_path: Path) -> None:
    """Slow (batch 16) requests on a version whose directory is removed all complete normally."""
    repo = demo_repo(tmp_path / "demo", [1, 2])
    with ServerProcess(
        "--model_name",
        "demo",
        "--model_path",
        str(repo),
        "--batch_size",
        "16",
        "--model_version_policy",
        '{"all": {}}',
        "--nireq",
        "1",
        *POLL,
    ) as server:
        stub = server.prediction_stub()
        x = np.zeros((16, 3, 224, 224), np.float32)
        request = predict_request({"data": tensor_proto(x)}, model="demo", version=2)
        futures = [stub.Predict.future(request, timeout=120) for _ in range(6)]
        # Once one has finished, the others (sent with it) have reached the server and wait for the
        # one infer request; "running" on the client side only means sent.
        wait_for(lambda: any(f.done() for f in futures), what="a first reply")
        assert sum(f.done() for f in futures) < len(futures) - 1
        shutil.rmtree(repo / "2")
        replies = [f.result() for f in futures]
        assert all(output_array(r.outputs["prob"]).shape == (16, 1000) for r in replies)
        wait_for(lambda: states(server, "demo") == {1: AVAILABLE, 2: END}, what="version 2 retired")


def test_requests_while_loading_wait_then_succeed(tmp_path: Path) -> None:
    """A request for a version still LOADING waits (up to 10 s) instead of failing at once."""
    repo = demo_repo(tmp_path / "demo", [1])
    with ServerProcess(
        "--model_name",
        "demo",
        "--model_path",
        str(repo),
        "--model_version_policy",
        '{"all": {}}',
        *POLL,
    ) as server:
        shutil.copytree(repo / "1", repo / "2")
        wait_for(lambda: 2 in states(server, "demo"), timeout=30, what="version 2 to appear")
        x = np.zeros((1, 3, 224, 224), np.float32)
        reply = server.prediction_stub().Predict(
            predict_request({"data": tensor_proto(x)}, model="demo", version=2), timeout=30
        )
        assert reply.model_spec.version.value == 2


def test_concurrent_status_during_changes(tmp_path: Path) -> None:
    repo = tiny_repo(tmp_path / "tiny", [1])
    with ServerProcess("--model_name", "tiny", "--model_path", str(repo), *POLL) as server:
        stop = threading.Event()
        failures: list[str] = []

        def poll_status() -> None:
            while not stop.is_set():
                try:
                    server.model_stub().GetModelStatus(status_request("tiny"), timeout=10)
                except grpc.RpcError as e:
                    failures.append(str(e.code()))

        t = threading.Thread(target=poll_status)
        t.start()
        for v in (2, 3):
            tiny_model(repo / str(v), float(v))
            wait_for(lambda v=v: states(server, "tiny").get(v) == AVAILABLE, what=f"version {v}")  # type: ignore[misc]
        stop.set()
        t.join(10)
        assert not failures
