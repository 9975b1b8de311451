"""ServerConfig: everything `serve` needs, from the CLI flags (and the config file they name)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..metrics import MetricsConfig
from .batching import BatchingParameters
from .model import ModelConfig


@dataclass(frozen=True)
class ServerConfig:
    """Everything `serve` needs: network settings and the models (or the config file naming them)."""

    port: int = 9000
    rest_port: int = 0
    grpc_bind_address: str = "0.0.0.0"
    rest_bind_address: str = "0.0.0.0"
    models: tuple[ModelConfig, ...] = ()
    config_path: Path | None = None
    file_system_poll_wait_seconds: float = 1.0
    # Seconds after SIGTERM during which everything is still served while readiness answers 503, so that
    # a load balancer's health checks take the replica out before it stops accepting connections.
    drain_seconds: float = 0.0
    grpc_threads: int = 0
    grpc_transport: str = "native"
    max_message_bytes: int = 1024 * 1024 * 1024
    max_queue_size: int = 128
    # Overload (README "Errors, TLS, limits"): request bytes in flight, both ports together (OVMS's
    # --grpc_memory_quota; 0: none); open connections, both ports (0: no cap); HTTP/2 streams per
    # connection; closing connections without a request, and slow headers and bodies.
    memory_quota: int = 2 * 1024 * 1024 * 1024
    max_connections: int = 4096
    max_concurrent_streams: int = 128
    idle_timeout_seconds: float = 300.0
    header_timeout_seconds: float = 20.0
    body_timeout_seconds: float = 60.0
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    log_level: str = "INFO"
    log_path: Path | None = None
    # TF Serving's --allow_version_labels_for_unavailable_models.
    allow_version_labels_for_unavailable_models: bool = False
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    # --enable_batching (with --batching_parameters_file): batching for every model without its own.
    default_batching: BatchingParameters | None = None
