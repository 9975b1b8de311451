"""grpc_serving_client on the walk-through's imgs.npy/lbs.npy: OVMS's output line by line, 100.00
accuracy, batch sizes 1/2/5, --iterations, and both transpositions against matching servers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from client_support import match_lines, run_module
from helpers import DEMO, ServerProcess
from ovms_rs.clients.imagenet import class_name

STATISTICS = [
    "",
    "processing time for all iterations",
    "average time: # ms; average speed: # fps",
    "median time: # ms; median speed: # fps",
    "max time: # ms; max speed: # fps",
    "min time: # ms; min speed: # fps",
    "time percentile 90: # ms; speed percentile 90: # fps",
    "time percentile 50: # ms; speed percentile 50: # fps",
    "time standard deviation: #",
    "time variance: #",
]


def expected_lines(labels: list[int], batch: int, iterations: int, shape: str) -> list[str]:
    """OVMS's grpc_serving_client output when every image is classified correctly."""
    count = len(labels)
    while batch >= count:  # the client repeats the data set until one batch fits
        count *= 2
    starts = list(range(0, count - batch + 1, batch))
    lines = [
        "Image data range: # : #",
        "Start processing:",
        f"\tModel name: {DEMO}",
        f"\tIterations: {iterations}",
        "\tImages numpy path: imgs.npy",
        f"\tImages in shape: {shape}",
        "",
    ]
    for iteration in range(iterations):
        lines += [
            f"Iteration {iteration + 1}; Processing time: # ms; speed # fps",
            "imagenet top results in a single batch:",
        ]
        for i in range(batch):
            label = labels[(starts[iteration % len(starts)] + i) % len(labels)]
            lines.append(f"\t {i} {class_name(label)} {label} ; Correct match.")
    return lines + STATISTICS + ["Classification accuracy: 100.00"]


def classify(server: ServerProcess, data: Path, *args: str) -> str:
    result = run_module(
        "grpc_serving_client",
        "--grpc_port",
        str(server.port),
        "--images_numpy_path",
        "imgs.npy",
        "--labels_numpy_path",
        "lbs.npy",
        "--input_name",
        "data",
        "--output_name",
        "prob",
        "--model_name",
        DEMO,
        *args,
        cwd=data,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    return result.stdout


def labels_of(data: Path) -> list[int]:
    return [int(x) for x in np.load(data / "lbs.npy")]


def check_statistics(numbers: list[list[float]], batch: int) -> None:
    """The closing block's numbers hang together: times in ms, speeds = 1000 * batch / time."""
    average, median, slowest, fastest, p90, p50 = numbers[-9:-3]
    for time_ms, fps in (average, median, slowest, fastest, p90, p50):
        assert time_ms > 0 and abs(fps - 1000 * batch / time_ms) <= 0.01 * fps + 0.01
    assert fastest[0] <= median[0] <= slowest[0] and fastest[0] <= average[0] <= slowest[0]
    assert median == p50
    std, variance = numbers[-3][0], numbers[-2][0]
    assert abs(std * std - variance) <= 0.01 * variance + 0.01


def test_numpy_batch_of_one(demo_server: ServerProcess, demo_data: Path) -> None:
    """The walk-through's command: NCHW data as is (--transpose_input False)."""
    out = classify(demo_server, demo_data, "--transpose_input", "False")
    labels = labels_of(demo_data)
    numbers = match_lines(out, expected_lines(labels, 1, 10, "(10, 3, 224, 224)"))
    assert numbers[0] == [0.0, 255.0]
    check_statistics(numbers, 1)


def test_numpy_batch_of_two(batch2_server: ServerProcess, demo_data: Path) -> None:
    out = classify(batch2_server, demo_data, "--transpose_input", "False", "--batchsize", "2")
    numbers = match_lines(out, expected_lines(labels_of(demo_data), 2, 5, "(10, 3, 224, 224)"))
    check_statistics(numbers, 2)


def test_numpy_batch_of_five_sent_as_nhwc(
    batch5_nhwc_server: ServerProcess, demo_data: Path
) -> None:
    """NCHW data transposed by the client (nchw2nhwc) for a server taking NHWC."""
    out = classify(
        batch5_nhwc_server, demo_data, "--transpose_method", "nchw2nhwc", "--batchsize", "5"
    )
    match_lines(out, expected_lines(labels_of(demo_data), 5, 2, "(10, 224, 224, 3)"))


def test_nhwc_data_transposed_for_an_nchw_model(
    demo_server: ServerProcess, demo_data_nhwc: Path
) -> None:
    """OVMS's default: --transpose_input True, nhwc2nchw."""
    assert np.load(demo_data_nhwc / "imgs.npy").shape == (10, 224, 224, 3)
    out = classify(demo_server, demo_data_nhwc, "--transpose_input", "True")
    match_lines(out, expected_lines(labels_of(demo_data_nhwc), 1, 10, "(10, 3, 224, 224)"))


def test_nhwc_data_as_is_with_a_layout_server(
    nhwc_server: ServerProcess, demo_data_nhwc: Path
) -> None:
    out = classify(nhwc_server, demo_data_nhwc, "--transpose_input", "False")
    match_lines(out, expected_lines(labels_of(demo_data_nhwc), 1, 10, "(10, 224, 224, 3)"))


def test_nhwc_data_batch_of_five(batch5_nhwc_server: ServerProcess, demo_data_nhwc: Path) -> None:
    out = classify(
        batch5_nhwc_server,
        demo_data_nhwc,
        "--transpose_input",
        "False",
        "--batchsize",
        "5",
        "--iterations",
        "3",
    )
    match_lines(out, expected_lines(labels_of(demo_data_nhwc), 5, 3, "(10, 224, 224, 3)"))


def test_iterations_cycle_through_the_data(demo_server: ServerProcess, demo_data: Path) -> None:
    out = classify(demo_server, demo_data, "--transpose_input", "False", "--iterations", "23")
    numbers = match_lines(out, expected_lines(labels_of(demo_data), 1, 23, "(10, 3, 224, 224)"))
    check_statistics(numbers, 1)


def test_iterations_with_batches(batch2_server: ServerProcess, demo_data: Path) -> None:
    out = classify(
        batch2_server,
        demo_data,
        "--transpose_input",
        "False",
        "--batchsize",
        "2",
        "--iterations",
        "7",
        "--model_version",
        "1",
    )
    match_lines(out, expected_lines(labels_of(demo_data), 2, 7, "(10, 3, 224, 224)"))


def test_without_labels_no_accuracy(demo_server: ServerProcess, demo_data: Path) -> None:
    result = run_module(
        "grpc_serving_client",
        "--grpc_port",
        str(demo_server.port),
        "--images_numpy_path",
        "imgs.npy",
        "--input_name",
        "data",
        "--output_name",
        "prob",
        "--model_name",
        DEMO,
        "--transpose_input",
        "False",
        "--iterations",
        "2",
        cwd=demo_data,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert lines[9] == "\t 0 airliner 404 "  # OVMS prints an empty match mark
    assert "Classification accuracy" not in result.stdout
    assert lines[-2] == "time variance: " + lines[-2].split(": ")[1]
