"""The example clients and the demo data on the base install: no OpenCV, no Pillow (their imports
fail in the client's process, see client_support.WITHOUT_IMAGE_LIBRARIES). jpeg_classification's
run is in test_client_jpeg.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from client_support import WITHOUT_IMAGE_LIBRARIES, run_module
from helpers import DEMO, ServerProcess, env_without_proxy


def test_the_base_install_has_neither_library() -> None:
    """The shim really hides them (else every test below would prove nothing)."""
    for module in ("cv2", "PIL", "PIL.Image"):
        env = {**env_without_proxy(), "PYTHONPATH": str(WITHOUT_IMAGE_LIBRARIES)}
        result = subprocess.run(
            [sys.executable, "-c", f"import {module}"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert result.returncode == 1
        assert f"ModuleNotFoundError: No module named '{module.partition('.')[0]}'" in result.stderr


def test_status_and_metadata(demo_server: ServerProcess, tmp_path: Path) -> None:
    for client, first_line in (
        ("get_model_status", f"Getting model status for model: {DEMO}"),
        ("get_serving_meta", f"Getting model metadata for model: {DEMO}"),
    ):
        result = run_module(
            client,
            "--grpc_port",
            str(demo_server.port),
            "--model_name",
            DEMO,
            cwd=tmp_path,
            image_libraries=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(first_line + "\n")


def test_demo_data_and_the_numpy_client(
    demo_server: ServerProcess, demo_data: Path, tmp_path: Path
) -> None:
    """make_demo_data decodes and resizes with the package's decoder (a few levels from OpenCV's
    JPEG decoder at most), and grpc_serving_client gets all ten right on it."""
    result = run_module("make_demo_data", "--output_dir", ".", cwd=tmp_path, image_libraries=False)
    assert result.returncode == 0, result.stderr
    native, with_opencv = np.load(tmp_path / "imgs.npy"), np.load(demo_data / "imgs.npy")
    assert native.shape == with_opencv.shape == (10, 3, 224, 224)
    assert np.abs(native - with_opencv).mean() < 0.5
    result = run_module(
        "grpc_serving_client",
        "--grpc_port",
        str(demo_server.port),
        "--model_name",
        DEMO,
        "--images_numpy_path",
        "imgs.npy",
        "--labels_numpy_path",
        "lbs.npy",
        "--input_name",
        "data",
        "--output_name",
        "prob",
        "--transpose_input",
        "False",
        cwd=tmp_path,
        image_libraries=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("; Correct match.") == 10
    assert result.stdout.endswith("Classification accuracy: 100.00\n")
