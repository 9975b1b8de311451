"""ovms_rs._native.decode_images against OpenCV, which OVMS uses (imdecode IMREAD_UNCHANGED + resize)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import ovms_rs
import pytest
from ovms_rs import _native

cv2 = pytest.importorskip("cv2")

PHOTOS = sorted((Path(ovms_rs.__file__).parent / "demo" / "data" / "images").glob("*.jpeg"))
PARSING_FAILED = "Image parsing failed"

# zune-jpeg's 4:2:0 chroma upsampling rounds twice where libjpeg-turbo rounds once: decoded JPEG pixels
# differ from cv2's by 0.2 on average and at most 6 levels on these photos (measured: 0.21 / 6).
# PNG is lossless and the resize kernel is OpenCV's: those compare exactly.
JPEG_MAX_DIFF = 8
JPEG_MEAN_DIFF = 0.4


def cv_decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None
    return image if image.ndim == 3 else image[:, :, None]  # type: ignore[no-any-return]


def cv_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    out = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return out if out.ndim == 3 else out[:, :, None]  # type: ignore[no-any-return]


def encode(ext: str, image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(ext, image)
    assert ok
    return data.tobytes()  # type: ignore[no-any-return]


def diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    assert a.shape == b.shape
    return np.abs(a.astype(np.int16) - b.astype(np.int16))


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    assert len(PHOTOS) == 10
    return [p.read_bytes() for p in PHOTOS]


@pytest.fixture(scope="module")
def gradient() -> np.ndarray:
    """A BGR test card: smooth ramps and a sharp edge, odd size."""
    y, x = np.mgrid[0:97, 0:131]
    image = np.dstack([x * 255 // 130, y * 255 // 96, (x + y) % 256]).astype(np.uint8)
    image[40:60, 50:80] = (0, 0, 255)
    return image


def test_photos_decode_close_to_cv2(photos: list[bytes]) -> None:
    means = []
    for data in photos:
        ref = cv_decode(data)
        out = _native.decode_images([data])
        assert out.dtype == np.uint8 and out.shape == (1, *ref.shape)
        d = diff(out[0], ref)
        assert d.max() <= JPEG_MAX_DIFF
        means.append(d.mean())
    assert np.mean(means) < JPEG_MEAN_DIFF


@pytest.mark.parametrize("size", [(224, 224), (300, 300), (96, 128), (17, 1000), (1, 1)])
def test_photos_batch_resize_close_to_cv2(photos: list[bytes], size: tuple[int, int]) -> None:
    height, width = size
    out = _native.decode_images(photos, height, width)
    assert out.shape == (10, height, width, 3) and out.flags.c_contiguous and out.flags.writeable
    means = []
    for data, got in zip(photos, out):
        d = diff(got, cv_resize(cv_decode(data), height, width))
        assert d.max() <= JPEG_MAX_DIFF
        means.append(d.mean())
    assert np.mean(means) < JPEG_MEAN_DIFF


@pytest.mark.parametrize(
    "size", [(224, 224), (97, 131), (48, 65), (300, 301), (1, 1), (5, 700), (960, 1310), (33, 17)]
)
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_resize_is_bit_exact_with_cv2(
    gradient: np.ndarray, size: tuple[int, int], channels: int
) -> None:
    image = {1: cv2.cvtColor(gradient, cv2.COLOR_BGR2GRAY), 3: gradient}.get(channels)
    if image is None:
        image = np.dstack([gradient, gradient[:, :, 0] ^ 0x5A])
    data = encode(".png", image)
    out = _native.decode_images([data], *size)
    expected = cv_resize(cv_decode(data), *size)
    np.testing.assert_array_equal(out[0], expected)


def test_resize_random_noise_is_bit_exact_with_cv2() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        h, w = rng.integers(1, 120, size=2)
        image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        th, tw = (int(v) for v in rng.integers(1, 260, size=2))
        out = _native.decode_images([encode(".png", image)], th, tw)
        np.testing.assert_array_equal(out[0], cv_resize(image, th, tw))


def test_channel_order_is_bgr() -> None:
    red = np.zeros((8, 8, 3), np.uint8)
    red[:, :, 2] = 255  # BGR red
    assert _native.decode_images([encode(".png", red)])[0, 0, 0].tolist() == [0, 0, 255]
    jpeg = _native.decode_images([encode(".jpg", red)])[0, 4, 4].tolist()
    assert jpeg[0] < 10 and jpeg[1] < 10 and jpeg[2] > 240


@pytest.mark.parametrize(
    "name",
    ["gray", "bgr", "bgra", "gray16", "bgr16", "bgra16"],
)
def test_png_from_cv2_matches_imdecode(gradient: np.ndarray, name: str) -> None:
    gray = cv2.cvtColor(gradient, cv2.COLOR_BGR2GRAY)
    bgra = np.dstack(
        [gradient, np.arange(gradient.shape[1], dtype=np.uint8)[None, :].repeat(97, 0)]
    )
    image = {"gray": gray, "bgr": gradient, "bgra": bgra}[name.removesuffix("16")]
    if name.endswith("16"):
        image = image.astype(np.uint16) * 257 + 3  # distinct high and low bytes
    data = encode(".png", image)
    ref = cv_decode(data)
    if ref.dtype == np.uint16:
        # IMREAD_UNCHANGED keeps 16 bits; we keep the high byte, as cv2's own 8-bit reads do.
        ref = (ref >> 8).astype(np.uint8)
        if name == "bgr16":
            np.testing.assert_array_equal(
                ref, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            )
    np.testing.assert_array_equal(_native.decode_images([data])[0], ref)


def pillow_png(mode: str, **params: object) -> bytes:
    image_module = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(1)
    rgb = image_module.fromarray(rng.integers(0, 256, size=(23, 37, 3), dtype=np.uint8))
    if mode == "P":
        image = rgb.convert(
            "P", palette=image_module.Palette.ADAPTIVE, colors=params.pop("colors", 256)
        )
    else:
        image = rgb.convert(mode)
    out = io.BytesIO()
    image.save(out, "PNG", **params)
    return out.getvalue()


@pytest.mark.parametrize(
    ("mode", "params", "channels"),
    [
        ("LA", {}, 4),  # gray + alpha -> BGRA
        ("P", {}, 3),
        ("P", {"transparency": 3}, 4),
        ("P", {"colors": 16, "bits": 4}, 3),
        ("L", {"transparency": 7}, 1),  # OpenCV ignores a gray tRNS key
        ("RGB", {"transparency": (1, 2, 3)}, 4),
        ("1", {}, 1),
        ("I;16", {}, 1),
    ],
)
def test_png_layouts_match_imdecode(mode: str, params: dict[str, object], channels: int) -> None:
    data = pillow_png(mode, **params)
    ref = cv_decode(data)
    if ref.dtype == np.uint16:
        ref = (ref >> 8).astype(np.uint8)
    out = _native.decode_images([data])[0]
    assert out.shape[2] == channels
    np.testing.assert_array_equal(out, ref)


def test_png_rgb_colour_key_becomes_alpha() -> None:
    image = np.zeros((4, 5, 3), np.uint8)
    image[1, 2] = (30, 20, 10)  # RGB (10, 20, 30) in BGR order
    raw = b"".join(b"\x00" + row.tobytes() for row in image[:, :, ::-1])
    data = png_file(5, 4, 2, raw, trns=struct.pack(">HHH", 10, 20, 30))
    out = _native.decode_images([data])[0]
    np.testing.assert_array_equal(out, cv_decode(data))
    assert out[1, 2, 3] == 0 and out[0, 0, 3] == 255


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_file(
    width: int, height: int, color: int, scanlines: bytes, *, interlace: int = 0, trns: bytes = b""
) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, interlace)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + (png_chunk(b"tRNS", trns) if trns else b"")
        + png_chunk(b"IDAT", zlib.compress(scanlines))
        + png_chunk(b"IEND", b"")
    )


def test_interlaced_png_matches_imdecode(gradient: np.ndarray) -> None:
    rgb = np.ascontiguousarray(gradient[:, :, ::-1])
    h, w, _ = rgb.shape
    passes = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ]
    scanlines = b"".join(
        b"\x00" + rgb[y, x0::dx].tobytes()
        for x0, y0, dx, dy in passes
        if x0 < w
        for y in range(y0, h, dy)
    )
    data = png_file(w, h, 2, scanlines, interlace=1)
    np.testing.assert_array_equal(_native.decode_images([data])[0], cv_decode(data))
    np.testing.assert_array_equal(_native.decode_images([data])[0], gradient)


def test_grayscale_and_progressive_jpeg(photos: list[bytes]) -> None:
    bgr = cv_decode(photos[0])
    for data in [
        encode(".jpg", cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)),
        cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes(),
    ]:
        ref = cv_decode(data)
        out = _native.decode_images([data])[0]
        assert out.shape == ref.shape
        assert diff(out, ref).max() <= JPEG_MAX_DIFF and diff(out, ref).mean() < JPEG_MEAN_DIFF


def test_cmyk_jpeg_decodes_to_bgr(photos: list[bytes]) -> None:
    image_module = pytest.importorskip("PIL.Image")
    out = io.BytesIO()
    image_module.open(io.BytesIO(photos[0])).convert("CMYK").save(out, "JPEG", quality=95)
    data = out.getvalue()
    ref = cv_decode(data)
    got = _native.decode_images([data])[0]
    assert got.shape == ref.shape == (*ref.shape[:2], 3)
    assert diff(got, ref).mean() < 1.0


def test_batch_of_many_equals_single_decodes(photos: list[bytes]) -> None:
    batch = _native.decode_images(photos * 4, 64, 80)
    singles = np.concatenate([_native.decode_images([p], 64, 80) for p in photos])
    np.testing.assert_array_equal(batch, np.concatenate([singles] * 4))


def test_output_owns_its_memory(photos: list[bytes]) -> None:
    out = _native.decode_images(photos[:2], 32, 32)
    out[:] = 7  # writable, and nothing else sees it
    assert (_native.decode_images(photos[:2], 32, 32) != 7).any()


def test_empty_batch() -> None:
    assert _native.decode_images([], 5, 6).shape == (0, 5, 6, 0)
    assert _native.decode_images([]).shape == (0, 0, 0, 0)


def raises(images: list[bytes], height: int | None = None, width: int | None = None) -> str:
    with pytest.raises(_native.InvalidInput) as info:
        _native.decode_images(images, height, width)
    return str(info.value)


def test_errors(photos: list[bytes], gradient: np.ndarray) -> None:
    jpeg = photos[0]
    png = encode(".png", gradient)
    assert raises([jpeg, b""]) == "String val is empty"
    assert raises([b"garbage", b""]) == "String val is empty"  # empties are checked before decoding
    assert raises([b"not an image"]) == PARSING_FAILED
    assert raises([b"GIF89a\x01\x00\x01\x00"]) == PARSING_FAILED
    for cut in (10, len(jpeg) // 2, len(jpeg) - 2):
        assert raises([jpeg[:cut]]) == PARSING_FAILED, cut
    for cut in (20, len(png) // 2, len(png) - 5):
        assert raises([png[:cut]]) == PARSING_FAILED, cut
    assert (
        raises([jpeg, png])
        == "Binary input images for this endpoint are required to have the same resolution"
    )
    gray = encode(".png", cv2.cvtColor(gradient, cv2.COLOR_BGR2GRAY))
    assert raises([png, gray], 32, 32) == "Invalid number of channels in binary input"
    # Image by image, as OVMS: a failing decode before the mismatching image wins.
    assert raises([jpeg, jpeg[:-2], png]) == PARSING_FAILED
    assert raises([jpeg, png, jpeg[:-2]]).startswith("Binary input images")
    with pytest.raises(ValueError, match="height and width"):
        _native.decode_images([jpeg], 10)
    with pytest.raises(ValueError, match="height and width"):
        _native.decode_images([jpeg], 0, 10)


def test_huge_header_is_rejected_before_decoding(photos: list[bytes]) -> None:
    jpeg = bytearray(photos[0])
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", 30000, 30000)
    assert raises([bytes(jpeg)]) == PARSING_FAILED
    png = png_file(20000, 20000, 2, b"\x00" * 100)
    assert raises([png]) == PARSING_FAILED
    assert raises([png_file(16384, 16385, 0, b"\x00" * 100)]) == PARSING_FAILED


NUMERIC = ["u1", "i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f2", "<f4", "<f8"]


@pytest.mark.parametrize("dtype", NUMERIC)
def test_decodes_into_the_models_precision(photos: list[bytes], dtype: str) -> None:
    """The cast happens inside the decode and gives what numpy's astype gives (no scaling; int8
    wraps); resized or not."""
    for height, width in [(32, 48), (None, None)]:
        images = photos[:3] if height else [photos[0]] * 2
        want = _native.decode_images(images, height, width).astype(dtype)
        got = _native.decode_images(images, height, width, np.dtype(dtype))
        assert got.dtype == np.dtype(dtype) and got.flags.c_contiguous and got.flags.writeable
        np.testing.assert_array_equal(got, want)


def test_other_dtypes_are_refused(photos: list[bytes]) -> None:
    for dtype in ["?", ">f4", "O", "U4", "c8"]:
        with pytest.raises(ValueError, match="dtype"):
            _native.decode_images(photos[:1], dtype=np.dtype(dtype))
