"""REST soak: concurrent keep-alive clients mixing valid, invalid and b64 predicts, status and health
calls, beside gRPC clients on the same server, for a bounded time. Every reply is checked exactly;
afterwards the server's RSS, threads and open files are stable.

CI runs 10 s; longer: OVMS_RS_SOAK_SECONDS=60 pytest tests/reliability/test_rest_soak.py -s
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import requests
from helpers import (
    DEMO,
    DEMO_MODEL_PATH,
    ServerProcess,
    output_array,
    predict_request,
    tensor_proto,
)
from reliability_support import Photo, env_int, proc_status

SOAK_SECONDS = env_int("OVMS_RS_SOAK_SECONDS", 10)
REST_CLIENTS, GRPC_CLIENTS = 4, 2
WARMUP_SECONDS = 2.0
# The same bounds as the gRPC soak (test_soak.py explains the figures).
RSS_GROWTH_LIMIT_MB = 24.0
THREAD_GROWTH_LIMIT = 24
FD_GROWTH_LIMIT = 8


def test_rest_soak(
    tmp_path: Path, demo_photos: tuple[Photo, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--model_name", DEMO, "--model_path", str(DEMO_MODEL_PATH), "--layout", "NHWC:NCHW"]
    bodies = [(p, json.dumps({"instances": p.nhwc.tolist()}).encode()) for p in demo_photos]
    b64 = [
        (p, json.dumps({"instances": [{"b64": base64.b64encode(p.jpeg).decode()}]}).encode())
        for p in demo_photos
    ]
    bad = [
        (b'{"instances": [[1, 2]', 400, "The file is not valid json"),
        (
            b'{"inputs": {"nope": [1]}}',
            400,
            "Missing input with specific name - Required input: data",
        ),
        (
            b'{"instances": [[1], [2, 3]]}',
            400,
            "Could not parse instance content. Not valid ndarray detected",
        ),
    ]
    tally: Counter[str] = Counter()
    unexpected: list[str] = []
    lock = threading.Lock()

    with ServerProcess(*args, log_path=tmp_path / "server.log", rest=True) as server:
        url = f"{server.rest_url}/v1/models/{DEMO}"
        deadline = time.monotonic() + SOAK_SECONDS

        def note(kind: str, ok: bool, what: str) -> None:
            with lock:
                tally[kind] += 1
                if not ok:
                    unexpected.append(f"{kind}: {what}")

        def rest_client(seed: int) -> None:
            rng = random.Random(seed)
            session = requests.Session()
            while time.monotonic() < deadline:
                roll = rng.random()
                if roll < 0.4:
                    photo, body = rng.choice(bodies)
                    r = session.post(f"{url}:predict", data=body, timeout=60)
                    ok = (
                        r.status_code == 200
                        and int(np.argmax(r.json()["predictions"][0])) == photo.label
                    )
                    note("rest-float", ok, f"{r.status_code} {r.text[:200]}")
                elif roll < 0.6:
                    photo, body = rng.choice(b64)
                    r = session.post(f"{url}:predict", data=body, timeout=60)
                    ok = r.status_code == 200 and len(r.json()["predictions"][0]) == 1000
                    note("rest-b64", ok, f"{r.status_code} {r.text[:200]}")
                elif roll < 0.85:
                    body, status, message = rng.choice(bad)
                    r = session.post(f"{url}:predict", data=body, timeout=60)
                    error = r.json().get("error", "")
                    ok = r.status_code == status and (
                        error == message or error.startswith(message + " - ")
                    )
                    note("rest-invalid", ok, f"{r.status_code} {r.text[:200]}")
                else:
                    r = session.get(url, timeout=60)
                    ready = session.get(f"{server.rest_url}/v2/health/ready", timeout=60)
                    ok = r.status_code == 200 and ready.status_code == 200
                    note("rest-status", ok, f"{r.status_code} {ready.status_code}")
            session.close()

        def grpc_client(seed: int) -> None:
            rng = random.Random(seed)
            stub = server.prediction_stub()
            while time.monotonic() < deadline:
                photo = rng.choice(demo_photos)
                reply = stub.Predict(
                    predict_request({"data": tensor_proto(photo.nhwc)}), timeout=60
                )
                ok = int(output_array(reply.outputs["prob"]).argmax()) == photo.label
                note("grpc-float", ok, photo.name)

        threads = [
            threading.Thread(target=rest_client, args=(i,), daemon=True)
            for i in range(REST_CLIENTS)
        ]
        threads += [
            threading.Thread(target=grpc_client, args=(100 + i,), daemon=True)
            for i in range(GRPC_CLIENTS)
        ]
        assert server.proc is not None
        pid = server.proc.pid
        for t in threads:
            t.start()
        time.sleep(WARMUP_SECONDS)
        first = proc_status(pid)
        peak = first["VmRSS"]
        while any(t.is_alive() for t in threads):
            peak = max(peak, proc_status(pid)["VmRSS"])
            time.sleep(0.5)
        for t in threads:
            t.join(timeout=120)
        time.sleep(0.5)
        end = proc_status(pid)
        assert server.alive, server.log()[-3000:]
    with capsys.disabled():
        report = {
            "seconds": SOAK_SECONDS,
            "by_kind": dict(tally),
            "unexpected": len(unexpected),
            "rss_mb": [
                round(first["VmRSS"] / 1024, 1),
                round(end["VmRSS"] / 1024, 1),
                round(peak / 1024, 1),
            ],
            "threads": [first["Threads"], end["Threads"]],
            "fds": [first["fds"], end["fds"]],
        }
        print("\nrest soak:", json.dumps(report))
    assert not unexpected, "\n".join(unexpected[:20])
    assert all(
        tally[k] > 0
        for k in ("rest-float", "rest-b64", "rest-invalid", "rest-status", "grpc-float")
    )
    assert (end["VmRSS"] - first["VmRSS"]) / 1024 < RSS_GROWTH_LIMIT_MB
    assert end["Threads"] - first["Threads"] <= THREAD_GROWTH_LIMIT
    assert end["fds"] - first["fds"] <= FD_GROWTH_LIMIT
