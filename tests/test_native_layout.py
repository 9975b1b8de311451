"""transpose_layout against numpy's own transpose: every served dtype, odd shapes, odd memory."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from ovms_rs._native import InvalidInput, transpose_layout

DTYPES = [
    np.float32,
    np.float16,
    np.float64,
    np.int8,
    np.uint8,
    np.int16,
    np.uint16,
    np.int32,
    np.int64,
    np.uint32,
    np.uint64,
    np.bool_,
]

SHAPES = [
    (1, 224, 224, 3),
    (32, 224, 224, 3),
    (1, 1, 1, 1),
    (2, 5, 7, 1),
    (3, 9, 11, 4),
    (2, 13, 2),
    (2, 6, 5, 9),
    (1, 33, 17, 64),
    (2, 3, 4, 5, 6),
    (0, 4, 4, 3),
    (2, 0, 4, 3),
    (2, 4, 4, 0),
]


def sample(shape: tuple[int, ...], dtype: type[np.generic]) -> np.ndarray:
    """Distinct-ish values of `dtype` (every bit pattern matters, so no zeros-only arrays)."""
    count = int(np.prod(shape))
    if dtype is np.bool_:
        return (np.arange(count) % 3 == 0).reshape(shape)  # type: ignore[no-any-return]
    raw = np.random.default_rng(count).integers(0, 256, count * np.dtype(dtype).itemsize, np.uint8)
    values = raw.view(dtype)
    if np.dtype(dtype).kind == "f":  # keep NaNs out so array_equal can compare
        values = np.nan_to_num(values, nan=1.5)
    return values.reshape(shape)


def expect_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    assert got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_nhwc_to_nchw_matches_numpy(shape: tuple[int, ...], dtype: type) -> None:
    x = sample(shape, dtype)
    axes = (0, x.ndim - 1, *range(1, x.ndim - 1))
    expect_same(transpose_layout(x, "NCHW"), np.ascontiguousarray(np.transpose(x, axes)))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_nchw_to_nhwc_matches_numpy(shape: tuple[int, ...], dtype: type) -> None:
    x = sample(shape, dtype)
    axes = (0, *range(2, x.ndim), 1)
    expect_same(transpose_layout(x, "NHWC"), np.ascontiguousarray(np.transpose(x, axes)))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_roundtrip(dtype: type) -> None:
    x = sample((3, 10, 12, 5), dtype)
    back = transpose_layout(transpose_layout(x, "NCHW"), "NHWC")
    expect_same(back, x)


@pytest.mark.parametrize("dtype", [np.uint8, np.float16, np.float32, np.float64], ids=str)
def test_unaligned_input(dtype: type[np.generic]) -> None:
    """A view over request bytes at an odd offset: the data pointer is not aligned for the dtype."""
    x = sample((2, 15, 9, 3), dtype)
    view = np.frombuffer(b"\0" + x.tobytes(), dtype=dtype, offset=1).reshape(x.shape)
    assert np.dtype(dtype).itemsize == 1 or not view.flags.aligned
    expect_same(transpose_layout(view, "NCHW"), np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    view_nchw = np.frombuffer(b"\0" + x.tobytes(), dtype=dtype, offset=1).reshape(2, 3, 15, 9)
    expect_same(
        transpose_layout(view_nchw, "NHWC"),
        np.ascontiguousarray(view_nchw.transpose(0, 2, 3, 1)),
    )


def test_non_contiguous_input() -> None:
    base = sample((4, 20, 30, 6), np.float32)
    for x in (base[::2, :, ::3, 1:4], base.transpose(0, 2, 1, 3), np.asfortranarray(base)):
        assert not x.flags.c_contiguous
        expect_same(transpose_layout(x, "NCHW"), np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        expect_same(transpose_layout(x, "NHWC"), np.ascontiguousarray(x.transpose(0, 2, 3, 1)))


def test_big_endian_dtype_is_kept() -> None:
    x = sample((2, 4, 5, 3), np.float32).astype(">f4")
    got = transpose_layout(x, "NCHW")
    assert got.dtype == np.dtype(">f4")
    expect_same(got, np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def test_returns_a_new_array() -> None:
    x = sample((1, 4, 4, 1), np.float32)  # numpy would hand back x itself here
    got = transpose_layout(x, "NCHW")
    assert got.flags.owndata and got.flags.writeable
    assert not np.shares_memory(got, x)


def test_read_only_input() -> None:
    x = sample((2, 3, 4, 3), np.int32)
    x.flags.writeable = False
    expect_same(transpose_layout(x, "NCHW"), np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


@pytest.mark.parametrize("to", ["nchw", "NCWH", "", "CHW"])
def test_bad_target_layout(to: str) -> None:
    with pytest.raises(ValueError, match="NCHW"):
        transpose_layout(np.zeros((1, 2, 2, 3), np.float32), to)


@pytest.mark.parametrize("shape", [(), (3,), (2, 3)], ids=str)
def test_rank_below_3(shape: tuple[int, ...]) -> None:
    for to in ("NCHW", "NHWC"):
        with pytest.raises(InvalidInput, match="rank"):
            transpose_layout(np.zeros(shape, np.float32), to)


@pytest.mark.parametrize(
    "dtype", [np.complex64, np.complex128, np.object_, "S4", "U1", "V4", np.longdouble], ids=str
)
def test_unsupported_dtype(dtype: npt.DTypeLike) -> None:
    with pytest.raises(InvalidInput, match="dtype"):
        transpose_layout(np.zeros((1, 2, 2, 3), dtype), "NCHW")


def test_not_an_array() -> None:
    with pytest.raises(TypeError):
        transpose_layout([[[1, 2, 3]]], "NCHW")  # type: ignore[arg-type]
