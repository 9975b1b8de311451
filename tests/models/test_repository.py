"""The repository on disk: model files are only read from inside the model's base path."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from helpers import ServerProcess, status_request
from model_repo import AVAILABLE, ask_tiny, states, tiny_model, tiny_repo


def test_symlinks_out_of_the_base_path_are_refused(tmp_path: Path) -> None:
    outside = tiny_model(tmp_path / "outside" / "1", 7.0)
    repo = tiny_repo(tmp_path / "tiny", [1])
    (repo / "2").mkdir()
    (repo / "2" / "model.xml").symlink_to(outside)
    (repo / "2" / "model.bin").symlink_to(outside.with_suffix(".bin"))
    (repo / "3").symlink_to(outside.parent, target_is_directory=True)
    with ServerProcess(
        "--model_name",
        "tiny",
        "--model_path",
        str(repo),
        "--model_version_policy",
        '{"all": {}}',
        log_path=tmp_path / "server.log",
    ) as server:
        got = states(server, "tiny")
        assert got[1] == AVAILABLE
        assert 3 not in got  # a version directory leading outside is not a version
        (status,) = (
            server.model_stub()
            .GetModelStatus(status_request("tiny", 2), timeout=10)
            .model_version_status
        )
        assert status.status.error_code == 2
        assert (
            status.status.error_message == "UNKNOWN"
        )  # the reason is in the log, not in the reply
        assert "outside the model's base path" in server.log()
        with pytest.raises(grpc.RpcError) as err:
            ask_tiny(server, "tiny", 2)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert ask_tiny(server, "tiny") == 1
