"""Readiness, one answer for every probe: REST `/v2/health/ready` (answered in Rust from the flag this
pushes) and gRPC `grpc.health.v1.Health/Check`.

Ready means: every configured model has an AVAILABLE default version, and no SIGTERM yet. OVMS turns
ready once its first load finished even if a model failed; a replica that cannot serve one of its models
should not take traffic from a load balancer, so ovms_rs is stricter (README).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .. import _native
from ..models.registry import ModelRegistry

HEALTH_SERVICE = "grpc.health.v1.Health"

# grpc.health.v1.HealthCheckResponse.ServingStatus
SERVING, NOT_SERVING, SERVICE_UNKNOWN = 1, 2, 3
# The services a Check may name ("" is the server as a whole).
_KNOWN_SERVICES = ("", "tensorflow.serving.PredictionService", "tensorflow.serving.ModelService")


class Readiness:
    """Whether the server takes traffic; `update()` after every change to the registry."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self._draining = False
        self._ready = False
        self._lock = threading.Lock()
        self._listeners: list[Callable[[bool], None]] = []

    @property
    def ready(self) -> bool:
        return self._ready

    def subscribe(self, listener: Callable[[bool], None]) -> None:
        """`listener(ready)` now and on every change (the REST transport's flag)."""
        with self._lock:
            self._listeners.append(listener)
            listener(self._ready)

    def update(self) -> None:
        models = [m for m in self.registry.models() if m.active]
        ready = (
            not self._draining
            and bool(models)
            and all(m.default_version() is not None for m in models)
        )
        with self._lock:
            if ready == self._ready:
                return
            self._ready = ready
            for listener in self._listeners:
                listener(ready)

    def drain(self) -> None:
        """SIGTERM: not ready from now on, while in-flight requests finish."""
        self._draining = True
        self.update()

    def check(
        self, request: bytes | bytearray | _native.RequestBody, timeout: float | None
    ) -> bytes:
        """grpc.health.v1.Health/Check, on the raw messages (two one-field messages: no generated code)."""
        service = _service_name(bytes(request))
        if service not in _KNOWN_SERVICES:
            status = SERVICE_UNKNOWN
        else:
            status = SERVING if self._ready else NOT_SERVING
        return bytes([0x08, status])  # HealthCheckResponse { ServingStatus status = 1; }


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]  # IndexError past the end: a truncated message
        value |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            return value, at
        shift += 7


def _service_name(request: bytes) -> str:
    """HealthCheckRequest { string service = 1; }: the last occurrence wins, unknown fields skipped;
    a message that does not parse names no known service."""
    service, at = "", 0
    try:
        while at < len(request):
            key, at = _varint(request, at)
            wire = key & 7
            if wire == 0:
                _, at = _varint(request, at)
            elif wire == 2:
                length, at = _varint(request, at)
                if key >> 3 == 1:
                    service = request[at : at + length].decode()
                at += length
            elif wire in (1, 5):
                at += 8 if wire == 1 else 4
            else:
                return "\0invalid"
    except (IndexError, UnicodeDecodeError):
        return "\0invalid"
    return service
