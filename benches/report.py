"""The load benchmark's report: machine description, markdown tables with ratios, targets, and the plot."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Union

from .stats import cpu_model

CLIENT_TEXT = {
    "native": "compiled (benches/loadgen/: Rust, h2 on one thread, one connection per request in flight)",
    "grpcio": "grpcio's Python client (one process and one channel per request in flight)",
}
TARGETS = (
    "in-process",
    "in-process+fresh",
    "ovms_rs",
    "ovms_rs@before",
    "plain-python",
    "ovms_rs-grpcio",
    "grpcio-floor",
    "transport-floor",
    "floor+copy",
    "floor+copy+hand-off",
    "floor+python",
    "floor+openvino",
    "floor+openvino+copy-in",
)


def machine() -> dict[str, Any]:
    cpu = cpu_model()
    versions = {}
    for module in ("openvino", "grpc", "numpy", "google.protobuf", "cv2"):
        try:
            versions[module] = str(__import__(module, fromlist=["__version__"]).__version__)
        except Exception:  # optional; absent modules are just not listed
            pass
    try:
        root = Path(__file__).resolve().parent.parent
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        commit = rev + (" (with uncommitted changes)" if dirty else "")
    except OSError:
        commit = "unknown"
    try:
        import hashlib

        from ovms_rs import _native

        native = hashlib.sha256(Path(str(_native.__file__)).read_bytes()).hexdigest()[:12]
    except (ImportError, OSError):
        native = "unknown"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "commit": commit,
        "native_sha256": native,
    }


# One target's summary at one concurrency, or None where it was not run.
Point = Union[dict[str, Any], None]


def _point(results: dict[str, Any], key: str, c: int, target: str) -> Point:
    point = results["workloads"].get(key, {}).get("points", {}).get(str(c), {}).get(target)
    return point if point and point["requests"] else None


class _Targets(list[dict[str, Any]]):
    """Rows of a targets table: each goal with its figure, baseline, ratio and verdict."""

    def add(
        self,
        name: str,
        figure: str,
        baseline: str,
        ratio: float | None,
        goal: str,
        met: bool | None,
    ) -> None:
        self.append(
            {
                "target": name,
                "figure": figure,
                "baseline": baseline,
                "ratio": ratio,
                "goal": goal,
                "met": met,
            }
        )


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with its figure, baseline, ratio and verdict (None when not measured)."""
    rows = _Targets()

    ours, ref = _point(results, "a", 4, "ovms_rs"), _point(results, "a", 4, "in-process")
    if ours and ref:
        r = ours["rps"] / ref["rps"]
        rows.add(
            "(a) throughput at concurrency 4",
            f"{ours['rps']:.1f} req/s",
            f"in-process {ref['rps']:.1f} req/s",
            r,
            ">= 0.95",
            r >= 0.95,
        )
        if ours["target_cpu_ms_per_req"] and ref["target_cpu_ms_per_req"]:
            ours_cap, ref_cap = (
                1e3 / ours["target_cpu_ms_per_req"],
                1e3 / ref["target_cpu_ms_per_req"],
            )
            rows.add(
                "(a) same, CPU-normalised: 1 / (target CPU per request), immune to other tenants on the core",
                f"{ours_cap:.1f} req/s",
                f"in-process {ref_cap:.1f} req/s",
                ours_cap / ref_cap,
                ">= 0.95",
                ours_cap / ref_cap >= 0.95,
            )
    ours, ref = _point(results, "a", 1, "ovms_rs"), _point(results, "a", 1, "in-process")
    if ours and ref:
        d = ours["p50_ms"] - ref["p50_ms"]
        rows.add(
            "(a) p50 latency at concurrency 1",
            f"{ours['p50_ms']:.2f} ms (+{d:.2f} ms)",
            f"in-process {ref['p50_ms']:.2f} ms",
            ours["p50_ms"] / ref["p50_ms"],
            "within +1 ms",
            d <= 1.0,
        )
    ours, plain, ref = (
        _point(results, "c", 1, t) for t in ("ovms_rs", "plain-python", "in-process")
    )

    def add_overhead(label: str, o: float, b: float) -> None:
        """ovms_rs's overhead `o` against plain-python's `b` (both minus in-process), goal <= 1/3."""
        ratio = o / b if b > 0 else None
        ok = ratio is not None and ratio <= 1 / 3
        rows.add(label, f"{o:.3f} ms", f"plain-python {b:.3f} ms", ratio, "<= 0.33", ok)

    if ours and plain and ref:
        add_overhead(
            "(c) server overhead per request (p50 - in-process p50, concurrency 1)",
            ours["p50_ms"] - ref["p50_ms"],
            plain["p50_ms"] - ref["p50_ms"],
        )
    if ours and plain and ref and ours["target_cpu_ms_per_req"] and plain["target_cpu_ms_per_req"]:
        add_overhead(
            "(c) same, as server CPU per request (target CPU ms/req - in-process's; excludes the client)",
            ours["target_cpu_ms_per_req"] - ref["target_cpu_ms_per_req"],
            plain["target_cpu_ms_per_req"] - ref["target_cpu_ms_per_req"],
        )
    levels = results["meta"]["concurrency"]
    for c in levels:
        ours, plain = _point(results, "c", c, "ovms_rs"), _point(results, "c", c, "plain-python")
        if ours and plain:
            r = ours["rps"] / plain["rps"]
            rows.add(
                f"(c) throughput at concurrency {c}",
                f"{ours['rps']:.0f} req/s",
                f"plain-python {plain['rps']:.0f} req/s",
                r,
                ">= 1.5",
                r >= 1.5,
            )
    rows.extend(overhead_targets(results))
    decode = results["workloads"].get("b", {}).get("decode")
    if decode:
        ours, cv = decode.get("ovms_rs", {}), decode.get("opencv", {})
        if "median_us" in ours and "median_us" in cv:
            r = ours["median_us"] / cv["median_us"]
            rows.add(
                "(b) decode + resize + NHWC->NCHW + f32 per image (median)",
                f"{ours['median_us']:.0f} us",
                f"OpenCV {cv['median_us']:.0f} us",
                r,
                "< 1",
                r < 1,
            )
        elif "error" in ours:
            rows.add(
                "(b) decode + resize + NHWC->NCHW + f32 per image",
                ours["error"],
                "OpenCV " + (f"{cv['median_us']:.0f} us" if "median_us" in cv else "?"),
                None,
                "< 1",
                None,
            )
    memory = results["workloads"].get("c", {}).get("memory")
    if memory and memory["growth"] is not None:
        g = memory["growth"]
        rows.add(
            f"RSS after {memory['total']} requests vs after {memory['first']} (ovms_rs, (c))",
            f"{memory['rss_total'] / 2**20:.1f} MiB",
            f"{memory['rss_first'] / 2**20:.1f} MiB",
            1 + g,
            "<= 1.05",
            g <= 0.05,
        )
    return rows


def overhead_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-request overhead goals (issue 20) at every concurrency measured: (a) and (b) against the
    in-process limit, (c) against the transport floor and as server CPU above in-process's."""
    rows = _Targets()
    levels = results["meta"]["concurrency"]

    def rps_vs(label: str, ours: Point, ref: Point, ref_name: str, goal: float, spec: str) -> None:
        """A target's req/s against a baseline's, goal >= `goal`; `spec` formats the req/s."""
        if ours and ref:
            r = ours["rps"] / ref["rps"]
            rows.add(
                label,
                f"{ours['rps']:{spec}} req/s",
                f"{ref_name} {ref['rps']:{spec}} req/s",
                r,
                f">= {goal}",
                r >= goal,
            )

    def cpu_above(label: str, ours: Point, ref: Point, ref_name: str) -> None:
        """A target's CPU per request above a baseline's, goal <= 0.20 ms."""
        if ours and ref and ours["target_cpu_ms_per_req"] and ref["target_cpu_ms_per_req"]:
            above = ours["target_cpu_ms_per_req"] - ref["target_cpu_ms_per_req"]
            rows.add(
                label,
                f"{above:.3f} ms",
                f"{ref_name} {ref['target_cpu_ms_per_req']:.3f} ms",
                ours["target_cpu_ms_per_req"] / ref["target_cpu_ms_per_req"],
                "<= 0.20 ms",
                above <= 0.20,
            )

    def point(key: str, c: int, target: str) -> Point:
        return _point(results, key, c, target)

    for key, goal in (("a", 0.95), ("b", 0.90)):
        for c in levels:
            rps_vs(
                f"({key}) req/s vs in-process at concurrency {c}",
                point(key, c, "ovms_rs"),
                point(key, c, "in-process"),
                "in-process",
                goal,
                ".1f",
            )
    for key in "abc":
        for c in levels:
            ours, before = point(key, c, "ovms_rs"), point(key, c, "ovms_rs@before")
            if (
                ours
                and before
                and ours["target_cpu_ms_per_req"]
                and before["target_cpu_ms_per_req"]
            ):
                rows.add(
                    f"({key}) server CPU per request, this build vs ovms_rs@before, concurrency {c}",
                    f"{ours['target_cpu_ms_per_req']:.3f} ms",
                    f"before {before['target_cpu_ms_per_req']:.3f} ms",
                    ours["target_cpu_ms_per_req"] / before["target_cpu_ms_per_req"],
                    "< 1 (informational)",
                    ours["target_cpu_ms_per_req"] < before["target_cpu_ms_per_req"],
                )
    for c in levels:
        ours, floor = point("c", c, "ovms_rs"), point("c", c, "transport-floor")
        rps_vs(
            f"(c) req/s vs the transport floor at concurrency {c}",
            ours,
            floor,
            "transport-floor",
            0.8,
            ".0f",
        )
        cpu_above(
            f"(c) server CPU per request above in-process's at concurrency {c}",
            ours,
            point("c", c, "in-process"),
            "in-process",
        )
        cpu_above(
            f"(c) same, above in-process on a fresh input at concurrency {c} (informational)",
            ours,
            point("c", c, "in-process+fresh"),
            "in-process+fresh",
        )
    for c in levels:
        rps_vs(
            f"(a) floor+openvino req/s vs in-process at concurrency {c} (informational)",
            point("a", c, "floor+openvino"),
            point("a", c, "in-process"),
            "in-process",
            0.95,
            ".1f",
        )
    for c in levels:
        ceiling = point("c", c, "floor+openvino")
        rps_vs(
            f"(c) floor+openvino req/s vs the transport floor at concurrency {c} (informational)",
            ceiling,
            point("c", c, "transport-floor"),
            "transport-floor",
            0.8,
            ".0f",
        )
        cpu_above(
            f"(c) floor+openvino CPU per request above in-process's at concurrency {c} "
            "(informational)",
            ceiling,
            point("c", c, "in-process"),
            "in-process",
        )
    return rows


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        "# Load benchmark",
        "",
        f"- Command: `{meta['command']}` ({meta['mode']} mode, {meta['wall_s']:.0f} s)",
        f"- Machine: {meta['nproc']} CPUs ({meta['cpu']}), Linux {meta['kernel']}, Python {meta['python']}, "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        f"- Commit: {meta['commit']}; `ovms_rs._native` sha256 {meta.get('native_sha256', '?')}",
        f"- Load average (1/5/15 min) at start {'/'.join(f'{x:.2f}' for x in meta['loadavg_start'])}, "
        f"at end {'/'.join(f'{x:.2f}' for x in meta['loadavg_end'])}",
        f"- Pinning: targets (ovms_rs server, plain-python server, in-process loop) on CPU {meta['server_cpu']}; "
        f"load generator (and this orchestrator) on CPU {meta['client_cpu']}",
        f"- Load generator: {CLIENT_TEXT.get(meta.get('client', 'grpcio'), meta.get('client'))}",
        "",
        "## Targets",
        "",
        "| target | ovms_rs | baseline | ratio | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in targets(results):
        met = {True: "yes", False: "**no**", None: "not measured"}[row["met"]]
        lines.append(
            f"| {row['target']} | {row['figure']} | {row['baseline']} | {_fmt(row['ratio'], '.3f')} | "
            f"{row['goal']} | {met} |"
        )
    for key, w in results["workloads"].items():
        lines += [
            "",
            f"## ({key}) {w['title']}",
            "",
            f"{w['count']} requests per point (or {w['seconds']:.0f} s, whichever first); OpenVINO: "
            + ", ".join(f"{k} {v}" for k, v in w.get("openvino", {}).items()),
            "",
        ]
        lines += [f"- {note}" for note in w["notes"]] + ([""] if w["notes"] else [])
        lines += [
            "| concurrency | target | req/s | p50 ms | p90 ms | p99 ms | p50 - in-process | target CPU ms/req "
            "| req/s vs in-process | same, CPU-normalised | req/s vs plain-python | client CPU | errors |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for c, points in w["points"].items():
            ref, plain = points.get("in-process"), points.get("plain-python")
            for target in TARGETS:
                p = points.get(target)
                if not p or not p["requests"]:
                    continue
                over = p["p50_ms"] - ref["p50_ms"] if ref and ref["requests"] else None
                vs_ref = p["rps"] / ref["rps"] if ref and ref["requests"] else None
                vs_plain = p["rps"] / plain["rps"] if plain and plain["requests"] else None
                cpu, ref_cpu = (
                    p["target_cpu_ms_per_req"],
                    ref["target_cpu_ms_per_req"] if ref else None,
                )
                vs_ref_cpu = ref_cpu / cpu if cpu and ref_cpu else None
                lines.append(
                    f"| {c} | {target} | {p['rps']:.1f} | {_fmt(p['p50_ms'])} | {_fmt(p['p90_ms'])} | "
                    f"{_fmt(p['p99_ms'])} | {_fmt(over, '+.3f')} | {_fmt(p['target_cpu_ms_per_req'], '.3f')} | "
                    f"{_fmt(vs_ref, '.3f')} | {_fmt(vs_ref_cpu, '.3f')} | {_fmt(vs_plain, '.3f')} | "
                    f"{'-' if target.startswith('in-process') else format(p['client_cpu_util'], '.0%')} | {p['errors']} |"
                )
        decode = w.get("decode")
        if decode:
            lines += [
                "",
                f"Per-image decode + resize to 224x224 + NHWC->NCHW + float32, {decode['images']} demo "
                "photos, in-process on the server core:",
                "",
            ]
            for name in ("ovms_rs", "opencv"):
                d = decode.get(name, {})
                lines.append(
                    f"- {name}: "
                    + (
                        f"median {d['median_us']:.0f} us, mean {d['mean_us']:.0f} us "
                        f"({d['samples']} samples)"
                        if "median_us" in d
                        else d.get("error", "?")
                    )
                )
        memory = w.get("memory")
        if memory:
            lines += [
                "",
                f"Memory (ovms_rs): RSS {memory['rss_first'] / 2**20:.1f} MiB after {memory['first']} "
                f"requests, {memory['rss_total'] / 2**20:.1f} MiB after {memory['total']} "
                f"({_fmt(100 * memory['growth'] if memory['growth'] is not None else None, '+.2f')}%), "
                f"{memory['errors']} errors.",
            ]
    lines += [
        "",
        "grpcio-floor ((c) only, informational): a grpcio server whose Predict returns a canned reply "
        "without reading the request: what any server on grpcio's synchronous Python server pays per request.",
        "ovms_rs-grpcio ((c) only, informational): ovms_rs with `--grpc_transport grpcio` (grpcio's Python "
        "server instead of the Rust HTTP/2 transport): what the transport buys.",
        "transport-floor ((c) only): tonic's HTTP/2 server with the server's transport settings, reading every "
        "request to its end and answering a canned reply (`benches/loadgen/src/floor.rs`): what no server on "
        "this stack can beat.",
        "floor+openvino ((a) and (c), with --floor-steps, informational): that floor doing a Python-free "
        "Predict (`ovms-rs-floor --infer`: parse with ovms_rs_core, infer through OpenVINO's C API on a "
        "blocking-pool thread, answer the model's output): the ceiling of a Rust serving path. "
        "floor+openvino+copy-in ((c)): the same, the input copied into the infer request's own tensor "
        "instead of wrapped.",
        "",
        "CPU-normalised: in-process CPU per request / this target's, i.e. the throughput ratio if each had "
        "the core to itself (the wall-clock ratio also depends on who else ran on that core during the "
        "point). p50 - in-process: latency the server adds (network, gRPC, parsing, copies, response). "
        "Target CPU ms/req: CPU time of the target process (all threads) per request. Client CPU: the load "
        "generator's CPU use on its own core (100% = one core busy).",
        "",
    ]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> Path | None:
    """Throughput and p99 latency vs concurrency per workload, the three targets on each panel."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: plot skipped (pip install matplotlib)")
        return None
    workloads = results["workloads"]
    fig, axes = plt.subplots(
        2, max(len(workloads), 1), figsize=(4.2 * max(len(workloads), 1), 7), squeeze=False
    )
    styles = {
        "in-process": ("k", "--", "s"),
        "in-process+fresh": ("tab:gray", "--", "s"),
        "ovms_rs": ("tab:orange", "-", "o"),
        "plain-python": ("tab:blue", "-", "^"),
        "grpcio-floor": ("tab:gray", ":", "x"),
        "transport-floor": ("black", ":", "+"),
        "ovms_rs@before": ("tab:purple", "--", "o"),
        "floor+copy": ("tab:olive", ":", "+"),
        "floor+copy+hand-off": ("tab:cyan", ":", "+"),
        "floor+python": ("tab:pink", ":", "+"),
        "floor+openvino": ("tab:brown", "-.", "*"),
        "floor+openvino+copy-in": ("tab:purple", "-.", "*"),
        "ovms_rs-grpcio": ("tab:red", ":", "d"),
    }
    for col, (key, w) in enumerate(workloads.items()):
        for target in TARGETS:
            xs, rps, p99 = [], [], []
            for c, points in w["points"].items():
                p = points.get(target)
                if p and p["requests"]:
                    xs.append(int(c))
                    rps.append(p["rps"])
                    p99.append(p["p99_ms"])
            if xs:
                color, line, marker = styles[target]
                axes[0][col].plot(xs, rps, color=color, linestyle=line, marker=marker, label=target)
                axes[1][col].plot(xs, p99, color=color, linestyle=line, marker=marker, label=target)
        axes[0][col].set_title(f"({key}) {w['title']}", fontsize=8)
        axes[0][col].set_ylabel("requests/s")
        axes[1][col].set_ylabel("p99 latency (ms)")
        levels = sorted(int(c) for c in w["points"])
        for row in (0, 1):
            ax = axes[row][col]
            ax.set_xscale("log", base=2)
            ax.set_xticks(levels, [str(c) for c in levels])
            ax.set_xlabel("concurrency")
            ax.grid(alpha=0.3)
            high = ax.get_ylim()[1]
            if row == 0 and high > 20 * max(
                min(line.get_ydata().min() for line in ax.get_lines()), 1e-9
            ):
                ax.set_yscale(
                    "log"
                )  # (c): the in-process limit is an order of magnitude above the servers
            else:
                ax.set_ylim(bottom=0)
        axes[0][col].legend(fontsize=7)
    meta = results["meta"]
    fig.suptitle(
        f"ovms_rs load benchmark ({meta['nproc']} x {meta['cpu']}; targets on CPU {meta['server_cpu']}, "
        f"client on CPU {meta['client_cpu']})",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    """Re-renders report.md and load.png from a results.json: python -m benches.report RESULTS_DIR."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m benches.report", description=main.__doc__)
    parser.add_argument("dir", type=Path, help="directory holding results.json")
    args = parser.parse_args(argv)
    results = json.loads((args.dir / "results.json").read_text())
    (args.dir / "report.md").write_text(markdown(results))
    plot(results, args.dir / "load.png")


if __name__ == "__main__":
    main()
