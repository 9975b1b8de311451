"""The Grafana dashboard in deploy/grafana names only metric families the server exposes by default."""

from __future__ import annotations

import json
import re
from pathlib import Path

from helpers import ServerProcess
from metrics_support import scrape

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "ovms_rs.json"
# Metric names in PromQL: identifiers that start like ours (labels and functions don't).
METRIC = re.compile(r"\bovms_[a-z0-9_]+")


def _queries() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in doc["panels"] for target in panel["targets"]]


def test_every_dashboard_query_names_exposed_series(metrics_server: ServerProcess) -> None:
    exposed = {name for name, _ in scrape(metrics_server).samples}  # with _bucket/_sum/_count
    queries = _queries()
    assert len(queries) >= 10
    used = {name for q in queries for name in METRIC.findall(q)}
    assert used and used <= exposed, sorted(used - exposed)
    # Every family the server shows by default is on the dashboard.
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in exposed}
    assert families <= {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}, sorted(families)
