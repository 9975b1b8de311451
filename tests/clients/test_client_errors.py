"""The clients' failures are one `Error: ...` line on stderr and a non-zero status, never a
traceback: server unreachable, unknown model or version, missing or unreadable files, undecodable images."""

from __future__ import annotations

from pathlib import Path

import pytest
from client_support import assert_one_line_error, run_module
from helpers import DEMO, ServerProcess, free_port

NUMPY_ARGS = (
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
)
JPEG_ARGS = ("--input_name", "data", "--output_name", "prob")
CLIENTS = [
    ("get_model_status", ()),
    ("get_serving_meta", ()),
    ("grpc_serving_client", NUMPY_ARGS),
    ("jpeg_classification", JPEG_ARGS),
]


@pytest.mark.parametrize(("client", "args"), CLIENTS)
def test_server_unreachable(client: str, args: tuple[str, ...], demo_data: Path) -> None:
    port = free_port()  # nothing listens there
    result = run_module(
        client, "--grpc_port", str(port), "--model_name", DEMO, *args, cwd=demo_data
    )
    assert result.returncode == 1
    assert_one_line_error(result, f"cannot reach the server at localhost:{port}")


@pytest.mark.parametrize(("client", "args"), CLIENTS)
def test_unknown_model(
    client: str, args: tuple[str, ...], demo_server: ServerProcess, demo_data: Path
) -> None:
    """The clients' default model name, resnet, is not served by the demo server."""
    result = run_module(client, "--grpc_port", str(demo_server.port), *args, cwd=demo_data)
    assert result.returncode == 1
    assert_one_line_error(
        result, "NOT_FOUND: Model with requested name is not found", "model: resnet"
    )


@pytest.mark.parametrize(("client", "args"), CLIENTS)
def test_unknown_version(
    client: str, args: tuple[str, ...], demo_server: ServerProcess, demo_data: Path
) -> None:
    result = run_module(
        client,
        "--grpc_port",
        str(demo_server.port),
        "--model_name",
        DEMO,
        "--model_version",
        "7",
        *args,
        cwd=demo_data,
    )
    assert_one_line_error(
        result, "NOT_FOUND: Model with requested version is not found", "version: 7"
    )


@pytest.mark.parametrize(
    ("client", "args", "missing"),
    [
        ("grpc_serving_client", ("--images_numpy_path", "nowhere.npy"), "nowhere.npy"),
        (
            "grpc_serving_client",
            ("--images_numpy_path", "imgs.npy", "--labels_numpy_path", "no.npy"),
            "no.npy",
        ),
        ("jpeg_classification", ("--images_list", "no_list.txt"), "no_list.txt"),
    ],
)
def test_missing_file(
    client: str, args: tuple[str, ...], missing: str, demo_server: ServerProcess, demo_data: Path
) -> None:
    result = run_module(
        client, "--grpc_port", str(demo_server.port), "--model_name", DEMO, *args, cwd=demo_data
    )
    assert_one_line_error(result, "No such file or directory", missing)


def test_missing_image_in_list(demo_server: ServerProcess, demo_data: Path, tmp_path: Path) -> None:
    (tmp_path / "list.txt").write_text(f"{demo_data / 'images' / 'bee.jpeg'} 309\nghost.jpeg 1\n")
    result = run_module(
        "jpeg_classification",
        "--grpc_port",
        str(demo_server.port),
        "--model_name",
        DEMO,
        "--images_list",
        "list.txt",
        *JPEG_ARGS,
        cwd=tmp_path,
    )
    assert "Detected: 309  Should be: 309" in result.stdout
    assert_one_line_error(result, "No such file or directory", "ghost.jpeg")


def test_undecodable_image_and_bad_list_line(demo_server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "bad.jpeg").write_bytes(b"not a jpeg")
    (tmp_path / "list.txt").write_text("bad.jpeg 1\n")
    (tmp_path / "broken.txt").write_text("bad.jpeg\n")
    base = ("--grpc_port", str(demo_server.port), "--model_name", DEMO, *JPEG_ARGS)
    result = run_module("jpeg_classification", *base, "--images_list", "list.txt", cwd=tmp_path)
    assert_one_line_error(result, "cannot decode image: bad.jpeg")
    result = run_module("jpeg_classification", *base, "--images_list", "broken.txt", cwd=tmp_path)
    assert_one_line_error(result, "broken.txt:1: expected '<image path> <class id>'")


def test_not_a_numpy_file(demo_server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "imgs.npy").write_bytes(b"nonsense")
    result = run_module(
        "grpc_serving_client",
        "--grpc_port",
        str(demo_server.port),
        "--model_name",
        DEMO,
        "--images_numpy_path",
        "imgs.npy",
        cwd=tmp_path,
    )
    assert_one_line_error(result, "cannot read imgs.npy as a numpy array")


def test_undecodable_image_without_opencv(demo_server: ServerProcess, tmp_path: Path) -> None:
    """Without OpenCV (or Pillow) the package's decoder reads JPEG and PNG; anything else is one
    line naming the file and what to install for other formats."""
    (tmp_path / "bad.jpeg").write_bytes(b"not a jpeg")
    (tmp_path / "list.txt").write_text("bad.jpeg 1\n")
    result = run_module(
        "jpeg_classification",
        "--grpc_port",
        str(demo_server.port),
        "--model_name",
        DEMO,
        "--images_list",
        "list.txt",
        *JPEG_ARGS,
        cwd=tmp_path,
        image_libraries=False,
    )
    assert_one_line_error(
        result,
        "cannot decode image: bad.jpeg (Image parsing failed;",
        "only JPEG and PNG are read: pip install opencv-python-headless",
    )


def test_invalid_output_name_lists_the_outputs(demo_server: ServerProcess, demo_data: Path) -> None:
    """As OVMS's clients: `Invalid output name`, then the outputs the model has."""
    for client, args in CLIENTS[2:]:
        args = tuple("scores" if a == "prob" else a for a in args)
        result = run_module(
            client, "--grpc_port", str(demo_server.port), "--model_name", DEMO, *args, cwd=demo_data
        )
        assert result.returncode == 1
        assert result.stdout.endswith("Invalid output name scores\nAvailable outputs:\nprob\n")


def test_wrong_shape_is_the_servers_message(demo_server: ServerProcess, demo_data: Path) -> None:
    """NCHW data with OVMS's default --transpose_input True: the server's reason, on one line."""
    args = tuple(a for a in NUMPY_ARGS if a not in ("--transpose_input", "False"))
    result = run_module(
        "grpc_serving_client",
        "--grpc_port",
        str(demo_server.port),
        "--model_name",
        DEMO,
        *args,
        cwd=demo_data,
    )
    assert_one_line_error(
        result,
        "INVALID_ARGUMENT: Invalid input shape",
        "Expected: (1,3,224,224); Actual: (1,224,3,224)",
    )
