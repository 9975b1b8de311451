"""SIGTERM: readiness turns 503 at once while the requests in flight finish, every one answered."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import requests
from helpers import DEMO, ServerProcess, predict_request, tensor_proto


def test_not_ready_while_draining(tmp_path: Path) -> None:
    # --drain_seconds: the ports stay open (live, not ready) that long after SIGTERM, however fast the
    # queued requests finish (on a quiet fast CPU 24 of them took less than the probes below).
    with ServerProcess(
        "--nireq", "1", "--drain_seconds", "3", log_path=tmp_path / "server.log", rest=True
    ) as server:
        # ServerProcess is ready once the gRPC port accepts; readiness turns 200 just after.
        deadline = time.monotonic() + 10
        while requests.get(f"{server.rest_url}/v2/health/ready", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.01)
        x = np.zeros((1, 3, 224, 224), np.float32)
        stub = server.prediction_stub()
        # With one infer request these queue: the drain takes a while.
        pending = [
            stub.Predict.future(predict_request({"data": tensor_proto(x)}), timeout=120)
            for _ in range(24)
        ]
        time.sleep(0.2)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        # Python runs the handler on its main thread between bytecodes: measured 7-32 ms after the
        # signal on a quiet machine, longer on a loaded one; a probe polls, so does this.
        deadline = time.monotonic() + 5
        while True:
            ready = requests.get(f"{server.rest_url}/v2/health/ready", timeout=10)
            if ready.status_code == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert (ready.status_code, ready.json()) == (503, {"error": "Server is not ready"})
        assert requests.get(f"{server.rest_url}/v2/health/live", timeout=10).status_code == 200
        for future in pending:
            assert future.result().outputs["prob"].tensor_shape.dim[1].size == 1000
        assert server.proc.wait(timeout=60) == 0
        assert DEMO in server.log()
