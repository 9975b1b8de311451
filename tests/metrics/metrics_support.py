"""Metrics test support: a /metrics scraper that parses with prometheus_client's own parser, and
config.json with a monitoring section."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any, NamedTuple

from helpers import ServerProcess
from prometheus_client.parser import text_string_to_metric_families

# The binary-input model: x [1,8,8,3] f32, accepting JPEG/PNG as NHWC.
IMAGE_SHAPE = [1, 8, 8, 3]


class Scrape(NamedTuple):
    """One /metrics answer: {family: (type, help)} and {(sample name, labels): value}."""

    families: dict[str, tuple[str, str]]
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    text: str

    def value(self, sample: str, **labels: str) -> float:
        return self.samples[(sample, frozenset(labels.items()))]

    def series(self, sample: str) -> dict[frozenset[tuple[str, str]], float]:
        return {labels: v for (name, labels), v in self.samples.items() if name == sample}


def scrape(server: ServerProcess) -> Scrape:
    with urllib.request.urlopen(f"{server.rest_url}/metrics", timeout=30) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "text/plain; version=0.0.4"
        text = reply.read().decode()
    families: dict[str, tuple[str, str]] = {}
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = (family.type, family.documentation)
        for s in family.samples:
            # The parser names counter samples `<family>_total`; OVMS's (and ours) have no suffix.
            name = (
                family.name
                if family.type == "counter" and s.name == f"{family.name}_total"
                else s.name
            )
            assert f"\n{name}{{" in text or f"\n{name} " in text, name
            key = (name, frozenset(s.labels.items()))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = s.value
    return Scrape(families, samples, text)


def write_config(path: Path, models: list[dict[str, Any]], monitoring: Any = None) -> Path:
    doc: dict[str, Any] = {"model_config_list": [{"config": m} for m in models]}
    if monitoring is not None:
        doc["monitoring"] = monitoring
    path.write_text(json.dumps(doc, indent=1))
    return path
