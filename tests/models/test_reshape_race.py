"""The auto-reshape race: with `--shape auto`, a request of another shape recompiles the version while
requests validated against the old shape may still be about to infer. Each must run on the compiled
model it was validated against: clients of two shapes alternating under load, every reply right.

Measured: the code before `Validated` carried the compiled model passed this too (12 s, 12 clients):
on the CPU plugin the window (validation returning -> infer reading the version's current model) was
never hit or did no harm. The test holds the guarantee, it does not reproduce the old race."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import numpy as np
from helpers import ServerProcess, output_array, predict_request, tensor_proto
from model_repo import tiny_repo

SECONDS = 4.0
CLIENTS_PER_SHAPE = 3


def test_alternating_shapes_on_an_auto_model(tmp_path: Path) -> None:
    repo = tiny_repo(tmp_path / "tiny", [2])  # y = 2x, x [1,4]
    args = ("--model_name", "tiny", "--model_path", str(repo), "--shape", "auto", "--nireq", "2")
    failures: list[str] = []
    answered = {1: 0, 3: 0}
    lock = threading.Lock()
    with ServerProcess(*args, log_path=tmp_path / "server.log") as server:
        stub = server.prediction_stub()
        deadline = time.monotonic() + SECONDS

        def client(batch: int, seed: int) -> None:
            rng = np.random.default_rng(seed)
            while time.monotonic() < deadline:
                x = rng.integers(-100, 100, (batch, 4)).astype(np.float32)
                try:
                    reply = stub.Predict(
                        predict_request({"x": tensor_proto(x)}, model="tiny"), timeout=60
                    )
                    y = output_array(reply.outputs["y"])
                    ok = y.shape == x.shape and np.array_equal(y, 2 * x)
                    what = f"shape {y.shape} for {x.shape}"
                except grpc.RpcError as e:
                    ok, what = False, f"{e.code()}: {e.details()}"
                with lock:
                    answered[batch] += 1
                    if not ok:
                        failures.append(what)

        threads = [
            threading.Thread(target=client, args=(batch, 10 * batch + i))
            for batch in (1, 3)
            for i in range(CLIENTS_PER_SHAPE)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        reshapes = server.log().count("Reshaped tiny version 2")
    assert not failures, failures[:10]
    assert answered[1] > 0 and answered[3] > 0
    assert reshapes >= 2, "the shapes did not alternate: the race was not exercised"
