"""Running the example clients as a user does, and checking their output against OVMS's formats."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from helpers import env_without_proxy

CLIENT_TIMEOUT_S = 180
# A sitecustomize that makes `import cv2` and `import PIL` fail: the base install, without either.
WITHOUT_IMAGE_LIBRARIES = Path(__file__).parent / "without_image_libraries"
NUMBER = r"(-?\d+(?:\.\d+)?|inf)"


def run_module(
    module: str, *args: str, cwd: Path, prelude: str = "", image_libraries: bool = True
) -> subprocess.CompletedProcess[str]:
    """`python -m ovms_rs.clients.<module> args...` in cwd. A prelude (Python code) runs first,
    e.g. to hide an installed package; image_libraries=False hides OpenCV and Pillow."""
    if prelude:
        code = (
            f"{prelude}\nimport sys\nfrom ovms_rs.clients.{module} import main\n"
            "sys.exit(main(sys.argv[1:]))"
        )
        command = [sys.executable, "-c", code, *args]
    else:
        command = [sys.executable, "-m", f"ovms_rs.clients.{module}", *args]
    env = env_without_proxy()
    if not image_libraries:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(WITHOUT_IMAGE_LIBRARIES), env.get("PYTHONPATH")) if p
        )
    return subprocess.run(
        command,
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
    )


def template(line: str) -> re.Pattern[str]:
    """A whole-line pattern from an expected line in which `#` stands for any number."""
    return re.compile(NUMBER.join(re.escape(part) for part in line.split("#")))


def match_lines(output: str, expected: Sequence[str]) -> list[list[float]]:
    """Checks output line by line against templates; returns the numbers found on each line."""
    lines = output.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    assert len(lines) == len(expected), f"{len(lines)} lines, expected {len(expected)}:\n{output}"
    numbers = []
    for n, (line, want) in enumerate(zip(lines, expected), start=1):
        m = template(want).fullmatch(line)
        assert m, f"line {n}: {line!r} does not match {want!r}"
        numbers.append([float(g) for g in m.groups()])
    return numbers


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """A failed client: non-zero status, exactly one `Error: ...` line on stderr, no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().split("\n")
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
