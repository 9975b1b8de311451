"""The demo data command and the clients' small pieces: preprocessing, class ids, tensors."""

from __future__ import annotations

import sys
from pathlib import Path

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


def test_pillow_fallback_is_close_to_opencv(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("cv2")
    pytest.importorskip("PIL")
    path = DEMO_DATA / "images" / "zebra.jpeg"
    with_cv2 = images.read_bgr(path)
    monkeypatch.setitem(sys.modules, "cv2", None)
    with_pillow = images.read_bgr(path)
    assert with_pillow.shape == with_cv2.shape == (224, 336, 3)
    assert np.abs(with_pillow.astype(int) - with_cv2.astype(int)).mean() < 2.0  # JPEG IDCTs differ
    resized = images.resize_bilinear(with_pillow, 224, 224)
    assert resized.shape == (224, 224, 3) and resized.dtype == np.uint8


def test_no_decoder_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ClientError, match="pip install opencv-python-headless"):
        images.read_bgr(DEMO_DATA / "images" / "bee.jpeg")


def test_crop_resize_is_ovms_centre_crop() -> None:
    img = np.arange(183 * 275 * 3, dtype=np.uint32).reshape(183, 275, 3).astype(np.uint8)
    out = images.crop_resize(img, 224)
    assert out.shape == (224, 224, 3)
    big = np.zeros((300, 400, 3), np.uint8)
    big[38:262, 88:312] = 7  # the centred 224 x 224 window
    assert (images.crop_resize(big, 224) == 7).all()


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
