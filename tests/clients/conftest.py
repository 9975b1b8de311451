"""Fixtures for the example clients: the walk-through's data folder and the servers they talk to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from client_support import run_module
from helpers import DEMO, DEMO_MODEL_PATH, ServerProcess


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `make_demo_data --output_dir DIR` writes: photos, input_images.txt, imgs.npy (NCHW), lbs.npy."""
    out = Path(tmp_path_factory.mktemp("walkthrough"))
    result = run_module("make_demo_data", "--output_dir", str(out), cwd=out)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def demo_data_nhwc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same data with imgs.npy in NHWC ([10,224,224,3])."""
    out = Path(tmp_path_factory.mktemp("walkthrough_nhwc"))
    result = run_module("make_demo_data", "--output_dir", str(out), "--layout", "NHWC", cwd=out)
    assert result.returncode == 0, result.stderr
    return out


def _serve(
    tmp_path_factory: pytest.TempPathFactory, tag: str, *args: str
) -> Iterator[ServerProcess]:
    log = Path(tmp_path_factory.mktemp(tag)) / "server.log"
    with ServerProcess(
        "--model_name", DEMO, "--model_path", str(DEMO_MODEL_PATH), *args, log_path=log
    ) as server:
        yield server


@pytest.fixture(scope="session")
def batch2_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The demo model reshaped to batch 2 (NCHW)."""
    yield from _serve(tmp_path_factory, "batch2", "--batch_size", "2")


@pytest.fixture(scope="session")
def batch5_nhwc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The demo model reshaped to batch 5, accepting NHWC ([5,224,224,3])."""
    yield from _serve(tmp_path_factory, "batch5_nhwc", "--batch_size", "5", "--layout", "NHWC:NCHW")
