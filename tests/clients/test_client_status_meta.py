"""get_model_status and get_serving_meta against the demo model: OVMS's output, line by line."""

from __future__ import annotations

from pathlib import Path

from client_support import match_lines, run_module
from helpers import DEMO, ServerProcess
from model_repo import tiny_repo


def test_model_status(demo_server: ServerProcess, tmp_path: Path) -> None:
    result = run_module(
        "get_model_status", "--grpc_port", str(demo_server.port), "--model_name", DEMO, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    match_lines(
        result.stdout,
        [
            f"Getting model status for model: {DEMO}",
            "",
            "Model version: 1",
            "State AVAILABLE",
            "Error code:  0",
            "Error message:  OK",
        ],
    )


def test_model_status_of_a_failed_version(tmp_path: Path) -> None:
    """A version that fails to load: error code 2 and its name, UNKNOWN; the reason is in the
    server's log only, as with OVMS."""
    repo = tiny_repo(tmp_path / "tiny", [1])
    (repo / "2").mkdir()
    (repo / "2" / "model.xml").write_text("<net>this is not a model</net>")
    policy = ("--model_version_policy", '{"all": {}}')
    log = tmp_path / "server.log"
    with ServerProcess(
        "--model_name", "tiny", "--model_path", str(repo), *policy, log_path=log
    ) as server:
        result = run_module(
            "get_model_status",
            "--grpc_port",
            str(server.port),
            "--model_name",
            "tiny",
            cwd=tmp_path,
        )
        assert "Failed to load tiny version 2" in server.log()
    assert result.returncode == 0, result.stderr
    match_lines(
        result.stdout,
        [
            "Getting model status for model: tiny",
            "",
            "Model version: 1",
            "State AVAILABLE",
            "Error code:  0",
            "Error message:  OK",
            "",
            "Model version: 2",
            "State LOADING",
            "Error code:  2",
            "Error message:  UNKNOWN",
        ],
    )


def test_model_status_of_one_version(demo_server: ServerProcess, tmp_path: Path) -> None:
    result = run_module(
        "get_model_status",
        "--grpc_address",
        "127.0.0.1",
        "--grpc_port",
        str(demo_server.port),
        "--model_name",
        DEMO,
        "--model_version",
        "1",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "Model version: 1\nState AVAILABLE\n" in result.stdout


def test_serving_meta(demo_server: ServerProcess, tmp_path: Path) -> None:
    result = run_module(
        "get_serving_meta", "--grpc_port", str(demo_server.port), "--model_name", DEMO, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    match_lines(
        result.stdout,
        [
            f"Getting model metadata for model: {DEMO}",
            "Inputs metadata:",
            "\tInput name: data; shape: [1, 3, 224, 224]; dtype: DT_FLOAT",
            "Outputs metadata:",
            "\tOutput name: prob; shape: [1, 1000]; dtype: DT_FLOAT",
        ],
    )


def test_serving_meta_shows_the_served_shape(
    batch5_nhwc_server: ServerProcess, tmp_path: Path
) -> None:
    """--batch_size 5 --layout NHWC:NCHW: the metadata says what clients must send."""
    result = run_module(
        "get_serving_meta",
        "--grpc_port",
        str(batch5_nhwc_server.port),
        "--model_name",
        DEMO,
        "--model_version",
        "1",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "\tInput name: data; shape: [5, 224, 224, 3]; dtype: DT_FLOAT\n" in result.stdout
    assert "\tOutput name: prob; shape: [5, 1000]; dtype: DT_FLOAT\n" in result.stdout


def test_defaults_are_ovms_defaults() -> None:
    """localhost:9000, model resnet, OVMS's input/output names and transposition defaults."""
    from ovms_rs.clients import get_model_status, grpc_serving_client, jpeg_classification

    status = get_model_status.build_parser().parse_args([])
    assert (status.grpc_address, status.grpc_port, status.model_name) == (
        "localhost",
        9000,
        "resnet",
    )
    assert status.model_version is None
    numpy_args = grpc_serving_client.build_parser().parse_args(["--images_numpy_path", "x.npy"])
    assert numpy_args.input_name == "input"
    assert numpy_args.output_name == "resnet_v1_50/predictions/Reshape_1"
    assert (numpy_args.transpose_input, numpy_args.transpose_method) == ("True", "nhwc2nchw")
    assert (numpy_args.iterations, numpy_args.batchsize, numpy_args.model_name) == (0, 1, "resnet")
    jpeg_args = jpeg_classification.build_parser().parse_args([])
    assert (jpeg_args.images_list, jpeg_args.size, jpeg_args.binary) == (
        "input_images.txt",
        224,
        False,
    )
