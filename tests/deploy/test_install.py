"""deploy/install.sh (the container image's install step) into a fresh directory, then the demo model
served from there by a non-root numeric user, as in the image, and asked for its status."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from deploy_support import DEPLOY_DIR, NON_ROOT_UID, REPO_ROOT
from helpers import DEMO, free_port

WHEEL_ENV = "OVMS_RS_WHEEL"


def host_wheel() -> Path:
    """$OVMS_RS_WHEEL, or the wheel for this machine in <repo>/dist/ (scripts/test.sh builds it)."""
    if os.environ.get(WHEEL_ENV):
        return Path(os.environ[WHEEL_ENV])
    wheels = sorted((REPO_ROOT / "dist").glob(f"ovms_rs-*_{platform.machine()}.whl"))
    if not wheels:
        pytest.skip(f"no wheel to install: set {WHEEL_ENV} or build dist/ovms_rs-*.whl first")
    return wheels[-1]


def as_non_root() -> list[str]:
    """The command prefix that drops root to the image's numeric user (none when not root)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={NON_ROOT_UID}", f"--regid={NON_ROOT_UID}", "--clear-groups"]


@pytest.fixture(scope="module")
def prefix() -> Iterator[Path]:
    """A fresh venv made by deploy/install.sh, owned by root and read-only to the server's user."""
    wheel = host_wheel()
    probe = subprocess.run([*as_non_root(), sys.executable, "-c", "pass"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"user {NON_ROOT_UID} cannot run {sys.executable}: {probe.stderr!r}")
    # Not under pytest's tmp_path: its parent is private to root.
    root = Path(tempfile.mkdtemp(prefix="ovms_rs-install-"))
    root.chmod(0o755)
    try:
        env = {**os.environ, "PYTHON": sys.executable}
        subprocess.run(
            ["sh", str(DEPLOY_DIR / "install.sh"), str(wheel), str(root / "venv")],
            env=env,
            check=True,
        )
        yield root / "venv"
    finally:
        shutil.rmtree(root)


def wait_for_port(
    port: int, server: subprocess.Popen[bytes], log: Path, timeout: float = 120.0
) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise AssertionError(f"server exited with {server.returncode}: {log.read_text()}")
            try:
                grpc.channel_ready_future(channel).result(timeout=0.5)
                return
            except grpc.FutureTimeoutError:
                continue
    raise AssertionError(f"server did not open port {port} in {timeout} s: {log.read_text()}")


def process_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for process {pid}")


@pytest.mark.timeout(600)
def test_installed_wheel_serves_the_demo_model_as_non_root(prefix: Path, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    # HOME=/ as Kubernetes sets it for a uid with no passwd entry; the working directory is read-only.
    env = {**os.environ, "HOME": "/"}
    serve = [
        str(prefix / "bin" / "ovms_rs"),
        "serve",
        "--port",
        str(port),
        "--grpc_bind_address",
        "127.0.0.1",
    ]
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [*as_non_root(), *serve], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=prefix
        )
    try:
        wait_for_port(port, server, log)
        assert process_uid(server.pid) != 0
        client = subprocess.run(
            [
                *as_non_root(),
                str(prefix / "bin" / "python"),
                "-m",
                "ovms_rs.clients.get_model_status",
                "--grpc_address",
                "127.0.0.1",
                "--grpc_port",
                str(port),
                "--model_name",
                DEMO,
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=prefix,
            timeout=60,
        )
        assert client.returncode == 0, client.stderr
        assert "State AVAILABLE" in client.stdout
    finally:
        server.terminate()
        returncode = server.wait(timeout=60)
    assert returncode == 0, log.read_text()
