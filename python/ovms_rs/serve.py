"""Starting the server: open the REST port (health answers 503 meanwhile), load the models, open the gRPC
port, poll the repository; on SIGTERM turn not-ready, keep serving for --drain_seconds, drain and stop."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import types

from . import _native, metrics
from .config.server import ServerConfig
from .malloc_tuning import keep_freed_buffers
from .models.poller import ConfigApplier, Poller
from .models.registry import ModelRegistry
from .server.grpc_server import DEFAULT_THREADS, build_server
from .server.health import Readiness
from .server.rest_server import RestServer

log = logging.getLogger(__name__)

# Seconds in-flight requests get to finish after SIGTERM / SIGINT.
SHUTDOWN_GRACE_SECONDS = 30.0


def serve(config: ServerConfig) -> None:
    """Runs until SIGTERM/SIGINT. Raises ConfigError when the configuration cannot be served."""
    keep_freed_buffers()
    metrics.enable(config.metrics)
    _native.set_transport_limits(
        memory_quota=config.memory_quota,
        max_connections=config.max_connections,
        max_concurrent_streams=config.max_concurrent_streams,
        idle_timeout=config.idle_timeout_seconds,
        header_timeout=config.header_timeout_seconds,
        body_timeout=config.body_timeout_seconds,
    )
    registry = ModelRegistry(
        max_queue=config.max_queue_size,
        allow_unavailable_labels=config.allow_version_labels_for_unavailable_models,
    )
    applier = ConfigApplier(registry, config.config_path, config.default_batching)
    readiness = Readiness(registry)

    def reload_all() -> bool:
        changed = applier.reload_all()
        readiness.update()
        return changed

    rest = None
    if config.rest_port:
        # Before the models load, as OVMS does: probes see 503 until they are AVAILABLE.
        threads = config.grpc_threads or DEFAULT_THREADS
        rest = RestServer(config, registry, reload_all, threads)
        readiness.subscribe(rest.set_ready)
        rest.start()
        log.info("Started REST server on %s:%d", config.rest_bind_address, rest.port)
    try:
        if config.config_path is not None:
            applier.reload_config()  # a bad file stops start-up; one bad model in it is skipped
        else:
            for model_config in config.models:
                registry.serve_model(model_config)  # a bad CLI model stops start-up
        server = build_server(config, registry, applier.reload_config, readiness)
    except BaseException:
        if rest is not None:
            rest.stop(0)
        raise
    server.start()
    log.info("Started gRPC server on %s:%d", config.grpc_bind_address, server.port)
    readiness.update()
    poller = Poller(applier, config.file_system_poll_wait_seconds, readiness.update)
    poller.start()

    stop = threading.Event()

    def on_signal(signum: int, frame: types.FrameType | None) -> None:
        log.info("Received signal %d, shutting down", signum)
        readiness.drain()
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # Not a plain stop.wait(): Python runs a signal's handler in the main thread, and when the kernel
    # hands the signal to another thread (a Rust or OpenVINO one) the main thread, blocked without a
    # timeout, is never woken to run it (seen: SIGTERM unanswered for 45 s while requests ran, about
    # 1 run in 10 of test_faults' drain test). Waking 4 times a second bounds that delay.
    while not stop.wait(0.25):
        pass
    if config.drain_seconds > 0:
        # Still serving everything, only not ready: a balancer's health checks see the 503 and move the
        # traffic before the ports close.
        log.info("Not ready; draining for %.1f s before stopping", config.drain_seconds)
        time.sleep(config.drain_seconds)
    poller.stop()
    server.stop(SHUTDOWN_GRACE_SECONDS)
    if rest is not None:
        rest.stop(SHUTDOWN_GRACE_SECONDS)
    log.info("Server stopped")
    # Requests still queued after the grace period are abandoned with the process: handler threads are
    # not daemons, and a normal interpreter exit would wait for all of them.
    logging.shutdown()
    os._exit(0)
