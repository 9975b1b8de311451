"""Starting the server: load the models, open the gRPC port, poll the repository, stop cleanly."""

from __future__ import annotations

import logging
import signal
import threading
import types

from .config import ServerConfig
from .models.registry import ModelRegistry
from .server.grpc_server import build_server

log = logging.getLogger(__name__)

# Seconds in-flight requests get to finish after SIGTERM / SIGINT.
SHUTDOWN_GRACE_SECONDS = 30.0


def serve(config: ServerConfig) -> None:
    """Runs until SIGTERM/SIGINT. Raises ConfigError when the configuration cannot be served."""
    registry = ModelRegistry()
    for model_config in config.models:
        registry.serve_model(model_config)
    server, port = build_server(config, registry)
    server.start()
    log.info("Started gRPC server on %s:%d", config.grpc_bind_address, port)
    if config.rest_port:
        log.warning("REST API is not served by ovms_rs yet; --rest_port %d ignored", config.rest_port)

    stop = threading.Event()

    def on_signal(signum: int, frame: types.FrameType | None) -> None:
        log.info("Received signal %d, shutting down", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    server.stop(SHUTDOWN_GRACE_SECONDS).wait()
    log.info("Server stopped")
