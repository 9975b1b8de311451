"""Fixtures of the reliability suites (the demo servers come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import ServerProcess
from reliability_support import Photo, TlsFiles, make_tls_files, photos, slow_server


@pytest.fixture(scope="session")
def demo_photos() -> tuple[Photo, ...]:
    """The ten labeled demo photos: JPEG bytes, NCHW/NHWC float arrays, ImageNet class."""
    return photos()


@pytest.fixture
def server_log(tmp_path: Path) -> Path:
    """Where a server started by one test writes its log (shown by ServerProcess on start failures)."""
    return tmp_path / "server.log"


@pytest.fixture
def slow_demo_server(server_log: Path) -> Iterator[ServerProcess]:
    """The demo model as `slow`: batch 16, one infer request (see reliability_support.slow_server)."""
    with slow_server(server_log) as server:
        yield server


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA, a server certificate (localhost, 127.0.0.1) and client certificates, as PEM files."""
    pytest.importorskip(
        "cryptography", reason="TLS tests generate their certificates with `cryptography`"
    )
    return make_tls_files(Path(tmp_path_factory.mktemp("tls")))
