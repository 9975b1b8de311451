"""Faults: SIGTERM with requests in flight, clients that cancel or vanish mid-request, model files
deleted or corrupted while serving."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from helpers import (
    DEMO_MODEL_PATH,
    MAX_MESSAGE,
    ServerProcess,
    predict_request,
    status_request,
    tensor_proto,
)
from model_repo import AVAILABLE, END, LOADING, demo_repo, states, wait_for, write_config
from ovms_rs._proto.tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from ovms_rs.serve import SHUTDOWN_GRACE_SECONDS
from reliability_support import (
    LONG_RUN,
    SLOW_BATCH,
    Outcome,
    Photo,
    photo_request,
    predict,
    sigterm_and_wait,
    slow_request,
    slow_server,
)

OK = grpc.StatusCode.OK


def _result(future: grpc.Future) -> Outcome:
    try:
        return Outcome(OK, "", future.result())
    except grpc.RpcError as e:
        return Outcome(e.code(), e.details() or "")


def _all_right(outcomes: list[Outcome], photo: Photo) -> None:
    for outcome in outcomes:
        assert outcome.code == OK, (outcome.code, outcome.details)
        assert outcome.top_classes() == [photo.label] * SLOW_BATCH


# ---- SIGTERM ----


def test_sigterm_drains_in_flight_requests(
    server_log: Path, demo_photos: tuple[Photo, ...]
) -> None:
    """Requests running or waiting for the infer request when SIGTERM arrives all complete, correctly;
    then the process exits 0, well within the grace period."""
    photo = demo_photos[4]
    server = slow_server(server_log).start()
    try:
        stub = server.prediction_stub()
        request = slow_request(photo)
        _all_right([Outcome(OK, "", stub.Predict(request, timeout=60))], photo)  # warm-up
        futures = [stub.Predict.future(request, timeout=60) for _ in range(8)]
        # Once the first answer is back the others have reached the server: one running, the rest
        # waiting for the single infer request. Noticed by a callback, not by polling: on a fast CPU
        # (AMX) a 16-row batch infers in tens of ms, faster than a 0.1 s poll.
        first = threading.Event()
        for f in futures:
            f.add_done_callback(lambda _: first.set())
        assert first.wait(timeout=60), "no first answer"
        in_flight = sum(not f.done() for f in futures)
        started = time.monotonic()
        status = sigterm_and_wait(server, timeout=SHUTDOWN_GRACE_SECONDS + 15)
        took = time.monotonic() - started
        outcomes = [_result(f) for f in futures]
    finally:
        server.stop()
    assert in_flight >= 2, "the requests finished before SIGTERM: nothing was tested"
    _all_right(outcomes, photo)
    assert status == 0, server.log()[-3000:]
    assert took < SHUTDOWN_GRACE_SECONDS, f"exit took {took:.1f} s"
    assert "Server stopped" in server.log()


@pytest.mark.skipif(not LONG_RUN, reason="takes more than the 30 s grace period: OVMS_RS_LONG=1")
def test_sigterm_with_more_queued_work_than_the_grace_period(
    server_log: Path, demo_photos: tuple[Photo, ...]
) -> None:
    """Queued work that outlasts the grace period: requests finished by then are OK, the rest end (any
    status), and the process exits 0 when the grace period ends, not when the queue would have drained."""
    photo = demo_photos[4]
    batch = 64  # ~1 s per request on 2 CPUs: 60 queued requests are twice the grace period
    args = [
        "--model_name",
        "big",
        "--model_path",
        str(DEMO_MODEL_PATH),
        "--batch_size",
        str(batch),
        "--nireq",
        "1",
    ]
    server = ServerProcess(*args, log_path=server_log).start()
    try:
        stub = server.prediction_stub()
        request = predict_request(
            {"data": tensor_proto(np.repeat(photo.nchw, batch, axis=0))}, model="big"
        )
        assert stub.Predict(request, timeout=120) is not None
        futures = [stub.Predict.future(request, timeout=600) for _ in range(60)]
        wait_for(lambda: any(f.done() for f in futures), timeout=120, what="a first answer")
        started = time.monotonic()
        status = sigterm_and_wait(server, timeout=SHUTDOWN_GRACE_SECONDS + 120)
        took = time.monotonic() - started
        outcomes = [_result(f) for f in futures]
    finally:
        server.stop()
    assert status == 0, server.log()[-3000:]
    assert all(o.code != OK or o.top_classes() == [photo.label] * batch for o in outcomes)
    assert took < SHUTDOWN_GRACE_SECONDS + 5, f"exit took {took:.1f} s after SIGTERM"


def test_sigterm_when_idle_exits_at_once(server_log: Path) -> None:
    server = slow_server(server_log).start()
    try:
        started = time.monotonic()
        status = sigterm_and_wait(server, timeout=SHUTDOWN_GRACE_SECONDS + 15)
        took = time.monotonic() - started
    finally:
        server.stop()
    assert status == 0, server.log()[-3000:]
    assert took < 10, f"an idle server took {took:.1f} s to exit"


# ---- clients that go away ----


def test_cancelled_timed_out_and_vanished_clients_leak_nothing(
    slow_demo_server: ServerProcess, demo_photos: tuple[Photo, ...]
) -> None:
    """Calls cancelled mid-request, calls whose deadline expires while running or queued, and a client
    whose connection closes mid-request: afterwards the single infer request is free again (more
    concurrent requests than nireq all complete, right) and the server has logged no error."""
    server = slow_demo_server
    photo = demo_photos[1]
    stub = server.prediction_stub()
    request = slow_request(photo)
    _all_right([Outcome(OK, "", stub.Predict(request, timeout=60))], photo)  # warm-up

    for _ in range(2):
        cancelled = [stub.Predict.future(request, timeout=60) for _ in range(4)]
        time.sleep(0.3)
        for f in cancelled:
            f.cancel()
        for _ in range(3):
            with pytest.raises(grpc.RpcError) as err:
                # Shorter than one batch of SLOW_BATCH takes on any CPU (>= 48 ms at 3 ms a photo).
                stub.Predict(request, timeout=0.02)
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        vanishing = grpc.insecure_channel(
            f"127.0.0.1:{server.port}",
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE),
                ("grpc.use_local_subchannel_pool", 1),
            ],
        )
        lost = [
            prediction_service_pb2_grpc.PredictionServiceStub(vanishing).Predict.future(
                request, timeout=60
            )
            for _ in range(3)
        ]
        time.sleep(0.3)
        vanishing.close()
        wait_for(
            lambda lost=lost: all(f.done() for f in lost),  # type: ignore[misc]
            timeout=10,
            what="calls on the closed channel to end",
        )

        # More concurrent requests than infer requests (1): every one is served, right.
        after = [stub.Predict.future(request, timeout=60) for _ in range(4)]
        _all_right([_result(f) for f in after], photo)
    assert server.alive
    assert "Unexpected error" not in server.log(), server.log()[-3000:]
    assert "Traceback" not in server.log(), server.log()[-3000:]


# ---- model files changing under a serving model ----


def _status(server: ServerProcess, model: str, version: int) -> tuple[int, int]:
    reply = server.model_stub().GetModelStatus(status_request(model, version), timeout=10)
    status = reply.model_version_status[0]
    return status.state, status.status.error_code


def _classifies(
    server: ServerProcess, model: str, photo: Photo, version: int | None = None
) -> bool:
    request = photo_request(photo, model) if version is None else _versioned(photo, model, version)
    outcome = predict(server, request)
    return outcome.code == OK and outcome.top_classes() == [photo.label]


def test_files_deleted_or_corrupted_while_serving(
    tmp_path: Path, server_log: Path, demo_photos: tuple[Photo, ...]
) -> None:
    """Model `a` (versions 1 and 2, policy all) and model `b` (version 1). Corrupting the files of loaded
    versions changes nothing (they are served from memory); deleting a's version 2 retires it (END) while
    version 1 and model b keep serving; a broken new version 3 of `a` fails to load (LOADING, error
    UNKNOWN) and changes nothing else."""
    photo = demo_photos[2]
    demo_repo(tmp_path / "a", [1, 2])
    demo_repo(tmp_path / "b", [1])
    config = write_config(
        tmp_path / "config.json",
        [
            {"name": "a", "base_path": "a", "model_version_policy": {"all": {}}},
            {"name": "b", "base_path": "b"},
        ],
    )
    with ServerProcess(
        "--config_path", str(config), "--file_system_poll_wait_seconds", "1", log_path=server_log
    ) as server:
        assert states(server, "a") == {1: AVAILABLE, 2: AVAILABLE}
        assert states(server, "b") == {1: AVAILABLE}

        (tmp_path / "a" / "2" / "model.bin").write_bytes(b"\xde\xad" * 1000)
        (tmp_path / "b" / "1" / "model.xml").write_text("<net>corrupted</net>")
        time.sleep(2.5)  # two poll cycles
        assert states(server, "a") == {1: AVAILABLE, 2: AVAILABLE}
        assert states(server, "b") == {1: AVAILABLE}
        assert all(
            _classifies(server, m, photo, v)
            for m, v in [("a", 1), ("a", 2), ("a", None), ("b", None)]
        )

        shutil.rmtree(tmp_path / "a" / "2")
        wait_for(lambda: states(server, "a") == {1: AVAILABLE, 2: END}, what="a/2 to retire")
        assert _status(server, "a", 2) == (END, 0)
        assert _classifies(server, "a", photo, 1)
        assert _classifies(server, "a", photo)  # the default is now version 1
        retired = predict(server, _versioned(photo, "a", 2))
        assert (retired.code, retired.details) == (
            grpc.StatusCode.NOT_FOUND,
            "Model with requested version is retired",
        )
        assert _classifies(server, "b", photo)

        (tmp_path / "a" / "3").mkdir()
        (tmp_path / "a" / "3" / "model.xml").write_text("<net>not a model</net>")
        (tmp_path / "a" / "3" / "model.bin").write_bytes(b"\0" * 64)
        wait_for(
            lambda: 3 in states(server, "a") and _status(server, "a", 3)[1] != 0, what="a/3 to fail"
        )
        assert _status(server, "a", 3) == (LOADING, 2)  # error_code UNKNOWN
        assert states(server, "a") == {1: AVAILABLE, 2: END, 3: LOADING}
        assert _classifies(server, "a", photo) and _classifies(server, "a", photo, 1)
        assert _classifies(server, "b", photo)
        assert server.alive
        assert "Unexpected error" not in server.log()


def _versioned(photo: Photo, model: str, version: int) -> predict_pb2.PredictRequest:
    request = photo_request(photo, model)
    request.model_spec.version.value = version
    return request


def test_broken_new_version_keeps_the_old_one_serving(
    tmp_path: Path, server_log: Path, demo_photos: tuple[Photo, ...]
) -> None:
    """Default policy (latest 1): a new version 2 whose files are broken fails to load; version 1 must
    keep serving, as OVMS does (ModelManager::reloadModelWithVersions returns before retiring old
    versions when adding the new ones failed)."""
    photo = demo_photos[5]
    repo = demo_repo(tmp_path / "m", [1])
    with ServerProcess(
        "--model_name",
        "m",
        "--model_path",
        str(repo),
        "--file_system_poll_wait_seconds",
        "1",
        log_path=server_log,
    ) as server:
        assert _classifies(server, "m", photo)
        (repo / "2").mkdir()
        (repo / "2" / "model.xml").write_text("<net>not a model</net>")
        (repo / "2" / "model.bin").write_bytes(b"\0" * 64)
        wait_for(
            lambda: 2 in states(server, "m") and _status(server, "m", 2)[1] != 0, what="m/2 to fail"
        )
        time.sleep(1.5)  # another poll cycle
        assert states(server, "m") == {1: AVAILABLE, 2: LOADING}
        assert _classifies(server, "m", photo)
        assert _classifies(server, "m", photo, 1)
