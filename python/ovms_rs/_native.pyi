"""Type stubs for the Rust extension `ovms_rs._native` (checked with mypy.stubtest)."""

from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "InvalidInput",
    "RequestInput",
    "__version__",
    "build_predict_response",
    "decode_images",
    "parse_predict_request",
    "transpose_layout",
]

__version__: str

class InvalidInput(ValueError):
    """A request the server rejects with INVALID_ARGUMENT; str(exc) is OVMS's details string."""

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
    def strings(self) -> list[bytes] | None: ...
    @property
    def error(self) -> str | None: ...

def parse_predict_request(
    request: bytes,
) -> tuple[str, int, dict[str, RequestInput], list[str]]: ...
def build_predict_response(
    model_name: str, version: int, outputs: list[tuple[str, npt.NDArray[Any]]]
) -> bytes: ...
def transpose_layout(array: npt.NDArray[Any], to: str) -> npt.NDArray[Any]: ...
def decode_images(
    images: list[bytes], height: int | None = None, width: int | None = None
) -> npt.NDArray[np.uint8]: ...
