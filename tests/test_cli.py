"""The command line: OVMS's flags, and OVMS's messages (not tracebacks) for bad repositories."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from helpers import DEMO_MODEL_PATH, ServerProcess, status_request


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ovms_rs", "serve", "--port", "1", *args],
        capture_output=True, text=True, timeout=120,
    )


def test_missing_model_path_fails_with_message(tmp_path: Path) -> None:
    result = _serve("--model_name", "m", "--model_path", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert "The provided base path is invalid or doesn't exists" in result.stderr
    assert "Traceback" not in result.stderr


def test_non_numeric_version_directory(tmp_path: Path) -> None:
    (tmp_path / "m" / "latest").mkdir(parents=True)
    result = _serve("--model_name", "m", "--model_path", str(tmp_path / "m"))
    assert result.returncode == 1
    assert "Expected version directory name to be in number format. Got: latest" in result.stderr
    assert "No version found for model in path" in result.stderr
    assert "Traceback" not in result.stderr


def test_version_zero_directory(tmp_path: Path) -> None:
    (tmp_path / "m" / "0").mkdir(parents=True)
    result = _serve("--model_name", "m", "--model_path", str(tmp_path / "m"))
    assert result.returncode == 1
    assert "Expected version directory name to be a number greater than 0. Got: 0" in result.stderr


def test_config_path_with_model_flags_is_rejected(tmp_path: Path) -> None:
    result = _serve("--config_path", str(tmp_path / "c.json"), "--model_name", "m")
    assert result.returncode == 1
    assert "Use either config_path or model_path with model_name" in result.stderr


def test_every_version_directory_is_served(tmp_path: Path) -> None:
    """--model_path serves the repository's versions; the default version is the highest."""
    repo = tmp_path / "m"
    for v in ("1", "3"):
        shutil.copytree(DEMO_MODEL_PATH / "1", repo / v)
    with ServerProcess("--model_name", "m", "--model_path", str(repo),
                       "--model_version_policy", '{"all": {}}') as server:
        reply = server.model_stub().GetModelStatus(status_request("m"), timeout=30)
        assert [(s.version, s.state) for s in reply.model_version_status] == [(1, 30), (3, 30)]
