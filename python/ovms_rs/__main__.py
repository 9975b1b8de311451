"""Command line: `python -m ovms_rs serve [OVMS flags]`.

With no model flags, `serve` serves the built-in demo model (efficientnet-lite0) on port 9000.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import DEMO_MODEL_NAME, demo_dir, metrics
from .config.batching import BatchingParameters, load_batching_file
from .config.config_json import load_config_file, load_monitoring_section
from .config.model import WARMUP_MODES, ModelConfig, model_config
from .config.server import ServerConfig
from .errors import ConfigError

log = logging.getLogger("ovms_rs")

# OVMS flags accepted so that OVMS command lines keep working, but not implemented yet: each gets the
# same help text, and a warning when set to anything but its default. Implementing one = moving its
# add_argument out of this table.
NOT_IMPLEMENTED_FLAGS: dict[str, dict[str, Any]] = {
    "--rest_workers": {"type": int, "default": 0},
    "--grpc_workers": {"type": int, "default": 1},
}
NOT_IMPLEMENTED_HELP = "accepted for compatibility with OVMS (not implemented yet)"

_LOG_LEVELS = {
    "TRACE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
}


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="serve models over the TensorFlow Serving gRPC API")
    p.add_argument("--port", type=int, default=9000, help="gRPC port (default 9000)")
    p.add_argument(
        "--rest_port", type=int, default=0, help="REST API port (TF Serving's REST API; 0 = off)"
    )
    p.add_argument(
        "--grpc_bind_address", default="0.0.0.0", help="gRPC bind address (default 0.0.0.0)"
    )
    p.add_argument(
        "--rest_bind_address", default="0.0.0.0", help="REST bind address (default 0.0.0.0)"
    )
    p.add_argument("--model_name", help="name of the served model")
    p.add_argument("--model_path", help="model repository: <path>/<version>/<model file>")
    p.add_argument(
        "--config_path", help="config.json with model_config_list (not with model flags)"
    )
    p.add_argument("--batch_size", help="batch size: N, -1, 1:8 or auto")
    p.add_argument("--shape", help='input shape: (1,3,224,224), auto, or {"input": "(...)"}')
    p.add_argument(
        "--layout", help="input layout, e.g. NHWC:NCHW (clients send NHWC, model takes NCHW)"
    )
    p.add_argument("--model_version_policy", help='e.g. {"latest": {"num_versions": 2}}')
    p.add_argument(
        "--nireq", type=int, default=0, help="infer requests per version (0 = device optimum)"
    )
    p.add_argument("--target_device", default="CPU")
    p.add_argument(
        "--plugin_config",
        help='OpenVINO properties as JSON, e.g. {"NUM_STREAMS": "2"}; PERFORMANCE_HINT=LATENCY is '
        "added unless a hint or NUM_STREAMS is given. Legacy keys are rewritten (with a warning), "
        "as OVMS does: CPU_THROUGHPUT_STREAMS / GPU_THROUGHPUT_STREAMS = CPU_THROUGHPUT_AUTO / "
        "GPU_THROUGHPUT_AUTO -> PERFORMANCE_HINT=THROUGHPUT, a number in them -> NUM_STREAMS, "
        "CPU_THREADS_NUM -> INFERENCE_NUM_THREADS",
    )
    p.add_argument(
        "--file_system_poll_wait_seconds",
        type=float,
        default=1.0,
        help="seconds between repository/config checks (0 = off)",
    )
    p.add_argument(
        "--drain_seconds",
        type=float,
        default=0.0,
        help="after SIGTERM, keep serving this long while /v2/health/ready and gRPC health answer "
        "not ready (for a load balancer's checks to take the replica out), then drain in-flight "
        "requests and exit (default 0: drain at once)",
    )
    p.add_argument("--log_level", default="INFO", choices=sorted(_LOG_LEVELS))
    p.add_argument("--log_path", help="log to this file instead of stderr")
    p.add_argument(
        "--grpc_max_threads", type=int, default=0, help="gRPC handler threads (0 = default)"
    )
    p.add_argument(
        "--grpc_transport",
        choices=("native", "grpcio"),
        default="native",
        help="HTTP/2 in the Rust extension (default) or grpcio's Python server; both serve TLS",
    )
    p.add_argument(
        "--max_message_bytes",
        type=int,
        default=1024 * 1024 * 1024,
        help="largest gRPC message accepted or sent (default 1 GiB, as OVMS)",
    )
    p.add_argument(
        "--max_queue_size",
        type=int,
        default=128,
        help="requests per model version that may wait for an infer request "
        "before RESOURCE_EXHAUSTED (default 128)",
    )
    p.add_argument(
        "--grpc_memory_quota",
        type=int,
        default=ServerConfig.memory_quota,
        help="bytes of request bodies (and decoded images) held at once, gRPC and REST together; "
        "beyond it bodies wait unread, then RESOURCE_EXHAUSTED / 503 (default 2 GiB, as OVMS; 0: none)",
    )
    p.add_argument(
        "--max_connections",
        type=int,
        default=ServerConfig.max_connections,
        help="open connections, both ports together; at the cap a new one replaces an idle one "
        "(default 4096; 0: no cap)",
    )
    p.add_argument(
        "--max_concurrent_streams",
        type=int,
        default=ServerConfig.max_concurrent_streams,
        help="HTTP/2 requests in flight per connection (default 128)",
    )
    p.add_argument(
        "--idle_timeout_seconds",
        type=float,
        default=ServerConfig.idle_timeout_seconds,
        help="close a connection that has had no request in flight this long (default 300)",
    )
    p.add_argument(
        "--header_timeout_seconds",
        type=float,
        default=ServerConfig.header_timeout_seconds,
        help="a new connection's first request, or an HTTP/1.1 request's headers, must arrive "
        "within this (default 20)",
    )
    p.add_argument(
        "--body_timeout_seconds",
        type=float,
        default=ServerConfig.body_timeout_seconds,
        help="a request body must arrive within this, then at 256 KiB/s (default 60)",
    )
    p.add_argument(
        "--allow_version_labels_for_unavailable_models",
        action="store_true",
        help="TF Serving's flag: config.json version_labels may name versions not AVAILABLE yet",
    )
    p.add_argument(
        "--warmup",
        choices=WARMUP_MODES,
        help="CLI model's warmup before AVAILABLE: file (default: replay "
        "assets.extra/tf_serving_warmup_requests if present), zeros (also one inference on zeros), "
        "none",
    )
    p.add_argument(
        "--enable_batching",
        action="store_true",
        help="TF Serving's flag: dynamic batching for the CLI model, or every config.json model "
        "without its own `batching` key",
    )
    p.add_argument(
        "--batching_parameters_file",
        help="TF Serving's BatchingParameters (protobuf text format, or JSON); needs --enable_batching",
    )
    p.add_argument("--grpc_tls_cert", help="PEM certificate chain: serve gRPC over TLS")
    p.add_argument("--grpc_tls_key", help="PEM private key for --grpc_tls_cert")
    p.add_argument(
        "--grpc_tls_client_ca", help="PEM CA bundle: require client certificates it signed"
    )
    p.add_argument(
        "--metrics_enable",
        action="store_true",
        help="serve Prometheus metrics at /metrics on the REST port",
    )
    p.add_argument(
        "--metrics_list",
        default="",
        help="comma-separated metric families to show instead of the default set",
    )
    for flag, options in NOT_IMPLEMENTED_FLAGS.items():
        p.add_argument(flag, help=NOT_IMPLEMENTED_HELP, **options)


def warn_not_implemented(args: argparse.Namespace) -> None:
    """One warning per not-implemented flag that the command line sets."""
    for flag, options in NOT_IMPLEMENTED_FLAGS.items():
        value = getattr(args, flag.removeprefix("--"))
        if value != options["default"]:
            log.warning("%s is not implemented by ovms_rs yet; %s=%s ignored", flag, flag, value)


def parse_server_config(args: argparse.Namespace) -> ServerConfig:
    """Turns `serve` flags into a validated ServerConfig (ConfigError on bad combinations)."""
    model_flags = {
        flag: getattr(args, flag)
        for flag in (
            "model_name",
            "model_path",
            "batch_size",
            "shape",
            "layout",
            "model_version_policy",
            "plugin_config",
            "warmup",
        )
        if getattr(args, flag) is not None
    }
    config_path: Path | None = None
    models: tuple[ModelConfig, ...]
    batching = _cli_batching(args)
    if args.config_path:
        if model_flags:
            raise ConfigError("Use either config_path or model_path with model_name")
        config_path = Path(args.config_path).resolve()
        models = tuple(load_config_file(config_path, batching))
    elif args.model_path or args.model_name:
        if not (args.model_path and args.model_name):
            raise ConfigError(
                "Model path and model name both need to be set (--model_name, --model_path)"
            )
        models = (_cli_model(args, args.model_name, args.model_path, batching),)
    else:
        models = (_cli_model(args, DEMO_MODEL_NAME, demo_dir() / DEMO_MODEL_NAME, batching),)
    if not 0 < args.port < 65536:
        raise ConfigError(f"port number out of range: {args.port}")
    if not 0 <= args.rest_port < 65536:
        raise ConfigError(f"rest_port number out of range: {args.rest_port}")
    if args.rest_port and args.rest_port == args.port:
        raise ConfigError("port and rest_port cannot have the same values")
    if bool(args.grpc_tls_cert) != bool(args.grpc_tls_key):
        raise ConfigError("--grpc_tls_cert and --grpc_tls_key go together")
    if args.grpc_tls_client_ca and not args.grpc_tls_cert:
        raise ConfigError("--grpc_tls_client_ca needs --grpc_tls_cert and --grpc_tls_key")
    if not 0 <= args.drain_seconds <= 3600:
        raise ConfigError("--drain_seconds must be between 0 and 3600")
    if args.max_message_bytes <= 0 or args.max_queue_size < 0:
        raise ConfigError("--max_message_bytes must be > 0 and --max_queue_size >= 0")
    if args.grpc_memory_quota < 0 or args.max_connections < 0 or args.max_concurrent_streams <= 0:
        raise ConfigError(
            "--grpc_memory_quota and --max_connections must be >= 0, --max_concurrent_streams > 0"
        )
    for flag in ("idle_timeout_seconds", "header_timeout_seconds", "body_timeout_seconds"):
        if not 0 < getattr(args, flag) <= 86400:
            raise ConfigError(f"--{flag} must be between 0 (excluded) and 86400")
    metrics_config = metrics.from_cli(args.metrics_enable, args.metrics_list, args.rest_port)
    monitoring = load_monitoring_section(config_path) if config_path else None
    if monitoring is not None:
        if args.metrics_enable or args.metrics_list:
            raise ConfigError(metrics.CONFIGURED_TWICE)
        metrics_config = metrics.from_monitoring(monitoring, args.rest_port)
    return ServerConfig(
        port=args.port,
        rest_port=args.rest_port,
        grpc_bind_address=args.grpc_bind_address,
        rest_bind_address=args.rest_bind_address,
        models=models,
        config_path=config_path,
        file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
        drain_seconds=args.drain_seconds,
        grpc_threads=args.grpc_max_threads,
        grpc_transport=args.grpc_transport,
        max_message_bytes=args.max_message_bytes,
        max_queue_size=args.max_queue_size,
        memory_quota=args.grpc_memory_quota,
        max_connections=args.max_connections,
        max_concurrent_streams=args.max_concurrent_streams,
        idle_timeout_seconds=args.idle_timeout_seconds,
        header_timeout_seconds=args.header_timeout_seconds,
        body_timeout_seconds=args.body_timeout_seconds,
        tls_cert=Path(args.grpc_tls_cert) if args.grpc_tls_cert else None,
        tls_key=Path(args.grpc_tls_key) if args.grpc_tls_key else None,
        tls_client_ca=Path(args.grpc_tls_client_ca) if args.grpc_tls_client_ca else None,
        log_level=args.log_level,
        log_path=Path(args.log_path) if args.log_path else None,
        allow_version_labels_for_unavailable_models=args.allow_version_labels_for_unavailable_models,
        metrics=metrics_config,
        default_batching=batching,
    )


def _cli_batching(args: argparse.Namespace) -> BatchingParameters | None:
    """--enable_batching [--batching_parameters_file]: TF Serving refuses the file without the flag."""
    if not args.enable_batching:
        if args.batching_parameters_file:
            raise ConfigError("You supplied --batching_parameters_file without --enable_batching")
        return None
    if args.batching_parameters_file:
        return load_batching_file(Path(args.batching_parameters_file))
    return BatchingParameters()


def _cli_model(
    args: argparse.Namespace,
    name: str,
    path: str | Path,
    batching: BatchingParameters | None = None,
) -> ModelConfig:
    try:
        policy = json.loads(args.model_version_policy) if args.model_version_policy else None
    except json.JSONDecodeError as e:
        raise ConfigError(f"Invalid model_version_policy (not JSON): {e}") from None
    return model_config(
        name,
        Path(path).resolve(),
        batch_size=args.batch_size,
        shape=args.shape,
        layout=args.layout,
        nireq=args.nireq,
        target_device=args.target_device,
        plugin_config=args.plugin_config,
        model_version_policy=policy,
        warmup=args.warmup,
        batching=batching,
    )


def _setup_logging(level: str, path: Path | None) -> None:
    handler: logging.Handler = (
        logging.FileHandler(path) if path else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(
        logging.Formatter("[%(asctime)s][%(process)d][%(name)s][%(levelname)s] %(message)s")
    )
    logging.basicConfig(level=_LOG_LEVELS[level], handlers=[handler], force=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ovms_rs", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    _serve_parser(sub)
    args = parser.parse_args(argv)
    if args.command != "serve":
        parser.print_help()
        return 2
    _setup_logging(args.log_level, Path(args.log_path) if args.log_path else None)
    from .serve import serve  # imports OpenVINO: only once the flags are known to be good

    warn_not_implemented(args)
    try:
        serve(parse_server_config(args))
    except ConfigError as e:
        print(f"ovms_rs: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
