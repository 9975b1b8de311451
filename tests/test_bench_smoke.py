"""The benchmarks in smoke mode: the load benchmark (benches/load.py) runs every target and workload end to
end, with zero errors, and writes its report; the micro-benchmarks (benches/bench_*.py) run once with
timing disabled, which still checks that ours and each baseline agree. No speed claims: timings live in
the benchmarks, not in tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(
    not (ROOT / "benches" / "load.py").exists(), reason="benches/ not in this checkout"
)
def test_load_benchmark_smoke(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benches.load", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["workloads"]) == set("abcd")
    for key, workload in results["workloads"].items():
        assert workload["points"], f"({key}) measured nothing"
        for concurrency, points in workload["points"].items():
            assert "in-process" in points and "plain-python" in points
            if (
                key != "b"
            ):  # (b) needs the Rust JPEG decoder; without it ovms_rs is skipped with a note
                assert "ovms_rs" in points, workload["notes"]
            for target, point in points.items():
                where = f"({key}) {target} at concurrency {concurrency}: {point['first_error']}"
                assert point["errors"] == 0, where
                assert point["requests"] > 0, where
    assert results["workloads"]["c"]["memory"]["errors"] == 0
    report = (tmp_path / "report.md").read_text()
    assert "## Targets" in report and "## (d)" in report


@pytest.mark.skipif(
    not (ROOT / "benches" / "compare.py").exists(), reason="benches/ not in this checkout"
)
def test_micro_benchmarks_smoke() -> None:
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "benches").glob("bench_*.py"))
    assert len(files) == 4, files
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *files,
            "-q",
            "-p",
            "no:cacheprovider",
            "--benchmark-disable",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-1000:]
