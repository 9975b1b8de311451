"""Client-side image preprocessing: decode to BGR, bilinear resize, NCHW float32.

OpenCV (`opencv-python-headless`) is used when importable, else Pillow; the package itself depends
on neither, so the error says what to install.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .connection import ClientError

NO_DECODER = (
    "decoding images needs OpenCV or Pillow: "
    "pip install opencv-python-headless (or: pip install pillow)"
)

Image = npt.NDArray[np.uint8]


def decode_bgr(data: bytes, source: str | Path) -> Image:
    """Encoded image bytes (JPEG, PNG, ...) as an [H,W,3] uint8 BGR array."""
    try:
        import cv2
    except ImportError:
        return _decode_bgr_pillow(data, source)
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ClientError(f"cannot decode image: {source}")
    return np.asarray(img, dtype=np.uint8)


def _decode_bgr_pillow(data: bytes, source: str | Path) -> Image:
    try:
        from PIL import Image as PILImage
    except ImportError:
        raise ClientError(NO_DECODER) from None
    try:
        with PILImage.open(io.BytesIO(data)) as pil:
            rgb = np.asarray(pil.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError):
        raise ClientError(f"cannot decode image: {source}") from None
    return np.ascontiguousarray(rgb[:, :, ::-1])


def read_bgr(path: str | Path) -> Image:
    """An image file as an [H,W,3] uint8 BGR array."""
    return decode_bgr(Path(path).read_bytes(), path)


def resize_bilinear(img: Image, width: int, height: int) -> Image:
    """Bilinear resize of an [H,W,C] uint8 image (no crop, aspect ratio not kept)."""
    if img.shape[1] == width and img.shape[0] == height:
        return img
    try:
        import cv2
    except ImportError:
        return _resize_pillow(img, width, height)
    return np.asarray(cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR), np.uint8)


def _resize_pillow(img: Image, width: int, height: int) -> Image:
    try:
        from PIL import Image as PILImage
    except ImportError:
        raise ClientError(NO_DECODER) from None
    resized = PILImage.fromarray(img).resize((width, height), PILImage.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def crop_resize(img: Image, size: int) -> Image:
    """OVMS's jpeg_classification preprocessing: stretch a side shorter than `size` up to it,
    then take the centred size x size crop."""
    height, width = img.shape[:2]
    if height < size:
        img = resize_bilinear(img, width, size)
        height = size
    if width < size:
        img = resize_bilinear(img, size, height)
        width = size
    top, left = height // 2 - size // 2, width // 2 - size // 2
    return img[top : top + size, left : left + size, :]


def to_nchw(img: Image) -> npt.NDArray[np.float32]:
    """[H,W,C] uint8 -> [1,C,H,W] float32, values unscaled (0..255)."""
    return np.ascontiguousarray(img.astype(np.float32).transpose(2, 0, 1)[np.newaxis])
