"""Client-side image preprocessing: decode to BGR, bilinear resize, NCHW float32.

OpenCV (`opencv-python-headless`), which OVMS's clients use, is used when importable. Otherwise the
package's own decoder does it (`_native.decode_images`: JPEG and PNG, OpenCV's bilinear kernel), so
the clients run on the base install. Its resize is OpenCV's to the bit; its JPEG decoder (zune-jpeg)
upsamples chroma slightly differently from libjpeg-turbo, so JPEG pixels can differ from OpenCV's by a
few levels (under 0.5 on average, at most 6 on the demo photos: `tests/clients/test_client_data.py`).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import numpy.typing as npt

from .. import _native
from .connection import ClientError

Image = npt.NDArray[np.uint8]


def _opencv() -> ModuleType | None:
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def decode_bgr(data: bytes, source: str | Path, size: tuple[int, int] | None = None) -> Image:
    """Encoded image bytes as an [H,W,3] uint8 BGR array, bilinear-resized (no crop, aspect ratio not
    kept) to size = (width, height) when given. `source` names the image in errors."""
    cv2 = _opencv()
    if cv2 is None:
        return _decode_bgr_native(data, source, size)
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ClientError(f"cannot decode image: {source}")
    if size is not None and size != (img.shape[1], img.shape[0]):
        img = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
    return np.asarray(img, dtype=np.uint8)


def _decode_bgr_native(data: bytes, source: str | Path, size: tuple[int, int] | None) -> Image:
    width, height = size if size is not None else (None, None)
    try:
        img = _native.decode_images([data], height, width)[0]
    except ValueError as e:  # _native.InvalidInput: not a JPEG/PNG, or a broken one
        raise ClientError(
            f"cannot decode image: {source} ({e}; without OpenCV only JPEG and PNG are read: "
            "pip install opencv-python-headless)"
        ) from None
    # What OpenCV's IMREAD_COLOR gives: gray replicated into 3 channels, alpha dropped. Both act per
    # channel, so doing them after the resize gives the same pixels as before it.
    if img.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(img, 3, axis=2))
    return np.ascontiguousarray(img[:, :, :3])


def read_bgr(path: str | Path, size: tuple[int, int] | None = None) -> Image:
    """An image file as an [H,W,3] uint8 BGR array, resized to size = (width, height) when given."""
    return decode_bgr(Path(path).read_bytes(), path, size)


def read_cropped(path: str | Path, size: int) -> Image:
    """OVMS's jpeg_classification preprocessing of an image file: stretch a side shorter than `size`
    up to it (bilinear), then take the centred size x size crop."""
    data = Path(path).read_bytes()
    img = decode_bgr(data, path)
    height, width = img.shape[:2]
    cv2 = _opencv()
    if cv2 is not None:  # OVMS's two resizes, as its client does them
        if height < size:
            img = cv2.resize(img, (width, size))
            height = size
        if width < size:
            img = cv2.resize(img, (size, height))
    elif height < size or width < size:
        # One resize of the original bytes (only the native decoder can resize). Where both sides
        # are short it may differ by a level from OpenCV's two, which round to uint8 in between.
        img = decode_bgr(data, path, (max(width, size), max(height, size)))
    return centre_crop(np.asarray(img, dtype=np.uint8), size)


def centre_crop(img: Image, size: int) -> Image:
    """The centred size x size window of an [H,W,C] image at least size x size (OVMS's offsets)."""
    height, width = img.shape[:2]
    top, left = height // 2 - size // 2, width // 2 - size // 2
    return img[top : top + size, left : left + size, :]


def to_nchw(img: Image) -> npt.NDArray[np.float32]:
    """[H,W,C] uint8 -> [1,C,H,W] float32, values unscaled (0..255)."""
    return np.ascontiguousarray(img.astype(np.float32).transpose(2, 0, 1)[np.newaxis])
