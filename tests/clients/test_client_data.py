"""The demo data command and the clients' small pieces: preprocessing, class ids, tensors."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from client_support import run_module
from helpers import DEMO_DATA, labeled_photos, photo_nchw
from ovms_rs._proto.tensorflow.core.framework import tensor_pb2, types_pb2
from ovms_rs.clients import imagenet, images, tensors
from ovms_rs.clients.connection import ClientError


def test_demo_data_files(demo_data: Path) -> None:
    imgs = np.load(demo_data / "imgs.npy")
    assert imgs.shape == (10, 3, 224, 224) and imgs.dtype == np.float32
    assert imgs.min() == 0.0 and imgs.max() == 255.0
    labels = np.load(demo_data / "lbs.npy")
    assert labels.tolist() == [label for _, label in labeled_photos()]
    assert (demo_data / "input_images.txt").read_text() == (
        DEMO_DATA / "input_images.txt"
    ).read_text()
    for path, _ in labeled_photos():
        assert (demo_data / "images" / path.name).read_bytes() == path.read_bytes()


def test_demo_images_are_bilinear_bgr(demo_data: Path) -> None:
    """The same pixels as OpenCV's imread + INTER_LINEAR resize (what OVMS's users feed)."""
    pytest.importorskip("cv2")
    imgs = np.load(demo_data / "imgs.npy")
    for i, (path, _) in enumerate(labeled_photos()):
        np.testing.assert_array_equal(imgs[i : i + 1], photo_nchw(path))


def test_demo_data_nhwc_is_the_transposition(demo_data: Path, demo_data_nhwc: Path) -> None:
    nchw, nhwc = np.load(demo_data / "imgs.npy"), np.load(demo_data_nhwc / "imgs.npy")
    np.testing.assert_array_equal(nhwc, nchw.transpose(0, 2, 3, 1))


def test_demo_data_into_a_new_nested_folder(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    result = run_module("make_demo_data", "--output_dir", str(out), "--size", "32", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"Wrote {out / 'imgs.npy'}: (10, 3, 32, 32) float32, BGR, 0..255, NCHW" in result.stdout
    assert np.load(out / "imgs.npy").shape == (10, 3, 32, 32)


def test_demo_data_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_module("make_demo_data", "--output_dir", str(blocker / "sub"), cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.startswith("Error: ")
    assert "Traceback" not in result.stderr


# The package's JPEG decoder (zune-jpeg) upsamples chroma rounding twice where libjpeg-turbo (OpenCV's)
# rounds once. Measured on the ten demo photos: 1-28% of the values differ, by 0.01-0.33 on average
# and at most 6 levels (peacock); the resize itself is exact (the PNG test below).
JPEG_MAX_DIFF = 6
JPEG_MAX_MEAN_DIFF = 0.5


def preprocessed(path: Path) -> list[np.ndarray[Any, Any]]:
    """What the clients make of an image file: decoded, jpeg_classification's crop, make_demo_data's."""
    return [
        images.read_bgr(path),
        images.read_cropped(path, 224),
        images.read_bgr(path, (224, 224)),
    ]


def native_and_opencv(
    paths: list[Path], monkeypatch: pytest.MonkeyPatch
) -> list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    """(without OpenCV, with OpenCV) for each of preprocessed(path)."""
    pytest.importorskip("cv2")
    with_opencv = [preprocessed(p) for p in paths]
    monkeypatch.setitem(sys.modules, "cv2", None)
    native = [preprocessed(p) for p in paths]
    pairs = [pair for got, want in zip(native, with_opencv) for pair in zip(got, want)]
    for got, want in pairs:
        assert got.dtype == want.dtype == np.uint8 and got.shape == want.shape
        assert got.shape[2] == 3
    return pairs


def test_native_preprocessing_of_the_demo_photos(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without OpenCV, the ten JPEG photos: OpenCV's pixels but for the chroma rounding above."""
    pairs = native_and_opencv([p for p, _ in labeled_photos()], monkeypatch)
    for got, want in pairs:
        diff = np.abs(got.astype(int) - want.astype(int))
        assert diff.mean() < JPEG_MAX_MEAN_DIFF and diff.max() <= JPEG_MAX_DIFF


def test_native_preprocessing_is_opencvs_exactly_on_png(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The same photos as lossless PNG (both decoders agree), in colour, gray and with alpha: the
    resize and crop give OpenCV's pixels exactly."""
    cv2 = pytest.importorskip("cv2")
    paths = []
    for photo, _ in labeled_photos():
        bgr = cv2.imread(str(photo))
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        alpha = np.dstack(
            [bgr, np.arange(bgr.shape[0] * bgr.shape[1]).reshape(bgr.shape[:2]) % 256]
        )
        for kind, img in (("bgr", bgr), ("gray", gray), ("bgra", alpha.astype(np.uint8))):
            paths.append(tmp_path / f"{photo.stem}-{kind}.png")
            assert cv2.imwrite(str(paths[-1]), img)
    for got, want in native_and_opencv(paths, monkeypatch):
        np.testing.assert_array_equal(got, want)


def test_native_crop_of_an_image_short_both_ways(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """OpenCV's client stretches the height, rounds to uint8, then the width; the native path does
    both in one resize, so pixels may differ by one level (and only there)."""
    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "small.png"
    assert cv2.imwrite(str(path), cv2.imread(str(DEMO_DATA / "images" / "zebra.jpeg"))[:150, :200])
    for got, want in native_and_opencv([path], monkeypatch):
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_undecodable_file_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "notes.jpeg"
    path.write_bytes(b"not an image")
    if importlib.util.find_spec("cv2") is not None:
        with pytest.raises(ClientError, match=f"^cannot decode image: {re.escape(str(path))}$"):
            images.read_bgr(path)
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(ClientError, match="only JPEG and PNG are read: pip install opencv-python"):
        images.read_cropped(path, 224)


def test_centre_crop_is_ovms_offsets() -> None:
    big = np.zeros((300, 400, 3), np.uint8)
    big[38:262, 88:312] = 7  # the centred 224 x 224 window
    assert (images.centre_crop(big, 224) == 7).all()


def test_top_classes_shift_for_1001_classes() -> None:
    scores = np.zeros((2, 1001), np.float32)
    scores[0, 405] = scores[1, 1] = 1.0
    assert imagenet.top_classes(scores) == [404, 0]
    plain = np.zeros((1, 1000), np.float32)
    plain[0, 404] = 1.0
    assert imagenet.top_classes(plain) == [404]
    assert imagenet.class_name(404) == "airliner"
    assert len(imagenet.class_names()) == 1000


def test_tensor_round_trip_and_typed_values() -> None:
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    proto = tensors.make_tensor_proto(array)
    assert proto.dtype == types_pb2.DT_FLOAT and [d.size for d in proto.tensor_shape.dim] == [2, 3]
    np.testing.assert_array_equal(tensors.make_ndarray(proto), array)
    np.testing.assert_array_equal(tensors.make_ndarray(tensors.make_tensor_proto(array.T)), array.T)
    typed = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[1.5, 2.5])
    typed.tensor_shape.dim.add(size=2)
    np.testing.assert_array_equal(tensors.make_ndarray(typed), np.array([1.5, 2.5], np.float32))
    strings = tensors.make_string_tensor_proto([b"a", b"bc"])
    assert strings.dtype == types_pb2.DT_STRING and list(strings.string_val) == [b"a", b"bc"]
