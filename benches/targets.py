"""The three targets as child processes pinned to the server core: ovms_rs, the plain-Python server and the
in-process OpenVINO loop."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import grpc

from .stats import cpu_seconds, rss_bytes


def exit_on_sigterm() -> None:
    """SIGTERM (a CI timeout, `kill`) exits through the `finally` blocks that stop the child servers, as
    Ctrl-C does, instead of leaving them running."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reap(proc: subprocess.Popen[Any], timeout: float) -> None:
    """Waits up to `timeout` seconds for a child asked to exit, then kills it."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    if cpu is None:
        return cmd
    taskset = shutil.which("taskset")
    if taskset is None:
        raise RuntimeError("taskset not found: install util-linux, or run with --no-pin")
    return [taskset, "-c", str(cpu), *cmd]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "grpc_proxy"):
        env.pop(var, None)
    # `benches` importable from the children whatever their working directory.
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class Server:
    """A gRPC server (`module` is `ovms_rs` or `benches.plain_server`; or `program`, an executable's
    command line) on 127.0.0.1 and a free port."""

    def __init__(
        self,
        name: str,
        module: list[str],
        args: list[str],
        cpu: int | None,
        log: Path,
        program: list[str] | None = None,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log_path = log
        cmd = [
            *(program or [sys.executable, "-m", *module]),
            "--port",
            str(self.port),
            "--grpc_bind_address",
            "127.0.0.1",
            *args,
        ]
        self.cmd = pinned(cmd, cpu)
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                self.cmd, stdout=out, stderr=subprocess.STDOUT, env=child_env()
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 180.0) -> None:
        channel = grpc.insecure_channel(self.address)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.proc.returncode}:\n{self.log()}"
                    )
                try:
                    grpc.channel_ready_future(channel).result(timeout=0.5)
                    return
                except grpc.FutureTimeoutError:
                    continue
            raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.log()}")
        finally:
            channel.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            reap(self.proc, timeout=30)


class InProcessTarget:
    """benches.inprocess in a child process: one JSON line per command."""

    name = "in-process"

    def __init__(self, cpu: int | None, log: Path) -> None:
        self.cmd = pinned([sys.executable, "-m", "benches.inprocess"], cpu)
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            self.cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=child_env(),
            text=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ask(self, **cmd: Any) -> dict[str, Any]:
        stdin: IO[str] = self.proc.stdin  # type: ignore[assignment]
        stdout: IO[str] = self.proc.stdout  # type: ignore[assignment]
        stdin.write(json.dumps(cmd) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"in-process target exited with {self.proc.wait()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.ask(cmd="exit")
            except (RuntimeError, OSError, ValueError):
                pass
            reap(self.proc, timeout=10)
        self._log.close()
