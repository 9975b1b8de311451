"""The compiled load generator (benches/loadgen/, Rust): same interface as loadgen.LoadGenerator.

One process on the client core runs every request in flight (one HTTP/2 connection each) on a
single-threaded runtime; requests are framed once and sent without per-call copies. Its CPU per request is
a fraction of grpcio's Python client's, so at concurrency 1 less of the measured latency is the client's,
and at concurrency >= 4 the client core no longer caps the throughput measured. Built with cargo on first
use (a no-op when up to date); the protocol is described in benches/loadgen/src/main.rs.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Union

from .loadgen import PREDICT, LoadGenerator
from .targets import reap

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "ovms_rs_loadgen"
BINARY = "ovms-rs-loadgen"
FLOOR_BINARY = "ovms-rs-floor"


def build(binary: str = BINARY) -> Path:
    """Builds the load generator's package (release) and returns the path of `binary`: the generator,
    or `FLOOR_BINARY` (the transport floor server)."""
    cargo = shutil.which("cargo")
    if cargo is None:
        raise RuntimeError(
            "cargo not found: the compiled load generator needs Rust (or run with --client grpcio)"
        )
    # Cargo names the binary it built (wherever a cargo config or CARGO_TARGET_DIR puts it).
    built = subprocess.run(
        [
            cargo,
            "build",
            "--release",
            "--quiet",
            "-p",
            PACKAGE,
            "--message-format=json-render-diagnostics",
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in built.stdout.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("executable"):
            if message["target"]["name"] == binary:
                return Path(message["executable"])
    raise RuntimeError(f"cargo built {PACKAGE} but did not name the {binary} executable")


class NativeLoadGenerator:
    """One generator process (pinned to `cpu`), started once and reused for every point."""

    def __init__(self, workers: int, cpu: int | None) -> None:
        del workers  # one process serves any concurrency
        binary = build()
        self._files = tempfile.TemporaryDirectory(prefix="ovms_rs_loadgen_")
        self._proc = subprocess.Popen(
            [str(binary)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None,
        )

    def _send(self, line: str) -> None:
        stdin: IO[str] | None = self._proc.stdin
        assert stdin is not None
        stdin.write(line + "\n")
        stdin.flush()

    def _reply(self) -> str:
        stdout: IO[str] | None = self._proc.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"load generator exited (status {self._proc.poll()})")
        if line.startswith("error "):
            raise RuntimeError(f"load generator: {line[6:].strip()}")
        return line

    def load(self, key: str, requests: list[bytes]) -> None:
        """Hands the generator the serialized requests of a workload, once (through a file)."""
        path = Path(self._files.name) / f"{key}.bin"
        with path.open("wb") as f:
            for request in requests:
                f.write(struct.pack("<I", len(request)))
                f.write(request)
        self._send(f"load {key} {path}")
        self._reply()

    def run(
        self,
        key: str,
        address: str,
        concurrency: int,
        count: int,
        seconds: float,
        warmup: int,
        on_start: Callable[[], object] | None = None,
    ) -> dict[str, Any]:
        """One closed-loop point; the same result as loadgen.LoadGenerator.run."""
        self._send(f"run {key} {address} {PREDICT} {concurrency} {count} {seconds} {warmup}")
        warm_errors = int(self._reply().split()[1])
        if on_start is not None:
            on_start()
        self._send("go")
        result: dict[str, Any] = json.loads(self._reply())
        result["errors"] += warm_errors
        return result

    def close(self) -> None:
        try:
            self._send("stop")
        except (OSError, ValueError):
            pass
        reap(self._proc, timeout=10)
        self._files.cleanup()


# Evaluated at run time, where Python 3.9 has no `X | Y`.
AnyLoadGenerator = Union[LoadGenerator, NativeLoadGenerator]
# `--client` of benches.load and benches.profile.
CLIENTS: dict[str, type[AnyLoadGenerator]] = {
    "native": NativeLoadGenerator,
    "grpcio": LoadGenerator,
}
