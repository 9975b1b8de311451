"""`python -m ovms_rs.clients.jpeg_classification`: classifies a list of labeled JPEG files.

Each line of --images_list is `<path> <ImageNet class id>`. By default the client decodes each
image, takes OVMS's centred crop and sends [1,3,size,size] float32 BGR; with --binary it sends the
file's bytes in string_val and the server decodes and resizes them (serve the model with
`--layout NHWC:NCHW`)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._proto.tensorflow.core.framework import tensor_pb2
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
from .imagenet import top_classes
from .images import read_cropped, to_nchw
from .tensors import make_ndarray, make_string_tensor_proto, make_tensor_proto


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ovms_rs.clients.jpeg_classification",
        description="Sends requests via TFS gRPC API using a list of labeled JPEG images. "
        "It displays the detected classes, timings and the accuracy",
    )
    parser.add_argument(
        "--images_list",
        required=False,
        default="input_images.txt",
        help="path to a file with a list of labeled images",
    )
    add_connection_args(parser)
    add_tensor_name_args(parser)
    add_model_args(
        parser,
        name_help="Define model name, must be same as is in service. default: resnet",
        version_help="Model version to be used. Default: LATEST",
    )
    parser.add_argument(
        "--size", required=False, default=224, type=int, help="The size of the image in the model"
    )
    parser.add_argument(
        "--binary",
        action="store_true",
        help="Send the JPEG bytes (string_val) for the server to decode and "
        "resize; the model must accept NHWC (serve it with --layout NHWC:NCHW)",
    )
    return parser


def read_images_list(list_path: str) -> list[tuple[str, Path, int]]:
    """(path as written, file to open, label) per non-empty line.

    Relative paths are tried from the working directory first (as OVMS's client does), then from
    the list file's folder, so the list works from anywhere."""
    entries = []
    for number, line in enumerate(Path(list_path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            raise ClientError(f"{list_path}:{number}: expected '<image path> <class id>'")
        written = fields[0]
        path = Path(written)
        if not path.is_absolute() and not path.exists():
            beside_list = Path(list_path).parent / path
            path = beside_list if beside_list.exists() else path
        entries.append((written, path, int(fields[1])))
    if not entries:
        raise ClientError(f"no images listed in {list_path}")
    return entries


def image_tensor(written: str, path: Path, args: argparse.Namespace) -> tensor_pb2.TensorProto:
    """The request's input for one image, after printing what is sent."""
    if args.binary:
        data = path.read_bytes()
        print(written, (1,), "; binary data:", len(data), "bytes")
        return make_string_tensor_proto([data])
    img = to_nchw(read_cropped(path, args.size))
    print(written, img.shape, "; data range:", float(np.amin(img)), ":", float(np.amax(img)))
    return make_tensor_proto(img)


def classify(args: argparse.Namespace) -> int:
    if args.size < 1:
        raise ClientError("--size must be at least 1")
    entries = read_images_list(args.images_list)
    print("Start processing:")
    print(f"\tModel name: {args.model_name}")
    print(f"\tImages list file: {args.images_list}")

    matched = 0
    times_ms: list[int] = []
    with open_channel(args) as channel:
        stub = prediction_stub(channel)
        for written, path, label in entries:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = args.model_name
            if args.model_version is not None:
                request.model_spec.version.value = args.model_version
            request.inputs[args.input_name].CopyFrom(image_tensor(written, path, args))
            began = time.perf_counter()
            result: predict_pb2.PredictResponse = stub.Predict(request, REQUEST_TIMEOUT_S)
            duration_ms = (time.perf_counter() - began) * 1000
            if args.output_name not in result.outputs:
                print("Invalid output name", args.output_name)
                print("Available outputs:")
                for name in result.outputs:
                    print(name)
                return 1
            times_ms.append(int(duration_ms))
            # OVMS's client misplaces its format arguments: whole milliseconds, a constant
            # "speed 2.00 fps", then the real speed. Kept verbatim for scripts that read it.
            speed = round(1000 / max(duration_ms, 1e-6), 2)
            print(f"Processing time: {round(duration_ms):.2f} ms; speed 2.00 fps", speed)
            detected = top_classes(make_ndarray(result.outputs[args.output_name]))[0]
            if detected == label:
                matched += 1
            print("Detected:", detected, " Should be:", label)

    print("Overall accuracy=", matched / len(entries) * 100, "%")
    print("Average latency=", float(np.average(times_ms)), "ms")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), classify, argv)


if __name__ == "__main__":
    sys.exit(main())
