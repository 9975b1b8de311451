"""config.json: validation, several models, changes applied while serving, HandleReloadConfigRequest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from helpers import ServerProcess
from model_repo import AVAILABLE, END, ask_tiny, states, tiny_repo, wait_for, write_config
from ovms_rs._proto.tensorflow_serving.apis import model_management_pb2


def _start_fails(config: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "ovms_rs", "serve", "--port", "1", "--config_path", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize(
    "doc, message",
    [
        (
            {"model_config_list": [{"config": {"name": "m", "base_path": "m", "colour": "red"}}]},
            "unknown key 'colour'",
        ),
        (
            {"model_config_list": [{"config": {"name": "m", "base_path": "m", "nireq": "4"}}]},
            "wrong type for key 'nireq'",
        ),
        (
            {
                "model_config_list": [
                    {"config": {"name": "m", "base_path": "m", "batch_size": True}}
                ]
            },
            "wrong type for key 'batch_size'",
        ),
        ({"model_config_list": [{"config": {"base_path": "m"}}]}, "missing required key 'name'"),
        ({"model_config_list": [], "extra": 1}, "unknown key 'extra'"),
        ({"model_config_list": {"config": {}}}, "wrong type for key 'model_config_list'"),
        (
            {
                "model_config_list": [
                    {
                        "config": {
                            "name": "m",
                            "base_path": "m",
                            "model_version_policy": {"newest": {}},
                        }
                    }
                ]
            },
            "Invalid model_version_policy",
        ),
    ],
    ids=[
        "unknown-key",
        "nireq-type",
        "batch-type",
        "no-name",
        "top-level-key",
        "list-type",
        "policy",
    ],
)
def test_invalid_config_is_rejected_naming_the_key(
    tmp_path: Path, doc: object, message: str
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    assert message in _start_fails(path)


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{nope")
    assert "not valid JSON" in _start_fails(path)


def test_several_models_and_relative_base_paths(tmp_path: Path) -> None:
    tiny_repo(tmp_path / "a", [1])
    tiny_repo(tmp_path / "b", [2])
    config = write_config(
        tmp_path / "config.json", [{"name": "a", "base_path": "a"}, {"name": "b", "base_path": "b"}]
    )
    with ServerProcess("--config_path", str(config)) as server:
        assert ask_tiny(server, "a") == 1
        assert ask_tiny(server, "b") == 2


def test_one_bad_model_is_skipped(tmp_path: Path) -> None:
    tiny_repo(tmp_path / "a", [1])
    config = write_config(
        tmp_path / "config.json",
        [{"name": "a", "base_path": "a"}, {"name": "b", "base_path": "nowhere"}],
    )
    with ServerProcess("--config_path", str(config)) as server:
        assert ask_tiny(server, "a") == 1
        with pytest.raises(grpc.RpcError) as err:
            ask_tiny(server, "b")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_config_changes_are_applied_while_serving(tmp_path: Path) -> None:
    tiny_repo(tmp_path / "a", [1])
    tiny_repo(tmp_path / "b", [2])
    tiny_repo(tmp_path / "c", [1, 2, 3])
    config = write_config(tmp_path / "config.json", [{"name": "a", "base_path": "a"}])
    with ServerProcess(
        "--config_path", str(config), "--file_system_poll_wait_seconds", "0.5"
    ) as server:
        assert ask_tiny(server, "a") == 1
        # add b, remove a
        write_config(config, [{"name": "b", "base_path": "b"}, {"name": "c", "base_path": "c"}])
        wait_for(
            lambda: states(server, "b") == {2: AVAILABLE} and states(server, "a") == {1: END},
            what="b in, a out",
        )
        assert ask_tiny(server, "b") == 2
        with pytest.raises(grpc.RpcError) as err:
            ask_tiny(server, "a")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        # reconfigure c: serve all of its versions
        write_config(
            config,
            [
                {"name": "b", "base_path": "b"},
                {"name": "c", "base_path": "c", "model_version_policy": {"all": {}}},
            ],
        )
        wait_for(
            lambda: states(server, "c") == {1: AVAILABLE, 2: AVAILABLE, 3: AVAILABLE},
            what="c reconfigured",
        )
        assert ask_tiny(server, "c", 1) == 1
        # an invalid file is ignored as a whole: everything keeps serving
        config.write_text('{"model_config_list": [{"config": {"name": "b", "bogus": 1}}]}')
        reload = model_management_pb2.ReloadConfigRequest()
        with pytest.raises(grpc.RpcError) as rerr:
            server.model_stub().HandleReloadConfigRequest(reload, timeout=30)
        assert rerr.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "bogus" in rerr.value.details()
        assert ask_tiny(server, "b") == 2 and ask_tiny(server, "c") == 3


def test_reload_config_request_without_polling(tmp_path: Path) -> None:
    tiny_repo(tmp_path / "a", [1])
    tiny_repo(tmp_path / "b", [2])
    config = write_config(tmp_path / "config.json", [{"name": "a", "base_path": "a"}])
    with ServerProcess(
        "--config_path", str(config), "--file_system_poll_wait_seconds", "0"
    ) as server:
        write_config(config, [{"name": "a", "base_path": "a"}, {"name": "b", "base_path": "b"}])
        with pytest.raises(grpc.RpcError):
            ask_tiny(server, "b")
        server.model_stub().HandleReloadConfigRequest(
            model_management_pb2.ReloadConfigRequest(), timeout=60
        )
        assert states(server, "b") == {2: AVAILABLE}
        assert ask_tiny(server, "b") == 2
