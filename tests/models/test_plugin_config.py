"""plugin_config: OVMS's rewrites of legacy keys (with its deprecation warning), the default
PERFORMANCE_HINT, and a property OpenVINO refuses, on the command line and in config.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import ServerProcess, status_request
from model_repo import AVAILABLE, ask_tiny, states, tiny_repo, write_config
from ovms_rs.config.model import model_config


def _loaded_line(log: str, model: str) -> str:
    (line,) = [line for line in log.splitlines() if f"Loaded {model} version 1 " in line]
    return line


def test_legacy_keys_on_the_command_line(tmp_path: Path) -> None:
    """Today's OpenVINO refuses these keys: the model loads only because they were rewritten."""
    repo = tiny_repo(tmp_path / "tiny", [1])
    legacy = {"CPU_THROUGHPUT_STREAMS": "CPU_THROUGHPUT_AUTO", "CPU_THREADS_NUM": "1"}
    with ServerProcess(
        "--model_name",
        "tiny",
        "--model_path",
        str(repo),
        "--plugin_config",
        json.dumps(legacy),
        log_path=tmp_path / "server.log",
    ) as server:
        assert ask_tiny(server, "tiny") == 1
        log = server.log()
    assert (
        "CPU_THROUGHPUT_STREAMS plugin config key is deprecated. Use PERFORMANCE_HINT instead"
        in log
    )
    assert (
        "CPU_THREADS_NUM plugin config key is deprecated. Use INFERENCE_NUM_THREADS instead" in log
    )
    loaded = _loaded_line(log, "tiny")
    assert "PERFORMANCE_HINT=THROUGHPUT" in loaded and "INFERENCE_NUM_THREADS=1" in loaded


@pytest.mark.parametrize("streams", ["2", 2, 2.0], ids=["string", "int", "float"])
def test_numeric_throughput_streams_in_config_json(tmp_path: Path, streams: object) -> None:
    tiny_repo(tmp_path / "gpu_key", [1])
    tiny_repo(tmp_path / "cpu_key", [1])
    config = write_config(
        tmp_path / "config.json",
        [
            {
                "name": "cpu_key",
                "base_path": "cpu_key",
                "plugin_config": {"CPU_THROUGHPUT_STREAMS": streams},
            },
            {
                "name": "gpu_key",
                "base_path": "gpu_key",
                "plugin_config": {"GPU_THROUGHPUT_STREAMS": streams},
            },
        ],
    )
    with ServerProcess("--config_path", str(config), log_path=tmp_path / "server.log") as server:
        assert ask_tiny(server, "cpu_key") == 1 and ask_tiny(server, "gpu_key") == 1
        log = server.log()
    for prefix in ("CPU", "GPU"):
        assert (
            f"{prefix}_THROUGHPUT_STREAMS plugin config key is deprecated. Use NUM_STREAMS instead"
            in log
        )
    for model in ("cpu_key", "gpu_key"):
        assert "NUM_STREAMS=2," in _loaded_line(log, model)


def test_a_property_openvino_refuses_names_the_key(tmp_path: Path) -> None:
    repo = tiny_repo(tmp_path / "tiny", [1])
    with ServerProcess(
        "--model_name",
        "tiny",
        "--model_path",
        str(repo),
        "--plugin_config",
        '{"NOT_A_REAL_KEY": "1"}',
        log_path=tmp_path / "server.log",
    ) as server:
        (status,) = (
            server.model_stub()
            .GetModelStatus(status_request("tiny"), timeout=10)
            .model_version_status
        )
        assert (status.status.error_code, status.status.error_message) == (2, "UNKNOWN")
        assert states(server, "tiny") != {1: AVAILABLE}
        log = server.log()
    (line,) = [line for line in log.splitlines() if "Failed to load tiny version 1" in line]
    assert line.endswith(": NotFound: Unsupported property NOT_A_REAL_KEY by CPU plugin."), line


@pytest.mark.parametrize(
    "plugin_config, properties",
    [
        ({}, {"PERFORMANCE_HINT": "LATENCY"}),
        ({"CPU_THROUGHPUT_STREAMS": "CPU_THROUGHPUT_AUTO"}, {"PERFORMANCE_HINT": "THROUGHPUT"}),
        ({"GPU_THROUGHPUT_STREAMS": "GPU_THROUGHPUT_AUTO"}, {"PERFORMANCE_HINT": "THROUGHPUT"}),
        ({"CPU_THROUGHPUT_STREAMS": 3.0}, {"NUM_STREAMS": "3"}),  # no default hint: streams are set
        ({"CPU_THREADS_NUM": 4}, {"INFERENCE_NUM_THREADS": "4", "PERFORMANCE_HINT": "LATENCY"}),
        (
            '{"NUM_STREAMS": "1", "CPU_THREADS_NUM": "2"}',
            {"NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": "2"},
        ),
    ],
    ids=["default", "cpu-auto", "gpu-auto", "float-streams", "threads", "json-text"],
)
def test_properties_openvino_is_given(
    plugin_config: object, properties: dict[str, str], tmp_path: Path
) -> None:
    """The default PERFORMANCE_HINT=LATENCY rule sees the rewritten keys."""
    config = model_config("m", tmp_path, plugin_config=plugin_config)
    assert config.compile_properties() == properties
