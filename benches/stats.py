"""Process CPU time and RSS from /proc, and the summary of one measured point."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a whole process (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), for the figures' "which CPU"."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    """requests/s and latency percentiles (ms) from a point's raw latencies and span."""
    lat = np.asarray(raw["latencies_ns"], dtype=np.float64) / 1e6
    wall = max(raw["end"] - raw["start"], 1e-9)
    n = int(lat.size)
    out: dict[str, Any] = {
        "requests": n,
        "errors": int(raw["errors"]),
        "first_error": raw.get("first_error"),
        "seconds": wall,
        "rps": n / wall,
        "target_cpu_ms_per_req": 1e3 * raw["target_cpu_s"] / n if n else None,
        "client_cpu_util": raw["client_cpu_s"] / wall,
    }
    for q in (50, 90, 99):
        out[f"p{q}_ms"] = float(np.percentile(lat, q)) if n else None
    out["mean_ms"] = float(lat.mean()) if n else None
    return out
