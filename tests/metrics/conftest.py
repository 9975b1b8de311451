"""Metrics fixtures: real servers with --rest_port and metrics on, and tiny models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import ServerProcess
from metrics_support import IMAGE_SHAPE, write_config
from model_repo import tiny_repo


@pytest.fixture(scope="session")
def metrics_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny ([1,4] f32, version 1) and img (IMAGE_SHAPE, NHWC: binary inputs)."""
    root = Path(tmp_path_factory.mktemp("metrics"))
    tiny_repo(root / "tiny", [1])
    tiny_repo(root / "img", [1], IMAGE_SHAPE)
    return root


@pytest.fixture(scope="module")
def metrics_server(
    metrics_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """Both models from a config.json whose monitoring section enables the default families; the
    native gRPC transport. Module-scoped: each test module starts from zero."""
    config = write_config(
        Path(tmp_path_factory.mktemp("metrics_config")) / "config.json",
        [
            {"name": "tiny", "base_path": str(metrics_root / "tiny")},
            {"name": "img", "base_path": str(metrics_root / "img"), "layout": "NHWC"},
        ],
        monitoring={"metrics": {"enable": True}},
    )
    log = config.parent / "server.log"
    with ServerProcess("--config_path", str(config), log_path=log, rest=True) as server:
        yield server
