"""Version policies: latest (default, and N), all, specific."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from helpers import ServerProcess
from model_repo import AVAILABLE, ask_tiny, states, tiny_repo, write_config


@pytest.mark.parametrize(
    "policy, served",
    [
        (None, [3]),
        ({"latest": {"num_versions": 2}}, [2, 3]),
        ({"all": {}}, [1, 2, 3]),
        ({"specific": {"versions": [1, 3]}}, [1, 3]),
    ],
    ids=["default", "latest-2", "all", "specific"],
)
def test_policy(tmp_path: Path, policy: dict[str, object] | None, served: list[int]) -> None:
    repo = tiny_repo(tmp_path / "tiny", [1, 2, 3])
    cfg: dict[str, object] = {"name": "tiny", "base_path": "tiny"}
    if policy is not None:
        cfg["model_version_policy"] = policy
    config = write_config(tmp_path / "config.json", [cfg])
    with ServerProcess("--config_path", str(config)) as server:
        assert states(server, "tiny") == {v: AVAILABLE for v in served}
        assert ask_tiny(server, "tiny") == max(served)  # default = highest AVAILABLE
        for v in served:
            assert ask_tiny(server, "tiny", v) == v
        for v in {1, 2, 3} - set(served):
            with pytest.raises(grpc.RpcError) as err:
                ask_tiny(server, "tiny", v)
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            assert err.value.details() == "Model with requested version is not found"
    assert repo.exists()


def test_cli_policy_flag(tmp_path: Path) -> None:
    repo = tiny_repo(tmp_path / "tiny", [1, 2])
    with ServerProcess(
        "--model_name",
        "tiny",
        "--model_path",
        str(repo),
        "--model_version_policy",
        '{"specific": {"versions": [1]}}',
    ) as server:
        assert states(server, "tiny") == {1: AVAILABLE}
