"""Session fixtures: real servers on 127.0.0.1 (the demo model, plain and with an NHWC view)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import DEMO_MODEL_PATH, ServerProcess

# gRPC clients in the test process must reach 127.0.0.1 directly.
for _var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "grpc_proxy"):
    os.environ.pop(_var, None)


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`python -m ovms_rs serve` with no model flags: the built-in demo model."""
    log = Path(tmp_path_factory.mktemp("demo")) / "server.log"
    with ServerProcess(log_path=log) as server:
        yield server


@pytest.fixture(scope="session")
def nhwc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The demo model served with --layout NHWC:NCHW (accepts NHWC tensors and JPEG/PNG bytes)."""
    log = Path(tmp_path_factory.mktemp("nhwc")) / "server.log"
    args = [
        "--model_name",
        "efficientnet-lite0",
        "--model_path",
        str(DEMO_MODEL_PATH),
        "--layout",
        "NHWC:NCHW",
    ]
    with ServerProcess(*args, log_path=log) as server:
        yield server


# Suites by folder, as markers: `pytest -m "not slow"` (make test-fast) leaves out the ones that take
# minutes or install things; CI (scripts/test.sh) runs everything.
_SLOW_FOLDERS = {"reliability": "reliability", "deploy": "slow"}
_SLOW_FILES = {"test_third_party_clients.py", "test_bench_smoke.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        folder = path.parent.name
        if folder in _SLOW_FOLDERS:
            item.add_marker(_SLOW_FOLDERS[folder])
            item.add_marker("slow")
        if path.name in _SLOW_FILES:
            item.add_marker("slow")
