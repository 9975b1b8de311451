"""The command line: OVMS's flags, and OVMS's messages (not tracebacks) for bad repositories."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import DEMO_MODEL_PATH, ServerProcess, status_request
from model_repo import ask_tiny, tiny_repo


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ovms_rs", "serve", "--port", "1", *args],
        capture_output=True,
        text=True,
        timeout=120,
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
    with ServerProcess(
        "--model_name", "m", "--model_path", str(repo), "--model_version_policy", '{"all": {}}'
    ) as server:
        reply = server.model_stub().GetModelStatus(status_request("m"), timeout=30)
        assert [(s.version, s.state) for s in reply.model_version_status] == [(1, 30), (3, 30)]


# OVMS flags accepted but not implemented yet, with a non-default value each.
NOT_IMPLEMENTED = {"--rest_workers": "4", "--grpc_workers": "2"}


def _help() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "ovms_rs", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "400"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _help_of_each_flag(text: str) -> dict[str, str]:
    """{flag: its help text} from argparse's output (the help follows the flag, or is on the next line)."""
    helps: dict[str, str] = {}
    flag = None
    for line in text.splitlines():
        words = line.split()
        if words and words[0].startswith("--"):
            flag = words[0]
            helps[flag] = " ".join(
                words[2:] if len(words) > 1 and words[1].isupper() else words[1:]
            )
        elif flag is not None and words:
            helps[flag] = " ".join([helps[flag], *words]).strip()
    return helps


def test_help_says_which_flags_are_not_implemented() -> None:
    helps = _help_of_each_flag(_help())
    for flag in NOT_IMPLEMENTED:
        assert helps[flag] == "accepted for compatibility with OVMS (not implemented yet)", flag
    assert "not implemented" not in helps["--port"]


def test_help_lists_the_rewritten_plugin_config_keys() -> None:
    text = _help_of_each_flag(_help())["--plugin_config"]
    for rewrite in (
        "CPU_THROUGHPUT_AUTO / GPU_THROUGHPUT_AUTO -> PERFORMANCE_HINT=THROUGHPUT",
        "a number in them -> NUM_STREAMS",
        "CPU_THREADS_NUM -> INFERENCE_NUM_THREADS",
    ):
        assert rewrite in text


def test_not_implemented_flags_are_warned_about(tmp_path: Path) -> None:
    repo = tiny_repo(tmp_path / "tiny", [1])
    flags = [
        item
        for flag, value in NOT_IMPLEMENTED.items()
        for item in (flag, value)
        if item is not None
    ]
    with ServerProcess(
        "--model_name", "tiny", "--model_path", str(repo), *flags, log_path=tmp_path / "server.log"
    ) as server:
        assert ask_tiny(server, "tiny") == 1  # still serves gRPC
        log = server.log()
    for flag, value in NOT_IMPLEMENTED.items():
        assert f"{flag} is not implemented by ovms_rs yet; {flag}={value or True} ignored" in log


def test_default_flags_are_not_warned_about(demo_server: ServerProcess) -> None:
    assert "Started gRPC server" in demo_server.log()
    assert "not implemented" not in demo_server.log()


def _loads_openvino(imports: str) -> bool:
    code = f"import sys; {imports}; print('openvino' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return {"True": True, "False": False}[result.stdout.strip()]


def test_the_cli_imports_no_openvino() -> None:
    """Flags are parsed (and --help answered) before the model side, and OpenVINO, load."""
    assert not _loads_openvino("import ovms_rs.__main__")


def test_the_config_layer_and_the_dtype_table_import_no_openvino() -> None:
    """Configuration sits below the model side: every module of ovms_rs.config, and ovms_rs.dtypes
    (which the example clients import), loads without OpenVINO; the model side's adapter does load it
    (so the check sees an import when there is one)."""
    every_config_module = (
        "import importlib, pkgutil, ovms_rs.config, ovms_rs.dtypes; "
        "names = [m.name for m in pkgutil.iter_modules(ovms_rs.config.__path__)]; "
        "assert {'server', 'model', 'config_json', 'shapes', 'policy'} <= set(names), names; "
        "[importlib.import_module('ovms_rs.config.' + n) for n in names]"
    )
    assert not _loads_openvino(every_config_module)
    assert _loads_openvino("import ovms_rs.models.tensor_spec")
