"""TF Serving's warmup: `assets.extra/tf_serving_warmup_requests` (TFRecord of PredictionLog) is replayed
through the serving path before a version turns AVAILABLE; a broken file fails the load; `"warmup":
"zeros"` runs one request of zeros. The files are written here with an independent CRC32C."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import requests
from helpers import ServerProcess, predict_request, status_request, tensor_proto
from model_repo import AVAILABLE, LOADING, tiny_repo
from ovms_rs._proto.tensorflow_serving.apis import prediction_log_pb2
from ovms_rs.config.model import model_config
from ovms_rs.errors import ConfigError

WARMUP = Path("assets.extra") / "tf_serving_warmup_requests"


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


def masked(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(records: list[bytes]) -> bytes:
    out = b""
    for data in records:
        length = struct.pack("<Q", len(data))
        out += length + struct.pack("<I", masked(length)) + data + struct.pack("<I", masked(data))
    return out


def predict_log(shape: tuple[int, ...]) -> bytes:
    entry = prediction_log_pb2.PredictionLog()
    request = predict_request({"x": tensor_proto(np.ones(shape, np.float32))}, model="anything")
    entry.predict_log.request.CopyFrom(request)
    return entry.SerializeToString()  # type: ignore[no-any-return]


def test_crc32c_check_value() -> None:
    assert (
        crc32c(b"123456789") == 0xE3069283
    )  # the writer below is right, independently of the server


def serve(tmp_path: Path, warmup_file: bytes | None, **config: object) -> ServerProcess:
    repo = tiny_repo(tmp_path / "m", [1])
    if warmup_file is not None:
        (repo / "1" / WARMUP).parent.mkdir()
        (repo / "1" / WARMUP).write_bytes(warmup_file)
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {"model_config_list": [{"config": {"name": "m", "base_path": str(repo), **config}}]}
        )
    )
    return ServerProcess("--config_path", str(path), rest=True, log_path=tmp_path / "server.log")


def version_state(server: ServerProcess) -> tuple[int, str]:
    status = (
        server.model_stub().GetModelStatus(status_request("m"), timeout=10).model_version_status[0]
    )
    return status.state, status.status.error_message


def test_records_are_replayed_before_available(tmp_path: Path) -> None:
    # With shape auto, a request of batch 3 reshapes the model: after warmup the model is already
    # (3,4), which only a replayed record can have done. Three records, counted in the log.
    file = tfrecord([predict_log((1, 4)), predict_log((3, 4)), predict_log((3, 4))])
    with serve(tmp_path, file, shape="auto") as server:
        assert version_state(server) == (AVAILABLE, "OK")
        meta = requests.get(f"{server.rest_url}/v1/models/m/metadata", timeout=10).json()
        x = meta["metadata"]["signature_def"]["signatureDef"]["serving_default"]["inputs"]["x"]
        assert [d["size"] for d in x["tensorShape"]["dim"]] == ["3", "4"]
        log = server.log()
        assert re.search(r"Number of warmup records read: 3\b", log), log
        assert log.index("Number of warmup records read") < log.index("Loaded m version 1")
        reply = server.prediction_stub().Predict(
            predict_request({"x": tensor_proto(np.ones((3, 4), np.float32))}, model="m"), timeout=10
        )
        assert reply.model_spec.version.value == 1


@pytest.mark.parametrize(
    ("file", "reason"),
    [
        (tfrecord([predict_log((1, 4))])[:-1], "truncated data"),
        (tfrecord([predict_log((1, 4))])[:-4] + b"\0\0\0\0", "corrupted data (CRC mismatch)"),
        (b"\x10" + tfrecord([predict_log((1, 4))])[1:], "corrupted length (CRC mismatch)"),
        (tfrecord([b"\xff\xff\xff"]), "Failed to parse warmup record 0"),
        (tfrecord([predict_log((1, 4)), b""]), "Unsupported log_type for warmup in record 1"),
        (tfrecord([predict_log((1, 5))]), "Warmup record 0 from"),
    ],
    ids=["truncated", "data-crc", "length-crc", "unparsable", "no-predict-log", "refused-request"],
)
def test_broken_file_is_a_failed_load(tmp_path: Path, file: bytes, reason: str) -> None:
    with serve(tmp_path, file) as server:
        # A failed load: LOADING with error UNKNOWN, as any other, and one clear log line.
        assert version_state(server) == (LOADING, "UNKNOWN")
        lines = [line for line in server.log().splitlines() if "Failed to load m version 1" in line]
        assert len(lines) == 1 and "warmup failed" in lines[0] and reason in lines[0], server.log()
        assert str(WARMUP) in lines[0]


def test_more_than_1000_records_is_refused(tmp_path: Path) -> None:
    with serve(tmp_path, tfrecord([predict_log((1, 4))] * 1001)) as server:
        assert version_state(server) == (LOADING, "UNKNOWN")
        assert "Number of warmup records exceeds the maximum (1000)" in server.log()


def test_zeros_and_none(tmp_path: Path) -> None:
    file = tfrecord([predict_log((1, 4))] * 2)
    with serve(tmp_path / "zeros", file, warmup="zeros") as server:
        assert version_state(server) == (AVAILABLE, "OK")
        log = server.log()
        assert (
            "Number of warmup records read: 2" in log and "Warmed up m version 1 with zeros" in log
        )
    # "none" ignores the file, broken or not.
    with serve(tmp_path / "none", b"not a tfrecord", warmup="none") as server:
        assert version_state(server) == (AVAILABLE, "OK")
        assert "warmup" not in server.log().lower()


def test_warmup_setting_is_validated() -> None:
    assert model_config("m", "/x").warmup == "file"
    assert model_config("m", "/x", warmup="zeros").warmup == "zeros"
    with pytest.raises(ConfigError, match="Invalid warmup"):
        model_config("m", "/x", warmup="ones")
