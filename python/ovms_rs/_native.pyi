"""Type stubs for the Rust extension `ovms_rs._native` (checked with mypy.stubtest)."""

from collections.abc import Callable, Iterator
from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "GrpcServer",
    "InvalidInput",
    "JsonError",
    "RequestBody",
    "RequestInput",
    "RequestStrings",
    "ResourceExhausted",
    "RestServer",
    "VersionMetrics",
    "__version__",
    "build_json_predict_response",
    "build_predict_response",
    "decode_images",
    "dtype_table",
    "enable_metrics",
    "invalid_input_kinds",
    "json_error_kinds",
    "metric_families",
    "parse_json_predict",
    "parse_predict_request",
    "read_tfrecords",
    "render_metrics",
    "set_transport_limits",
    "transport_finished",
    "transport_started",
    "transport_usage",
    "transpose_layout",
    "version_metrics",
]

__version__: str

class InvalidInput(ValueError):
    """A request the server refuses: args are (kind, fields); `ovms_rs.errors.REQUEST_ERRORS` has each \
    kind's status and message, and str(exc) is that message."""

    args: tuple[str, dict[str, Any]]

class ResourceExhausted(Exception):
    """Refused for the server's memory budget (--grpc_memory_quota): RESOURCE_EXHAUSTED / 503; str(exc) \
    says how much was asked and the budget."""

class JsonError(ValueError):
    """A REST body the server refuses: args are (kind, detail); `ovms_rs.errors` has each kind's \
    status and message."""

@final
class RestServer:
    """A bound REST server (HTTP/1.1 and h2c in Rust); `handler(kind, name, version, label, body,
    timeout)` serves every request that needs the models and returns (HTTP status, reply bytes).
    Health probes are answered from `set_ready`."""

    def __new__(
        cls,
        handler: Callable[[str, str, int, str | None, bytearray, float | None], tuple[int, bytes]],
        host: str,
        port: int,
        *,
        max_body_bytes: int,
        max_concurrent: int,
        handler_threads: int,
    ) -> RestServer: ...
    @property
    def port(self) -> int: ...
    def set_ready(self, ready: bool) -> None: ...
    def start(self) -> None: ...
    def stop(self, grace: float) -> bool: ...

@final
class GrpcServer:
    """A bound gRPC server (HTTP/2 in Rust); `handler(path, request, timeout)` serves every call and
    returns (status code, details, reply bytes or None). With `tls_cert` and `tls_key` (PEM) it serves
    TLS, requiring client certificates signed by `tls_client_ca` when given; unusable PEM raises
    ValueError."""

    def __new__(
        cls,
        handler: Callable[
            [str, bytearray | RequestBody, float | None], tuple[int, str, bytes | None]
        ],
        host: str,
        port: int,
        *,
        max_message_bytes: int,
        max_concurrent_rpcs: int,
        handler_threads: int,
        tls_cert: bytes | None = None,
        tls_key: bytes | None = None,
        tls_client_ca: bytes | None = None,
    ) -> GrpcServer: ...
    @property
    def port(self) -> int: ...
    def start(self) -> None: ...
    def stop(self, grace: float) -> bool: ...

@final
class RequestBody:
    """A request message received in one piece, where the transport received it (no copy)."""

    def __len__(self) -> int: ...
    def __bytes__(self) -> bytes: ...

@final
class RequestStrings:
    """A DT_STRING input's entries, kept where the request carried them (no `bytes` per entry);
    indexing and iteration make a `bytes` of each."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int, /) -> bytes: ...
    def __iter__(self) -> Iterator[bytes]: ...
    @property
    def has_empty(self) -> bool: ...

@final
class RequestInput:
    """One input of a PredictRequest."""

    @property
    def dtype(self) -> int: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def array(self) -> npt.NDArray[Any] | None: ...
    @property
    def strings(self) -> RequestStrings | None: ...
    @property
    def error(self) -> tuple[str, dict[str, Any]] | None:
        """Why the input was not decoded: (kind, fields) of `ovms_rs.errors.REQUEST_ERRORS`."""

def parse_predict_request(
    request: bytes | bytearray | RequestBody,
) -> tuple[str, int, str | None, dict[str, RequestInput], list[str]]: ...
def read_tfrecords(data: bytes, limit: int) -> list[bytes]:
    """The records of a TFRecord file (at most limit + 1); ValueError for bad framing or CRC."""
    ...

def build_predict_response(
    model_name: str, version: int, outputs: list[tuple[str, npt.NDArray[Any]]]
) -> bytes: ...
def transpose_layout(array: npt.NDArray[Any], to: str) -> npt.NDArray[Any]: ...
def decode_images(
    images: RequestStrings | list[bytes],
    height: int | None = None,
    width: int | None = None,
    dtype: np.dtype[Any] | None = None,
) -> npt.NDArray[Any]:
    """[N, H, W, C] in `dtype` (uint8 when None), decoded where the images lie."""

def dtype_table() -> list[tuple[int, str, str, int, str]]: ...
def invalid_input_kinds() -> list[str]: ...
def json_error_kinds() -> list[str]: ...
def parse_json_predict(
    body: bytes | bytearray | RequestBody, inputs: list[tuple[str, int]]
) -> tuple[str, dict[str, RequestInput]]: ...
def build_json_predict_response(
    format: str, outputs: list[tuple[str, npt.NDArray[Any]]]
) -> bytes: ...

@final
class VersionMetrics:
    """One model version's Prometheus series (interfaces: 0 gRPC, 1 REST; methods: 0 Predict,
    1 GetModelMetadata, 2 GetModelStatus)."""

    def succeeded(self, interface_index: int, method_index: int, elapsed_ns: int) -> None: ...
    def failed(self, interface_index: int, method_index: int, refused: bool) -> None: ...
    def infer_started(self, waited_ns: int) -> None: ...
    def infer_finished(self, inference_ns: int | None = None) -> None: ...
    def batched(self, rows: int) -> None: ...
    def loaded(self, streams: int, infer_requests: int, owner: int) -> None: ...
    def unloaded(self, owner: int) -> None: ...

def metric_families() -> tuple[list[str], list[str]]: ...
def enable_metrics(families: list[str] | None = None) -> None: ...
def render_metrics() -> str: ...
def version_metrics(name: str, version: int) -> VersionMetrics | None: ...
def transport_started(interface_index: int, request_bytes: int) -> None: ...
def transport_finished(interface_index: int, reply_bytes: int) -> None: ...
def set_transport_limits(
    *,
    memory_quota: int,
    max_connections: int,
    max_concurrent_streams: int,
    idle_timeout: float,
    header_timeout: float,
    body_timeout: float,
) -> None: ...
def transport_usage() -> tuple[int, int, int]: ...
