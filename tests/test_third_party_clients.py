"""Unchanged third-party clients against the real server: ovmsclient (in its own process, since its
generated protos register the same message names as ours)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from helpers import DEMO, ServerProcess, env_without_proxy, labeled_photos

pytest.importorskip("ovmsclient")
pytest.importorskip("cv2")

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import cv2, numpy as np, ovmsclient
    address, model, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
    client = ovmsclient.make_grpc_client(address)
    status = client.get_model_status(model_name=model)
    meta = client.get_model_metadata(model_name=model)
    classes = []
    for p in paths:
        img = cv2.resize(cv2.imread(p), (224, 224), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        out = client.predict(inputs={"data": img.transpose(2, 0, 1)[None]}, model_name=model)
        classes.append(int(np.argmax(out)))
    print(json.dumps({"status": {str(k): v for k, v in status.items()}, "meta": meta, "classes": classes}))
    """
)


def test_ovmsclient(demo_server: ServerProcess) -> None:
    photos = labeled_photos()
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, f"127.0.0.1:{demo_server.port}", DEMO, *[str(p) for p, _ in photos]],
        capture_output=True, text=True, timeout=180, env=env_without_proxy(),
    )
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["status"] == {"1": {"state": "AVAILABLE", "error_code": 0, "error_message": ""}}
    assert got["meta"]["model_version"] == 1
    assert got["meta"]["inputs"]["data"] == {"shape": [1, 3, 224, 224], "dtype": "DT_FLOAT"}
    assert got["meta"]["outputs"]["prob"] == {"shape": [1, 1000], "dtype": "DT_FLOAT"}
    assert got["classes"] == [label for _, label in photos]
