"""Prometheus metrics: how they are configured (OVMS's `--metrics_enable` / `--metrics_list` and
config.json's `monitoring` section, with OVMS's start-up errors) and the label indices the request
path counts with. The families themselves (names, HELP, buckets) and the counting live in Rust
(`rust/metrics/`); /metrics is rendered there too."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from . import _native
from .errors import ConfigError

# `interface` and `method` label values by index (rust/metrics/families.rs: INTERFACES, METHODS).
GRPC, REST = 0, 1
PREDICT, GET_MODEL_METADATA, GET_MODEL_STATUS = 0, 1, 2

# OVMS's start-up errors (src/config.cpp, src/metrics/metric_config.cpp).
REST_PORT_MISSING_CLI = "rest_port setting is missing, metrics are enabled on rest port"
REST_PORT_MISSING_JSON = "Missing rest_port parameter in server CLI"
LIST_WITHOUT_ENABLE = "metrics_enable setting is missing, required when metrics_list is provided"
CONFIGURED_TWICE = (
    "metrics are configured both on the command line (--metrics_enable/--metrics_list) and in the "
    "config file's monitoring section; use one"
)
_ENDPOINT_PATH = re.compile(r"^/[a-zA-Z0-9]*$")


class Counted(NamedTuple):
    """Which series a request counts into: its interface and method (indices above)."""

    interface: int
    method: int


GRPC_PREDICT = Counted(GRPC, PREDICT)
GRPC_METADATA = Counted(GRPC, GET_MODEL_METADATA)
GRPC_STATUS = Counted(GRPC, GET_MODEL_STATUS)
REST_PREDICT = Counted(REST, PREDICT)
REST_METADATA = Counted(REST, GET_MODEL_METADATA)
REST_STATUS = Counted(REST, GET_MODEL_STATUS)


@dataclass(frozen=True)
class MetricsConfig:
    """Whether /metrics is on, and the families it shows (None: OVMS's defaults and ours)."""

    enabled: bool = False
    families: tuple[str, ...] | None = None


def _checked_families(names: list[str]) -> tuple[str, ...]:
    """A list replaces the defaults, as in OVMS; every name must be a known family."""
    _, known = _native.metric_families()
    for name in names:
        if name not in known:
            raise ConfigError(f"Invalid metrics family name in metrics_list: {name!r}")
    return tuple(names)


def from_cli(enable: bool, metrics_list: str, rest_port: int) -> MetricsConfig:
    """`--metrics_enable` and `--metrics_list a, b` (comma separated, trimmed)."""
    names = [n.strip() for n in metrics_list.split(",") if n.strip()]
    if names and not enable:
        raise ConfigError(LIST_WITHOUT_ENABLE)
    if not enable:
        return MetricsConfig()
    if not rest_port:
        raise ConfigError(REST_PORT_MISSING_CLI)
    return MetricsConfig(True, _checked_families(names) if names else None)


def from_monitoring(section: Any, rest_port: int) -> MetricsConfig:
    """config.json's `"monitoring": {"metrics": {"enable": true, "metrics_list": [...]}}`."""
    where = "Config file: monitoring"
    if not isinstance(section, dict) or set(section) - {"metrics"}:
        raise ConfigError(f'{where} must be {{"metrics": {{...}}}}')
    metrics = section.get("metrics", {})
    if not isinstance(metrics, dict):
        raise ConfigError(f"{where}.metrics must be an object")
    unknown = set(metrics) - {"enable", "metrics_list", "endpoint_path"}
    if unknown:
        raise ConfigError(f"{where}.metrics: unknown key '{sorted(unknown)[0]}'")
    enable = metrics.get("enable", False)
    names = metrics.get("metrics_list", [])
    path = metrics.get("endpoint_path", "/metrics")
    if not isinstance(enable, bool):
        raise ConfigError(f"{where}.metrics.enable must be true or false")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{where}.metrics.metrics_list must be an array of strings")
    if not isinstance(path, str) or not _ENDPOINT_PATH.match(path):
        # Validated as OVMS does; the route is /metrics whatever it says (as in OVMS).
        raise ConfigError(f"{where}.metrics.endpoint_path must match {_ENDPOINT_PATH.pattern}")
    if not enable:
        return MetricsConfig()
    if not rest_port:
        raise ConfigError(REST_PORT_MISSING_JSON)
    return MetricsConfig(True, _checked_families(names) if names else None)


def enable(config: MetricsConfig) -> None:
    """Turns metrics on in the extension (before any model version exists: their series are made at
    creation, and only while metrics are on)."""
    if config.enabled:
        _native.enable_metrics(list(config.families) if config.families is not None else None)
