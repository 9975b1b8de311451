"""`python -m ovms_rs.clients.grpc_serving_client`: classifies a numpy batch over the TFS gRPC API,
with per-request timings, closing statistics and (given labels) the accuracy."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .._proto.tensorflow_serving.apis import predict_pb2
from .connection import (
    REQUEST_TIMEOUT_S,
    ClientError,
    add_connection_args,
    add_model_args,
    add_tensor_name_args,
    open_channel,
    prediction_stub,
    run,
)
from .imagenet import class_name, top_classes
from .tensors import make_ndarray, make_tensor_proto

_TRANSPOSITIONS = {"nhwc2nchw": (0, 3, 1, 2), "nchw2nhwc": (0, 2, 3, 1)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ovms_rs.clients.grpc_serving_client",
        description="Sends requests via TFS gRPC API using images in numpy format. "
        "It displays performance statistics and optionally the model accuracy",
    )
    parser.add_argument(
        "--images_numpy_path", required=True, help="numpy in shape [n,w,h,c] or [n,c,h,w]"
    )
    parser.add_argument(
        "--labels_numpy_path",
        required=False,
        help="numpy in shape [n,1] - can be used to check model accuracy",
    )
    add_connection_args(parser)
    add_tensor_name_args(parser)
    parser.add_argument(
        "--transpose_input",
        choices=["False", "True"],
        default="True",
        help="Set to False to skip NHWC>NCHW or NCHW>NHWC input transposing. default: True",
        dest="transpose_input",
    )
    parser.add_argument(
        "--transpose_method",
        choices=["nchw2nhwc", "nhwc2nchw"],
        default="nhwc2nchw",
        help="How the input transposition should be executed: nhwc2nchw or nchw2nhwc",
        dest="transpose_method",
    )
    parser.add_argument(
        "--iterations",
        default=0,
        type=int,
        dest="iterations",
        help="Number of requests iterations, as default use number of images in "
        "numpy memmap. default: 0 (consume all frames)",
    )
    # Too few images for the batch size: the data set is repeated until there are enough.
    parser.add_argument(
        "--batchsize",
        default=1,
        type=int,
        dest="batchsize",
        help="Number of images in a single request. default: 1",
    )
    add_model_args(
        parser,
        name_help="Define model name, must be same as is in service. default: resnet",
        version_help="Model version to be used. Default: LATEST",
    )
    return parser


def _load_npy(path: str) -> npt.NDArray[Any]:
    try:
        array: npt.NDArray[Any] = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        raise ClientError(f"cannot read {path} as a numpy array: {e}") from None
    return array


def load_images(path: str) -> npt.NDArray[Any]:
    """The images, rescaled to 0..255 over the whole set as OVMS's client does."""
    imgs = _load_npy(path)
    if imgs.ndim < 1 or imgs.shape[0] == 0:
        raise ClientError(f"no images in {path} (shape {imgs.shape})")
    shifted: npt.NDArray[Any] = imgs - np.min(imgs)
    span = np.ptp(shifted)
    if span == 0:  # a constant array has nothing to rescale
        return shifted
    scaled: npt.NDArray[Any] = shifted / span * 255
    return scaled


def load_labels(path: str, count: int) -> npt.NDArray[np.int64]:
    labels = _load_npy(path).reshape(-1).astype(np.int64)
    if labels.shape[0] != count:
        raise ClientError(f"{path} holds {labels.shape[0]} labels for {count} images")
    return labels


def print_statistics(times_ms: Sequence[float], batch_size: int) -> None:
    """The closing block of OVMS's clients (client_utils.print_statistics)."""
    times = np.asarray(times_ms, dtype=np.float64)
    print("\nprocessing time for all iterations")
    for label, value in (
        ("average", np.average(times)),
        ("median", np.median(times)),
        ("max", np.max(times)),
        ("min", np.min(times)),
    ):
        print(f"{label} time: {value:.2f} ms; {label} speed: {_fps(batch_size, value):.2f} fps")
    for q in (90, 50):
        value = np.percentile(times, q)
        print(
            f"time percentile {q}: {value:.2f} ms; "
            f"speed percentile {q}: {_fps(batch_size, value):.2f} fps"
        )
    print(f"time standard deviation: {np.std(times):.2f}")
    print(f"time variance: {np.var(times):.2f}")


def _fps(images: int, ms: float) -> float:
    return 1000 * images / ms if ms > 0 else float("inf")


def classify(args: argparse.Namespace) -> int:
    batch_size: int = args.batchsize
    if batch_size < 1 or args.iterations < 0:
        raise ClientError("--batchsize must be at least 1 and --iterations at least 0")
    imgs = load_images(args.images_numpy_path)
    print("Image data range:", np.amin(imgs), ":", np.amax(imgs))
    labels = None
    if args.labels_numpy_path is not None:
        labels = load_labels(args.labels_numpy_path, imgs.shape[0])
    while batch_size >= imgs.shape[0]:
        imgs = np.append(imgs, imgs, axis=0)
        if labels is not None:
            labels = np.append(labels, labels, axis=0)
    iterations: int = args.iterations or imgs.shape[0] // batch_size

    print("Start processing:")
    print(f"\tModel name: {args.model_name}")
    print(f"\tIterations: {iterations}")
    print(f"\tImages numpy path: {args.images_numpy_path}")
    if args.transpose_input == "True":
        if imgs.ndim != 4:
            raise ClientError(f"cannot transpose images of shape {imgs.shape}: 4 dimensions needed")
        imgs = imgs.transpose(_TRANSPOSITIONS[args.transpose_method])
    print(f"\tImages in shape: {imgs.shape}\n")

    times_ms: list[float] = []
    matched = executed = 0
    with open_channel(args) as channel:
        stub = prediction_stub(channel)
        iteration = 0
        while iteration < iterations:
            for start in range(0, imgs.shape[0] - batch_size + 1, batch_size):
                if iteration >= iterations:
                    break
                iteration += 1
                request = predict_pb2.PredictRequest()
                request.model_spec.name = args.model_name
                if args.model_version is not None:
                    request.model_spec.version.value = args.model_version
                request.inputs[args.input_name].CopyFrom(
                    make_tensor_proto(imgs[start : start + batch_size])
                )
                began = time.perf_counter()
                result: predict_pb2.PredictResponse = stub.Predict(request, REQUEST_TIMEOUT_S)
                duration_ms = (time.perf_counter() - began) * 1000
                if args.output_name not in result.outputs:
                    print("Invalid output name", args.output_name)
                    print("Available outputs:")
                    for name in result.outputs:
                        print(name)
                    return 1
                times_ms.append(duration_ms)
                print(
                    f"Iteration {iteration}; Processing time: {duration_ms:.2f} ms; "
                    f"speed {_fps(batch_size, duration_ms):.2f} fps"
                )
                print("imagenet top results in a single batch:")
                top = top_classes(make_ndarray(result.outputs[args.output_name]))
                for i, detected in enumerate(top):
                    mark = ""
                    if labels is not None:
                        executed += 1
                        expected = int(labels[start + i])
                        if detected == expected:
                            matched += 1
                            mark = "; Correct match."
                        else:
                            mark = f"; Incorrect match. Should be {expected} {class_name(expected)}"
                    print("\t", i, class_name(detected), detected, mark)

    print_statistics(times_ms, batch_size)
    if labels is not None and executed:
        print(f"Classification accuracy: {100 * matched / executed:.2f}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), classify, argv)


if __name__ == "__main__":
    sys.exit(main())
